//! `USER` resolution against the image's own /etc/passwd and /etc/group.
//!
//! Never the host's NSS: the files are read inside the sandbox after
//! `pivot_root` (so symlinks cannot lead out of the rootfs), opened
//! non-blocking, checked to be regular files and read up to a size cap.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// A resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// Home directory from passwd, `/` when unknown.
    pub home: String,
}

impl Identity {
    /// The groups the process runs with: the primary group, then the
    /// supplementary ones. containerd (so BuildKit and Docker) always lists
    /// the primary group since CVE-2023-25173, so that dropping it from the
    /// supplementary list cannot grant access a group-denying mode refuses.
    pub fn process_groups(&self) -> Vec<u32> {
        let mut groups = vec![self.gid];
        for gid in &self.groups {
            if !groups.contains(gid) {
                groups.push(*gid);
            }
        }
        groups
    }
}

#[derive(Debug)]
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

#[derive(Debug)]
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            let _gecos = fields.next();
            let home = fields.next().unwrap_or("/");
            Some(PasswdEntry {
                name,
                uid,
                gid,
                home,
            })
        })
        .filter(|entry| !entry.name.is_empty())
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let gid = fields.next()?.parse().ok()?;
            let members = fields
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect();
            Some(GroupEntry { name, gid, members })
        })
        .filter(|entry| !entry.name.is_empty())
        .collect()
}

/// Resolves `spec` (`user`, `user:group`, numeric or by name) against the
/// contents of passwd and group files, following Docker's rules: `uid:gid`
/// with both parts numeric or `root` needs no entry (BuildKit's
/// `ParseUIDGID`, so `USER root:root` works in an image without
/// /etc/passwd); a numeric
/// user absent from passwd gets gid 0; a name must exist; an explicit group
/// replaces the supplementary groups, otherwise they are the groups that list
/// the user as a member.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Identity> {
    let users = parse_passwd(passwd);
    if let Some((uid, gid)) = uid_gid(spec) {
        let home = users.iter().find(|u| u.uid == uid).map_or("/", |u| u.home);
        return Ok(Identity {
            uid,
            gid,
            groups: Vec::new(),
            home: home.to_string(),
        });
    }
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let groups = parse_group(group);

    let found = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|u| u.uid == uid),
        Err(_) => users.iter().find(|u| u.name == user_part),
    };
    let (uid, mut gid, name, home) = match (found, user_part.parse::<u32>()) {
        (Some(entry), _) => (
            entry.uid,
            entry.gid,
            Some(entry.name),
            entry.home.to_string(),
        ),
        (None, Ok(uid)) => (uid, 0, None, "/".to_string()),
        (None, Err(_)) => {
            return Err(Error::User(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            )));
        }
    };

    let mut supplementary = Vec::new();
    match group_part {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => groups
                    .iter()
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| {
                        Error::User(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })?,
            };
        }
        _ => {
            if let Some(name) = name {
                for entry in groups.iter().filter(|e| e.members.contains(&name)) {
                    if !supplementary.contains(&entry.gid) {
                        supplementary.push(entry.gid);
                    }
                }
            }
        }
    }
    Ok(Identity {
        uid,
        gid,
        groups: supplementary,
        home,
    })
}

/// BuildKit's `ParseUIDGID` fast path: `user:group` where both parts are
/// `root` or a decimal id (no sign, fits in 32 bits).
fn uid_gid(spec: &str) -> Option<(u32, u32)> {
    let (user, group) = spec.split_once(':')?;
    Some((id_or_root(user)?, id_or_root(group)?))
}

/// BuildKit's `parseUID`: `root` is 0, otherwise a decimal number.
fn id_or_root(part: &str) -> Option<u32> {
    if part == "root" {
        return Some(0);
    }
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// Largest passwd/group file we read.
const MAX_DB_SIZE: u64 = 4 << 20;

/// Reads a small database file (passwd, group) without blocking on fifos or
/// reading devices; a missing file reads as empty.
pub fn read_db(path: &Path) -> Result<String> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(crate::error::io("open", path)(e)),
    };
    let meta = file.metadata().map_err(crate::error::io("stat", path))?;
    if !meta.is_file() {
        return Err(Error::User(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut buf = Vec::new();
    file.take(MAX_DB_SIZE)
        .read_to_end(&mut buf)
        .map_err(crate::error::io("read", path))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        broken line\n\
        :x:5:5::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,daemon\napp:x:1000:\naudio:x:29: app \nbad\n";

    fn id(uid: u32, gid: u32, groups: &[u32], home: &str) -> Identity {
        Identity {
            uid,
            gid,
            groups: groups.to_vec(),
            home: home.into(),
        }
    }

    #[test]
    fn the_primary_group_is_always_a_process_group() {
        let groups = |spec: &str| resolve(spec, PASSWD, GROUP).unwrap().process_groups();
        assert_eq!(groups("root"), [0]);
        assert_eq!(groups("1234"), [0]);
        assert_eq!(groups("1234:1234"), [1234]);
        assert_eq!(groups("app"), [1000, 10, 29]);
        assert_eq!(id(5, 10, &[10, 29], "/").process_groups(), [10, 29]);
    }

    #[test]
    fn resolves_like_docker() {
        let cases: &[(&str, Identity)] = &[
            ("", id(0, 0, &[], "/root")),
            ("root", id(0, 0, &[], "/root")),
            ("app", id(1000, 1000, &[10, 29], "/home/app")),
            ("1000", id(1000, 1000, &[10, 29], "/home/app")),
            ("app:wheel", id(1000, 10, &[], "/home/app")),
            ("app:77", id(1000, 77, &[], "/home/app")),
            ("4242", id(4242, 0, &[], "/")),
            ("4242:4243", id(4242, 4243, &[], "/")),
            (":10", id(0, 10, &[], "/root")),
            ("daemon", id(1, 1, &[10], "/usr/sbin")),
        ];
        for (spec, want) in cases {
            assert_eq!(
                &resolve(spec, PASSWD, GROUP).unwrap(),
                want,
                "USER {spec:?}"
            );
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = resolve("nobody", PASSWD, GROUP).unwrap_err().to_string();
        assert_eq!(
            err,
            "unable to find user nobody: no matching entries in passwd file"
        );
        let err = resolve("app:nogroup", PASSWD, GROUP)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unable to find group nogroup: no matching entries in group file"
        );
        // Empty databases: numbers still work, names do not.
        assert_eq!(resolve("7:8", "", "").unwrap(), id(7, 8, &[], "/"));
        assert!(resolve("app", "", "").is_err());
    }

    #[test]
    fn root_and_numbers_need_no_entries_when_both_are_given() {
        // BuildKit's ParseUIDGID: both parts `root` or numeric.
        for spec in ["root:root", "0:root", "root:0", "0:0"] {
            assert_eq!(resolve(spec, "", "").unwrap(), id(0, 0, &[], "/"), "{spec}");
        }
        assert_eq!(resolve("root:7", "", "").unwrap(), id(0, 7, &[], "/"));
        // The home still comes from passwd when the uid has an entry; the
        // groups are only the one given.
        assert_eq!(
            resolve("root:root", PASSWD, GROUP).unwrap(),
            id(0, 0, &[], "/root")
        );
        assert_eq!(
            resolve("1000:root", PASSWD, GROUP).unwrap(),
            id(1000, 0, &[], "/home/app")
        );
        // A lone `root`, a name, a signed or too large number: passwd decides.
        let err = resolve("root", "", "").unwrap_err().to_string();
        assert!(err.contains("unable to find user root"), "{err}");
        assert!(resolve("root:wheel", "", "").is_err());
        assert!(resolve("+1:root", "", "").is_err());
        assert!(resolve("root:4294967296", "", "").is_err());
        assert_eq!(uid_gid("root:-1"), None);
        assert_eq!(uid_gid("4294967295:root"), Some((u32::MAX, 0)));
    }

    #[test]
    fn read_db_refuses_non_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_db(&dir.path().join("missing")).unwrap(), "");
        assert!(read_db(dir.path()).is_err());
        assert!(read_db(Path::new("/dev/zero")).is_err());
        std::fs::write(dir.path().join("passwd"), PASSWD).unwrap();
        assert_eq!(read_db(&dir.path().join("passwd")).unwrap(), PASSWD);
    }
}
