//! `buildr prune [-a] [-f]`: garbage-collect the store, docker-style output.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use buildr::image::PruneImagesOptions;

use crate::args::{Cli, PruneArgs};

pub fn run(cli: &Cli, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    if !args.force {
        let what = if args.all {
            "all build cache and the content of every untagged image"
        } else {
            "the content of untagged images and dangling build cache"
        };
        print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let report = images.prune(&PruneImagesOptions { all: args.all })?;
    if !report.blobs.is_empty() {
        println!("Deleted blobs:");
        for digest in &report.blobs {
            println!("deleted: {digest}");
        }
        println!();
    }
    if !report.records.is_empty() || !report.snapshots.is_empty() {
        println!(
            "Deleted build cache: {} records, {} snapshots\n",
            report.records.len(),
            report.snapshots.len()
        );
    }
    println!(
        "Total reclaimed space: {}",
        buildr::image::format_size(report.bytes_freed)
    );
    Ok(ExitCode::SUCCESS)
}
