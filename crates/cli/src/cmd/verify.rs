//! `buildr verify [--repair]`: check the whole store, print each problem
//! (naming the digest or path), exit 1 on any; `--repair` first removes
//! what the next pull or build can make again.

use std::process::ExitCode;

use crate::args::{Cli, VerifyArgs};

pub fn run(cli: &Cli, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let root = super::store_root(cli)?;
    if args.repair {
        let report = buildr::verify::repair(&root).map_err(|e| {
            anyhow::Error::new(e).context(format!("cannot repair the store at {}", root.display()))
        })?;
        for digest in &report.removed_blobs {
            println!("removed corrupt blob {digest}");
        }
        for key in &report.removed_records {
            println!("removed cache record {key} (its content is gone)");
        }
    }
    let problems = buildr::verify::verify(&root).map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot verify the store at {}", root.display()))
    })?;
    for problem in &problems {
        println!("{problem}");
    }
    if problems.is_empty() {
        println!("store {} is consistent", root.display());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "buildr: {} problem(s) in the store at {}",
        problems.len(),
        root.display()
    );
    Ok(ExitCode::from(1))
}
