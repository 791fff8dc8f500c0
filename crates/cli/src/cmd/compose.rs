//! `buildr compose [-f FILE]... [-p NAME] [--project-directory DIR] [--env-file FILE]
//! [--profile P] config`: the resolved project, as docker compose prints it.
//! The model is `buildr_compose`'s; this only maps flags and prints.

use std::process::ExitCode;

use anyhow::Context;

use crate::args::{ComposeArgs, ComposeCommand};

pub fn run(args: &ComposeArgs) -> anyhow::Result<ExitCode> {
    let options = buildr_compose::Options {
        files: args.files.clone(),
        project_name: args.project_name.clone(),
        project_directory: args.project_directory.clone(),
        env_files: args.env_files.clone(),
        profiles: args.profiles.clone(),
        working_dir: std::env::current_dir().context("failed to read the current directory")?,
        environment: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    };
    let project = buildr_compose::load(&options)?;
    for warning in &project.warnings {
        eprintln!("WARN: {warning}");
    }
    match &args.command {
        ComposeCommand::Config {
            services,
            volumes,
            format,
            quiet,
        } => {
            if *quiet {
                return Ok(ExitCode::SUCCESS);
            }
            if *services {
                // Dependencies first, as compose lists them.
                for name in project.start_order() {
                    println!("{name}");
                }
            } else if *volumes {
                for name in project.volumes.keys() {
                    println!("{name}");
                }
            } else if format == "json" {
                println!("{}", buildr_compose::to_json(&project));
            } else {
                print!("{}", buildr_compose::to_yaml(&project));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
