//! `buildr system df` (docker's TYPE TOTAL ACTIVE SIZE RECLAIMABLE table)
//! and `buildr system prune`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use buildr::container::SystemPruneOptions;
use buildr::image::DiskUsageRow;

use super::images::render_table;
use crate::args::{Cli, SystemCommand, SystemPruneArgs};

pub fn run(cli: &Cli, command: &SystemCommand) -> anyhow::Result<ExitCode> {
    match command {
        SystemCommand::Df => {
            let df = super::open_images(cli)?.disk_usage()?;
            let mut table = vec![
                ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for (kind, row) in [
                ("Images", df.images),
                ("Containers", df.containers),
                ("Local Volumes", df.volumes),
                ("Build Cache", df.build_cache),
            ] {
                table.push(line(kind, &row));
            }
            print!("{}", render_table(&table));
            Ok(ExitCode::SUCCESS)
        }
        SystemCommand::Prune(args) => prune(cli, args),
    }
}

fn prune(cli: &Cli, args: &SystemPruneArgs) -> anyhow::Result<ExitCode> {
    if !args.force {
        let mut what = vec!["all stopped containers"];
        if args.volumes {
            what.push("all anonymous volumes not used by at least one container");
        }
        what.push(if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        });
        what.push(if args.all {
            "all build cache"
        } else {
            "unused build cache"
        });
        println!("WARNING! This will remove:");
        for line in what {
            println!("  - {line}");
        }
        print!("\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let report = super::open_containers(cli)?.system_prune(SystemPruneOptions {
        all: args.all,
        volumes: args.volumes,
    })?;
    let section = |title: &str, items: &[String]| {
        if !items.is_empty() {
            println!("{title}:");
            for item in items {
                println!("{item}");
            }
            println!();
        }
    };
    section("Deleted Containers", &report.containers);
    section("Deleted Volumes", &report.volumes);
    let mut images: Vec<String> = report
        .untagged
        .iter()
        .map(|name| format!("untagged: {}", buildr::image::familiar_name(name)))
        .collect();
    images.extend(report.store.blobs.iter().map(|d| format!("deleted: {d}")));
    section("Deleted Images", &images);
    if !report.store.records.is_empty() || !report.store.snapshots.is_empty() {
        println!(
            "Deleted build cache objects: {} records, {} snapshots\n",
            report.store.records.len(),
            report.store.snapshots.len()
        );
    }
    println!(
        "Total reclaimed space: {}",
        buildr::image::format_size(report.bytes_freed)
    );
    Ok(ExitCode::SUCCESS)
}

fn line(kind: &str, row: &DiskUsageRow) -> Vec<String> {
    let percent = row
        .reclaimable
        .saturating_mul(100)
        .checked_div(row.size)
        .unwrap_or(0);
    vec![
        kind.to_owned(),
        row.total.to_string(),
        row.active.to_string(),
        buildr::image::format_size(row.size),
        format!(
            "{} ({percent}%)",
            buildr::image::format_size(row.reclaimable)
        ),
    ]
}
