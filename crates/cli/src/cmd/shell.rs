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
/// (`buildr-run.1`, `buildr-system-df.1`, ...) into `dir`, each with its
/// examples as an EXAMPLES section.
fn man(dir: &Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Built once from the top: the subcommands get their page names.
    let mut root = crate::args::Cli::command().disable_help_subcommand(true);
    root.build();
    write_pages(&root, "", dir)
}

/// The page of `command` (at `path`) and of its visible subcommands.
fn write_pages(command: &clap::Command, path: &str, dir: &Path) -> anyhow::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_path = match path {
            "" => sub.get_name().to_owned(),
            _ => format!("{path} {}", sub.get_name()),
        };
        write_pages(sub, &sub_path, dir)?;
    }
    let man = clap_mangen::Man::new(command.clone());
    let file = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("cannot render {}", file.display()))?;
    if let Some(lines) = crate::help_examples::examples(path) {
        page.extend_from_slice(examples_section(lines).as_bytes());
    }
    std::fs::write(&file, page).with_context(|| format!("cannot write {}", file.display()))
}

/// An EXAMPLES section in roff: each line as it is typed, escaped.
fn examples_section(lines: &[&str]) -> String {
    let mut roff = String::from(".SH EXAMPLES\n.nf\n.RS 4\n");
    for line in lines {
        let escaped = line.replace('\\', "\\e").replace('-', "\\-");
        if escaped.starts_with(['.', '\'']) {
            roff.push_str("\\&");
        }
        roff.push_str(&escaped);
        roff.push('\n');
    }
    roff.push_str(".RE\n.fi\n");
    roff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_escaped_for_roff() {
        let section = examples_section(&[r"echo a\b | buildr login --password-stdin", ".x"]);
        assert!(section.starts_with(".SH EXAMPLES\n"), "{section}");
        assert!(
            section.contains(r"echo a\eb | buildr login \-\-password\-stdin"),
            "{section}"
        );
        assert!(section.contains("\n\\&.x\n"), "{section}");
    }
}
