//! Runs a container from an image in the store and streams its output, as
//! `buildr run --rm IMAGE CMD...` does, through the library; exits with the
//! container's code.
//!
//! ```text
//! cargo run -p buildr --example run_container -- IMAGE [CMD...]
//! ```

use std::io::Write;

use buildr::container::{AttachOptions, CreateOptions, LogStream, NetworkMode, RemoveOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    buildr::entry_hook();
    buildr::sandbox::rootless::enter()?;

    let mut args = std::env::args().skip(1);
    let image = args.next().ok_or("usage: run_container IMAGE [CMD...]")?;
    let containers = buildr::Containers::open(buildr::default_root()?)?;
    let container = containers.create(&CreateOptions {
        image,
        cmd: args.collect(),
        network: NetworkMode::None,
        ..CreateOptions::default()
    })?;
    let id = container.config.id.clone();
    let exit = containers.run_attached(&id, AttachOptions::default(), |stream, bytes| {
        let _ = match stream {
            LogStream::Stdout => std::io::stdout().write_all(bytes),
            LogStream::Stderr => std::io::stderr().write_all(bytes),
        };
    });
    // Removed whatever happened, as `--rm`.
    containers.remove(
        &id,
        RemoveOptions {
            force: true,
            volumes: false,
        },
    )?;
    let exit = exit?;
    if let Some(error) = exit.error {
        eprintln!("error: {error}");
    }
    std::process::exit(exit.exit_code);
}
