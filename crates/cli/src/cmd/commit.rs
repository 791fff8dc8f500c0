//! `buildr commit CONTAINER [REPOSITORY[:TAG]]`: prints the new image id.

use std::process::ExitCode;

use crate::args::{Cli, CommitArgs};

pub fn run(cli: &Cli, args: &CommitArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let committed = containers.commit(&args.container, args.reference.as_deref())?;
    println!("{}", committed.id);
    Ok(ExitCode::SUCCESS)
}
