//! `images --filter`: docker's keys, values of one key ORed (`reference`)
//! or all required (`label`, `before`, `since`), different keys ANDed.
//!
//! - `dangling=true|false`: every listed image has a tag, so `true` keeps
//!   none (untagged content has no row).
//! - `reference=PATTERN`: Go's `path.Match` on the familiar `name:tag`, or
//!   on the familiar name (`busy*`, `*/app:v?`, `app:1.*`); the fully
//!   qualified spelling (`docker.io/library/busybox`) matches too.
//! - `before=IMAGE`, `since=IMAGE`: created strictly before (after) that
//!   image; an image without a creation time never passes.
//! - `label=KEY` or `label=KEY=VALUE`: the config's labels.

use std::collections::BTreeMap;

use super::list::ImageSummary;
use super::{Images, familiar_name, split_tag};
use crate::error::{Error, Result};
use crate::gopath::glob;

/// Parsed `images --filter` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilters {
    /// `dangling=`: the last value given.
    pub dangling: Option<bool>,
    /// `reference=` patterns; a row passes if any matches.
    pub references: Vec<String>,
    /// `before=` images (names or ids); a row passes if older than each.
    pub before: Vec<String>,
    /// `since=` images; a row passes if newer than each.
    pub since: Vec<String>,
    /// `label=` conditions; a row passes if it has all of them.
    pub labels: Vec<LabelFilter>,
}

/// One `label=KEY[=VALUE]` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    /// `None`: the label only has to be there.
    pub value: Option<String>,
}

impl ImageFilters {
    /// Parses `KEY=VALUE` filter values as docker's `images --filter`
    /// takes them; an unknown key, an empty value or a malformed pattern
    /// is an error naming the filter.
    pub fn parse<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Result<ImageFilters> {
        let mut filters = ImageFilters::default();
        for value in values {
            let value = value.as_ref();
            let bad = |reason: &str| Error::Filter {
                filter: value.to_owned(),
                reason: reason.to_owned(),
            };
            let Some((key, arg)) = value.split_once('=') else {
                return Err(bad("expected KEY=VALUE"));
            };
            if arg.is_empty() {
                return Err(bad("the value is empty"));
            }
            match key {
                "dangling" => {
                    filters.dangling = Some(match arg {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("dangling is true or false")),
                    })
                }
                "reference" => {
                    if arg
                        .split('/')
                        .any(|part| glob::validate_pattern(part).is_err())
                    {
                        return Err(bad("syntax error in pattern"));
                    }
                    filters.references.push(arg.to_owned());
                }
                "before" => filters.before.push(arg.to_owned()),
                "since" => filters.since.push(arg.to_owned()),
                "label" => filters.labels.push(match arg.split_once('=') {
                    Some((key, value)) => LabelFilter {
                        key: key.to_owned(),
                        value: Some(value.to_owned()),
                    },
                    None => LabelFilter {
                        key: arg.to_owned(),
                        value: None,
                    },
                }),
                _ => {
                    return Err(bad(
                        "the filters are dangling, reference, before, since and label",
                    ));
                }
            }
        }
        Ok(filters)
    }

    /// Whether `row` passes, given the creation times the `before` and
    /// `since` images resolved to.
    fn keep(&self, row: &ImageSummary, bounds: &Bounds) -> bool {
        if self.dangling == Some(true) {
            return false;
        }
        if !self.references.is_empty() && !self.references.iter().any(|p| reference_matches(p, row))
        {
            return false;
        }
        let created = row.created;
        let older = |limit: &i64| created.is_some_and(|c| c < *limit);
        let newer = |limit: &i64| created.is_some_and(|c| c > *limit);
        bounds.before.iter().all(older)
            && bounds.since.iter().all(newer)
            && self.labels.iter().all(|f| label_matches(f, &row.labels))
    }
}

/// The creation times of the `before` and `since` images.
#[derive(Debug, Default)]
struct Bounds {
    before: Vec<i64>,
    since: Vec<i64>,
}

impl Images {
    /// [`Images::list`], keeping only the rows `filters` pass.
    pub fn list_filtered(&self, filters: &ImageFilters) -> Result<Vec<ImageSummary>> {
        let created = |input: &String| -> Result<i64> {
            let image = self.resolve(input)?;
            // An image without a time bounds nothing: no row passes it.
            Ok(image
                .config
                .created
                .as_deref()
                .and_then(super::time::parse_rfc3339)
                .unwrap_or(i64::MIN))
        };
        let bounds = Bounds {
            before: filters.before.iter().map(created).collect::<Result<_>>()?,
            since: filters
                .since
                .iter()
                .map(|s| created(s).map(|t| if t == i64::MIN { i64::MAX } else { t }))
                .collect::<Result<_>>()?,
        };
        Ok(self
            .list()?
            .into_iter()
            .filter(|row| filters.keep(row, &bounds))
            .collect())
    }
}

/// docker's `reference.FamiliarMatch`: `pattern` against `name:tag`, then
/// against the name alone, familiar or fully qualified.
pub(crate) fn reference_matches(pattern: &str, row: &ImageSummary) -> bool {
    let familiar = familiar_name(&row.name);
    let (familiar_repo, _) = split_tag(&familiar);
    let (full_repo, _) = split_tag(&row.name);
    [
        familiar.as_str(),
        familiar_repo,
        row.name.as_str(),
        full_repo,
    ]
    .iter()
    .any(|candidate| path_match(pattern, candidate))
}

/// Go's `path.Match`: `*` and `?` never cross a `/`.
fn path_match(pattern: &str, name: &str) -> bool {
    let patterns: Vec<&str> = pattern.split('/').collect();
    let names: Vec<&str> = name.split('/').collect();
    patterns.len() == names.len()
        && patterns
            .iter()
            .zip(&names)
            .all(|(p, n)| glob::matches(p, n).unwrap_or(false))
}

fn label_matches(filter: &LabelFilter, labels: &BTreeMap<String, String>) -> bool {
    match (labels.get(&filter.key), &filter.value) {
        (Some(found), Some(wanted)) => found == wanted,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, created: Option<i64>, labels: &[(&str, &str)]) -> ImageSummary {
        let familiar = familiar_name(name);
        let (repository, tag) = split_tag(&familiar);
        ImageSummary {
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            name: name.to_owned(),
            id: buildr_cache::Digest::of(name.as_bytes()),
            manifest: buildr_cache::Digest::of(b"m"),
            created,
            size: 0,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn keeps(filters: &[&str], row: &ImageSummary) -> bool {
        ImageFilters::parse(filters)
            .unwrap()
            .keep(row, &Bounds::default())
    }

    #[test]
    fn reference_patterns_match_as_docker_path_match() {
        let busybox = row("docker.io/library/busybox:1.36", None, &[]);
        let app = row("registry.example:5000/team/app:v1", None, &[]);
        for (pattern, want_busybox, want_app) in [
            ("busybox", true, false),
            ("busybox:1.36", true, false),
            ("busy*", true, false),
            ("busybox:1.*", true, false),
            ("busybox:2*", false, false),
            ("*", true, false),
            ("*:*", true, false),
            ("*/*/app:v?", false, true),
            ("registry.example:5000/team/*", false, true),
            ("registry.example:5000/*", false, false),
            ("docker.io/library/busybox", true, false),
            ("[ab]usybox", true, false),
            ("team/app", false, false),
        ] {
            assert_eq!(
                keeps(&[&format!("reference={pattern}")], &busybox),
                want_busybox,
                "{pattern} on busybox"
            );
            assert_eq!(
                keeps(&[&format!("reference={pattern}")], &app),
                want_app,
                "{pattern} on app"
            );
        }
        // Several references: any of them.
        assert!(keeps(&["reference=nope", "reference=busy*"], &busybox));
    }

    #[test]
    fn labels_are_all_required_and_keys_anded() {
        let image = row(
            "docker.io/library/app:1",
            Some(100),
            &[("tier", "web"), ("team", "a")],
        );
        assert!(keeps(&["label=tier"], &image));
        assert!(keeps(&["label=tier=web", "label=team=a"], &image));
        assert!(!keeps(&["label=tier=web", "label=team=b"], &image));
        assert!(!keeps(&["label=missing"], &image));
        assert!(!keeps(&["label=tier=web", "reference=other"], &image));
        assert!(keeps(
            &["label=tier=web", "reference=app:*", "dangling=false"],
            &image
        ));
        assert!(!keeps(&["dangling=true"], &image));
    }

    #[test]
    fn before_and_since_are_strict_and_need_a_time() {
        let filters = ImageFilters::default();
        let bounds = |before: &[i64], since: &[i64]| Bounds {
            before: before.to_vec(),
            since: since.to_vec(),
        };
        let at_100 = row("docker.io/library/a:1", Some(100), &[]);
        let timeless = row("docker.io/library/b:1", None, &[]);
        assert!(filters.keep(&at_100, &bounds(&[101], &[99])));
        assert!(!filters.keep(&at_100, &bounds(&[100], &[])));
        assert!(!filters.keep(&at_100, &bounds(&[], &[100])));
        assert!(!filters.keep(&timeless, &bounds(&[101], &[])));
        assert!(!filters.keep(&timeless, &bounds(&[], &[99])));
    }

    #[test]
    fn bad_filters_are_named() {
        for bad in [
            "nokey",
            "color=red",
            "reference=",
            "reference=a[",
            "dangling=maybe",
        ] {
            let err = ImageFilters::parse([bad]).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        let parsed = ImageFilters::parse(["label=a=b=c", "before=x", "since=y"]).unwrap();
        assert_eq!(
            parsed.labels,
            [LabelFilter {
                key: "a".to_owned(),
                value: Some("b=c".to_owned())
            }]
        );
        assert_eq!(
            (parsed.before, parsed.since),
            (vec!["x".to_owned()], vec!["y".to_owned()])
        );
    }
}
