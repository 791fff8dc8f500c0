//! `pause`, `unpause`, `top`, `stats` and `update`: docker's output over
//! the library's cgroup and process readings.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use buildr::container::{ContainerStats, Limits, UpdateOptions};

use super::container::each;
use crate::args::{Cli, ContainersArgs, StatsArgs, TopArgs, UpdateArgs};

pub fn pause(cli: &Cli, args: &ContainersArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    Ok(each(&args.containers, |name| {
        containers.pause(name)?;
        println!("{name}");
        Ok(())
    }))
}

pub fn unpause(cli: &Cli, args: &ContainersArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    Ok(each(&args.containers, |name| {
        containers.unpause(name)?;
        println!("{name}");
        Ok(())
    }))
}

/// `top`: the host's `ps` (`-ef` unless options are given) filtered to the
/// container's processes, its columns as docker prints them.
pub fn top(cli: &Cli, args: &TopArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let pids = containers.top(&args.container)?;
    let options: Vec<String> = if args.ps_options.is_empty() {
        vec!["-ef".into()]
    } else {
        args.ps_options.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&options)
        .output()
        .context("cannot run ps")?;
    if !out.status.success() {
        bail!("ps: {}", String::from_utf8_lossy(&out.stderr).trim_end());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{}", filter_ps(&text, &pids)?);
    Ok(ExitCode::SUCCESS)
}

/// `ps` output kept to the lines of `pids`, laid out as docker's tabwriter
/// (cells at least 20 wide, 3 spaces of padding; the last column as is).
fn filter_ps(text: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let Some(pid_col) = header.iter().position(|h| *h == "PID") else {
        bail!("couldn't find PID field in ps output");
    };
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let last = header.len().saturating_sub(1).min(fields.len());
        let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
        row.push(fields[last..].join(" "));
        rows.push(row);
    }
    Ok(super::images::render_table_min(&rows, 20))
}

/// docker's `stats` columns for `table` templates.
const STATS_HEADERS: [(&str, &str); 9] = [
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// docker's default `stats` table.
const STATS_TABLE: &str = "table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}";

/// `stats`: every second until interrupted, or once with `--no-stream`
/// (after two readings a second apart: CPU % is a rate).
pub fn stats(cli: &Cli, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") => STATS_TABLE,
        Some(format) => format,
    };
    let mut names = stats_names(&containers, args)?;
    let read = |name: &str| containers.stats(name).ok();
    let mut previous: HashMap<String, ContainerStats> = HashMap::new();
    for name in &names {
        match containers.stats(name) {
            Ok(s) => {
                previous.insert(name.clone(), s);
            }
            // A container that runs but cannot be read says why, once.
            Err(e) if containers.get(name).is_ok_and(|c| c.is_running()) => {
                eprintln!("buildr: warning: {name}: {e}");
            }
            Err(_) => {}
        }
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if args.containers.is_empty() {
            // Without names, the set follows containers starting and stopping.
            names = stats_names(&containers, args)?;
            previous.retain(|name, _| names.contains(name));
        }
        let mut docs = Vec::new();
        for name in &names {
            let now = read(name);
            let doc = stats_doc(name, now.as_ref(), previous.get(name), args.no_trunc);
            docs.push(doc);
            if let Some(now) = now {
                previous.insert(name.clone(), now);
            }
        }
        let text = super::images::formatted(format, &docs, &STATS_HEADERS)?;
        let mut out = std::io::stdout().lock();
        if !args.no_stream {
            // docker redraws the whole screen.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        write!(out, "{text}")?;
        out.flush()?;
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// The containers `stats` shows: those named (each must exist), else the
/// running ones (every one with `-a`), by id.
fn stats_names(containers: &buildr::Containers, args: &StatsArgs) -> anyhow::Result<Vec<String>> {
    if args.containers.is_empty() {
        return Ok(containers
            .list()?
            .into_iter()
            .filter(|c| args.all || c.is_active())
            .map(|c| c.config.id)
            .collect());
    }
    for name in &args.containers {
        containers.get(name)?;
    }
    Ok(args.containers.clone())
}

/// One `stats` row as JSON with docker's field names and renderings; a
/// container that is not running reads as zeros, as docker's.
fn stats_doc(
    name: &str,
    now: Option<&ContainerStats>,
    before: Option<&ContainerStats>,
    no_trunc: bool,
) -> serde_json::Value {
    let Some(now) = now else {
        return serde_json::json!({
            "BlockIO": "0B / 0B", "CPUPerc": "0.00%", "Container": name, "ID": "--",
            "MemPerc": "0.00%", "MemUsage": "0B / 0B", "Name": name, "NetIO": "0B / 0B",
            "PIDs": "0",
        });
    };
    let cpu = match (before, now.cgroup.cpu_nanos) {
        (Some(before), Some(cpu)) => {
            let wall = now.read_at.duration_since(before.read_at).as_nanos() as f64;
            let used = cpu.saturating_sub(before.cgroup.cpu_nanos.unwrap_or(cpu)) as f64;
            if wall > 0.0 { used / wall * 100.0 } else { 0.0 }
        }
        _ => 0.0,
    };
    let memory = now.cgroup.memory_usage.unwrap_or(0);
    let memory_percent = if now.memory_limit > 0 {
        memory as f64 / now.memory_limit as f64 * 100.0
    } else {
        0.0
    };
    let id = if no_trunc {
        now.id.clone()
    } else {
        now.id[..12.min(now.id.len())].to_owned()
    };
    serde_json::json!({
        "BlockIO": format!("{} / {}", decimal_size(now.cgroup.block_read), decimal_size(now.cgroup.block_write)),
        "CPUPerc": format!("{cpu:.2}%"),
        "Container": name,
        "ID": id,
        "MemPerc": format!("{memory_percent:.2}%"),
        "MemUsage": format!("{} / {}", binary_size(memory), binary_size(now.memory_limit)),
        "Name": now.name,
        "NetIO": format!("{} / {}", decimal_size(now.net_rx), decimal_size(now.net_tx)),
        "PIDs": now.cgroup.pids.unwrap_or(0).to_string(),
    })
}

/// Go's `%.Ng`: `precision` significant digits, trailing zeros dropped.
fn go_g(value: f64, precision: i32) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let exp = value.abs().log10().floor() as i32;
    let decimals = (precision - 1 - exp).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn scaled(bytes: u64, base: f64, units: &[&str], precision: i32) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit + 1 < units.len() {
        value /= base;
        unit += 1;
    }
    format!("{}{}", go_g(value, precision), units[unit])
}

/// docker's `units.BytesSize`: `1.5MiB`, `7.772GiB`.
fn binary_size(bytes: u64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], 4)
}

/// docker's `units.HumanSizeWithPrecision(n, 3)`: `0B`, `1.2kB`, `35.4MB`.
fn decimal_size(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

/// `update`: new limits and restart policy for each container.
pub fn update(cli: &Cli, args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    let memory = args
        .memory
        .as_deref()
        .map(buildr::container::parse_bytes)
        .transpose()?;
    let options = UpdateOptions {
        limits: Limits {
            memory,
            pids: args.pids_limit,
            cpus: args.cpus,
        },
        restart: args.restart.as_deref().map(str::parse).transpose()?,
    };
    if options == UpdateOptions::default() {
        bail!("you must provide one or more flags when using this command");
    }
    let containers = super::open_containers(cli)?;
    Ok(each(&args.containers, |name| {
        containers.update(name, &options)?;
        println!("{name}");
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers_units() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1536 * 1024), "1.5MiB");
        assert_eq!(binary_size(8_345_000_000), "7.772GiB");
        assert_eq!(binary_size(100 << 20), "100MiB");
        assert_eq!(decimal_size(0), "0B");
        assert_eq!(decimal_size(1234), "1.23kB");
        assert_eq!(decimal_size(35_400_000), "35.4MB");
    }

    #[test]
    fn top_keeps_the_containers_lines_and_whole_commands() {
        let ps = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 41 0 10:01 ? 00:00:00 sleep 300\n";
        let out = filter_ps(ps, &[42]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].starts_with("UID                 PID"), "{out}");
        assert!(lines[1].ends_with("00:00:00            sleep 300"), "{out}");
        assert!(filter_ps("USER COMMAND\n", &[1]).is_err());
    }
}
