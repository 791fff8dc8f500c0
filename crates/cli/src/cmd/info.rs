//! `buildr version` and `buildr info`: docker's two self-descriptions, as
//! text or through `--format` (the Go-template subset), so that scripts
//! asking `{{.Server.Version}}` or `{{.Driver}}` get an answer. There is no
//! daemon: the "server" is the library in this binary.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::gotemplate::GoTemplate;
use crate::args::{Cli, FormatArgs};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Docker's `GOARCH` name of this machine.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

/// `uname -r`.
fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Prints `doc` through `format`, or `text` without one.
fn print(doc: &Value, format: Option<&str>, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    match format {
        Some(format) => println!("{}", GoTemplate::parse(format)?.render(doc)?),
        None => print!("{}", text()),
    }
    Ok(())
}

pub fn version(args: &FormatArgs) -> anyhow::Result<ExitCode> {
    let side = json!({
        "Version": VERSION,
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": kernel(),
    });
    let doc = json!({ "Client": side, "Server": side });
    print(&doc, args.format.as_deref(), || {
        format!(
            "Client:\n Version:           {VERSION}\n OS/Arch:           linux/{arch}\n\n\
             Server: (no daemon: the buildr library in this binary)\n Engine:\n  Version:          {VERSION}\n  OS/Arch:          linux/{arch}\n  Kernel Version:   {kernel}\n",
            arch = arch(),
            kernel = kernel(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn info(cli: &Cli, args: &FormatArgs) -> anyhow::Result<ExitCode> {
    let root = super::store_root(cli)?;
    let containers = super::open_containers(cli)?.list()?;
    // docker's counts: paused apart, restarting as running.
    let paused = containers
        .iter()
        .filter(|c| c.status_word() == "paused")
        .count();
    let running = containers.iter().filter(|c| c.is_active()).count() - paused;
    let images = super::open_images(cli)?.list()?;
    let unique: std::collections::BTreeSet<_> = images.iter().map(|i| i.id).collect();
    let cgroup = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    let rootless = buildr::sandbox::rootless::is_rootless();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let doc = json!({
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": containers.len() - running - paused,
        "Images": unique.len(),
        "Driver": "overlay2",
        "DockerRootDir": root,
        "CgroupVersion": cgroup,
        "KernelVersion": kernel(),
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": cpus,
        "MemTotal": memory,
        "ServerVersion": VERSION,
        "Rootless": rootless,
    });
    print(&doc, args.format.as_deref(), || {
        format!(
            "Containers: {}\n Running: {running}\n Paused: {paused}\n Stopped: {}\nImages: {}\n\
             Server Version: {VERSION}\nStorage Driver: overlay2\nCgroup Version: {cgroup}\n\
             Kernel Version: {}\nArchitecture: {}\nCPUs: {cpus}\nTotal Memory: {}\n\
             Root Dir: {}\nRootless: {rootless}\n",
            containers.len(),
            containers.len() - running - paused,
            unique.len(),
            kernel(),
            std::env::consts::ARCH,
            buildr::image::format_size(memory),
            root.display(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
