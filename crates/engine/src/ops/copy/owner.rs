//! `COPY --chown`: a user and group resolved in the target stage, as
//! BuildKit does.

use super::*;

/// A `--chown` name the target stage does not know (BuildKit's words).
#[derive(Debug, thiserror::Error)]
pub(super) enum OwnerError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    User(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    Group(String),
}

/// `--chown` resolved in the target stage's /etc/passwd and /etc/group.
pub(super) fn resolve_owner(
    target: &Merged,
    spec: &str,
) -> std::result::Result<(u32, u32), OwnerError> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = target.read_small("etc/passwd", 4 << 20).unwrap_or_default();
    let groups = target.read_small("etc/group", 4 << 20).unwrap_or_default();
    let lookup = |db: &str, name: &str, field_idx: usize| -> Option<(u32, u32)> {
        db.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() != Some(&name) {
                return None;
            }
            let id = fields.get(field_idx)?.parse().ok()?;
            let gid = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            Some((id, gid))
        })
    };
    // As BuildKit's `parseUID`: `root` is 0 without a lookup (so it works
    // with `--link`, where there is no /etc/passwd to read).
    let numeric = |name: &str| match name {
        "root" => Some(0),
        name => name.parse::<u32>().ok(),
    };
    let (uid, primary) = match numeric(user) {
        Some(uid) => (uid, uid),
        None => lookup(&passwd, user, 2).ok_or_else(|| OwnerError::User(user.to_owned()))?,
    };
    let gid = match group {
        None => primary,
        Some(group) => match numeric(group) {
            Some(gid) => gid,
            None => lookup(&groups, group, 2)
                .map(|(gid, _)| gid)
                .ok_or_else(|| OwnerError::Group(group.to_owned()))?,
        },
    };
    Ok((uid, gid))
}
