//! `buildr run`, `create`, `start` and `attach`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use buildr::container::AttachOptions;
use buildr::container::HealthOptions;
use buildr::container::Limits;
use buildr::container::{
    CreateOptions, EnvVar, Label, Mount, NetworkRequest, PortMapping, RemoveOptions,
};

use crate::args::{AttachArgs, Cli, RunArgs, StartArgs};

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let container = containers.create(&options(args)?)?;
    let id = container.config.id.clone();
    if args.detach {
        containers.start_detached(&id)?;
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let raw = args.tty.then(super::exec::RawMode::enter);
    let info = attach(&containers, &id, args.interactive, args.tty);
    drop(raw);
    let info = info?;
    // As docker's CLI: this run ends, the policy restarts it in the background.
    containers.hand_off_restart(&id)?;
    if args.rm {
        containers.remove(
            &id,
            RemoveOptions {
                force: true,
                volumes: true,
            },
        )?;
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
    let containers = super::open_containers(cli)?;
    let container = containers.create(&options(args)?)?;
    println!("{}", container.config.id);
    Ok(ExitCode::SUCCESS)
}

pub fn start(cli: &Cli, args: &StartArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    if args.all_restartable {
        return start_restartable(&containers);
    }
    if args.interactive && !args.attach {
        bail!("start -i needs -a: a detached container gets no stdin");
    }
    if args.attach {
        let [one] = args.containers.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let container = containers.get(one)?;
        if container.config.tty {
            // Started under a detached supervisor that holds the pty, then
            // attached to, as docker does.
            containers.start_detached(&container.config.id)?;
            return attach_pty(&containers, &container.config.id, args.interactive);
        }
        let info = attach(&containers, &container.config.id, args.interactive, false)?;
        containers.hand_off_restart(&container.config.id)?;
        if container.config.auto_remove {
            containers.remove(
                &container.config.id,
                RemoveOptions {
                    force: true,
                    volumes: true,
                },
            )?;
        }
        if let Some(error) = &info.error {
            eprintln!("buildr: error: {error}");
        }
        return Ok(exit_code(info.exit_code));
    }
    let mut code = ExitCode::SUCCESS;
    for name in &args.containers {
        match containers.start_detached(name) {
            Ok(_) => println!("{name}"),
            Err(err) => {
                eprintln!("buildr: error: {err}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// `start --all-restartable`: what a boot runs (no daemon restarts them).
fn start_restartable(containers: &buildr::Containers) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for container in containers.restartable()? {
        match containers.start_detached(&container.config.id) {
            Ok(_) => println!("{}", container.config.name),
            Err(err) => {
                eprintln!("buildr: error: {err}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// `buildr attach`: to a running `-t` container's pty.
pub fn attach_command(cli: &Cli, args: &AttachArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let container = containers.get(&args.container)?;
    let stdin = container.config.open_stdin && !args.no_stdin;
    attach_pty(&containers, &container.config.id, stdin)
}

/// Relays this terminal to the container's pty until the container exits
/// (its exit code is ours) or the detach keys (ctrl-p ctrl-q) are typed.
fn attach_pty(containers: &buildr::Containers, id: &str, stdin: bool) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let stream = containers.attach(id)?;
    let raw = (stdin && nix::unistd::isatty(std::io::stdin()).unwrap_or(false))
        .then(super::exec::RawMode::enter);
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if stdin {
        let (mut input, detached) = (stream.try_clone()?, detached.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            let mut after_ctrl_p = false;
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 {
                    return;
                }
                for &byte in &buf[..n] {
                    if after_ctrl_p && byte == 0x11 {
                        detached.store(true, std::sync::atomic::Ordering::SeqCst);
                        let _ = input.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    after_ctrl_p = byte == 0x10;
                }
                if input.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        });
    }
    let mut output = stream;
    let mut stdout = std::io::stdout();
    let mut buf = [0u8; 4096];
    while let Ok(n) = output.read(&mut buf) {
        if n == 0
            || stdout
                .write_all(&buf[..n])
                .and_then(|()| stdout.flush())
                .is_err()
        {
            break;
        }
    }
    drop(raw);
    if detached.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("read escape sequence");
        return Ok(ExitCode::SUCCESS);
    }
    let container = containers.wait(id, None)?;
    Ok(exit_code(container.state.exit_code.unwrap_or(0)))
}

/// Runs in this process, output to our stdout/stderr, signals forwarded.
fn attach(
    containers: &buildr::Containers,
    id: &str,
    stdin: bool,
    tty: bool,
) -> anyhow::Result<buildr::container::ExitInfo> {
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
            buildr::container::LogStream::Stdout => {
                stdout.write_all(chunk).and_then(|()| stdout.flush())
            }
            buildr::container::LogStream::Stderr => stderr.write_all(chunk),
        };
    })?)
}

pub(crate) fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.rem_euclid(256)).unwrap_or(255))
}

fn options(args: &RunArgs) -> anyhow::Result<CreateOptions> {
    if args.interactive && !args.tty && args.detach {
        bail!("-d -i without -t is not supported yet: use -dit (a pty `attach` can reach)");
    }
    let (network, attach) = match args.network.as_str() {
        "none" => (buildr::container::NetworkMode::None, None),
        "host" => (buildr::container::NetworkMode::Host, None),
        "bridge" | "default" => (buildr::container::NetworkMode::Bridge, None),
        "" => bail!("invalid --network \"\": none, host, bridge or a network's name"),
        name => (buildr::container::NetworkMode::User, Some(name.to_owned())),
    };
    let attach = match attach {
        Some(network) => Some(NetworkRequest {
            network,
            aliases: args.network_alias.clone(),
            ip: args.ip,
        }),
        None if !args.network_alias.is_empty() || args.ip.is_some() => bail!(
            "invalid container option: network-scoped aliases and --ip are supported only for containers in user-defined networks"
        ),
        None => None,
    };
    let mut extra_hosts = Vec::new();
    for line in &args.add_host {
        extra_hosts.push(parse_add_host(line)?);
    }
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read env file {}", file.display()))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            env.extend(line.parse::<EnvVar>()?.resolve());
        }
    }
    for var in &args.env {
        env.extend(var.parse::<EnvVar>()?.resolve());
    }
    let mut mounts = Vec::new();
    for spec in &args.volume {
        mounts.push(Mount::from_volume_spec(spec)?);
    }
    for spec in &args.mount {
        mounts.push(spec.parse::<Mount>()?);
    }
    let publish = args
        .publish
        .iter()
        .map(|p| p.parse::<PortMapping>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("invalid container option: {e}"))?;
    let labels = args
        .label
        .iter()
        .map(|l| l.parse::<Label>().map(|l| (l.key, l.value)))
        .collect::<Result<Vec<_>, _>>()?;
    let memory = args
        .memory
        .as_deref()
        .map(buildr::container::parse_bytes)
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
        mounts,
        limits: Limits {
            memory,
            pids: args.pids_limit,
            cpus: args.cpus,
        },
        read_only: args.read_only,
        auto_remove: args.rm,
        publish,
        publish_all: args.publish_all,
        health: health_options(args)?,
        labels,
        tty: args.tty,
        interactive: args.interactive,
        restart: args.restart.parse()?,
        attach,
        extra_hosts,
        dns: args.dns.clone(),
    })
}

/// `--add-host NAME:IP` (docker also takes `NAME=IP`; an IPv6 address
/// after the first `:`, bracketed or not).
fn parse_add_host(text: &str) -> anyhow::Result<(String, std::net::IpAddr)> {
    let (name, addr) = text
        .split_once('=')
        .or_else(|| text.split_once(':'))
        .ok_or_else(|| anyhow::anyhow!("invalid --add-host {text:?}: expected NAME:IP"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr == "host-gateway" {
        bail!("invalid --add-host {text:?}: host-gateway is not supported yet, give the address");
    }
    let ip = addr.parse().map_err(|_| {
        anyhow::anyhow!("invalid --add-host {text:?}: {addr:?} is not an IP address")
    })?;
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
    if !valid {
        bail!("invalid --add-host {text:?}: bad host name {name:?}");
    }
    Ok((name.to_owned(), ip))
}

/// `--health-*` and `--no-healthcheck`.
fn health_options(args: &RunArgs) -> anyhow::Result<HealthOptions> {
    let duration = |flag: &str, value: &Option<String>| -> anyhow::Result<Option<Duration>> {
        value
            .as_deref()
            .map(|text| {
                buildr::container::parse_duration(text).with_context(|| format!("invalid --{flag}"))
            })
            .transpose()
    };
    Ok(HealthOptions {
        cmd: args.health_cmd.clone(),
        interval: duration("health-interval", &args.health_interval)?,
        timeout: duration("health-timeout", &args.health_timeout)?,
        start_period: duration("health-start-period", &args.health_start_period)?,
        start_interval: duration("health-start-interval", &args.health_start_interval)?,
        retries: args.health_retries,
        disable: args.no_healthcheck,
    })
}
