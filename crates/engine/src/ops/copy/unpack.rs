//! `ADD` of a local tar archive (plain, gzip, bzip2, xz or zstd, told by
//! content as BuildKit does), extracted into the destination directory.
//!
//! As BuildKit (which untars chrooted into the destination of the stage's
//! mounted root), an entry's parent directories are resolved in the stage
//! as it stands, the lower layers included: a parent that is a symlink of
//! the image (`/var/run -> /run`) is followed, with the destination as the
//! root (`..` stops there, an absolute target starts there). Missing
//! parents are made 0755 and owned by root; existing ones keep their owner
//! and mode. The hardened extractor still resolves every mapped path with
//! `RESOLVE_IN_ROOT` inside the destination.

use std::fs::File;
use std::io;

use buildr_oci::{ExtractMode, ExtractOptions, extract_layer_mapped};
use buildr_solver::BoxError;

use super::writer::Writer;
use super::{CopyOp, join, open_beneath};
use crate::gopath::clean_relative;
use crate::ops::merged::components;

/// A path as the extractor's components.
type Components = Vec<Vec<u8>>;

impl CopyOp {
    /// Extracts `rel` of the context into `dest` when it is an archive;
    /// `false`: not an archive, copy it as a file.
    pub(super) fn try_unpack(
        &self,
        root: &File,
        rel: &str,
        dest: &str,
        writer: &mut Writer<'_>,
    ) -> Result<bool, BoxError> {
        let file = open_beneath(root, &clean_relative(rel), false)
            .map_err(|e| self.fail(format!("cannot read {rel} from the build context"), e))?;
        let Some(stream) = crate::ops::archive::open_archive(file)
            .map_err(|e| self.fail(format!("ADD {rel}"), e))?
        else {
            return Ok(false);
        };
        // The directories written into take the time of the copy, as the
        // ones BuildKit's untar modifies (an extracted directory keeps its own).
        let times = std::mem::take(&mut writer.dir_times);
        let dir = writer.ensure_dir(dest, None)?;
        writer.dir_times.clear();
        let dest = clean_relative(dest);
        let owner = writer.owner.take();
        // The last parent asked and its answer: tar entries come by directory.
        let mut last: Option<(Components, Components)> = None;
        let mut map = |parent: &[Vec<u8>]| -> io::Result<Vec<Vec<u8>>> {
            if let Some((raw, mapped)) = &last
                && raw == parent
            {
                return Ok(mapped.clone());
            }
            let mapped = map_parent(writer, &dest, parent)?;
            last = Some((parent.to_vec(), mapped.clone()));
            Ok(mapped)
        };
        let extracted = extract_layer_mapped(
            stream,
            &dir,
            &ExtractOptions {
                mode: ExtractMode::Apply,
                ..ExtractOptions::default()
            },
            &mut map,
        );
        writer.dir_times = times;
        writer.owner = owner;
        // The extractor replaces what is in its way without the writer:
        // the parent it last checked may be gone.
        writer.prepared = None;
        extracted.map_err(|e| self.fail(format!("ADD {rel}"), e))?;
        Ok(true)
    }
}

/// Where the entries of `parent` (components below `dest`) go: the parent
/// resolved in the stage (what was written so far over the layers) with
/// `dest` as the root, made a directory in the upper dir; components below
/// `dest`. As BuildKit, a symlink on the way must lead to a directory that
/// exists. A name that is not UTF-8 is left as it is.
fn map_parent(writer: &mut Writer<'_>, dest: &str, parent: &[Vec<u8>]) -> io::Result<Vec<Vec<u8>>> {
    let Ok(names) = parent
        .iter()
        .map(|c| std::str::from_utf8(c))
        .collect::<Result<Vec<&str>, _>>()
    else {
        return Ok(parent.to_vec());
    };
    let view = writer.target.under(writer.upper);
    let mut resolved = dest.to_owned();
    for name in names {
        let next = join(&resolved, name);
        let is_link = view
            .lookup(&next)
            .is_some_and(|found| found.meta.file_type().is_symlink());
        if !is_link {
            resolved = next;
            continue;
        }
        let below = next
            .strip_prefix(dest)
            .unwrap_or(&next)
            .trim_start_matches('/');
        resolved = view
            .resolve_beneath(dest, below, true)
            .map_err(io::Error::other)?;
        if !view.lookup(&resolved).is_some_and(|f| f.meta.is_dir()) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("/{next} is a symlink to /{resolved}, not a directory"),
            ));
        }
    }
    writer
        .ensure_dir(&resolved, None)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let below = components(&resolved)
        .into_iter()
        .skip(components(dest).len())
        .map(|c| c.as_bytes().to_vec())
        .collect();
    Ok(below)
}
