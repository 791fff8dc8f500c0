//! `buildr inspect IMAGE...`: a JSON array, as `docker image inspect` prints.

use std::process::ExitCode;

use serde::Serialize;

use crate::args::{Cli, InspectArgs};

pub fn run(cli: &Cli, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let mut found = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for image in &args.images {
        match images.inspect(image) {
            Ok(doc) => found.push(doc),
            Err(err) => {
                eprintln!("buildr: error: {err}");
                code = ExitCode::FAILURE;
            }
        }
    }
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    found.serialize(&mut ser)?;
    println!("{}", String::from_utf8_lossy(&out));
    Ok(code)
}
