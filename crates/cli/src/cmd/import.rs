//! `buildr import FILE|- REPOSITORY[:TAG]`: prints the new image id like docker.

use std::fs::File;
use std::process::ExitCode;

use anyhow::{Context, bail};
use buildr::image::ImportOptions;

use crate::args::{Cli, ImportArgs};

pub fn run(cli: &Cli, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let mut options = ImportOptions::new(&args.reference, &args.file);
    options.message = args.message.clone();
    if let Some(platform) = &args.platform {
        match platform.split_once('/') {
            Some(("linux", arch)) if !arch.is_empty() && !arch.contains('/') => {
                options.architecture = Some(arch.to_owned());
            }
            _ => bail!("unsupported platform {platform:?}: expected linux/<arch>"),
        }
    }
    let imported = if args.file == "-" {
        images.import(std::io::stdin().lock(), &options)?
    } else {
        let file = File::open(&args.file).with_context(|| format!("cannot open {}", args.file))?;
        images.import(file, &options)?
    };
    println!("{}", imported.id);
    Ok(ExitCode::SUCCESS)
}
