//! Config-only instructions (ENV, LABEL, USER, EXPOSE, CMD, ...): applied at
//! lowering time, as BuildKit does. They change the final image config and
//! the definitions of later vertices, never the filesystem.

use std::collections::BTreeMap;

use buildr_oci::{ContainerConfig, HealthConfig, ImageConfig};
use buildr_parser::{CommandLine, Healthcheck, Instruction};
use serde_json::Map;

/// Docker's default PATH for linux images whose base sets none.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The config of a stage being lowered.
#[derive(Debug, Clone)]
pub(crate) struct StageConfig {
    pub image: ImageConfig,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl StageConfig {
    pub(crate) fn new(mut image: ImageConfig) -> StageConfig {
        let config = image.config.get_or_insert_with(ContainerConfig::default);
        let env = config.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        // A child never inherits its base's triggers.
        config.on_build = None;
        StageConfig {
            image,
            cmd_set: false,
        }
    }

    pub(crate) fn config(&mut self) -> &mut ContainerConfig {
        self.image
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    pub(crate) fn env(&self) -> Vec<(String, String)> {
        self.image
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .map(|env| {
                env.iter()
                    .map(|e| match e.split_once('=') {
                        Some((k, v)) => (k.to_owned(), v.to_owned()),
                        None => (e.clone(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn set_env(&mut self, key: &str, value: &str) {
        let env = self.config().env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }

    pub(crate) fn shell(&self) -> Vec<String> {
        self.image
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()])
    }

    pub(crate) fn workdir(&self) -> String {
        self.image
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_owned())
    }

    pub(crate) fn user(&self) -> String {
        self.image
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .unwrap_or_default()
    }

    /// Applies a config-only instruction whose words are already expanded
    /// (`words`: the expanded values, in the instruction's order). Returns
    /// the history `created_by`.
    pub(crate) fn apply(&mut self, instruction: &Instruction, words: &[String]) -> Option<String> {
        match instruction {
            Instruction::Cmd(command) => {
                let argv = self.argv(command);
                self.config().cmd = Some(argv.clone());
                self.cmd_set = true;
                Some(format!("CMD {}", go_quoted(&argv)))
            }
            Instruction::Entrypoint(command) => {
                let argv = self.argv(command);
                self.config().entrypoint = Some(argv.clone());
                if !self.cmd_set {
                    self.config().cmd = None;
                }
                Some(format!("ENTRYPOINT {}", go_quoted(&argv)))
            }
            Instruction::Label(_) => {
                let labels = self.config().labels.get_or_insert_with(BTreeMap::new);
                let mut parts = Vec::new();
                for pair in words.chunks(2) {
                    if let [key, value] = pair {
                        labels.insert(key.clone(), value.clone());
                        parts.push(format!("{key}={value}"));
                    }
                }
                Some(format!("LABEL {}", parts.join(" ")))
            }
            Instruction::Maintainer(_) => {
                let name = words.first().cloned().unwrap_or_default();
                self.image.author = Some(name.clone());
                Some(format!("MAINTAINER {name}"))
            }
            Instruction::Expose(_) => {
                // As BuildKit (nat.ParsePortSpecs): a range is every port
                // in it; the history prints the set sorted, as Go prints
                // a map.
                let keys: std::collections::BTreeSet<String> =
                    words.iter().flat_map(|w| expose_keys(w)).collect();
                let ports = self
                    .config()
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                for key in &keys {
                    ports.insert(key.clone(), Map::new());
                }
                let shown: Vec<String> = keys.iter().map(|k| format!("{k}:{{}}")).collect();
                Some(format!("EXPOSE map[{}]", shown.join(" ")))
            }
            Instruction::Volume(_) => {
                let volumes = self.config().volumes.get_or_insert_with(BTreeMap::new);
                for volume in words {
                    volumes.insert(volume.clone(), Map::new());
                }
                Some(format!("VOLUME {}", go_list(words)))
            }
            Instruction::User(_) => {
                let user = words.first().cloned().unwrap_or_default();
                self.config().user = Some(user.clone());
                Some(format!("USER {user}"))
            }
            Instruction::Stopsignal(_) => {
                let signal = words.first().cloned().unwrap_or_default();
                self.config().stop_signal = Some(signal.clone());
                Some(format!("STOPSIGNAL {signal}"))
            }
            Instruction::Shell(shell) => {
                self.config().shell = Some(shell.clone());
                Some(format!("SHELL {}", go_list(shell)))
            }
            Instruction::Onbuild(onbuild) => {
                self.config()
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(onbuild.expression.clone());
                // BuildKit records no history entry for ONBUILD.
                None
            }
            Instruction::Healthcheck(check) => {
                let health = health_config(check);
                let test = health.test.clone().unwrap_or_default();
                self.config().healthcheck = Some(health);
                Some(format!("HEALTHCHECK &{{{}}}", go_list(&test)))
            }
            _ => None,
        }
    }

    /// A command line as argv: exec form as is, shell form through SHELL.
    pub(crate) fn argv(&self, command: &CommandLine) -> Vec<String> {
        match command {
            CommandLine::Exec(argv) => argv.clone(),
            CommandLine::Shell(line) => {
                let mut argv = self.shell();
                argv.push(line.clone());
                argv
            }
        }
    }
}

/// The `ExposedPorts` keys of one EXPOSE word: `80` -> `80/tcp`,
/// `53/UDP` -> `53/udp`, `8000-8002` -> one key per port. A malformed or
/// reversed range stays one key, as written.
fn expose_keys(word: &str) -> Vec<String> {
    let (ports, proto) = match word.split_once('/') {
        Some((ports, proto)) => (ports, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_owned()),
    };
    let range = ports
        .split_once('-')
        .and_then(|(lo, hi)| Some((lo.parse::<u16>().ok()?, hi.parse::<u16>().ok()?)))
        .filter(|(lo, hi)| lo <= hi);
    match range {
        Some((lo, hi)) => (lo..=hi).map(|p| format!("{p}/{proto}")).collect(),
        None => vec![format!("{ports}/{proto}")],
    }
}

/// Go's `%v` of a string slice: `[a b c]`, as BuildKit's history shows.
pub(crate) fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub(crate) fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// The image config's `Healthcheck` for a `HEALTHCHECK` instruction
/// (durations in nanoseconds, as docker's).
fn health_config(check: &Healthcheck) -> HealthConfig {
    match check {
        Healthcheck::None => HealthConfig {
            test: Some(vec!["NONE".to_owned()]),
            ..HealthConfig::default()
        },
        Healthcheck::Cmd(cmd) => {
            let test = match &cmd.command {
                CommandLine::Exec(argv) => {
                    let mut test = vec!["CMD".to_owned()];
                    test.extend(argv.iter().cloned());
                    test
                }
                CommandLine::Shell(line) => vec!["CMD-SHELL".to_owned(), line.clone()],
            };
            let nanos = |d: Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64);
            HealthConfig {
                test: Some(test),
                interval: nanos(cmd.interval),
                timeout: nanos(cmd.timeout),
                start_period: nanos(cmd.start_period),
                start_interval: nanos(cmd.start_interval),
                retries: cmd.retries.map(i64::from),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::expose_keys;

    #[test]
    fn expose_expands_ranges_and_defaults_to_tcp() {
        let cases: &[(&str, &[&str])] = &[
            ("80", &["80/tcp"]),
            ("53/UDP", &["53/udp"]),
            ("8000-8002", &["8000/tcp", "8001/tcp", "8002/tcp"]),
            ("7-8/udp", &["7/udp", "8/udp"]),
            ("9-3", &["9-3/tcp"]),
            ("x-y/sctp", &["x-y/sctp"]),
        ];
        for (word, want) in cases {
            assert_eq!(expose_keys(word), *want, "EXPOSE {word}");
        }
    }
}
