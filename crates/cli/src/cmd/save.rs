//! `buildr save [-o FILE] [--format oci|docker] IMAGE...`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::bail;
use buildr::image::SaveOptions;

use crate::args::{Cli, SaveArgs};

pub fn run(cli: &Cli, args: &SaveArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let options = SaveOptions {
        format: args.format.parse()?,
        images: args.images.clone(),
        ..SaveOptions::default()
    };
    match &args.output {
        Some(path) => images.save_to_file(path, &options)?,
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = images.save(stdout.lock(), &options)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
