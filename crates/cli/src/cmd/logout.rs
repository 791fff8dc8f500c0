//! `buildr logout [SERVER]`: forgets the stored credentials of a registry.

use std::process::ExitCode;

use buildr::Registry;

use crate::args::LogoutArgs;

pub fn run(args: &LogoutArgs) -> anyhow::Result<ExitCode> {
    let (host, had) = Registry::from_env()?.logout(args.server.as_deref())?;
    if had {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(ExitCode::SUCCESS)
}
