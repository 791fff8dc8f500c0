//! One example line (or a few) under each command's `--help`, as docker's
//! commands show theirs. The examples live in one table, keyed by the
//! command's path (`"system df"`), and are put on the clap `Command` when
//! it is built, so adding a command is one row here; a unit test fails
//! while a visible command has no row, or a row names no command.

use clap::Command;

/// Command path (subcommand names from the top, space-separated) ->
/// example command lines.
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "build",
        &[
            "buildr build -t app:1 .",
            "buildr build --progress plain -f Dockerfile.dev -o type=local,dest=out .",
        ],
    ),
    ("check", &["buildr check -f Dockerfile ."]),
    (
        "images",
        &["buildr images --filter 'reference=app:*' --format '{{.Repository}}:{{.Tag}}'"],
    ),
    ("tag", &["buildr tag app:1 registry.example:5000/app:1"]),
    ("rmi", &["buildr rmi app:1"]),
    (
        "history",
        &["buildr history --no-trunc --format '{{.CreatedBy}}\\t{{.Size}}' app:1"],
    ),
    (
        "inspect",
        &["buildr inspect --format '{{.Config.Cmd}}' app:1"],
    ),
    ("save", &["buildr save -o app.tar app:1"]),
    ("load", &["buildr load -i app.tar"]),
    ("import", &["buildr import rootfs.tar base:latest"]),
    ("prune", &["buildr prune --all"]),
    ("verify", &["buildr verify --repair"]),
    ("pull", &["buildr pull busybox:1.36"]),
    ("push", &["buildr push registry.example:5000/app:1"]),
    (
        "login",
        &["echo \"$TOKEN\" | buildr login -u me --password-stdin registry.example:5000"],
    ),
    ("logout", &["buildr logout registry.example:5000"]),
    (
        "version",
        &["buildr version --format '{{.Server.Version}}'"],
    ),
    (
        "events",
        &[
            "buildr events --since 10m --filter type=container --filter event=die --format '{{json .}}'",
        ],
    ),
    ("info", &["buildr info --format '{{.Driver}}'"]),
    ("system", &["buildr system df"]),
    ("system df", &["buildr system df"]),
    ("system prune", &["buildr system prune -a --volumes -f"]),
    (
        "cache",
        &["buildr cache prune --ref registry.example:5000/app:cache --keep-duration 168h"],
    ),
    (
        "cache prune",
        &["buildr cache prune --ref registry.example:5000/app:cache --keep-duration 168h"],
    ),
    (
        "run",
        &[
            "buildr run --rm -it busybox sh",
            "buildr run -d --name web -p 8080:80 nginx",
            "buildr run -d --name db --network appnet --network-alias database postgres",
        ],
    ),
    ("create", &["buildr create --name web -p 8080:80 nginx"]),
    (
        "start",
        &["buildr start -a web", "buildr start --all-restartable"],
    ),
    (
        "cp",
        &[
            "buildr cp ./config.yml web:/etc/app/",
            "buildr cp web:/var/log/app.log - | tar -xO",
        ],
    ),
    ("diff", &["buildr diff web"]),
    ("export", &["buildr export -o web.tar web"]),
    ("pause", &["buildr pause web"]),
    ("unpause", &["buildr unpause web"]),
    ("top", &["buildr top web", "buildr top web aux"]),
    (
        "stats",
        &["buildr stats --no-stream --format '{{.Name}} {{.MemUsage}}'"],
    ),
    (
        "update",
        &["buildr update --memory 256m --cpus 1.5 --restart on-failure:3 web"],
    ),
    ("stop", &["buildr stop -t 5 web"]),
    ("kill", &["buildr kill -s HUP web"]),
    ("restart", &["buildr restart web"]),
    ("rename", &["buildr rename web web-old"]),
    ("port", &["buildr port web 80/tcp"]),
    ("rm", &["buildr rm -f web"]),
    (
        "ps",
        &["buildr ps -a --filter status=exited --format '{{.Names}}'"],
    ),
    ("logs", &["buildr logs -f --tail 10 web"]),
    ("wait", &["buildr wait web"]),
    ("exec", &["buildr exec -it web sh"]),
    ("attach", &["buildr attach web"]),
    ("container", &["buildr container ls -a"]),
    ("container ls", &["buildr container ls -a -q"]),
    ("container cp", &["buildr container cp web:/etc/hostname ."]),
    ("container diff", &["buildr container diff web"]),
    (
        "container export",
        &["buildr container export web > web.tar"],
    ),
    (
        "container start",
        &["buildr container start --all-restartable"],
    ),
    (
        "container inspect",
        &["buildr container inspect -f '{{.State.Status}}' web"],
    ),
    ("container prune", &["buildr container prune -f"]),
    ("network", &["buildr network ls"]),
    (
        "compose",
        &["buildr compose -f compose.yaml -f compose.prod.yaml config"],
    ),
    (
        "compose config",
        &[
            "buildr compose config --format json",
            "buildr compose --profile debug config --services",
        ],
    ),
    (
        "network create",
        &["buildr network create --subnet 10.90.0.0/24 appnet"],
    ),
    (
        "network ls",
        &["buildr network ls --format '{{.Name}} {{.Driver}}'"],
    ),
    (
        "network inspect",
        &["buildr network inspect -f '{{json .Containers}}' appnet"],
    ),
    (
        "network connect",
        &["buildr network connect --alias cache backend redis"],
    ),
    (
        "network disconnect",
        &["buildr network disconnect backend redis"],
    ),
    ("network rm", &["buildr network rm appnet"]),
    ("network prune", &["buildr network prune -f"]),
    ("volume", &["buildr volume ls"]),
    ("volume create", &["buildr volume create data"]),
    ("volume ls", &["buildr volume ls -q"]),
    ("volume inspect", &["buildr volume inspect data"]),
    ("volume rm", &["buildr volume rm data"]),
    ("volume prune", &["buildr volume prune --all"]),
    ("commit", &["buildr commit web web:snapshot"]),
    (
        "bundle",
        &["buildr bundle unpack busybox ./bundle && runc run -b ./bundle ctr"],
    ),
    (
        "bundle unpack",
        &["buildr bundle unpack busybox ./bundle sh -c 'echo hi'"],
    ),
    ("bundle run", &["buildr bundle run ./bundle"]),
    (
        "completion",
        &[
            "source <(buildr completion bash)",
            "buildr completion fish > ~/.config/fish/completions/buildr.fish",
        ],
    ),
];

/// `command` with each listed subcommand's examples after its `--help`.
pub fn apply(command: Command) -> Command {
    apply_under(command, "")
}

fn apply_under(mut command: Command, prefix: &str) -> Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix} {name}")
        };
        command = command.mut_subcommand(&name, |sub| {
            let sub = match examples(&path) {
                Some(lines) => sub.after_help(render(lines)),
                None => sub,
            };
            apply_under(sub, &path)
        });
    }
    command
}

/// The examples of the command at `path` (`"system df"`).
pub fn examples(path: &str) -> Option<&'static [&'static str]> {
    EXAMPLES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, lines)| *lines)
}

/// docker's shape: an `Examples:` heading, each line indented two spaces.
fn render(lines: &[&str]) -> String {
    let mut text = String::from("Examples:");
    for line in lines {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible command's path, the top-level command excluded.
    fn visible_paths(command: &Command, prefix: &str, out: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            let path = if prefix.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{prefix} {}", sub.get_name())
            };
            visible_paths(sub, &path, out);
            out.push(path);
        }
    }

    #[test]
    fn every_visible_command_has_an_example_and_every_row_a_command() {
        use clap::CommandFactory;
        let command = crate::args::Cli::command();
        let mut paths = Vec::new();
        visible_paths(&command, "", &mut paths);
        assert!(paths.len() > 40, "{paths:?}");
        let missing: Vec<&String> = paths.iter().filter(|p| examples(p).is_none()).collect();
        assert!(
            missing.is_empty(),
            "commands without an example in help_examples.rs: {missing:?}"
        );
        let stale: Vec<&str> = EXAMPLES
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !paths.iter().any(|q| q == p))
            .collect();
        assert!(stale.is_empty(), "examples for no command: {stale:?}");
        for (path, lines) in EXAMPLES {
            assert!(!lines.is_empty(), "{path}: an empty row");
            let first_word = path.split(' ').next().unwrap_or_default();
            for line in *lines {
                assert!(
                    !line.contains(char::is_control),
                    "{path}: {line:?} has a control character"
                );
                assert!(
                    line.contains(&format!("buildr {first_word}")),
                    "{path}: {line:?} does not run it"
                );
            }
        }
    }

    #[test]
    fn the_examples_show_under_help() {
        use clap::CommandFactory;
        let mut command = apply(crate::args::Cli::command());
        let help = command
            .find_subcommand_mut("system")
            .and_then(|s| s.find_subcommand_mut("df"))
            .map(|df| df.render_help().to_string())
            .unwrap_or_default();
        assert!(help.contains("Examples:\n  buildr system df"), "{help}");
    }
}
