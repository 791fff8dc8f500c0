//! `--cache-to` and `--cache-from` as BuildKit and buildx spell them, so a
//! CI config carries over.

use std::path::PathBuf;

use super::super::LayerCompression;
use crate::error::{Error, Result};

/// Which results an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Only the steps whose results the final image is made of: its stage's
    /// own chain (BuildKit's default).
    #[default]
    Min,
    /// Every step of every stage the build solved.
    Max,
}

/// Where an export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheDestination {
    /// `type=registry,ref=REG/REPO[:TAG]`: one artifact manifest per entry,
    /// tagged `TAG-<key>`, in that repository.
    Registry(String),
    /// `type=local,dest=DIR`: the same entries in an OCI image layout.
    Local(PathBuf),
    /// `type=inline`: the final stage's steps described in the image's
    /// config (by how many of its layers each is), so `--cache-from IMAGE`
    /// finds them once the image is pushed. Always `mode=min`.
    Inline,
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheExport {
    pub destination: CacheDestination,
    pub mode: CacheMode,
    /// How the layers the entries name are compressed.
    pub compression: LayerCompression,
    /// Also export the contents of `RUN --mount=type=cache` directories.
    pub mounts: bool,
    /// A failed export is a warning (`true`, the default) or fails the build.
    pub ignore_error: bool,
}

/// One `--cache-from`, tried in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheImport {
    /// `type=registry,ref=...`, or a plain reference (the same): the
    /// entries of a registry cache there, and the inline cache of the image
    /// the ref names.
    Registry(String),
    /// `type=local,src=DIR`.
    Local(PathBuf),
}

fn fields(flag: &str, spec: &str) -> Result<Vec<(String, String)>> {
    spec.split(',')
        .map(|field| {
            field
                .split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| Error::BuildOption {
                    message: format!("{flag} {spec}: {field:?} is not key=value"),
                })
        })
        .collect()
}

fn boolean(flag: &str, spec: &str, key: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::BuildOption {
            message: format!("{flag} {spec}: {key}={value:?}: expected true or false"),
        }),
    }
}

impl CacheExport {
    /// Parses a `--cache-to` value: `type=registry,ref=...[,mode=min|max]
    /// [,compression=...][,compression-level=N][,mounts=true]
    /// [,ignore-error=true|false]`, `type=local,dest=DIR[,...]` or
    /// `type=inline`. Keys BuildKit has that change nothing here
    /// (`oci-mediatypes`, `image-manifest`: entries always are OCI artifact
    /// manifests) are accepted; unknown keys are errors.
    pub fn parse(spec: &str) -> Result<CacheExport> {
        const FLAG: &str = "--cache-to";
        let bad = |why: String| Error::BuildOption {
            message: format!("{FLAG} {spec}: {why}"),
        };
        let mut kind = None;
        let mut reference = None;
        let mut dest = None;
        let mut mode = CacheMode::Min;
        let mut mounts = false;
        let mut ignore_error = true;
        let mut compression_keys = Vec::new();
        for (key, value) in fields(FLAG, spec)? {
            match key.as_str() {
                "type" => kind = Some(value),
                "ref" => reference = Some(value),
                "dest" => dest = Some(PathBuf::from(value)),
                "mode" => {
                    mode = match value.as_str() {
                        "min" => CacheMode::Min,
                        "max" => CacheMode::Max,
                        _ => return Err(bad(format!("mode={value:?}: expected min or max"))),
                    }
                }
                "mounts" => mounts = boolean(FLAG, spec, &key, &value)?,
                "ignore-error" => ignore_error = boolean(FLAG, spec, &key, &value)?,
                "compression" | "compression-level" => {
                    compression_keys.push(format!("{key}={value}"));
                }
                "oci-mediatypes" | "image-manifest" | "force-compression" => {
                    boolean(FLAG, spec, &key, &value)?;
                }
                _ => return Err(bad(format!("unknown key {key:?}"))),
            }
        }
        let compression = LayerCompression::from_output_spec(&compression_keys.join(","))
            .map_err(|e| bad(e.to_string()))?;
        let destination = match kind.as_deref() {
            Some("registry") => CacheDestination::Registry(
                reference.ok_or_else(|| bad("type=registry needs ref=".into()))?,
            ),
            Some("local") => {
                CacheDestination::Local(dest.ok_or_else(|| bad("type=local needs dest=".into()))?)
            }
            Some("inline") if mode == CacheMode::Max => {
                return Err(bad(
                    "type=inline only describes the final image (mode=min): use type=registry for mode=max".into(),
                ));
            }
            Some("inline") => CacheDestination::Inline,
            Some(other) => {
                return Err(bad(format!(
                    "type={other:?}: expected registry, local or inline"
                )));
            }
            None => return Err(bad("type= is required".into())),
        };
        if let CacheDestination::Registry(r) = &destination {
            super::registry::cache_repository(r).map_err(|e| bad(e.to_string()))?;
        }
        Ok(CacheExport {
            destination,
            mode,
            compression,
            mounts,
            ignore_error,
        })
    }
}

impl CacheImport {
    /// Parses a `--cache-from` value: `type=registry,ref=...`,
    /// `type=local,src=DIR`, or a plain image reference.
    pub fn parse(spec: &str) -> Result<CacheImport> {
        const FLAG: &str = "--cache-from";
        let bad = |why: String| Error::BuildOption {
            message: format!("{FLAG} {spec}: {why}"),
        };
        if !spec.contains('=') {
            super::registry::cache_repository(spec).map_err(|e| bad(e.to_string()))?;
            return Ok(CacheImport::Registry(spec.to_owned()));
        }
        let mut kind = None;
        let mut reference = None;
        let mut src = None;
        for (key, value) in fields(FLAG, spec)? {
            match key.as_str() {
                "type" => kind = Some(value),
                "ref" => reference = Some(value),
                "src" => src = Some(PathBuf::from(value)),
                "digest" | "tag" => {}
                _ => return Err(bad(format!("unknown key {key:?}"))),
            }
        }
        match kind.as_deref() {
            Some("registry") => {
                let r = reference.ok_or_else(|| bad("type=registry needs ref=".into()))?;
                super::registry::cache_repository(&r).map_err(|e| bad(e.to_string()))?;
                Ok(CacheImport::Registry(r))
            }
            Some("local") => Ok(CacheImport::Local(
                src.ok_or_else(|| bad("type=local needs src=".into()))?,
            )),
            Some(other) => Err(bad(format!("type={other:?}: expected registry or local"))),
            None => Err(bad("type= is required".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_specs_parse() {
        let e = CacheExport::parse("type=registry,ref=127.0.0.1:5000/c:main,mode=max,mounts=true")
            .unwrap();
        assert_eq!(
            e.destination,
            CacheDestination::Registry("127.0.0.1:5000/c:main".into())
        );
        assert_eq!(e.mode, CacheMode::Max);
        assert!(e.mounts && e.ignore_error);
        assert_eq!(
            CacheExport::parse("type=inline").unwrap().destination,
            CacheDestination::Inline
        );
        let e = CacheExport::parse("type=local,dest=/tmp/c,ignore-error=false,compression=zstd")
            .unwrap();
        assert_eq!(e.destination, CacheDestination::Local("/tmp/c".into()));
        assert_eq!(e.mode, CacheMode::Min);
        assert!(!e.ignore_error);
        assert_eq!(e.compression.compression, buildr_oci::Compression::Zstd);
        assert_eq!(
            CacheImport::parse("r.example/app:cache").unwrap(),
            CacheImport::Registry("r.example/app:cache".into())
        );
        assert_eq!(
            CacheImport::parse("type=local,src=dir").unwrap(),
            CacheImport::Local("dir".into())
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, phrase) in [
            ("type=registry", "needs ref="),
            ("type=registry,ref=r/a,mode=all", "expected min or max"),
            ("type=s3,ref=x", "expected registry, local or inline"),
            ("type=inline,mode=max", "only describes the final image"),
            ("type=local", "needs dest="),
            ("ref=r/a", "type= is required"),
            ("type=registry,ref=r/a,bogus=1", "unknown key"),
            ("type=registry,ref=r/a,mounts=yes", "expected true or false"),
            ("type=registry,ref=UPPER/a", "--cache-to"),
        ] {
            let err = CacheExport::parse(spec).unwrap_err().to_string();
            assert!(err.contains(phrase), "{spec}: {err}");
        }
        let err = CacheImport::parse("type=local").unwrap_err().to_string();
        assert!(err.contains("needs src="), "{err}");
    }
}
