//! `buildr login [-u USER] [-p PASS | --password-stdin] [SERVER]`: checks
//! the credentials with the registry, then stores them in docker's
//! `config.json` (or its credential helper). The password is never printed.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use buildr::Registry;
use buildr::registry::Credentials;

use crate::args::LoginArgs;

pub fn run(args: &LoginArgs) -> anyhow::Result<ExitCode> {
    if args.password_stdin && args.username.is_none() {
        bail!("must provide --username with --password-stdin");
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match &args.username {
        Some(u) => u.clone(),
        None if interactive => prompt("Username: ")?.trim().to_owned(),
        None => bail!("cannot perform an interactive login from a non TTY device"),
    };
    if username.is_empty() {
        bail!("username is required");
    }
    let password = if let Some(p) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .context("cannot read the password from stdin")?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else if interactive {
        prompt_hidden("Password: ")?
    } else {
        bail!("cannot perform an interactive login from a non TTY device");
    };
    if password.is_empty() {
        bail!("password is required");
    }
    let registry = Registry::from_env()?;
    registry.login(
        args.server.as_deref(),
        &Credentials::new(&username, &password),
    )?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

fn prompt(label: &str) -> anyhow::Result<String> {
    eprint!("{label}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Reads a line with the terminal's echo off (`stty -echo`, restored after).
fn prompt_hidden(label: &str) -> anyhow::Result<String> {
    let stty = |arg: &str| {
        Command::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !stty("-echo") {
        bail!("cannot turn off terminal echo to read the password: use --password-stdin");
    }
    let line = prompt(label);
    stty("echo");
    eprintln!();
    line
}
