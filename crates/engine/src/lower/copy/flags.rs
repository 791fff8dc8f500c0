//! `--chmod` and `--checksum` of `COPY`/`ADD`, checked with BuildKit's
//! messages (`dockerfile2llb`: 0.13's for `--checksum`, the newer one for
//! a mode that is not octal, which 0.13 silently ignores).

use buildr_cache::Digest;

/// An octal `--chmod` mode (at most 07777).
pub(super) fn chmod(mode: &str) -> Result<u32, String> {
    if let Some(bits) = u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777) {
        return Ok(bits);
    }
    let mut message = format!(
        "invalid chmod parameter: '{mode}'. it should be octal string and between 0 and 07777"
    );
    let symbolic = !mode.is_empty() && mode.chars().all(|c| "ugoa+-=rwxXst,".contains(c));
    if symbolic {
        message.push_str(" (symbolic modes are not supported yet)");
    }
    Err(message)
}

/// `ADD --checksum=sha256:<hex>`: only for one source, an HTTP(S) URL.
pub(super) fn checksum(sum: &str, paths: &[String], is_url: bool) -> Result<Digest, String> {
    if paths.len() != 1 {
        return Err("checksum can't be specified for multiple sources".to_owned());
    }
    if !is_url {
        return Err("checksum can't be specified for non-HTTP sources".to_owned());
    }
    sum.strip_prefix("sha256:")
        .and_then(|hex| Digest::from_hex(hex).ok())
        .ok_or_else(|| format!("--checksum={sum}: expected sha256:<64 hex digits>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_takes_octal_up_to_07777_with_buildkits_message_otherwise() {
        assert_eq!(chmod("755"), Ok(0o755));
        assert_eq!(chmod("07777"), Ok(0o7777));
        for bad in ["64a", "10000", ""] {
            let err = chmod(bad).unwrap_err();
            assert!(
                err.starts_with(&format!(
                    "invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777"
                )),
                "{err}"
            );
        }
        assert!(chmod("go-w").unwrap_err().contains("symbolic"));
        assert!(!chmod("64a").unwrap_err().contains("symbolic"));
    }

    #[test]
    fn checksum_needs_one_http_source() {
        let sum = format!("sha256:{}", "ab".repeat(32));
        let one = ["https://x/y".to_owned()];
        assert!(checksum(&sum, &one, true).is_ok());
        let local = ["foo".to_owned()];
        assert_eq!(
            checksum(&sum, &local, false).unwrap_err(),
            "checksum can't be specified for non-HTTP sources"
        );
        let two = ["a".to_owned(), "b".to_owned()];
        assert_eq!(
            checksum(&sum, &two, false).unwrap_err(),
            "checksum can't be specified for multiple sources"
        );
        assert!(
            checksum("md5:x", &one, true)
                .unwrap_err()
                .contains("expected sha256")
        );
    }
}
