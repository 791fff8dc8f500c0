//! `buildr bundle unpack IMAGE DIR` (umoci's `unpack`: an OCI runtime
//! bundle `runc run` takes) and `buildr bundle run DIR` (runc's `run`: a
//! bundle from anywhere, in the foreground, under buildr's sandbox).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use buildr::container::BundleRunOptions;
use buildr::container::OciBundle;

use crate::args::{BundleCommand, Cli};

pub fn run(cli: &Cli, command: &BundleCommand) -> anyhow::Result<ExitCode> {
    match command {
        BundleCommand::Unpack {
            image,
            dir,
            command,
        } => {
            let images = super::open_images(cli)?;
            let unpacked = images.unpack_bundle(image, dir, command)?;
            eprintln!(
                "unpacked {image} ({}, {} layers, {} entries) into {}",
                unpacked.image_id,
                unpacked.layers,
                unpacked.entries,
                unpacked.dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        BundleCommand::Run { dir } => run_bundle(dir),
    }
}

fn run_bundle(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let bundle = OciBundle::load(dir)?;
    for warning in bundle.warnings() {
        eprintln!("buildr: warning: {}: {warning}", dir.display());
    }
    let stdin_tty = std::io::stdin().is_terminal();
    if bundle.terminal() && !stdin_tty {
        eprintln!(
            "buildr: warning: {}: process.terminal is true but stdin is not a terminal: running without a pty",
            dir.display()
        );
    }
    let tty = bundle.terminal() && stdin_tty;
    let options = BundleRunOptions {
        proxy_signals: true,
        stdin: true,
        tty,
    };
    let raw = tty.then(super::exec::RawMode::enter);
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let info = bundle.run(&options, |stream, chunk| {
        let _ = match stream {
            buildr::container::LogStream::Stdout => {
                stdout.write_all(chunk).and_then(|()| stdout.flush())
            }
            buildr::container::LogStream::Stderr => stderr.write_all(chunk),
        };
    });
    drop(raw);
    let info = info?;
    if let Some(error) = &info.error {
        eprintln!("buildr: error: {error}");
    }
    Ok(super::run::exit_code(info.exit_code))
}
