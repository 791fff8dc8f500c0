//! `buildr completion SHELL` and the hidden `buildr __man DIR`: the shell
//! completion script and the man pages, both made from the same clap
//! definitions the parser uses (`args::command`), so they never drift.
//! `__man` is recognised before clap parses (a hidden clap subcommand would
//! still appear in the completion scripts).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::args::CompletionArgs;

/// Prints the completion script for `args.shell` on stdout.
pub fn completion(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut command = crate::args::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "buildr", &mut out);
    Ok(ExitCode::SUCCESS)
}

/// `buildr __man DIR`, when that is this process's command line: writes
/// the man pages and returns the exit status; `None` for any other command.
pub fn man_invocation() -> Option<ExitCode> {
    let mut argv = std::env::args_os();
    if argv.nth(1).is_none_or(|first| first != "__man") {
        return None;
    }
    let usage = clap::Command::new("buildr __man")
        .about("Write buildr's man pages (buildr.1, buildr-run.1, ...) into DIR.")
        .arg(
            clap::Arg::new("dir")
                .value_name("DIR")
                .required(true)
                .value_parser(clap::value_parser!(PathBuf)),
        );
    let matches = match usage.try_get_matches_from(std::env::args_os().skip(1)) {
        Ok(matches) => matches,
        Err(err) => return Some(crate::args::parse_error(err)),
    };
    let dir = matches
        .get_one::<PathBuf>("dir")
        .cloned()
        .unwrap_or_default();
    Some(match man(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("buildr: error: {err:#}");
            ExitCode::from(2)
        }
    })
}

/// Writes `buildr.1` and one page per visible subcommand
/// (`buildr-run.1`, `buildr-system-df.1`, ...) into `dir`.
fn man(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(crate::args::command(), dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))
}
