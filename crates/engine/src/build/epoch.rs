//! `SOURCE_DATE_EPOCH` and BuildKit's `rewrite-timestamp=` key of `-o`.
//!
//! With `SOURCE_DATE_EPOCH` set, the image config's `created` and every new
//! history entry's `created` are the epoch (as BuildKit). BuildKit 0.13
//! clamps the file times inside the layers to the epoch only with
//! `-o ...,rewrite-timestamp=true`; buildr clamps them by default whenever
//! the variable is set (two checkouts of one commit differ in their mtimes,
//! so without the clamp the variable alone never reproduces an image), and
//! `rewrite-timestamp=false` keeps the files' own times as BuildKit's
//! default does.

use crate::error::{Error, Result};

/// Whether `SOURCE_DATE_EPOCH` clamps the file times inside the layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RewriteTimestamp {
    /// Times newer than the epoch become the epoch (buildr's default;
    /// BuildKit's `rewrite-timestamp=true`).
    #[default]
    Clamp,
    /// Files keep their times (`rewrite-timestamp=false`, BuildKit's
    /// default); only `created` in the config and history is the epoch.
    Keep,
}

impl RewriteTimestamp {
    /// Reads the `rewrite-timestamp=` key of a `-o` value (Go's
    /// `strconv.ParseBool` spellings); `None` when it is absent.
    pub fn from_output_spec(spec: &str) -> Result<Option<RewriteTimestamp>> {
        let mut out = None;
        for field in spec.split(',') {
            let Some(("rewrite-timestamp", value)) = field.split_once('=') else {
                continue;
            };
            out = Some(match value {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => RewriteTimestamp::Clamp,
                "0" | "f" | "F" | "false" | "FALSE" | "False" => RewriteTimestamp::Keep,
                other => {
                    return Err(Error::BuildOption {
                        message: format!(
                            "-o {spec}: rewrite-timestamp {other:?} is not true or false"
                        ),
                    });
                }
            });
        }
        Ok(out)
    }

    /// The epoch the layer writer clamps file times to, if any.
    pub(crate) fn layer_epoch(self, source_date_epoch: Option<i64>) -> Option<i64> {
        match self {
            RewriteTimestamp::Clamp => source_date_epoch,
            RewriteTimestamp::Keep => None,
        }
    }
}

/// `SOURCE_DATE_EPOCH` from the environment, when it is a number.
pub(crate) fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
}

#[cfg(test)]
mod tests {
    use super::RewriteTimestamp;

    #[test]
    fn output_specs_carry_rewrite_timestamp() {
        let parse = |spec| RewriteTimestamp::from_output_spec(spec).unwrap();
        assert_eq!(parse("type=image"), None);
        assert_eq!(
            parse("type=image,rewrite-timestamp=true"),
            Some(RewriteTimestamp::Clamp)
        );
        assert_eq!(
            parse("type=oci,dest=x.tar,rewrite-timestamp=0"),
            Some(RewriteTimestamp::Keep)
        );
        assert_eq!(RewriteTimestamp::Keep.layer_epoch(Some(5)), None);
        assert_eq!(RewriteTimestamp::Clamp.layer_epoch(Some(5)), Some(5));
        let err = RewriteTimestamp::from_output_spec("rewrite-timestamp=yes").unwrap_err();
        assert!(
            err.to_string().contains("rewrite-timestamp \"yes\""),
            "{err}"
        );
    }
}
