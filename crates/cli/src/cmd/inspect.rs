//! `buildr inspect [--type image|container] NAME...`: a JSON array, as
//! `docker inspect` prints. Without `--type` each name is looked up as
//! docker's CLI does: a container first, then an image.

use std::process::ExitCode;

use serde::Serialize;

use crate::args::{Cli, InspectArgs};

pub fn run(cli: &Cli, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let containers = super::open_containers(cli)?;
    let kind = args.kind.as_deref();
    let mut found = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for name in &args.images {
        let container = || -> anyhow::Result<serde_json::Value> {
            Ok(serde_json::to_value(containers.inspect(name)?)?)
        };
        let image = || -> anyhow::Result<serde_json::Value> {
            Ok(serde_json::to_value(images.inspect(name)?)?)
        };
        let doc = match kind {
            Some("container") => container(),
            Some("image") => image(),
            _ => match container() {
                Ok(doc) => Ok(doc),
                // Neither: the image's "no such image", as before.
                Err(e) if not_found(&e) => image(),
                Err(e) => Err(e),
            },
        };
        match doc {
            Ok(doc) => found.push(doc),
            Err(err) => {
                eprintln!("buildr: error: {err:#}");
                code = ExitCode::FAILURE;
            }
        }
    }
    print_documents(&found, args.format.as_deref())?;
    Ok(code)
}

/// Prints inspect documents: a JSON array indented as docker's, or with
/// `-f TEMPLATE` each document rendered on a line of its own.
pub(crate) fn print_documents(
    docs: &[serde_json::Value],
    format: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(format) = format {
        let template = super::gotemplate::GoTemplate::parse(format)?;
        for doc in docs {
            println!("{}", template.render(doc)?);
        }
        return Ok(());
    }
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    docs.serialize(&mut ser)?;
    println!("{}", String::from_utf8_lossy(&out));
    Ok(())
}

fn not_found(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<buildr::Error>(),
        Some(buildr::Error::ContainerNotFound { .. } | buildr::Error::ImageNotFound { .. })
    )
}
