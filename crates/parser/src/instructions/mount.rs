//! `RUN --mount=...`: the typed mount, parsed as BuildKit's
//! `commands_runmount.go` does (CSV fields, per-type options, defaults).

use crate::expand::ExpandError;
use crate::suggest::{buildkit_hint, did_you_mean};

/// Cache mount sharing between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// One `--mount=...`, typed by its `type=`.
///
/// Values are as written: words may hold `$VARIABLES`, which the engine
/// expands. BuildKit expands each value before typing it, so when a typed
/// option (`uid=$UID`, `type=$T`) holds a variable, the parser cannot check
/// it: `deferred` is set, that option keeps its default here, and the engine
/// must call [`Mount::parse`] on `spec` with its expander.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountKind,
    /// The flag value as written (`type=cache,target=/root/.cache`).
    pub spec: String,
    /// A typed option held a variable; see the type's docs.
    pub deferred: bool,
}

/// The mount types and the options each one takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A directory from the context, a stage or an image (read-only unless
    /// `rw`).
    Bind {
        target: String,
        source: Option<String>,
        from: Option<String>,
        readonly: bool,
    },
    /// A persistent cache directory shared between builds.
    Cache {
        target: String,
        id: Option<String>,
        sharing: Sharing,
        source: Option<String>,
        from: Option<String>,
        readonly: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// An empty tmpfs, optionally limited in size (bytes).
    Tmpfs { target: String, size: Option<u64> },
    /// A secret as a file (`target`, default `/run/secrets/<id>`) and/or an
    /// environment variable (`env`).
    Secret {
        id: Option<String>,
        target: Option<String>,
        env: Option<String>,
        required: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// The SSH agent socket.
    Ssh {
        id: Option<String>,
        target: Option<String>,
        required: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
}

/// A `--mount` value that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MountError {
    /// Lower-case message naming the offending option.
    pub message: String,
    /// What was expected or a "did you mean".
    pub help: Option<String>,
}

pub(crate) fn bad(message: impl Into<String>) -> MountError {
    MountError {
        message: message.into(),
        help: None,
    }
}

pub(crate) fn bad_help(message: impl Into<String>, help: impl Into<String>) -> MountError {
    MountError {
        message: message.into(),
        help: Some(help.into()),
    }
}

const MOUNT_TYPES: &[&str] = &["bind", "cache", "tmpfs", "secret", "ssh"];
const SHARING: &[&str] = &["shared", "private", "locked"];
const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

impl Mount {
    /// Parse a `--mount` value, expanding each option's value with `expand`
    /// first (the engine passes its variable expander; the parser passes
    /// none and defers options that hold variables).
    pub fn parse(
        spec: &str,
        expand: &mut dyn FnMut(&str) -> std::result::Result<String, ExpandError>,
    ) -> std::result::Result<Mount, MountError> {
        parse_mount(spec, Some(expand))
    }
}

#[derive(Default)]
struct Fields {
    kind: Option<String>,
    from: Option<String>,
    source: Option<String>,
    target: Option<String>,
    readonly: Option<bool>,
    id: Option<String>,
    sharing: Option<Sharing>,
    required: bool,
    required_key: bool,
    size: Option<u64>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    env: Option<String>,
}

type Expander<'e> = &'e mut dyn FnMut(&str) -> std::result::Result<String, ExpandError>;

pub(crate) fn parse_mount(
    spec: &str,
    mut expand: Option<Expander<'_>>,
) -> std::result::Result<Mount, MountError> {
    let mut f = Fields::default();
    let mut deferred = false;
    let fields = split_csv(spec)?;
    // The type decides which options are valid, and BuildKit reads it in
    // order: options before `type=` are checked against `bind`.
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let kind_now = f.kind.clone().unwrap_or_else(|| "bind".to_string());
        let Some(raw) = value else {
            f.set_flag(&key, field, &kind_now)?;
            continue;
        };
        match option_value(&key, raw, &mut expand)? {
            Some(value) => f.set(&key, value, field, &kind_now)?,
            None => deferred = true,
        }
    }
    let kind = finish(f, deferred)?;
    Ok(Mount {
        kind,
        spec: spec.to_string(),
        deferred,
    })
}

/// The value of `key=raw`, expanded with `expand`; without an expander
/// (the parser), `None` when it holds a variable and `key` is a typed
/// option, which the engine checks once it can expand it. `from` never
/// takes a variable.
fn option_value(
    key: &str,
    raw: &str,
    expand: &mut Option<Expander<'_>>,
) -> std::result::Result<Option<String>, MountError> {
    if key == "from"
        && expand.is_none()
        && let Some(i) = raw.find('$')
        && i != raw.len() - 1
    {
        return Err(bad_help(
            "'from' doesn't support variable expansion, define alias stage instead",
            "add `FROM ${VAR} AS alias` and use from=alias",
        ));
    }
    let value = match expand.as_mut() {
        Some(expand) => expand(raw).map_err(|e| bad(format!("failed to expand '{key}': {e}")))?,
        None => raw.to_string(),
    };
    let has_var = expand.is_none() && raw.contains('$');
    let typed = matches!(
        key,
        "type"
            | "readonly"
            | "ro"
            | "readwrite"
            | "rw"
            | "required"
            | "size"
            | "sharing"
            | "mode"
            | "uid"
            | "gid"
    );
    if has_var && typed {
        return Ok(None);
    }
    Ok(Some(value))
}

impl Fields {
    /// A key without a value (`field`): `ro`, `rw`, and `required` for the
    /// mount type so far (`kind_now`).
    fn set_flag(
        &mut self,
        key: &str,
        field: &str,
        kind_now: &str,
    ) -> std::result::Result<(), MountError> {
        match key {
            "readonly" | "ro" => self.readonly = Some(true),
            "readwrite" | "rw" => self.readonly = Some(false),
            "required" => {
                required_allowed(kind_now)?;
                self.required = true;
                self.required_key = true;
            }
            _ => {
                return Err(bad_help(
                    format!("invalid field '{field}' must be a key=value pair"),
                    "expected key=value, e.g. target=/cache",
                ));
            }
        }
        Ok(())
    }

    /// The option `key=value` (from `field`), checked against the mount
    /// type so far (`kind_now`) where the option belongs to some types.
    fn set(
        &mut self,
        key: &str,
        value: String,
        field: &str,
        kind_now: &str,
    ) -> std::result::Result<(), MountError> {
        match key {
            "type" => self.kind = Some(mount_type(&value)?),
            "from" => self.from = Some(value),
            "source" | "src" => self.source = Some(value),
            "target" | "dst" | "destination" => self.target = Some(value),
            "readonly" | "ro" => self.readonly = Some(go_bool(key, &value)?),
            "readwrite" | "rw" => self.readonly = Some(!go_bool(key, &value)?),
            "required" => {
                required_allowed(kind_now)?;
                self.required = go_bool(key, &value)?;
                self.required_key = true;
            }
            "size" => self.size = Some(tmpfs_size(&value, kind_now)?),
            "id" => self.id = Some(value),
            "sharing" => self.sharing = Some(sharing(&value)?),
            "mode" => {
                self.mode = Some(number(
                    &value,
                    8,
                    "mode",
                    "expected an octal mode such as 0700",
                )?);
            }
            "uid" => self.uid = Some(number(&value, 10, "uid", "expected a numeric user id")?),
            "gid" => self.gid = Some(number(&value, 10, "gid", "expected a numeric group id")?),
            "env" => self.env = Some(value),
            _ => {
                let e = format!("unexpected key '{key}' in '{field}'");
                return Err(match did_you_mean(key, MOUNT_KEYS, true) {
                    Some(m) => bad_help(e + &buildkit_hint(&m), format!("did you mean `{m}`?")),
                    None => bad_help(e, format!("valid keys: {}", MOUNT_KEYS.join(", "))),
                });
            }
        }
        Ok(())
    }
}

/// `required` belongs to secret and ssh mounts only.
fn required_allowed(kind_now: &str) -> std::result::Result<(), MountError> {
    if kind_now == "secret" || kind_now == "ssh" {
        return Ok(());
    }
    Err(bad_help(
        format!("unexpected key 'required' for mount type '{kind_now}'"),
        "required applies to secret and ssh mounts; put type= first",
    ))
}

/// A `type=` value, lower-cased: one of [`MOUNT_TYPES`].
fn mount_type(value: &str) -> std::result::Result<String, MountError> {
    let v = value.to_ascii_lowercase();
    if !MOUNT_TYPES.contains(&v.as_str()) {
        let e = format!("unsupported mount type {value:?}");
        return Err(match did_you_mean(value, MOUNT_TYPES, true) {
            Some(m) => bad_help(e + &buildkit_hint(&m), format!("did you mean `{m}`?")),
            None => bad_help(e, "expected bind, cache, tmpfs, secret or ssh"),
        });
    }
    Ok(v)
}

/// A `sharing=` value (any case): shared, private or locked.
fn sharing(value: &str) -> std::result::Result<Sharing, MountError> {
    let v = value.to_ascii_lowercase();
    Ok(match v.as_str() {
        "shared" => Sharing::Shared,
        "private" => Sharing::Private,
        "locked" => Sharing::Locked,
        _ => {
            let e = format!("unsupported sharing value {value:?}");
            return Err(match did_you_mean(value, SHARING, true) {
                Some(m) => bad_help(e + &buildkit_hint(&m), format!("did you mean `{m}`?")),
                None => bad_help(e, "expected shared, private or locked"),
            });
        }
    })
}

/// A `size=` value in bytes; `size` belongs to tmpfs mounts only.
fn tmpfs_size(value: &str, kind_now: &str) -> std::result::Result<u64, MountError> {
    if kind_now != "tmpfs" {
        return Err(bad_help(
            format!("unexpected key 'size' for mount type '{kind_now}'"),
            "size applies to tmpfs mounts; put type= first",
        ));
    }
    ram_in_bytes(value).ok_or_else(|| {
        bad_help(
            format!("invalid value for size: {value}"),
            "expected a size such as 64m or 1g",
        )
    })
}

/// The number `value` in `radix` for the option `name` (`mode`, `uid`,
/// `gid`); `help` says what was expected.
fn number(value: &str, radix: u32, name: &str, help: &str) -> std::result::Result<u32, MountError> {
    parse_uint(value, radix)
        .ok_or_else(|| bad_help(format!("invalid value {value} for {name}"), help))
}

fn finish(f: Fields, deferred: bool) -> std::result::Result<MountKind, MountError> {
    let kind = f.kind.as_deref().unwrap_or("bind");
    let file_info = matches!(kind, "secret" | "ssh" | "cache");
    if !file_info {
        for (name, set) in [
            ("mode", f.mode.is_some()),
            ("uid", f.uid.is_some()),
            ("gid", f.gid.is_some()),
        ] {
            if set {
                return Err(bad_help(
                    format!("{name} not allowed for \"{kind}\" type mounts"),
                    "mode, uid and gid apply to cache, secret and ssh mounts",
                ));
            }
        }
    }
    if f.sharing.is_some() && kind != "cache" {
        return Err(bad_help(
            format!("invalid cache sharing set for {kind} mount"),
            "sharing applies to cache mounts",
        ));
    }
    let target = |what: &str| -> std::result::Result<String, MountError> {
        match &f.target {
            Some(t) if !t.is_empty() => Ok(t.clone()),
            _ if deferred => Ok(String::new()),
            _ => Err(bad_help(
                format!("{what} mount requires a target"),
                "add target=<path in the container>",
            )),
        }
    };
    Ok(match kind {
        "bind" => MountKind::Bind {
            target: target("bind")?,
            source: f.source.clone(),
            from: f.from.clone(),
            readonly: f.readonly.unwrap_or(true),
        },
        "cache" => MountKind::Cache {
            target: target("cache")?,
            id: f.id.clone(),
            sharing: f.sharing.unwrap_or_default(),
            source: f.source.clone(),
            from: f.from.clone(),
            readonly: f.readonly.unwrap_or(false),
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
        },
        "tmpfs" => MountKind::Tmpfs {
            target: target("tmpfs")?,
            size: f.size,
        },
        "secret" => {
            if f.from.is_some() {
                return Err(bad("secret mount should not have a from"));
            }
            if f.source.is_some() && f.id.is_some() {
                return Err(bad("both source and id can't be set"));
            }
            let id = f.id.or(f.source);
            if id.is_none() && f.target.is_none() && !deferred {
                return Err(bad_help(
                    "invalid secret mount. one of source, target required",
                    "add id=<secret id> or target=<path>",
                ));
            }
            MountKind::Secret {
                id,
                target: f.target,
                env: f.env,
                required: f.required,
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
            }
        }
        _ => MountKind::Ssh {
            id: f.id,
            target: f.target,
            required: f.required,
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
        },
    })
}

/// Go's `strconv.ParseBool`.
pub(crate) fn go_bool(key: &str, value: &str) -> std::result::Result<bool, MountError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(bad_help(
            format!("invalid value for {key}: {value}"),
            "expected true or false",
        )),
    }
}

/// Go's `strconv.ParseUint(s, base, 32)`: digits only, no sign.
fn parse_uint(value: &str, radix: u32) -> Option<u32> {
    if value.is_empty() || !value.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(value, radix).ok()
}

/// docker/go-units `RAMInBytes`: a decimal number, optional space, then an
/// optional binary unit `k m g t p` with optional `i` and `b` (`64m`,
/// `1.5GiB`, `512`).
fn ram_in_bytes(value: &str) -> Option<u64> {
    let num_len = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, rest) = value.split_at(num_len);
    // A number is digits with optional `.digits` groups; no leading dot.
    if number.is_empty()
        || number.starts_with('.')
        || number.ends_with('.')
        || number.contains("..")
    {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars();
    let mut shift = 0;
    let mut unit = chars.as_str();
    if let Some(c) = chars.clone().next() {
        let s = match c.to_ascii_lowercase() {
            'k' => Some(10),
            'm' => Some(20),
            'g' => Some(30),
            't' => Some(40),
            'p' => Some(50),
            _ => None,
        };
        if let Some(s) = s {
            shift = s;
            chars.next();
            unit = chars.as_str();
        }
    }
    let unit = unit.strip_prefix(['i', 'I']).unwrap_or(unit);
    let unit = unit.strip_prefix(['b', 'B']).unwrap_or(unit);
    if !unit.is_empty() {
        return None;
    }
    // go-units parses the number as a float; multiple dots are rejected.
    let size: f64 = number.parse().ok()?;
    let bytes = size * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

/// Split a mount value into its comma-separated fields, CSV style: a field
/// may be double-quoted (`"source=a,b"`), `""` inside quotes is a quote.
pub(crate) fn split_csv(spec: &str) -> std::result::Result<Vec<String>, MountError> {
    let mut fields = Vec::new();
    let mut chars = spec.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(bad_help(
                            format!("failed to parse csv mounts: unterminated quote in {spec:?}"),
                            "close the quoted field with \"",
                        ));
                    }
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(c) => {
                    return Err(bad(format!(
                        "failed to parse csv mounts: unexpected {c:?} after quoted field in {spec:?}"
                    )));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(spec: &str) -> std::result::Result<Mount, MountError> {
        parse_mount(spec, None)
    }

    #[test]
    fn mounts() {
        let m =
            literal("type=cache,target=/root/.cache,sharing=locked,id=x,mode=0700,uid=1").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Cache {
                target: "/root/.cache".into(),
                id: Some("x".into()),
                sharing: Sharing::Locked,
                source: None,
                from: None,
                readonly: false,
                mode: Some(0o700),
                uid: Some(1),
                gid: None,
            }
        );
        assert!(matches!(
            literal("target=/src,rw").unwrap().kind,
            MountKind::Bind {
                readonly: false,
                ..
            }
        ));
        assert!(matches!(
            literal("type=tmpfs,dst=/t,size=1.5k").unwrap().kind,
            MountKind::Tmpfs {
                size: Some(1536),
                ..
            }
        ));
        assert!(matches!(
            literal("type=secret,id=tok,env=TOKEN,required")
                .unwrap()
                .kind,
            MountKind::Secret { required: true, .. }
        ));
        let d = literal("type=cache,target=/x,uid=$UID").unwrap();
        assert!(d.deferred);
        let mut expand = |s: &str| Ok::<_, ExpandError>(s.replace("$UID", "1000"));
        let m = Mount::parse(&d.spec, &mut expand).unwrap();
        assert!(matches!(
            m.kind,
            MountKind::Cache {
                uid: Some(1000),
                ..
            }
        ));
        assert!(!m.deferred);
        assert_eq!(
            literal("\"target=/a,b\",ro").unwrap().kind,
            MountKind::Bind {
                target: "/a,b".into(),
                source: None,
                from: None,
                readonly: true,
            }
        );
    }

    #[test]
    fn bad_mounts() {
        for (spec, want) in [
            ("type=cahce,target=/x", "unsupported mount type \"cahce\""),
            ("type=bind", "bind mount requires a target"),
            (
                "type=bind,target=/x,uid=1",
                "uid not allowed for \"bind\" type mounts",
            ),
            (
                "type=bind,target=/x,sharing=locked",
                "invalid cache sharing set for bind mount",
            ),
            (
                "type=cache,target=/x,sharing=lock",
                "unsupported sharing value \"lock\"",
            ),
            ("type=cache,target=/x,mode=9", "invalid value 9 for mode"),
            ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
            ("type=cache,target=/x,uid=+1", "invalid value +1 for uid"),
            (
                "type=cache,target=/x,size=1m",
                "unexpected key 'size' for mount type 'cache'",
            ),
            (
                "type=tmpfs,target=/x,size=lots",
                "invalid value for size: lots",
            ),
            (
                "type=bind,target=/x,required",
                "unexpected key 'required' for mount type 'bind'",
            ),
            (
                "type=bind,target=/x,ro=maybe",
                "invalid value for ro: maybe",
            ),
            (
                "type=bind,target=/x,tagret=/y",
                "unexpected key 'tagret' in 'tagret=/y'",
            ),
            (
                "type=bind,target",
                "invalid field 'target' must be a key=value pair",
            ),
            (
                "type=secret",
                "invalid secret mount. one of source, target required",
            ),
            (
                "type=secret,id=a,source=b",
                "both source and id can't be set",
            ),
            (
                "type=secret,id=a,from=b",
                "secret mount should not have a from",
            ),
            (
                "type=bind,target=/x,from=$STAGE",
                "'from' doesn't support variable expansion",
            ),
            ("\"type=bind", "failed to parse csv mounts"),
        ] {
            let err = literal(spec).expect_err(spec);
            assert!(err.message.starts_with(want), "{spec}: {}", err.message);
        }
        assert_eq!(
            literal("type=bind,target=/x,tagret=/y")
                .unwrap_err()
                .help
                .as_deref(),
            Some("did you mean `target`?")
        );
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("512", Some(512)),
            ("64m", Some(64 << 20)),
            ("1g", Some(1 << 30)),
            ("1GiB", Some(1 << 30)),
            ("2 kb", Some(2048)),
            ("1.5k", Some(1536)),
            ("", None),
            ("k", None),
            ("1x", None),
            ("-1", None),
            ("1..5k", None),
        ] {
            assert_eq!(ram_in_bytes(text), want, "{text:?}");
        }
    }
}
