//! `buildr cache prune --ref REF --keep-duration DUR`: old entries of a
//! registry cache deleted.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::args::CacheCommand;

pub fn run(command: &CacheCommand) -> anyhow::Result<ExitCode> {
    match command {
        CacheCommand::Prune(args) => {
            let keep = buildr::container::parse_duration(&args.keep_duration)
                .with_context(|| format!("invalid --keep-duration {:?}", args.keep_duration))?;
            let report = buildr::build::prune_registry_cache(&args.reference, keep)?;
            for tag in &report.deleted {
                println!("deleted {tag}");
            }
            println!(
                "{} of {} entries deleted from {}",
                report.deleted.len(),
                report.entries,
                args.reference
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
