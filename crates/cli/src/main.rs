//! The `buildr` command-line tool: argument parsing and rendering over the
//! `buildr` library. The work lives in the library.

#![forbid(unsafe_code)]

mod args;
mod cmd;
mod help_examples;
mod log;
mod progress;

use std::process::ExitCode;

use crate::args::Command;

fn main() -> ExitCode {
    // First thing: this process may be a sandbox's init or a detached
    // container's supervisor, started again by buildr.
    buildr::entry_hook();
    // `buildr __man DIR` stays out of the clap tree, so neither the
    // completion scripts nor the pages themselves show it.
    if let Some(code) = cmd::shell::man_invocation() {
        return code;
    }
    let mut cli = match args::parse() {
        Ok(cli) => cli,
        Err(err) => return args::parse_error(err),
    };
    match log::filter(cli.log_level.as_deref(), cli.verbose) {
        Ok(filter) => log::init(filter),
        Err(err) => {
            eprintln!("buildr: error: {err}");
            return ExitCode::from(2);
        }
    }
    // An ordinary user's commands all run in that user's namespace, as
    // its root (see buildr_exec::rootless); before any thread starts.
    if cli.command.needs_namespace()
        && let Err(err) = buildr::sandbox::rootless::enter()
    {
        eprintln!("buildr: error: {err}");
        return ExitCode::from(2);
    }
    // The store root is handed to sandboxes and overlay mounts, which need
    // absolute paths: `--root store` means `$PWD/store`.
    if let Some(root) = &cli.root {
        match std::path::absolute(root) {
            Ok(absolute) => cli.root = Some(absolute),
            Err(err) => {
                eprintln!("buildr: error: invalid --root {}: {err}", root.display());
                return ExitCode::from(2);
            }
        }
    }
    let result = match &cli.command {
        Command::Build(args) => cmd::build::run(&cli, args),
        Command::Check(args) => cmd::check::run(args),
        Command::Images(args) => cmd::images::run(&cli, args),
        Command::Tag(args) => cmd::tag::run(&cli, args),
        Command::Rmi(args) => cmd::rmi::run(&cli, args),
        Command::Inspect(args) => cmd::inspect::run(&cli, args),
        Command::History(args) => cmd::history::run(&cli, args),
        Command::Save(args) => cmd::save::run(&cli, args),
        Command::Load(args) => cmd::load::run(&cli, args),
        Command::Import(args) => cmd::import::run(&cli, args),
        Command::Prune(args) => cmd::prune::run(&cli, args),
        Command::System(args) => cmd::system::run(&cli, args),
        Command::Cache(args) => cmd::cache::run(args),
        Command::Verify(args) => cmd::verify::run(&cli, args),
        Command::Pull(args) => cmd::pull::run(&cli, args),
        Command::Push(args) => cmd::push::run(&cli, args),
        Command::Login(args) => cmd::login::run(args),
        Command::Logout(args) => cmd::logout::run(args),
        Command::Run(args) => cmd::run::run(&cli, args),
        Command::Create(args) => cmd::run::create(&cli, args),
        Command::Start(args) => cmd::run::start(&cli, args),
        Command::Stop(args) => cmd::container::stop(&cli, args),
        Command::Kill(args) => cmd::container::kill(&cli, args),
        Command::Restart(args) => cmd::container::restart(&cli, args),
        Command::Version(args) => cmd::info::version(args),
        Command::Info(args) => cmd::info::info(&cli, args),
        Command::Events(args) => cmd::events::run(&cli, args),
        Command::Rename(args) => cmd::container::rename(&cli, args),
        Command::Pause(args) => cmd::resources::pause(&cli, args),
        Command::Unpause(args) => cmd::resources::unpause(&cli, args),
        Command::Top(args) => cmd::resources::top(&cli, args),
        Command::Stats(args) => cmd::resources::stats(&cli, args),
        Command::Update(args) => cmd::resources::update(&cli, args),
        Command::Port(args) => cmd::container::port(&cli, args),
        Command::Rm(args) => cmd::container::rm(&cli, args),
        Command::Ps(args) => cmd::container::ps(&cli, args),
        Command::Logs(args) => cmd::container::logs(&cli, args),
        Command::Wait(args) => cmd::container::wait(&cli, args),
        Command::Exec(args) => cmd::exec::run(&cli, args),
        Command::Attach(args) => cmd::run::attach_command(&cli, args),
        Command::Container(args) => cmd::container::run(&cli, args),
        Command::Volume(args) => cmd::volume::run(&cli, args),
        Command::Network(args) => cmd::network::run(&cli, args),
        Command::Compose(args) => cmd::compose::run(args),
        Command::Commit(args) => cmd::commit::run(&cli, args),
        Command::Cp(args) => cmd::cp::run(&cli, args),
        Command::Diff(args) => cmd::cp::diff(&cli, args),
        Command::Export(args) => cmd::cp::export(&cli, args),
        Command::Bundle(args) => cmd::bundle::run(&cli, args),
        Command::Completion(args) => cmd::shell::completion(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("buildr: error: {err:#}");
            // As docker: `run` says 125 when the failure is its own (126 and
            // 127 are the command's: it cannot be invoked, or not found).
            if matches!(cli.command, Command::Run(_)) {
                ExitCode::from(125)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
