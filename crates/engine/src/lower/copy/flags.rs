//! `--chmod` and `--checksum` of `COPY`/`ADD`, checked with BuildKit's
//! messages (`dockerfile2llb`: 0.13's for `--checksum`, the newer ones
//! for `--chmod`, which takes chmod's symbolic modes as newer BuildKit
//! does; 0.13 silently ignores them).

use buildr_cache::Digest;

use crate::ops::copy::ChmodSpec;
use crate::ops::copy::chmod::{Class, Classes, CopyHow, Step};

/// Set-user-id, set-group-id and permission bits: what `a` and a
/// clause without a class name (umask 0, as BuildKit) stand for.
const STANDARD: u32 = 0o6777;
const STICKY: u32 = 0o1000;
const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o0007;

/// A `--chmod` or `--checksum` value refused, in BuildKit's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FlagError {
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    ChmodOctal(String),
    #[error("invalid syntax")]
    ChmodSyntax,
    #[error("checksum can't be specified for multiple sources")]
    ChecksumSources,
    #[error("checksum can't be specified for non-HTTP sources")]
    ChecksumNotUrl,
    #[error("--checksum={0}: expected sha256:<64 hex digits>")]
    ChecksumForm(String),
}

/// A `--chmod` mode: octal (at most 07777) or chmod's symbolic clauses.
/// A mode starting with a digit is octal (BuildKit's "invalid chmod
/// parameter" otherwise); any other that is not symbolic is BuildKit's
/// "invalid syntax" (Go's `strconv.ErrSyntax`, from its mode parser).
pub(super) fn chmod(mode: &str) -> Result<ChmodSpec, FlagError> {
    if mode.is_empty() || mode.starts_with(|c: char| c.is_ascii_digit()) {
        // Go's `strconv.ParseUint(mode, 8, 32)`: octal digits only, no sign.
        return mode
            .bytes()
            .all(|b| (b'0'..=b'7').contains(&b))
            .then(|| u32::from_str_radix(mode, 8).ok())
            .flatten()
            .filter(|bits| *bits <= 0o7777)
            .map(ChmodSpec::Octal)
            .ok_or_else(|| FlagError::ChmodOctal(mode.to_owned()));
    }
    symbolic(mode.as_bytes())
        .map(|steps| ChmodSpec::Symbolic {
            text: mode.to_owned(),
            steps,
        })
        .ok_or(FlagError::ChmodSyntax)
}

/// Comma-separated clauses `[ugoa]*([-+=]([rwxXst]*|[ugo]))+`, as BSD's
/// `setmode` (which BuildKit's mode parser follows) reads them, with
/// its quirks: `s` and `t` count only with a class other than `o` (or
/// none), `t` narrows a clause without a class name to the sticky bit.
fn symbolic(mut s: &[u8]) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    loop {
        let mut who = 0;
        loop {
            match s.first()? {
                b'a' => who |= STANDARD,
                b'u' => who |= USER,
                b'g' => who |= GROUP,
                b'o' => who |= OTHER,
                _ => break,
            }
            s = &s[1..];
        }
        // One or more operators, each with its permissions.
        loop {
            let (&op, rest) = s.split_first()?;
            s = rest;
            if !matches!(op, b'+' | b'-' | b'=') {
                return None;
            }
            who &= !STICKY;
            let (mut perm, mut perm_x, mut assigned) = (0, 0, false);
            loop {
                match s.first().copied() {
                    Some(b'r') => perm |= 0o444,
                    Some(b'w') => perm |= 0o222,
                    Some(b'x') => perm |= 0o111,
                    Some(b'X') if op == b'-' => perm |= 0o111,
                    Some(b'X') => perm_x = 0o111,
                    Some(b's') if who == 0 || who & !OTHER != 0 => perm |= 0o6000,
                    Some(b't') if who == 0 || who & !OTHER != 0 => {
                        who |= STICKY;
                        perm |= STICKY;
                    }
                    Some(b's' | b't') => {}
                    Some(class @ (b'u' | b'g' | b'o')) => {
                        if perm != 0 {
                            push(&mut steps, op, who, perm);
                            perm = 0;
                        }
                        assigned |= op == b'=';
                        if perm_x != 0 {
                            steps.push(Step::SetIfExec(bits(who, perm_x)));
                            perm_x = 0;
                        }
                        steps.push(copy_step(op, who, class));
                    }
                    _ => {
                        if perm != 0 || (op == b'=' && !assigned) {
                            push(&mut steps, op, who, perm);
                        }
                        if perm_x != 0 {
                            steps.push(Step::SetIfExec(bits(who, perm_x)));
                        }
                        break;
                    }
                }
                s = &s[1..];
            }
            match s.first() {
                None => return Some(steps),
                Some(b',') => {
                    s = &s[1..];
                    break;
                }
                Some(_) => {}
            }
        }
    }
}

/// The bits of `perm` a clause for `who` changes (all of them without a
/// class name, umask 0).
fn bits(who: u32, perm: u32) -> u32 {
    if who == 0 { perm } else { who & perm }
}

/// The steps of `+perm`, `-perm` or `=perm` for `who`.
fn push(steps: &mut Vec<Step>, op: u8, who: u32, perm: u32) {
    match op {
        b'+' => steps.push(Step::Set(bits(who, perm))),
        b'-' => steps.push(Step::Clear(bits(who, perm))),
        _ => {
            steps.push(Step::Clear(if who == 0 { STANDARD } else { who }));
            let set = bits(who, perm);
            if set != 0 {
                steps.push(Step::Set(set));
            }
        }
    }
}

/// `who` `op` a class's permissions (`g=u`).
fn copy_step(op: u8, who: u32, class: u8) -> Step {
    let from = match class {
        b'u' => Class::User,
        b'g' => Class::Group,
        _ => Class::Other,
    };
    let to = Classes {
        user: who == 0 || who & 0o400 != 0,
        group: who == 0 || who & 0o040 != 0,
        other: who == 0 || who & 0o004 != 0,
    };
    let how = match op {
        b'+' => CopyHow::Add,
        b'-' => CopyHow::Remove,
        _ => CopyHow::Assign,
    };
    Step::Copy { from, to, how }
}

/// `ADD --checksum=sha256:<hex>`: only for one source, an HTTP(S) URL.
pub(super) fn checksum(sum: &str, paths: &[String], is_url: bool) -> Result<Digest, FlagError> {
    if paths.len() != 1 {
        return Err(FlagError::ChecksumSources);
    }
    if !is_url {
        return Err(FlagError::ChecksumNotUrl);
    }
    sum.strip_prefix("sha256:")
        .and_then(|hex| Digest::from_hex(hex).ok())
        .ok_or_else(|| FlagError::ChecksumForm(sum.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mode `--chmod=spec` gives an entry whose own mode is `mode`.
    fn applied(spec: &str, mode: u32, is_dir: bool) -> u32 {
        chmod(spec)
            .unwrap_or_else(|e| panic!("{spec}: {e}"))
            .apply(mode, is_dir)
    }

    #[test]
    fn chmod_takes_octal_up_to_07777_with_buildkits_message_otherwise() {
        assert_eq!(chmod("755"), Ok(ChmodSpec::Octal(0o755)));
        assert_eq!(chmod("07777"), Ok(ChmodSpec::Octal(0o7777)));
        assert_eq!(applied("4755", 0o644, false), 0o4755);
        assert_eq!(applied("0", 0o777, true), 0);
        for bad in ["64a", "10000", "", "8", "9x", "1+x", "99999999999999"] {
            assert_eq!(
                chmod(bad).unwrap_err().to_string(),
                format!(
                    "invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777"
                )
            );
        }
    }

    #[test]
    fn chmod_refuses_what_is_not_symbolic_with_buildkits_message() {
        for bad in [
            "a",
            "u",
            "ugo",
            "u+r,",
            ",",
            ",u+r",
            "u+r,,g+r",
            "go-q",
            "z+x",
            "+755",
            "u+r g+r",
            "+rw x",
            "u\u{fc}+r",
            "u+r=x?",
        ] {
            assert_eq!(chmod(bad), Err(FlagError::ChmodSyntax), "{bad}");
        }
        // An operator without permissions is valid: nothing or, for `=`,
        // clearing.
        assert_eq!(applied("-", 0o755, false), 0o755);
        assert_eq!(applied("u-r=", 0o755, false), 0o055);
    }

    #[test]
    fn chmod_symbolic_as_buildkits_chmod_non_octal_case() {
        // fixtures/buildkit-port/copy/chmod-non-octal: a 0666 file, a 0124 directory.
        assert_eq!(applied("go-w", 0o666, false), 0o644);
        assert_eq!(applied("u=rw,g=r,o=r", 0o666, false), 0o644);
        assert_eq!(applied("a+X", 0o666, false), 0o666);
        assert_eq!(applied("go-w", 0o124, true), 0o104);
        assert_eq!(applied("u+rw,g+r,o-x,o+w", 0o124, true), 0o766);
        assert_eq!(applied("a+X", 0o124, true), 0o135);
    }

    #[test]
    fn chmod_symbolic_clause_forms() {
        assert_eq!(applied("u+x", 0o644, false), 0o744);
        assert_eq!(applied("g-r", 0o644, false), 0o604);
        assert_eq!(applied("o=w", 0o644, false), 0o642);
        assert_eq!(applied("ug+x,o=", 0o644, false), 0o750);
        assert_eq!(applied("u=", 0o755, false), 0o055);
        // Several operators in one clause, applied in order.
        assert_eq!(applied("u+rwx-w", 0, false), 0o500);
        assert_eq!(applied("a=r+w", 0o777, false), 0o666);
        // A class's permissions as the permission.
        assert_eq!(applied("g=u", 0o750, false), 0o770);
        assert_eq!(applied("o+g", 0o750, false), 0o755);
        assert_eq!(applied("go-u", 0o751, false), 0o700);
        assert_eq!(applied("u=g,g=o", 0o751, false), 0o511);
        assert_eq!(applied("=u", 0o640, false), 0o666);
    }

    #[test]
    fn chmod_symbolic_without_a_class_is_all_of_them_and_no_umask() {
        assert_eq!(applied("+w", 0o444, false), 0o666);
        assert_eq!(applied("-r", 0o644, false), 0o200);
        // `=` clears the set-id and permission bits, not the sticky bit.
        assert_eq!(applied("=r", 0o7777, true), 0o1444);
        assert_eq!(applied("a=r", 0o7777, true), 0o1444);
    }

    #[test]
    fn chmod_symbolic_big_x_only_for_directories_and_executables() {
        assert_eq!(applied("a+X", 0o644, false), 0o644);
        assert_eq!(applied("a+X", 0o744, false), 0o755);
        assert_eq!(applied("+X", 0o600, true), 0o711);
        assert_eq!(applied("go+X", 0o604, true), 0o615);
        // Executable before the clause, not by an earlier one.
        assert_eq!(applied("u+x,a+X", 0o644, false), 0o744);
        assert_eq!(applied("a=X", 0o744, false), 0o111);
        assert_eq!(applied("a=X", 0o644, false), 0);
        // `-X` is `-x`.
        assert_eq!(applied("a-X", 0o755, false), 0o644);
    }

    #[test]
    fn chmod_symbolic_setid_and_sticky() {
        assert_eq!(applied("u+s", 0o755, false), 0o4755);
        assert_eq!(applied("g+s", 0o755, true), 0o2755);
        assert_eq!(applied("+s", 0o755, false), 0o6755);
        assert_eq!(applied("ug-s", 0o6755, false), 0o755);
        assert_eq!(applied("o+s", 0o755, false), 0o755);
        assert_eq!(applied("+t", 0o777, true), 0o1777);
        assert_eq!(applied("a+t", 0o777, true), 0o1777);
        assert_eq!(applied("o+t", 0o777, true), 0o777);
        assert_eq!(applied("-t", 0o1777, true), 0o777);
        // BSD's quirk, kept by BuildKit: `t` narrows a clause without a
        // class name to the sticky bit.
        assert_eq!(applied("+rt", 0o200, false), 0o1200);
        assert_eq!(applied("a+rt", 0o200, false), 0o1644);
    }

    #[test]
    fn chmod_key_keeps_octal_and_tells_modes_apart() {
        let key = |spec: &str| ChmodSpec::key(Some(&chmod(spec).unwrap()));
        assert_eq!(key("755"), 0o755u32.to_le_bytes().to_vec());
        assert_eq!(ChmodSpec::key(None), u32::MAX.to_le_bytes().to_vec());
        assert_ne!(key("go-w"), key("go-r"));
        assert_ne!(key("a+x"), key("755"));
    }

    #[test]
    fn checksum_needs_one_http_source() {
        let sum = format!("sha256:{}", "ab".repeat(32));
        let one = ["https://x/y".to_owned()];
        assert!(checksum(&sum, &one, true).is_ok());
        let local = ["foo".to_owned()];
        assert_eq!(
            checksum(&sum, &local, false).unwrap_err().to_string(),
            "checksum can't be specified for non-HTTP sources"
        );
        let two = ["a".to_owned(), "b".to_owned()];
        assert_eq!(
            checksum(&sum, &two, false).unwrap_err().to_string(),
            "checksum can't be specified for multiple sources"
        );
        assert!(
            checksum("md5:x", &one, true)
                .unwrap_err()
                .to_string()
                .contains("expected sha256")
        );
    }
}
