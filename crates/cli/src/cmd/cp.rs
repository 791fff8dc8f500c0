//! `buildr cp`, `diff` and `export` (also under `buildr container`): the
//! container filesystem commands, over `buildr::Containers`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use buildr::container::CopyOptions;

use crate::args::{Cli, CpArgs, DiffArgs, ExportArgs};

/// docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an
/// absolute path or a relative one starting with `.` (`./a:b` is local).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') => (Some(container), path),
        _ => (None, arg),
    }
}

/// docker's `units.HumanSize`: decimal units, four significant digits.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let int_digits = format!("{}", value.trunc() as u64).len();
    let decimals = 4usize.saturating_sub(int_digits);
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

pub fn run(cli: &Cli, args: &CpArgs) -> anyhow::Result<ExitCode> {
    let (src_container, src) = split(&args.src);
    let (dest_container, dest) = split(&args.dest);
    if src.is_empty() {
        bail!("source can not be empty");
    }
    if dest.is_empty() {
        bail!("destination can not be empty");
    }
    let options = CopyOptions {
        archive: args.archive,
        follow_link: args.follow_link,
    };
    let containers = super::open_containers(cli)?;
    // Progress lines only for a person watching, as docker's.
    let report = !args.quiet && std::io::stderr().is_terminal();
    match (src_container, dest_container) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(container), None) if dest == "-" => {
            let stdout = std::io::stdout().lock();
            let mut out = std::io::BufWriter::new(stdout);
            containers.copy_from_to_writer(container, src, &mut out, options)?;
            out.flush()
                .context("cannot write the tar stream to stdout")?;
        }
        (Some(container), None) => {
            let copied = containers.copy_from(container, src, Path::new(dest), options)?;
            if report {
                eprintln!("Successfully copied {} to {dest}", human_size(copied.bytes));
            }
        }
        (None, Some(container)) if src == "-" => {
            let stdin = std::io::stdin().lock();
            containers.copy_tar_to(container, stdin, dest, options)?;
        }
        (None, Some(container)) => {
            let copied = containers.copy_to(container, Path::new(src), dest, options)?;
            if report {
                eprintln!(
                    "Successfully copied {} to {container}:{dest}",
                    human_size(copied.bytes)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `diff CONTAINER`: docker's `C`/`A`/`D` lines.
pub fn diff(cli: &Cli, args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let changes = super::open_containers(cli)?.diff(&args.container)?;
    let mut out = std::io::stdout().lock();
    for change in changes {
        writeln!(out, "{change}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `export [-o FILE] CONTAINER`: the container's filesystem as a tar.
pub fn export(cli: &Cli, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    match &args.output {
        Some(path) => containers.export_to_file(&args.container, path)?,
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            containers
                .export(&args.container, out)?
                .flush()
                .context("cannot write the tar stream to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_as_dockers() {
        assert_eq!(split("c1:/etc"), (Some("c1"), "/etc"));
        assert_eq!(split("/abs:x"), (None, "/abs:x"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("plain"), (None, "plain"));
        assert_eq!(split("-"), (None, "-"));
    }

    #[test]
    fn sizes_read_as_dockers() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(123_456), "123.5kB");
    }
}
