//! Build arguments as Docker scopes them: global `ARG`s before the first
//! `FROM` (usable in `FROM` lines, and in a stage only once redeclared),
//! `--build-arg` overrides, the predefined proxy args (passed to `RUN` but
//! kept out of the history unless declared) and the automatic platform args.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};

/// BuildKit's predefined proxy args: given in any case, each reaches every
/// `RUN` under its upper- and lower-case spelling without a declaration.
const PROXY_ARGS: [&str; 5] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// The build arg naming `RUN`'s hostname.
const SANDBOX_HOSTNAME: &str = "BUILDKIT_SANDBOX_HOSTNAME";

fn proxy_slot(name: &str) -> Option<usize> {
    PROXY_ARGS.iter().position(|p| p.eq_ignore_ascii_case(name))
}

/// An ordered set of `name=value`; the last setting of a name wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    vars: Vec<(String, String)>,
}

impl Scope {
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.vars.push((name.to_owned(), value.to_owned())),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.vars.iter()
    }
}

/// The `--build-arg`s of a build and which ones some `ARG` consumed.
#[derive(Debug, Default)]
pub(crate) struct BuildArgs {
    pub given: BTreeMap<String, String>,
    pub used: BTreeSet<String>,
}

impl BuildArgs {
    /// The value a declaration gets from `--build-arg`, marking it used.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        let value = self.given.get(name).cloned()?;
        self.used.insert(name.to_owned());
        Some(value)
    }

    /// The proxy variables `RUN` gets, as BuildKit's `proxyEnvFromBuildArgs`:
    /// the spellings of one proxy are visited in sorted order (the last,
    /// so the lower-case one, wins), and an empty value sets nothing.
    pub(crate) fn proxies(&self) -> Vec<(String, String)> {
        let mut values: [Option<&str>; 5] = [None; 5];
        for (name, value) in &self.given {
            if let Some(slot) = proxy_slot(name) {
                values[slot] = Some(value);
            }
        }
        let mut out = Vec::new();
        for (upper, value) in PROXY_ARGS.iter().zip(values) {
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            out.push(((*upper).to_owned(), value.to_owned()));
            out.push((upper.to_ascii_lowercase(), value.to_owned()));
        }
        out
    }

    /// `BUILDKIT_SANDBOX_HOSTNAME`: the hostname of every `RUN` (BuildKit's
    /// frontend reads it; an empty value keeps the default). One word of at
    /// most 64 bytes, since it becomes a line of the step's /etc/hosts.
    pub(crate) fn sandbox_hostname(&mut self) -> Result<Option<String>> {
        let Some(name) = self.take(SANDBOX_HOSTNAME).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if name.len() > 64 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::BuildOption {
                message: format!(
                    "{SANDBOX_HOSTNAME} {name:?}: a hostname is one word of at most 64 bytes"
                ),
            });
        }
        Ok(Some(name))
    }

    /// `--build-arg`s no `ARG` declared (proxy args excepted), sorted.
    pub(crate) fn unused(&self) -> Vec<String> {
        self.given
            .keys()
            .filter(|k| !self.used.contains(*k) && proxy_slot(k).is_none())
            .cloned()
            .collect()
    }
}

/// The automatic platform args for `os/arch[/variant]` target and the host.
pub(crate) fn platform_args(target: &str, build: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (prefix, platform) in [("TARGET", target), ("BUILD", build)] {
        let mut parts = platform.split('/');
        let os = parts.next().unwrap_or("linux");
        let arch = parts.next().unwrap_or("");
        let variant = parts.next().unwrap_or("");
        out.push((format!("{prefix}PLATFORM"), platform.to_owned()));
        out.push((format!("{prefix}OS"), os.to_owned()));
        out.push((format!("{prefix}ARCH"), arch.to_owned()));
        out.push((format!("{prefix}VARIANT"), variant.to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, &str)]) -> BuildArgs {
        BuildArgs {
            given: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            used: BTreeSet::new(),
        }
    }

    fn flat(pairs: Vec<(String, String)>) -> Vec<String> {
        pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn a_proxy_arg_sets_both_spellings() {
        let args = given(&[
            ("http_proxy", "hp"),
            ("HTTPS_PROXY", "hs"),
            ("All_Proxy", "a"),
        ]);
        assert_eq!(
            flat(args.proxies()),
            [
                "HTTP_PROXY=hp",
                "http_proxy=hp",
                "HTTPS_PROXY=hs",
                "https_proxy=hs",
                "ALL_PROXY=a",
                "all_proxy=a",
            ]
        );
    }

    #[test]
    fn the_sorted_last_spelling_wins_and_empty_sets_nothing() {
        let args = given(&[
            ("HTTP_PROXY", "upper"),
            ("http_proxy", "lower"),
            ("NO_PROXY", "np"),
            ("no_proxy", ""),
            ("OTHER", "x"),
        ]);
        assert_eq!(
            flat(args.proxies()),
            ["HTTP_PROXY=lower", "http_proxy=lower"]
        );
        assert_eq!(args.unused(), ["OTHER"]);
    }

    #[test]
    fn the_sandbox_hostname_is_one_short_word() {
        let mut args = given(&[("BUILDKIT_SANDBOX_HOSTNAME", "myhost")]);
        assert_eq!(args.sandbox_hostname().unwrap().as_deref(), Some("myhost"));
        assert!(args.unused().is_empty());
        assert_eq!(given(&[]).sandbox_hostname().unwrap(), None);
        let empty = &[("BUILDKIT_SANDBOX_HOSTNAME", "")];
        assert_eq!(given(empty).sandbox_hostname().unwrap(), None);
        let long = "x".repeat(65);
        for bad in ["two words", "line\nbreak", &long] {
            let pairs = [("BUILDKIT_SANDBOX_HOSTNAME", bad)];
            assert!(given(&pairs).sandbox_hostname().is_err(), "{bad:?}");
        }
    }
}
