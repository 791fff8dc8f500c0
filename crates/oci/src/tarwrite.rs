//! Writing a [`Diff`] as a tar stream.
//!
//! Headers are ustar, with PAX records for what ustar cannot hold: names and
//! link targets over 100 bytes, ids over 2^21, sizes over 8 GiB, and xattrs
//! (`SCHILY.xattr.<name>`, which is where `security.capability` travels).
//! User and group names stay empty, so a layer never depends on the host's
//! `/etc/passwd`. The same tree gives the same bytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};

use tar::{EntryType, Header};

use buildr_cache::Digest;

use crate::compress::{CompressOptions, HashCount, LayerDigests, LayerWriter};
use crate::diff::{Diff, Entry, EntryKind};
use crate::error::{Error, Result};
use crate::stat::Kind;

/// How a diff becomes a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    pub compress: CompressOptions,
    /// Clamp every mtime to at most this many seconds since the epoch
    /// (`SOURCE_DATE_EPOCH`, for reproducible layers).
    pub source_date_epoch: Option<i64>,
}

const USTAR_NAME: usize = 100;
const USTAR_MAX_ID: u64 = 0o7777777;
const USTAR_MAX_SIZE: u64 = 0o77777777777;

impl Diff {
    /// Writes the layer to `sink`, compressed as asked, and returns its diff
    /// id, blob digest and size together with the sink.
    pub fn write_layer<W: Write>(&self, sink: W, opts: &LayerOptions) -> Result<(LayerDigests, W)> {
        let writer = LayerWriter::new(sink, &opts.compress).map_err(|source| Error::Write {
            entry: "(end of layer)".into(),
            source,
        })?;
        let writer = self.write_tar(writer, opts.source_date_epoch)?;
        writer.finish().map_err(|source| Error::Write {
            entry: "(end of layer)".into(),
            source,
        })
    }

    /// The digest (the layer's diff id) and size of the uncompressed tar,
    /// which is hashed as it is made and not kept.
    pub fn tar_digest(&self, source_date_epoch: Option<i64>) -> Result<(Digest, u64)> {
        let hashed = self.write_tar(HashCount::new(io::sink()), source_date_epoch)?;
        let (digest, size, _) = hashed.finish();
        Ok((digest, size))
    }

    /// Writes the uncompressed tar to `out` and returns it.
    pub fn write_tar<W: Write>(&self, out: W, source_date_epoch: Option<i64>) -> Result<W> {
        let mut builder = tar::Builder::new(out);
        let mut first_names: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        self.for_each(|entry| {
            write_entry(&mut builder, entry, source_date_epoch, &mut first_names).map_err(
                |source| Error::Write {
                    entry: String::from_utf8_lossy(&entry.name).into_owned(),
                    source,
                },
            )
        })?;
        builder.into_inner().map_err(|source| Error::Write {
            entry: "(end of layer)".into(),
            source,
        })
    }
}

fn write_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    entry: &Entry,
    epoch: Option<i64>,
    first_names: &mut HashMap<(u64, u64), Vec<u8>>,
) -> io::Result<()> {
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut header = Header::new_ustar();
    let Some(stat) = entry
        .stat
        .as_ref()
        .filter(|_| entry.kind == EntryKind::Node)
    else {
        // Whiteout and opaque markers: empty regular files, fixed metadata.
        set_name(&mut header, &entry.name, false, &mut pax);
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0);
        header.set_size(0);
        header.set_mtime(0);
        return append(builder, header, &pax, &mut io::empty());
    };

    set_name(&mut header, &entry.name, stat.kind == Kind::Dir, &mut pax);
    header.set_mode(stat.mode);
    set_id(&mut header, u64::from(stat.uid), "uid", &mut pax);
    set_id(&mut header, u64::from(stat.gid), "gid", &mut pax);
    let mtime = epoch.map_or(stat.mtime, |e| stat.mtime.min(e)).max(0);
    header.set_mtime(mtime as u64);
    header.set_size(0);
    for (name, value) in &entry.xattrs {
        pax.push((format!("SCHILY.xattr.{name}"), value.clone()));
    }

    match stat.kind {
        Kind::Dir => header.set_entry_type(EntryType::Directory),
        Kind::Symlink => {
            header.set_entry_type(EntryType::Symlink);
            set_link(
                &mut header,
                entry.link.as_deref().unwrap_or_default(),
                &mut pax,
            );
        }
        Kind::Fifo => {
            header.set_entry_type(EntryType::Fifo);
            header.set_device_major(0)?;
            header.set_device_minor(0)?;
        }
        Kind::Char | Kind::Block => {
            header.set_entry_type(if stat.kind == Kind::Char {
                EntryType::Char
            } else {
                EntryType::Block
            });
            let dev = stat.rdev;
            header.set_device_major(rustix::fs::major(dev))?;
            header.set_device_minor(rustix::fs::minor(dev))?;
        }
        Kind::Socket => return Ok(()),
        Kind::File => {
            if stat.nlink > 1 {
                if let Some(first) = first_names.get(&(stat.dev, stat.ino)) {
                    header.set_entry_type(EntryType::Link);
                    set_link(&mut header, first, &mut pax);
                    return append(builder, header, &pax, &mut io::empty());
                }
                first_names.insert((stat.dev, stat.ino), entry.name.clone());
            }
            header.set_entry_type(EntryType::Regular);
            if stat.size > USTAR_MAX_SIZE {
                pax.push(("size".into(), stat.size.to_string().into_bytes()));
            }
            header.set_size(stat.size);
            let file = open_noatime(&entry.source)?;
            let mut data = Exact {
                inner: file.take(stat.size),
                left: stat.size,
            };
            return append(builder, header, &pax, &mut data);
        }
    }
    append(builder, header, &pax, &mut io::empty())
}

/// Opens a layer file for reading without updating its access time where
/// the kernel allows it (owner or `CAP_FOWNER`): a snapshot's files are
/// read again for every tar made of them, and under `relatime` the first
/// read after a change of the inode (a hard link made by a COPY rerun
/// changes its ctime) writes the inode back, a journal write per file.
fn open_noatime(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let noatime = rustix::fs::OFlags::NOATIME.bits() as i32;
    match File::options().read(true).custom_flags(noatime).open(path) {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {
            File::open(path)
        }
        other => other,
    }
}

fn set_name(header: &mut Header, name: &[u8], dir: bool, pax: &mut Vec<(String, Vec<u8>)>) {
    let mut full = name.to_vec();
    if dir {
        full.push(b'/');
    }
    let field = &mut header.as_old_mut().name;
    let n = full.len().min(USTAR_NAME);
    field[..n].copy_from_slice(&full[..n]);
    if full.len() > USTAR_NAME {
        pax.push(("path".into(), full));
    }
}

fn set_link(header: &mut Header, target: &[u8], pax: &mut Vec<(String, Vec<u8>)>) {
    let field = &mut header.as_old_mut().linkname;
    let n = target.len().min(USTAR_NAME);
    field[..n].copy_from_slice(&target[..n]);
    if target.len() > USTAR_NAME {
        pax.push(("linkpath".into(), target.to_vec()));
    }
}

fn set_id(header: &mut Header, id: u64, key: &str, pax: &mut Vec<(String, Vec<u8>)>) {
    if id > USTAR_MAX_ID {
        pax.push((key.into(), id.to_string().into_bytes()));
        if key == "uid" {
            header.set_uid(0);
        } else {
            header.set_gid(0);
        }
    } else if key == "uid" {
        header.set_uid(id);
    } else {
        header.set_gid(id);
    }
}

/// Appends an optional PAX extended header, then the entry.
fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    mut header: Header,
    pax: &[(String, Vec<u8>)],
    data: &mut dyn Read,
) -> io::Result<()> {
    if !pax.is_empty() {
        let mut records = Vec::new();
        for (key, value) in pax {
            pax_record(&mut records, key, value);
        }
        let mut ext = Header::new_ustar();
        let name = header.as_old().name;
        let base_len = name.iter().position(|c| *c == 0).unwrap_or(name.len());
        let pax_name = [b"PaxHeaders.0/".as_slice(), &name[..base_len]].concat();
        let n = pax_name.len().min(USTAR_NAME);
        ext.as_old_mut().name[..n].copy_from_slice(&pax_name[..n]);
        ext.set_entry_type(EntryType::XHeader);
        ext.set_mode(0o644);
        ext.set_mtime(0);
        ext.set_size(records.len() as u64);
        ext.set_cksum();
        builder.append(&ext, records.as_slice())?;
    }
    header.set_cksum();
    builder.append(&header, data)
}

/// `"<len> <key>=<value>\n"` where `<len>` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Yields exactly `left` bytes or fails: a file that shrank while being read
/// must not produce a corrupt tar.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being archived",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (key, value_len) in [
            ("path", 1),
            ("path", 5),
            ("path", 93),
            ("path", 94),
            ("path", 995),
            ("x", 0),
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, key, &vec![b'a'; value_len]);
            let space = out.iter().position(|c| *c == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..space]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "{key} with {value_len} bytes");
        }
    }
}
