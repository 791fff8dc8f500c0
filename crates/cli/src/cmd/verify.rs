//! `buildr verify`: check the whole store, print each problem (naming the
//! digest or path), exit 1 on any.

use std::process::ExitCode;

use crate::args::Cli;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let root = super::store_root(cli)?;
    let problems = buildr::verify(&root).map_err(|e| {
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
