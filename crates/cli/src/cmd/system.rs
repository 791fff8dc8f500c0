//! `buildr system df`: docker's TYPE TOTAL ACTIVE SIZE RECLAIMABLE table.

use std::process::ExitCode;

use buildr::DiskUsageRow;

use super::images::render_table;
use crate::args::{Cli, SystemCommand};

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
    }
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
        buildr::format_size(row.size),
        format!("{} ({percent}%)", buildr::format_size(row.reclaimable)),
    ]
}
