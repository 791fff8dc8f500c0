//! `history IMAGE`: the config's history entries matched to its layers, as
//! docker's daemon pairs them: each entry that is not an `empty_layer`
//! takes the next layer (its uncompressed size), entries are listed newest
//! first, and only the newest names an image (the others are `<missing>`:
//! buildr keeps no parent images, as docker 26 shows pulled and BuildKit
//! images).

use buildr_cache::Digest;

use super::time::{format_rfc3339, human_ago, human_size, parse_rfc3339, unix_now};
use super::{Images, familiar_name, short_id};
use crate::error::{Error, Result};

/// One row of `history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image the row is, for the newest row; `None` (`<missing>`) for
    /// the layers under it.
    pub id: Option<Digest>,
    /// The image's tags (familiar), on the newest row.
    pub tags: Vec<String>,
    /// The entry's `created`, seconds since the epoch, if it has one.
    pub created: Option<i64>,
    pub created_by: String,
    pub comment: String,
    /// The uncompressed content size of the entry's layer (0 for an
    /// `empty_layer` entry).
    pub size: u64,
}

impl HistoryEntry {
    /// `IMAGE` as docker prints it: 12 hex digits (all of `sha256:...`
    /// with `full`), or `<missing>`.
    pub fn image(&self, full: bool) -> String {
        match (&self.id, full) {
            (None, _) => "<missing>".to_owned(),
            (Some(id), true) => id.to_string(),
            (Some(id), false) => short_id(id),
        }
    }

    /// `CREATED` with `-H` (`2 hours ago`), `N/A` when unknown.
    pub fn created_ago(&self) -> String {
        self.created
            .map_or_else(|| "N/A".to_owned(), |secs| human_ago(secs, unix_now()))
    }

    /// `CREATED` without `-H`, and `.CreatedAt`: RFC 3339 (UTC).
    pub fn created_at(&self) -> String {
        self.created
            .map_or_else(|| "N/A".to_owned(), |secs| format_rfc3339(secs, 0))
    }

    /// `SIZE` with `-H` (`4.26MB`).
    pub fn human_size(&self) -> String {
        human_size(self.size)
    }
}

impl Images {
    /// docker's `history` of one image argument (name, id or prefix),
    /// newest entry first.
    pub fn history(&self, input: &str) -> Result<Vec<HistoryEntry>> {
        let image = self.resolve(input)?;
        let sizes = self.layer_sizes(&image)?;
        let mut layers = sizes.into_iter();
        let mut rows = Vec::with_capacity(image.config.history.len());
        for entry in &image.config.history {
            let size = if entry.empty_layer.unwrap_or(false) {
                0
            } else {
                layers.next().ok_or_else(|| Error::BadImage {
                    image: input.to_owned(),
                    reason: "too many non-empty layers in the history section".to_owned(),
                })?
            };
            rows.push(HistoryEntry {
                id: None,
                tags: Vec::new(),
                created: entry.created.as_deref().and_then(parse_rfc3339),
                created_by: entry.created_by.clone().unwrap_or_default(),
                comment: entry.comment.clone().unwrap_or_default(),
                size,
            });
        }
        rows.reverse();
        if let Some(newest) = rows.first_mut() {
            newest.id = Some(image.id);
            newest.tags = image.names.iter().map(|n| familiar_name(n)).collect();
        }
        Ok(rows)
    }
}
