//! Service `volumes:` entries, short (`[SOURCE:]TARGET[:MODE]`) and long syntax.

use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::fields::{Field, check_keys};
use crate::model::{BindOptions, Mount, MountKind, TmpfsOptions, VolumeOptions};
use crate::yaml::Value;

/// Parses one mount; relative bind sources resolve against `base`.
pub(crate) fn parse(
    field: &Field<'_>,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Mount, Error> {
    match &field.node.value {
        Value::Str { text, .. } => {
            short(text, base).map_err(|why| field.err(format!("invalid volume {text:?}: {why}")))
        }
        Value::Map(_) => long(field, base, warnings),
        _ => Err(field.err(format!("expected a volume, found {}", field.node.kind()))),
    }
}

/// The host path a bind source names: `~` is `$HOME`, relative joins `base`.
pub(crate) fn host_path(source: &str, base: &Path) -> PathBuf {
    let path = match source.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"));
            home.join(rest.trim_start_matches('/'))
        }
        _ => base.join(source),
    };
    clean(&path)
}

/// Lexical clean: drops `.`, folds `..` (never above `/`).
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn is_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

fn short(text: &str, base: &Path) -> Result<Mount, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => return Err("too many colons".to_owned()),
    };
    if target.is_empty() || !target.starts_with('/') {
        return Err(format!("the target {target:?} is not an absolute path"));
    }
    let mut mount = Mount {
        kind: MountKind::Volume,
        source: None,
        target: target.to_owned(),
        read_only: false,
        bind: None,
        volume: Some(VolumeOptions::default()),
        tmpfs: None,
    };
    match source {
        Some("") => return Err("empty source".to_owned()),
        Some(source) if is_path(source) => {
            mount.kind = MountKind::Bind;
            mount.source = Some(host_path(source, base).display().to_string());
            mount.volume = None;
            mount.bind = Some(BindOptions {
                create_host_path: true,
                ..BindOptions::default()
            });
        }
        Some(name) => mount.source = Some(name.to_owned()),
        None => {}
    }
    for option in mode.into_iter().flat_map(|m| m.split(',')) {
        match (option, mount.bind.as_mut()) {
            ("ro", _) => mount.read_only = true,
            ("rw" | "cached" | "delegated" | "consistent", _) => {}
            ("z" | "Z", Some(bind)) => bind.selinux = Some(option.to_owned()),
            ("shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate", Some(bind)) => {
                bind.propagation = Some(option.to_owned());
            }
            ("nocopy", None) => {
                if let Some(volume) = mount.volume.as_mut() {
                    volume.nocopy = true;
                }
            }
            _ => return Err(format!("invalid mode {option:?}")),
        }
    }
    Ok(mount)
}

fn long(field: &Field<'_>, base: &Path, warnings: &mut Vec<String>) -> Result<Mount, Error> {
    check_keys(
        field,
        &[
            "type",
            "source",
            "target",
            "read_only",
            "bind",
            "volume",
            "tmpfs",
            "consistency",
        ],
        &[],
        warnings,
    )?;
    let kind = match field.node.get("type") {
        None => return Err(field.err("a volume needs a type")),
        Some(node) => {
            let path = format!("{}.type", field.path);
            let sub = Field::new(node, &path);
            match sub.str()?.as_str() {
                "volume" => MountKind::Volume,
                "bind" => MountKind::Bind,
                "tmpfs" => MountKind::Tmpfs,
                other => return Err(sub.err(format!("unsupported volume type {other:?}"))),
            }
        }
    };
    let mut mount = Mount {
        kind,
        source: None,
        target: String::new(),
        read_only: false,
        bind: None,
        volume: None,
        tmpfs: None,
    };
    for (key, value) in field.map()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        match key.name.as_str() {
            "source" => mount.source = sub.opt_str()?,
            "target" => mount.target = sub.str()?,
            "read_only" => mount.read_only = sub.bool()?,
            "bind" => mount.bind = Some(bind_options(&sub, warnings)?),
            "volume" => mount.volume = Some(volume_options(&sub, warnings)?),
            "tmpfs" => mount.tmpfs = Some(tmpfs_options(&sub, warnings)?),
            _ => {}
        }
    }
    if !mount.target.starts_with('/') {
        return Err(field.err(format!(
            "the target {:?} is not an absolute path",
            mount.target
        )));
    }
    if kind == MountKind::Bind {
        let source = mount
            .source
            .as_deref()
            .ok_or_else(|| field.err("a bind mount needs a source"))?;
        mount.source = Some(host_path(source, base).display().to_string());
    }
    Ok(mount)
}

fn bind_options(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<BindOptions, Error> {
    check_keys(
        field,
        &["propagation", "create_host_path", "selinux"],
        &[],
        warnings,
    )?;
    let mut out = BindOptions::default();
    for (key, value) in field.map_or_null()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        match key.name.as_str() {
            "propagation" => out.propagation = sub.opt_str()?,
            "create_host_path" => out.create_host_path = sub.bool()?,
            "selinux" => out.selinux = sub.opt_str()?,
            _ => {}
        }
    }
    Ok(out)
}

fn volume_options(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<VolumeOptions, Error> {
    check_keys(field, &["nocopy", "subpath"], &[], warnings)?;
    let mut out = VolumeOptions::default();
    for (key, value) in field.map_or_null()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        match key.name.as_str() {
            "nocopy" => out.nocopy = sub.bool()?,
            "subpath" => out.subpath = sub.opt_str()?,
            _ => {}
        }
    }
    Ok(out)
}

fn tmpfs_options(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<TmpfsOptions, Error> {
    check_keys(field, &["size", "mode"], &[], warnings)?;
    let mut out = TmpfsOptions::default();
    for (key, value) in field.map_or_null()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        match key.name.as_str() {
            "size" => out.size = Some(crate::fields::bytes(&sub)?),
            "mode" => {
                let text = sub.str()?;
                let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
                    .map_err(|_| sub.err(format!("invalid mode {text:?}")))?;
                out.mode = Some(mode);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The key a mount merges by across files: its target.
pub(crate) fn target_of(field: &Field<'_>) -> Option<String> {
    match &field.node.value {
        Value::Str { text, .. } => {
            let parts: Vec<&str> = text.split(':').collect();
            parts
                .get(if parts.len() == 1 { 0 } else { 1 })
                .map(|t| (*t).to_owned())
        }
        Value::Map(_) => field
            .node
            .get("target")
            .and_then(|t| Field::new(t, "").str().ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_syntax_forms() {
        let base = Path::new("/proj");
        let m = short("data:/var/lib/db", base).unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref()),
            (MountKind::Volume, Some("data"))
        );
        let m = short("./src:/app:ro,z", base).unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref(), m.read_only),
            (MountKind::Bind, Some("/proj/src"), true)
        );
        assert_eq!(m.bind.unwrap().selinux.as_deref(), Some("z"));
        let m = short("/cache", base).unwrap();
        assert_eq!((m.kind, m.source), (MountKind::Volume, None));
        let m = short("../x/./y:/y", base).unwrap();
        assert_eq!(m.source.as_deref(), Some("/x/y"));
        for bad in ["relative", "a:b", "a:/b:bogus", "a:/b:c:d", ":/x"] {
            assert!(short(bad, base).is_err(), "{bad}");
        }
    }
}
