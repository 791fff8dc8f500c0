//! `buildr images`: docker's table (REPOSITORY TAG IMAGE ID CREATED SIZE) or `-q` ids.

use std::process::ExitCode;

use buildr::image::{ImageFilters, ImageSummary};

use super::gotemplate::GoTemplate;
use crate::args::{Cli, ImagesArgs};

pub fn run(cli: &Cli, args: &ImagesArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let mut filters = ImageFilters::parse(&args.filter)?;
    // As docker: the REPOSITORY[:TAG] argument is one more reference filter.
    if let Some(repository) = &args.repository {
        filters.references.push(repository.clone());
    }
    let rows = images.list_filtered(&filters)?;
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
    if let Some(format) = &args.format {
        let docs: Vec<serde_json::Value> = rows.iter().map(|r| document(r, id(r))).collect();
        print!("{}", formatted(format, &docs, &HEADERS)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut table = vec![header.into_iter().map(str::to_owned).collect::<Vec<_>>()];
    for row in &rows {
        let mut line = vec![row.repository.clone(), row.tag.clone()];
        if args.digests {
            line.push(row.manifest.to_string());
        }
        line.extend([id(row), row.created_ago(), row.human_size()]);
        table.push(line);
    }
    print!("{}", render_table(&table));
    Ok(ExitCode::SUCCESS)
}

/// An image row as docker's `images --format` sees it.
fn document(row: &ImageSummary, id: String) -> serde_json::Value {
    serde_json::json!({
        "Containers": "N/A",
        "CreatedAt": row.created_at(),
        "CreatedSince": row.created_ago(),
        "Digest": row.manifest.to_string(),
        "ID": id,
        "Repository": row.repository,
        "SharedSize": "N/A",
        "Size": row.human_size(),
        "Tag": row.tag,
        "UniqueSize": "N/A",
        "VirtualSize": row.human_size(),
    })
}

/// Docker's column headers for `table` templates.
const HEADERS: [(&str, &str); 8] = [
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "SIZE"),
];

/// `docs` rendered with `format`: a line each, or with `table ` a header
/// (each `{{.Field}}` named as `headers` say, docker's column names) and
/// aligned columns. `\t` and `\n` in the format are a tab and a newline,
/// as docker's.
pub fn formatted(
    format: &str,
    docs: &[serde_json::Value],
    headers: &[(&str, &str)],
) -> anyhow::Result<String> {
    let format = format.replace("\\t", "\t").replace("\\n", "\n");
    let (table, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start().to_owned()),
        None => (false, format),
    };
    let template = GoTemplate::parse(&body)?;
    let mut lines = Vec::new();
    if table {
        let mut header = body.clone();
        for (field, name) in headers {
            header = header.replace(&format!("{{{{.{field}}}}}"), name);
        }
        lines.push(header);
    }
    for doc in docs {
        lines.push(template.render(doc)?);
    }
    if !table {
        return Ok(lines.iter().map(|l| format!("{l}\n")).collect());
    }
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    Ok(render_table(&rows))
}

/// Columns padded like docker's tabwriter (min width 10, padding 3).
pub fn render_table(rows: &[Vec<String>]) -> String {
    render_table_min(rows, 10)
}

/// [`render_table`] with cells at least `min_width` wide (`top`: 20).
pub fn render_table_min(rows: &[Vec<String>], min_width: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(min_width)
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
