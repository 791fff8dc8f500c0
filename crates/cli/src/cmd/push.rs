//! `buildr push [-q] IMAGE`: docker's lines (`The push refers to
//! repository [...]`, `<layer>: Pushed`, `TAG: digest: ... size: ...`).

use buildr::ProgressSink;
use buildr::Registry;
use buildr::registry::PushOptions;
use buildr::registry::RegistryEvent;
use std::process::ExitCode;

use super::pull::short;
use crate::args::{Cli, PushArgs};

pub fn run(cli: &Cli, args: &PushArgs) -> anyhow::Result<ExitCode> {
    push(cli, &args.image, args.quiet)?;
    Ok(ExitCode::SUCCESS)
}

/// Pushes one image by name, printing docker's lines unless `quiet`
/// (also what `buildr build --push` does for each `-t`).
pub fn push(cli: &Cli, image: &str, quiet: bool) -> anyhow::Result<()> {
    let images = super::open_images(cli)?;
    let registry = Registry::from_env()?;
    let mut opts = PushOptions::default();
    if !quiet {
        let repository = buildr::registry::repository_name(image)?;
        println!("The push refers to repository [{repository}]");
        opts.progress = Some(ProgressSink::new(|event: RegistryEvent| match &event {
            RegistryEvent::Preparing { layers } => {
                // Top layer first, as docker lists them.
                for digest in layers.iter().rev() {
                    println!("{}: Preparing", short(digest));
                }
            }
            RegistryEvent::LayerExists { digest } => {
                println!("{}: Layer already exists", short(digest));
            }
            RegistryEvent::LayerMounted { digest } => {
                println!("{}: Mounted from another repository", short(digest));
            }
            RegistryEvent::LayerDone { digest } => println!("{}: Pushed", short(digest)),
            _ => {}
        }));
    }
    let report = registry.push(&images, image, &opts)?;
    if quiet {
        println!("{}", report.reference);
    } else {
        println!(
            "{}: digest: {} size: {}",
            report.tag, report.digest, report.size
        );
    }
    Ok(())
}
