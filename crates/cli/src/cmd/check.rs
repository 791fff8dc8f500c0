//! `buildr check`: print diagnostics like `docker build --check`, exit 1 on errors.

use std::path::Path;
use std::process::ExitCode;

use buildr::check::CheckOptions;
use buildr::check::DockerfileSource;

use crate::args::CheckArgs;

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let dockerfile = args.file.as_ref().map(|f| {
        if f == Path::new("-") {
            DockerfileSource::Stdin
        } else {
            DockerfileSource::Path(f.clone())
        }
    });
    let report = buildr::check(&CheckOptions {
        context: args.context.clone(),
        dockerfile,
    })?;
    let mut diagnostics: Vec<_> = report.errors.iter().chain(&report.warnings).collect();
    diagnostics.sort_by_key(|d| d.pos);
    for diagnostic in diagnostics {
        println!("{diagnostic}\n");
    }
    println!(
        "check of {} complete: {} error{}, {} warning{}",
        report.file,
        report.errors.len(),
        plural(report.errors.len()),
        report.warnings.len(),
        plural(report.warnings.len()),
    );
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
