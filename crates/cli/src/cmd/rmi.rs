//! `buildr rmi [-f] IMAGE...`: untag, printing `Untagged: name` like docker.

use std::process::ExitCode;

use crate::args::{Cli, RmiArgs};

pub fn run(cli: &Cli, args: &RmiArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let mut code = ExitCode::SUCCESS;
    for image in &args.images {
        match images.remove(image, args.force) {
            Ok(names) => {
                for name in names {
                    println!("Untagged: {}", buildr::image::familiar_name(&name));
                }
            }
            Err(err) => {
                eprintln!("buildr: error: {err}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
