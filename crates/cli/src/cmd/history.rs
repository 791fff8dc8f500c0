//! `buildr history IMAGE`: docker's table (IMAGE CREATED CREATED BY SIZE
//! COMMENT), `-q` ids, `--format` templates; `-H=false` prints dates as
//! RFC 3339 and sizes in bytes.

use std::process::ExitCode;

use buildr::image::HistoryEntry;
use unicode_width::UnicodeWidthChar;

use super::images::formatted;
use crate::args::{Cli, HistoryArgs};

/// Docker's column headers for `table` templates.
const HEADERS: [(&str, &str); 6] = [
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// docker's default: `table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}`.
const TABLE: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

pub fn run(cli: &Cli, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let rows = images.history(&args.image)?;
    let docs: Vec<serde_json::Value> = rows.iter().map(|row| document(row, args)).collect();
    let format = match (&args.format, args.quiet) {
        (Some(format), _) => format.as_str(),
        (None, true) => "{{.ID}}",
        (None, false) => TABLE,
    };
    print!("{}", formatted(format, &docs, &HEADERS)?);
    Ok(ExitCode::SUCCESS)
}

/// A history row as docker's `history --format` sees it.
fn document(row: &HistoryEntry, args: &HistoryArgs) -> serde_json::Value {
    let created_by = row.created_by.replace('\t', " ");
    serde_json::json!({
        "Comment": row.comment,
        "CreatedAt": row.created_at(),
        "CreatedBy": if args.no_trunc { created_by } else { ellipsis(&created_by, 45) },
        "CreatedSince": if args.human { row.created_ago() } else { row.created_at() },
        "ID": row.image(args.no_trunc),
        "Size": if args.human { row.human_size() } else { row.size.to_string() },
    })
}

/// docker's `Ellipsis`: `text` cut to `width` display columns, the last
/// one an `…`, when it is wider.
fn ellipsis(text: &str, width: usize) -> String {
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_by_is_cut_to_45_columns_as_docker() {
        let long = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789 in /";
        let cut = ellipsis(long, 45);
        assert_eq!(cut.chars().count(), 45);
        assert_eq!(cut, "/bin/sh -c #(nop) ADD file:0123456789abcdef0…");
        assert_eq!(ellipsis("RUN echo hi", 45), "RUN echo hi");
        // Wide characters count two columns.
        assert_eq!(ellipsis("日本語の", 5), "日本…");
    }

    #[test]
    fn the_default_table_has_docker_headers() {
        let out = formatted(TABLE, &[], &HEADERS).unwrap();
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
        );
    }
}
