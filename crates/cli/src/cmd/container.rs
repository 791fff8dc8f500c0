//! `ps`, `stop`, `kill`, `rm`, `logs`, `wait` and `container ls|inspect|prune`
//! (`container cp|diff|export` are `cp.rs`'s).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use buildr::container::Container;
use buildr::container::HealthStatus;
use buildr::container::LogOptions;
use buildr::container::RemoveOptions;

use super::images::render_table;
use template::{Filters, Row, Template};

mod template;
use crate::args::{
    Cli, ContainerCommand, ContainerInspectArgs, KillArgs, LogsArgs, PortArgs, PsArgs, RenameArgs,
    RmArgs, StopArgs, WaitArgs,
};

pub fn run(cli: &Cli, command: &ContainerCommand) -> anyhow::Result<ExitCode> {
    match command {
        ContainerCommand::Ls(args) => ps(cli, args),
        ContainerCommand::Inspect(args) => inspect(cli, args),
        ContainerCommand::Start(args) => super::run::start(cli, args),
        ContainerCommand::Prune { force: _ } => {
            let removed = super::open_containers(cli)?.prune()?;
            println!("Deleted Containers:");
            for id in &removed {
                println!("{id}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Cp(args) => super::cp::run(cli, args),
        ContainerCommand::Diff(args) => super::cp::diff(cli, args),
        ContainerCommand::Export(args) => super::cp::export(cli, args),
    }
}

/// Runs `op` on each name, reporting failures docker's way (all are tried).
pub(crate) fn each(names: &[String], mut op: impl FnMut(&str) -> anyhow::Result<()>) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        if let Err(err) = op(name) {
            eprintln!("buildr: error: {err:#}");
            code = ExitCode::FAILURE;
        }
    }
    code
}

pub fn stop(cli: &Cli, args: &StopArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    Ok(each(&args.containers, |name| {
        containers.stop(name, Duration::from_secs(args.time))?;
        println!("{name}");
        Ok(())
    }))
}

/// `restart`: each container stopped (stop signal, then SIGKILL after
/// `-t`) and started again under a detached supervisor.
pub fn restart(cli: &Cli, args: &StopArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    Ok(each(&args.containers, |name| {
        containers.restart(name, Duration::from_secs(args.time))?;
        println!("{name}");
        Ok(())
    }))
}

pub fn rename(cli: &Cli, args: &RenameArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    containers.rename(&args.container, &args.new_name)?;
    Ok(ExitCode::SUCCESS)
}

/// `port`: `80/tcp -> 0.0.0.0:32768` per bound publication, or with a
/// port only the host side(s) of that one, as docker prints them.
pub fn port(cli: &Cli, args: &PortArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let container = containers.get(&args.container)?;
    let wanted = args.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_owned()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (ctr, bindings) in container.published_ports() {
        if wanted.as_ref().is_some_and(|w| *w != ctr) {
            continue;
        }
        for binding in bindings {
            match &wanted {
                Some(_) => println!("{}", binding.host()),
                None => println!("{ctr} -> {}", binding.host()),
            }
            found = true;
        }
    }
    if !found && let Some(w) = wanted {
        bail!("no public port '{w}' published for {}", args.container);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn kill(cli: &Cli, args: &KillArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let signal = buildr::container::parse_signal(&args.signal)?;
    Ok(each(&args.containers, |name| {
        containers.kill(name, signal)?;
        println!("{name}");
        Ok(())
    }))
}

pub fn rm(cli: &Cli, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    Ok(each(&args.containers, |name| {
        containers.remove(
            name,
            RemoveOptions {
                force: args.force,
                volumes: args.volumes,
            },
        )?;
        println!("{name}");
        Ok(())
    }))
}

pub fn wait(cli: &Cli, args: &WaitArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    Ok(each(&args.containers, |name| {
        let container = containers.wait(name, None)?;
        println!("{}", container.state.exit_code.unwrap_or(0));
        Ok(())
    }))
}

pub fn logs(cli: &Cli, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => match n.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => bail!("invalid --tail {n:?}: a number or `all`"),
        },
    };
    let options = LogOptions {
        tail,
        follow: args.follow,
    };
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    containers.logs(&args.container, options, |entry| {
        let out: &mut dyn Write = match entry.stream {
            buildr::container::LogStream::Stdout => &mut stdout,
            buildr::container::LogStream::Stderr => &mut stderr,
        };
        if args.timestamps {
            write!(out, "{} ", entry.time)?;
        }
        out.write_all(entry.log.as_bytes())?;
        out.flush()
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn ps(cli: &Cli, args: &PsArgs) -> anyhow::Result<ExitCode> {
    // Parsed first: a bad template or filter fails before any work.
    let template = match args.format.as_deref() {
        Some(format) if !args.quiet => Some(Template::parse(format)?),
        _ => None,
    };
    let filters = Filters::parse(&args.filter)?;
    let containers = super::open_containers(cli)?;
    let mut list: Vec<Container> = containers
        .list()?
        .into_iter()
        .filter(|c| args.all || filters.has_status() || c.is_active())
        .filter(|c| {
            filters.matches(
                &c.config.id,
                &c.config.name,
                c.status_word(),
                &c.config.labels,
            )
        })
        .collect();
    // Newest first, as docker.
    list.reverse();
    if args.quiet {
        for c in &list {
            println!(
                "{}",
                if args.no_trunc {
                    &c.config.id
                } else {
                    c.short_id()
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let template = match template {
        Some(t) => t,
        None if args.size => Template::parse(template::SIZE_TABLE)?,
        None => Template::parse(template::DEFAULT_TABLE)?,
    };
    // As docker: sizes are measured for -s, or a format that shows them.
    let sized = args.size
        || args
            .format
            .as_deref()
            .is_some_and(|f| f.contains(".Size") || f.contains("json ."));
    let now = now_nanos();
    let mut rows = Vec::with_capacity(list.len());
    for c in &list {
        let mut row = row(c, now, args.no_trunc);
        if sized {
            row.fields.insert("Size", size_text(containers.size(c)?));
        }
        rows.push(template.render(&row));
    }
    if !template.is_table() {
        let mut out = std::io::stdout().lock();
        for line in rows {
            writeln!(out, "{line}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = std::iter::once(template.header())
        .chain(rows)
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect();
    print!("{}", render_table(&table));
    Ok(ExitCode::SUCCESS)
}

/// A container's `ps` fields, docker's names and renderings.
fn row(c: &Container, now: i128, no_trunc: bool) -> Row {
    let mut command = c.config.argv.join(" ");
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    let id = if no_trunc {
        c.config.id.clone()
    } else {
        c.short_id().to_owned()
    };
    let labels: Vec<String> = c
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mounts: Vec<String> = c
        .config
        .volumes
        .iter()
        .map(|v| v.name.clone())
        .chain(c.config.binds.iter().map(|b| b.src.display().to_string()))
        .collect();
    let fields = [
        ("Command", format!("\"{command}\"")),
        ("CreatedAt", go_time(&c.created_rfc3339())),
        ("ID", id),
        ("Image", c.config.image.clone()),
        ("Labels", labels.join(",")),
        ("LocalVolumes", c.config.volumes.len().to_string()),
        ("Mounts", mounts.join(",")),
        ("Names", c.config.name.clone()),
        ("Networks", c.config.network_name().to_owned()),
        ("Ports", c.state.ports.join(", ")),
        (
            "RunningFor",
            format!("{} ago", human_duration(now - c.config.created)),
        ),
        ("State", c.status_word().to_owned()),
        ("Status", status(c, now)),
    ];
    Row {
        fields: fields.into_iter().collect(),
        labels: c.config.labels.clone(),
    }
}

/// docker's SIZE: `2B (virtual 4.26MB)`.
fn size_text(size: buildr::container::ContainerSize) -> String {
    format!(
        "{} (virtual {})",
        buildr::image::format_size(size.rw),
        buildr::image::format_size(size.root_fs)
    )
}

/// Go's `time.Time` string, as docker's `.CreatedAt`: `2024-01-02 15:04:05 +0000 UTC`.
pub(crate) fn go_time(rfc: &str) -> String {
    // `2024-01-02T15:04:05.123456789Z` -> date, time without fraction.
    let (date, time) = rfc.split_once('T').unwrap_or((rfc, ""));
    let time = time.trim_end_matches('Z');
    let time = time.split('.').next().unwrap_or(time);
    format!("{date} {time} +0000 UTC")
}

fn inspect(cli: &Cli, args: &ContainerInspectArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let mut docs = Vec::new();
    let code = each(&args.containers, |name| {
        docs.push(serde_json::to_value(containers.inspect(name)?)?);
        Ok(())
    });
    super::inspect::print_documents(&docs, args.format.as_deref())?;
    Ok(code)
}

/// `Up 3 seconds`, `Exited (137) 2 minutes ago`, `Created`.
fn status(c: &Container, now: i128) -> String {
    match c.state.status {
        buildr::container::Status::Created => "Created".into(),
        buildr::container::Status::Running => {
            let health = match c.state.health.as_ref().map(|h| h.status) {
                Some(HealthStatus::Starting) => " (health: starting)",
                Some(HealthStatus::Healthy) => " (healthy)",
                Some(HealthStatus::Unhealthy) => " (unhealthy)",
                None => "",
            };
            let paused = if c.state.paused { " (Paused)" } else { "" };
            format!(
                "Up {}{paused}{health}",
                human_duration(now - c.state.started_at.unwrap_or(now))
            )
        }
        buildr::container::Status::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code.unwrap_or(0),
            human_duration(now - c.state.finished_at.unwrap_or(now))
        ),
        buildr::container::Status::Exited => {
            let code = c.state.exit_code.unwrap_or(0);
            let oom = if c.state.oom_killed { " (OOM)" } else { "" };
            let dead = if code == buildr::container::EXIT_SUPERVISOR_DIED && c.state.error.is_some()
            {
                " (supervisor died)"
            } else {
                ""
            };
            format!(
                "Exited ({code}){oom}{dead} {} ago",
                human_duration(now - c.state.finished_at.unwrap_or(now))
            )
        }
    }
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Docker's wording: "Less than a second", "5 seconds", "About a minute", "3 hours".
fn human_duration(nanos: i128) -> String {
    let secs = (nanos / 1_000_000_000).max(0) as u64;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{secs} seconds"),
        60..120 => "About a minute".into(),
        120..3600 => format!("{} minutes", secs / 60),
        3600..7200 => "About an hour".into(),
        7200..172_800 => format!("{} hours", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        let s = 1_000_000_000i128;
        let cases = [
            (0, "Less than a second"),
            (s, "1 second"),
            (42 * s, "42 seconds"),
            (90 * s, "About a minute"),
            (600 * s, "10 minutes"),
            (5000 * s, "About an hour"),
            (10 * 3600 * s, "10 hours"),
            (3 * 86_400 * s, "3 days"),
        ];
        for (nanos, want) in cases {
            assert_eq!(human_duration(nanos), want);
        }
    }
}
