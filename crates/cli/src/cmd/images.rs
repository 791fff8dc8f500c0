//! `buildr images`: docker's table (REPOSITORY TAG IMAGE ID CREATED SIZE) or `-q` ids.

use std::process::ExitCode;

use buildr::image::ImageSummary;

use crate::args::{Cli, ImagesArgs};

pub fn run(cli: &Cli, args: &ImagesArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let rows: Vec<ImageSummary> = images
        .list()?
        .into_iter()
        .filter(|row| args.repository.as_deref().is_none_or(|f| matches(row, f)))
        .collect();
    let id = |row: &ImageSummary| {
        if args.no_trunc {
            row.id.to_string()
        } else {
            row.short_id()
        }
    };
    if args.quiet {
        for row in &rows {
            println!("{}", id(row));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for row in &rows {
        table.push(vec![
            row.repository.clone(),
            row.tag.clone(),
            id(row),
            row.created_ago(),
            row.human_size(),
        ]);
    }
    print!("{}", render_table(&table));
    Ok(ExitCode::SUCCESS)
}

/// `busybox` matches the repository, `busybox:1` repository and tag; the
/// familiar and the fully qualified spellings both work.
fn matches(row: &ImageSummary, filter: &str) -> bool {
    let familiar = format!("{}:{}", row.repository, row.tag);
    let full_repo = row
        .name
        .rsplit_once(':')
        .map_or(row.name.as_str(), |(r, _)| r);
    let has_tag = filter
        .rsplit_once('/')
        .map_or(filter, |(_, last)| last)
        .contains(':');
    if has_tag {
        filter == familiar || filter == row.name
    } else {
        filter == row.repository || filter == full_repo
    }
}

/// Columns padded like docker's tabwriter (min width 10, padding 3).
pub fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
