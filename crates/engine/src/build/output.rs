//! What a build writes: `-o` outputs (image, OCI or docker archive, local
//! tree, tar) and layer compression, and writing them.

use super::*;

/// Where the result goes besides the store (`-o type=...,dest=...`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Output {
    /// Only the store (tags, if any): `type=image`.
    #[default]
    Image,
    /// An OCI image layout tar at the path (needs a tag to name it).
    Oci(PathBuf),
    /// A docker-archive tar at the path (needs a tag to name it).
    Docker(PathBuf),
    /// The image's file tree, unpacked into a directory.
    Local(PathBuf),
    /// The image's file tree as one tar file.
    Tar(PathBuf),
}

/// The gzip level of the layers a build makes unless `-o
/// ...,compression-level=N` says otherwise. Level 1 rather than zlib's 6:
/// BuildKit's docker exporter stores layers uncompressed and dockerd
/// compresses only on push, so every second spent deflating at commit is a
/// second BuildKit does not spend. On text (the bench's source files) level
/// 1 deflates about 4 times faster for about 5 % more bytes (zlib, 64 MiB of
/// decimal text: 73 vs 18 MB/s, ratio 0.281 vs 0.268); incompressible data
/// is stored either way (see `buildr_oci::compress`).
pub const DEFAULT_GZIP_LEVEL: i32 = 1;

/// How the layers a build makes are compressed: BuildKit's
/// `compression=gzip|zstd|uncompressed` and `compression-level=N` keys of
/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerCompression {
    /// The algorithm.
    pub compression: buildr_oci::Compression,
    /// Its level; `None` is the algorithm's default (zstd 3).
    pub level: Option<i32>,
}

impl Default for LayerCompression {
    fn default() -> Self {
        LayerCompression {
            compression: buildr_oci::Compression::Gzip,
            level: Some(DEFAULT_GZIP_LEVEL),
        }
    }
}

impl LayerCompression {
    /// As the compressor takes it (every core).
    pub(crate) fn options(&self) -> buildr_oci::CompressOptions {
        buildr_oci::CompressOptions {
            compression: self.compression,
            level: self.level,
            ..buildr_oci::CompressOptions::default()
        }
    }

    /// Reads the `compression=` and `compression-level=` keys of a `-o`
    /// value (the default for the rest); [`Output::parse`] skips them.
    pub fn from_output_spec(spec: &str) -> Result<LayerCompression> {
        let bad = |why: String| Error::BuildOption {
            message: format!("-o {spec}: {why}"),
        };
        let mut out = LayerCompression::default();
        let mut level = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("compression", value)) => {
                    out.compression = match value {
                        "gzip" => buildr_oci::Compression::Gzip,
                        "zstd" => buildr_oci::Compression::Zstd,
                        "uncompressed" => buildr_oci::Compression::None,
                        other => {
                            return Err(bad(format!(
                                "compression {other:?}: expected gzip, zstd or uncompressed"
                            )));
                        }
                    };
                }
                Some(("compression-level", value)) => {
                    level = Some(value.parse::<i32>().map_err(|_| {
                        bad(format!("compression-level {value:?} is not a number"))
                    })?);
                }
                _ => {}
            }
        }
        out.level = match (out.compression, level) {
            (buildr_oci::Compression::Gzip, Some(l)) if !(0..=9).contains(&l) => {
                return Err(bad(format!("gzip compression-level {l} is not in 0..=9")));
            }
            (buildr_oci::Compression::Zstd, Some(l)) if !(1..=22).contains(&l) => {
                return Err(bad(format!("zstd compression-level {l} is not in 1..=22")));
            }
            (buildr_oci::Compression::Gzip, None) => Some(DEFAULT_GZIP_LEVEL),
            (_, level) => level,
        };
        Ok(out)
    }
}

impl Output {
    /// Parses docker's `-o` value: `type=oci,dest=out.tar`, or a bare
    /// directory (`type=local`). The layer compression keys are read by
    /// [`LayerCompression::from_output_spec`], `rewrite-timestamp` by
    /// [`RewriteTimestamp::from_output_spec`].
    pub fn parse(spec: &str) -> Result<Output> {
        let bad = |why: &str| Error::BuildOption {
            message: format!("-o {spec}: {why}"),
        };
        if !spec.contains('=') {
            return Ok(Output::Local(PathBuf::from(spec)));
        }
        let mut kind = None;
        let mut dest = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("type", value)) => kind = Some(value.to_owned()),
                Some(("dest", value)) => dest = Some(PathBuf::from(value)),
                Some(("compression" | "compression-level" | "rewrite-timestamp", _)) => {}
                _ => return Err(bad("expected type=...,dest=...")),
            }
        }
        let need_dest = || dest.clone().ok_or_else(|| bad("dest= is required"));
        match kind.as_deref() {
            Some("image") | None if dest.is_none() => Ok(Output::Image),
            Some("oci") => Ok(Output::Oci(need_dest()?)),
            Some("docker") => Ok(Output::Docker(need_dest()?)),
            Some("local") => Ok(Output::Local(need_dest()?)),
            Some("tar") => Ok(Output::Tar(need_dest()?)),
            _ => Err(bad("type must be image, oci, docker, local or tar")),
        }
    }
}

impl Builder {
    pub(super) fn write_output(
        &self,
        store: &Store,
        images: &Images,
        state: &crate::ops::StateData,
        tags: &[String],
        manifest: &Digest,
    ) -> Result<()> {
        // Named by every `-t`, or by none (BuildKit's exporters accept that).
        let archive = |path: &Path, format| {
            if tags.is_empty() {
                return images.save_manifest_to_file(
                    path,
                    format,
                    &self.layer_compression,
                    manifest,
                );
            }
            let options = crate::image::SaveOptions {
                format,
                images: tags.to_vec(),
                layer_compression: self.layer_compression,
            };
            images.save_to_file(path, &options)
        };
        match &self.output {
            Output::Image => Ok(()),
            Output::Oci(path) => archive(path, crate::image::ArchiveFormat::Oci),
            Output::Docker(path) => archive(path, crate::image::ArchiveFormat::Docker),
            Output::Local(dir) => unpack_rootfs(store, state, dir),
            Output::Tar(path) => {
                let tree =
                    tempfile::tempdir_in(store.root().join("tmp")).map_err(|source| Error::Io {
                        action: "create a temp dir in",
                        path: store.root().join("tmp"),
                        source,
                    })?;
                let empty = tree.path().join("empty");
                let rootfs = tree.path().join("rootfs");
                for dir in [&empty, &rootfs] {
                    std::fs::create_dir(dir).map_err(|source| Error::Io {
                        action: "create",
                        path: dir.clone(),
                        source,
                    })?;
                }
                unpack_rootfs(store, state, &rootfs)?;
                let diff = buildr_oci::Diff::compute(buildr_oci::DiffSource::Trees {
                    lower: &empty,
                    upper: &rootfs,
                })?;
                buildr_fs::atomic::AtomicWrite::new().with(path, |file| {
                    diff.write_tar(std::io::BufWriter::new(file), None)?;
                    Ok(())
                })
            }
        }
    }
}

/// Applies the state's layers, bottom first, onto `dir` (created).
fn unpack_rootfs(store: &Store, state: &crate::ops::StateData, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let opts = buildr_oci::ExtractOptions::default();
    for layer in &state.layers {
        crate::image::layer_bytes::unpack_layer(
            store,
            &layer.descriptor(),
            Some(&layer.diff_id),
            dir,
            &opts,
        )?;
    }
    Ok(())
}

/// `secs` since the epoch as RFC 3339 UTC (`2024-01-02T03:04:05Z`).
pub(super) fn rfc3339(secs: i64) -> String {
    crate::image::time::format_rfc3339(secs, 0)
}

/// The layer options of a build with this compression and
/// `SOURCE_DATE_EPOCH`.
pub(super) fn layer_options(
    compression: LayerCompression,
    source_date_epoch: Option<i64>,
) -> LayerOptions {
    LayerOptions {
        source_date_epoch,
        compress: compression.options(),
    }
}
