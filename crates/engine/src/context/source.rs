//! Where a build context comes from: a directory, or a tar stream
//! (`buildr build - < ctx.tar`) unpacked into a private temporary directory
//! with the hardened layer extractor; and where its `.dockerignore` is.

use std::io::Read;
use std::path::{Path, PathBuf};

use buildr_oci::{ExtractMode, ExtractOptions, extract_layer};

use crate::dockerignore::DockerIgnore;
use crate::error::{Error, Result};
use crate::ops::archive::{Compression, decompressed, is_tar_header};

/// What `buildr build -` found on stdin, told by content as docker's
/// `GetContextFromReader`: an archive when its first bytes name a
/// compression or its first 512 bytes are a valid tar header, else the
/// Dockerfile itself, built with an empty context.
pub enum StdinInput {
    /// A context archive; the sniffed bytes are put back in front.
    Tar(Box<dyn Read + Send>),
    /// The whole input, a Dockerfile.
    Dockerfile(Vec<u8>),
}

impl std::fmt::Debug for StdinInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StdinInput::Tar(_) => f.write_str("StdinInput::Tar(..)"),
            StdinInput::Dockerfile(bytes) => {
                write!(f, "StdinInput::Dockerfile({} bytes)", bytes.len())
            }
        }
    }
}

impl StdinInput {
    /// Reads just enough of `input` to tell which it is (all of it for a
    /// Dockerfile).
    pub fn sniff(mut input: Box<dyn Read + Send>) -> std::io::Result<StdinInput> {
        let mut head = Vec::with_capacity(512);
        (&mut input).take(512).read_to_end(&mut head)?;
        let is_tar = <&[u8; 512]>::try_from(head.as_slice()).is_ok_and(is_tar_header);
        if is_tar || Compression::detect(&head) != Compression::None {
            return Ok(StdinInput::Tar(Box::new(
                std::io::Cursor::new(head).chain(input),
            )));
        }
        input.read_to_end(&mut head)?;
        Ok(StdinInput::Dockerfile(head))
    }
}

/// A `.dockerignore` larger than this is refused rather than read into memory.
const MAX_IGNORE_BYTES: u64 = 16 << 20;

/// The `.dockerignore` BuildKit uses for a build: `<Dockerfile name>.dockerignore`
/// next to the Dockerfile when it exists, else `<context>/.dockerignore`,
/// else none. `dockerfile` is `None` when the Dockerfile comes from stdin
/// (`-f -`) or from inside a tar context.
pub fn find_dockerignore(dockerfile: Option<&Path>, context_dir: &Path) -> Option<PathBuf> {
    let is_file = |path: &Path| std::fs::metadata(path).is_ok_and(|meta| meta.is_file());
    if let Some(dockerfile) = dockerfile
        && let Some(name) = dockerfile.file_name()
    {
        let mut ignore_name = name.to_os_string();
        ignore_name.push(".dockerignore");
        let candidate = dockerfile.with_file_name(ignore_name);
        if is_file(&candidate) {
            return Some(candidate);
        }
    }
    let candidate = context_dir.join(".dockerignore");
    is_file(&candidate).then_some(candidate)
}

/// Reads and parses the `.dockerignore` [`find_dockerignore`] picks; an empty
/// one when there is none.
pub fn load_dockerignore(dockerfile: Option<&Path>, context_dir: &Path) -> Result<DockerIgnore> {
    let Some(path) = find_dockerignore(dockerfile, context_dir) else {
        return Ok(DockerIgnore::default());
    };
    let io_err = |source| Error::Io {
        action: "read",
        path: path.clone(),
        source,
    };
    let file = std::fs::File::open(&path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_IGNORE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_IGNORE_BYTES {
        return Err(io_err(std::io::Error::other(format!(
            "file is larger than {MAX_IGNORE_BYTES} bytes"
        ))));
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok(DockerIgnore::parse(&path.display().to_string(), &text)?)
}

/// Unpacks a context tar (plain, gzip or zstd) into a new private directory
/// under `temp_parent` (the system temp dir when `None`). Entries that would
/// land outside it (`../x`, symlinked parents) are refused by the extractor;
/// device nodes are skipped and owners are not applied.
pub(crate) fn extract_tar<R: Read>(
    tar: R,
    temp_parent: Option<&Path>,
) -> Result<tempfile::TempDir> {
    let builder = {
        let mut builder = tempfile::Builder::new();
        builder.prefix("buildr-context-");
        builder
    };
    let temp = match temp_parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .map_err(|source| Error::Io {
        action: "create a directory for the context in",
        path: temp_parent.map_or_else(std::env::temp_dir, Path::to_path_buf),
        source,
    })?;
    let opts = ExtractOptions {
        mode: ExtractMode::Apply,
        same_owner: false,
        devices: false,
        ..ExtractOptions::default()
    };
    // The extractor reads plain, gzip and zstd tars; docker also takes
    // bzip2 and xz contexts, so decode here whatever the magic says.
    let tar = decompressed(tar).map_err(|source| Error::ContextTar {
        source: buildr_oci::Error::Read { entries: 0, source },
    })?;
    extract_layer(tar, temp.path(), &opts).map_err(|source| Error::ContextTar { source })?;
    Ok(temp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(bytes: &[u8]) -> StdinInput {
        StdinInput::sniff(Box::new(std::io::Cursor::new(bytes.to_vec()))).unwrap()
    }

    fn tar_of(name: &str, body: &[u8]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, body).unwrap();
        tar.into_inner().unwrap()
    }

    #[test]
    fn stdin_is_a_tar_when_it_starts_like_one() {
        let tar = tar_of("Dockerfile", b"FROM scratch\n");
        let StdinInput::Tar(mut stream) = sniff(&tar) else {
            panic!("a tar read as a Dockerfile");
        };
        let mut back = Vec::new();
        stream.read_to_end(&mut back).unwrap();
        assert_eq!(back, tar, "the sniffed bytes are put back");
        // Compressed: the magic decides, as docker's `IsArchive`.
        assert!(matches!(sniff(&[0x1f, 0x8b, 0x08, 0]), StdinInput::Tar(_)));
        assert!(matches!(
            sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            StdinInput::Tar(_)
        ));
    }

    #[test]
    fn compressed_context_tars_are_decoded() {
        use std::io::Write;
        let tar = tar_of("Dockerfile", b"FROM scratch\n");
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        for (what, data) in [
            ("plain", tar.clone()),
            ("bzip2", bz.finish().unwrap()),
            ("gzip", gz.finish().unwrap()),
            ("zstd", zst),
        ] {
            let StdinInput::Tar(stream) = sniff(&data) else {
                panic!("{what} read as a Dockerfile");
            };
            let dir = extract_tar(stream, None).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                std::fs::read(dir.path().join("Dockerfile")).unwrap(),
                b"FROM scratch\n",
                "{what}"
            );
        }
    }

    #[test]
    fn stdin_is_a_dockerfile_otherwise() {
        let long = format!("FROM scratch\n{}", "# comment\n".repeat(200));
        for text in ["FROM scratch\n", "", long.as_str()] {
            let StdinInput::Dockerfile(bytes) = sniff(text.as_bytes()) else {
                panic!("{text:?} read as a tar");
            };
            assert_eq!(bytes, text.as_bytes());
        }
        // 512 bytes that are not a valid header (bad checksum).
        let mut tar = tar_of("f", b"x");
        tar[148] = b'9';
        assert!(matches!(sniff(&tar[..512]), StdinInput::Dockerfile(_)));
    }
}
