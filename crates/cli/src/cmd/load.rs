//! `buildr load [-i FILE] [-q]`: prints `Loaded image: name` like docker.

use std::fs::File;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::args::{Cli, LoadArgs};

pub fn run(cli: &Cli, args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let report = match &args.input {
        Some(path) => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            images.load(file, &path.display().to_string())?
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!(
                    "requested load from stdin, but stdin is a terminal: use -i FILE or redirect"
                );
            }
            images.load(stdin.lock(), "-")?
        }
    };
    if !args.quiet {
        for image in &report.images {
            if image.names.is_empty() {
                println!("Loaded image ID: {}", image.id);
            }
            for name in &image.names {
                println!("Loaded image: {}", buildr::image::familiar_name(name));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
