//! The `buildr` command-line tool: argument parsing and rendering over the
//! `buildr` library. The work lives in the library.

#![forbid(unsafe_code)]

mod args;
mod cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => cmd::check::run(args),
        Command::Images(args) => cmd::images::run(&cli, args),
        Command::Tag(args) => cmd::tag::run(&cli, args),
        Command::Rmi(args) => cmd::rmi::run(&cli, args),
        Command::Inspect(args) => cmd::inspect::run(&cli, args),
        Command::Save(args) => cmd::save::run(&cli, args),
        Command::Load(args) => cmd::load::run(&cli, args),
        Command::Import(args) => cmd::import::run(&cli, args),
        Command::Prune(args) => cmd::prune::run(&cli, args),
        Command::System(args) => cmd::system::run(&cli, args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("buildr: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
