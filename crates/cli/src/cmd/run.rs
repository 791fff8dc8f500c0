//! `buildr run`, `create`, `start`, and the hidden `__supervise`.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use buildr::{AttachOptions, ContainerLogStream, ContainerNetwork, CreateOptions, Limits};

use crate::args::{Cli, RunArgs, StartArgs, SuperviseArgs};

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let container = containers.create(&options(args)?)?;
    let id = container.config.id.clone();
    if args.detach {
        containers.start_detached(&id, &supervisor(cli)?)?;
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let raw = args.tty.then(super::exec::RawMode::enter);
    let info = attach(&containers, &id, args.interactive, args.tty);
    drop(raw);
    let info = info?;
    if args.rm {
        containers.remove(&id, true, true)?;
    }
    if let Some(error) = &info.error {
        eprintln!("buildr: error: {error}");
    }
    Ok(exit_code(info.exit_code))
}

pub fn create(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    if args.detach {
        bail!("create does not take --detach: `start` runs the container in the background");
    }
    if args.tty || args.interactive {
        bail!("create -i/-t are not supported yet: use `run -i`/`run -it`, or `start -a -i`");
    }
    let containers = super::open_containers(cli)?;
    let container = containers.create(&options(args)?)?;
    println!("{}", container.config.id);
    Ok(ExitCode::SUCCESS)
}

pub fn start(cli: &Cli, args: &StartArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    if args.interactive && !args.attach {
        bail!("start -i needs -a: a detached container gets no stdin");
    }
    if args.attach {
        let [one] = args.containers.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let container = containers.get(one)?;
        let info = attach(&containers, &container.config.id, args.interactive, false)?;
        if container.config.auto_remove {
            containers.remove(&container.config.id, true, true)?;
        }
        if let Some(error) = &info.error {
            eprintln!("buildr: error: {error}");
        }
        return Ok(exit_code(info.exit_code));
    }
    let supervisor = supervisor(cli)?;
    let mut code = ExitCode::SUCCESS;
    for name in &args.containers {
        match containers.start_detached(name, &supervisor) {
            Ok(_) => println!("{name}"),
            Err(err) => {
                eprintln!("buildr: error: {err}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

pub fn supervise(cli: &Cli, args: &SuperviseArgs) -> anyhow::Result<ExitCode> {
    let root = super::store_root(cli)?;
    let info = buildr::supervise(&root, &args.id)?;
    Ok(exit_code(info.exit_code))
}

/// Runs in this process, output to our stdout/stderr, signals forwarded.
fn attach(
    containers: &buildr::Containers,
    id: &str,
    stdin: bool,
    tty: bool,
) -> anyhow::Result<buildr::ExitInfo> {
    let options = AttachOptions {
        proxy_signals: true,
        stdin,
        tty,
        ..AttachOptions::default()
    };
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    Ok(containers.run_attached(id, options, |stream, chunk| {
        // A closed terminal must not stop the container.
        let _ = match stream {
            ContainerLogStream::Stdout => stdout.write_all(chunk).and_then(|()| stdout.flush()),
            ContainerLogStream::Stderr => stderr.write_all(chunk),
        };
    })?)
}

/// How to start a detached supervisor: this binary, same store.
fn supervisor(cli: &Cli) -> anyhow::Result<Vec<OsString>> {
    let exe = std::env::current_exe().context("cannot find the buildr binary")?;
    let root = super::store_root(cli)?;
    Ok(vec![
        exe.into(),
        "--root".into(),
        root.into(),
        "__supervise".into(),
    ])
}

pub(crate) fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.rem_euclid(256)).unwrap_or(255))
}

fn options(args: &RunArgs) -> anyhow::Result<CreateOptions> {
    if (args.interactive || args.tty) && args.detach {
        bail!("-i/-t with -d are not supported yet: a detached container gets no stdin or pty");
    }
    let network = match args.network.as_str() {
        "none" => ContainerNetwork::None,
        "host" => ContainerNetwork::Host,
        "bridge" | "default" => ContainerNetwork::Bridge,
        other => bail!("unknown --network {other}: none, host or bridge"),
    };
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read env file {}", file.display()))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            env.push(line.to_owned());
        }
    }
    env.extend(args.env.iter().cloned());
    let memory = args
        .memory
        .as_deref()
        .map(buildr::parse_bytes)
        .transpose()?;
    if let Some(cpus) = args.cpus
        && !(cpus.is_finite() && cpus > 0.0)
    {
        bail!("invalid --cpus {cpus}: must be a positive number");
    }
    Ok(CreateOptions {
        image: args.image.clone(),
        name: args.name.clone(),
        cmd: args.command.clone(),
        entrypoint: args.entrypoint.clone(),
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        network,
        volumes: args.volume.clone(),
        mounts: args.mount.clone(),
        limits: Limits {
            memory,
            pids: args.pids_limit,
            cpus: args.cpus,
        },
        read_only: args.read_only,
        auto_remove: args.rm,
        publish: args.publish.clone(),
        publish_all: args.publish_all,
    })
}
