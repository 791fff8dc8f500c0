//! `buildr volume create|ls|inspect|rm|prune`.

use std::process::ExitCode;

use serde::Serialize;

use super::images::render_table;
use crate::args::{Cli, VolumeCommand};

pub fn run(cli: &Cli, command: &VolumeCommand) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let volumes = containers.volumes();
    match command {
        VolumeCommand::Create { name } => {
            let name = match name {
                Some(name) => name.clone(),
                None => random_name()?,
            };
            println!("{}", volumes.create(&name, false)?.name);
        }
        VolumeCommand::Ls { quiet } => {
            let list = volumes.list()?;
            if *quiet {
                for v in &list {
                    println!("{}", v.name);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = vec![vec!["DRIVER".to_owned(), "VOLUME NAME".to_owned()]];
            for v in &list {
                rows.push(vec!["local".to_owned(), v.name.clone()]);
            }
            print!("{}", render_table(&rows));
        }
        VolumeCommand::Inspect { names } => {
            let mut docs = Vec::new();
            let mut code = ExitCode::SUCCESS;
            for name in names {
                match volumes.inspect(name) {
                    Ok(v) => docs.push(serde_json::json!({
                        "Name": v.name,
                        "Driver": "local",
                        "Mountpoint": v.mountpoint,
                        "Scope": "local",
                        "Anonymous": v.anonymous,
                    })),
                    Err(err) => {
                        eprintln!("buildr: error: {err}");
                        code = ExitCode::FAILURE;
                    }
                }
            }
            let mut out = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            docs.serialize(&mut serde_json::Serializer::with_formatter(
                &mut out, formatter,
            ))?;
            println!("{}", String::from_utf8_lossy(&out));
            return Ok(code);
        }
        VolumeCommand::Rm { force, names } => {
            let mut code = ExitCode::SUCCESS;
            for name in names {
                match containers.remove_volume(name, *force) {
                    Ok(()) => println!("{name}"),
                    Err(err) => {
                        eprintln!("buildr: error: {err}");
                        code = ExitCode::FAILURE;
                    }
                }
            }
            return Ok(code);
        }
        VolumeCommand::Prune { all } => {
            println!("Deleted Volumes:");
            for name in containers.prune_volumes(*all)? {
                println!("{name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A 64-hex-digit name, as docker gives an unnamed volume.
fn random_name() -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
