//! `buildr tag SOURCE TARGET`.

use std::process::ExitCode;

use crate::args::{Cli, TagArgs};

pub fn run(cli: &Cli, args: &TagArgs) -> anyhow::Result<ExitCode> {
    super::open_images(cli)?.tag(&args.source, &args.target)?;
    Ok(ExitCode::SUCCESS)
}
