//! COPY and ADD: sources (paths or heredoc contents), destination, flags.
//! Which flag is valid on which follows BuildKit: `--from` and `--parents`
//! are COPY only; `--checksum`, `--keep-git-dir` and `--unpack` are ADD only.

use super::flags::{Flags, Kind};
use super::{Problem, Req, Result};

/// `COPY`/`ADD [flags] <src>... <dest>`. All values unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyLike {
    pub sources: Vec<CopySource>,
    pub dest: String,
    /// `--from=<stage|image|index>` (COPY only).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=<octal or symbolic mode>`.
    pub chmod: Option<String>,
    pub link: bool,
    /// `--parents` (COPY only).
    pub parents: bool,
    /// `--exclude=<pattern>`, repeatable.
    pub excludes: Vec<String>,
    /// `--checksum=sha256:...` (ADD only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only); `None` when not given.
    pub keep_git_dir: Option<bool>,
    /// `--unpack` (ADD only); `None` when not given.
    pub unpack: Option<bool>,
}

/// One source of COPY/ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// A path, glob or URL, as written.
    Path(String),
    /// An inline file from a heredoc (`COPY <<EOF /dest`).
    Inline {
        /// The heredoc's name, used as the file name.
        name: String,
        content: String,
        /// Whether variables in `content` are to be expanded.
        expand: bool,
    },
}

const COPY_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::String),
    ("from", Kind::String),
    ("chmod", Kind::String),
    ("link", Kind::Bool),
    ("exclude", Kind::Strings),
    ("parents", Kind::Bool),
];

const ADD_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::String),
    ("chmod", Kind::String),
    ("link", Kind::Bool),
    ("keep-git-dir", Kind::Bool),
    ("checksum", Kind::String),
    ("unpack", Kind::Bool),
    ("exclude", Kind::Strings),
];

pub(crate) fn parse(req: &Req<'_>, is_add: bool) -> Result<CopyLike> {
    let (words, _json) = req.words();
    let name = &req.upper;
    let Some((dest, srcs)) = words.split_last().filter(|(_, srcs)| !srcs.is_empty()) else {
        let pos = words.first().map_or(req.after_keyword(), |w| req.pos_of(w));
        return Err(Problem::new(
            pos,
            format!(
                "{name} requires at least two arguments, but only one was provided. \
                 destination could not be determined"
            ),
        )
        .help(format!("expected `{name} <src>... <dest>`")));
    };
    let flags = Flags::parse(req, if is_add { ADD_FLAGS } else { COPY_FLAGS })?;
    if heredoc_name(dest).is_some() {
        return Err(Problem::new(
            req.pos_of(dest),
            format!("{name} cannot accept a heredoc as a destination"),
        )
        .help("the last argument is the destination path"));
    }
    let mut sources = Vec::with_capacity(srcs.len());
    for src in srcs {
        let source = match heredoc_name(src) {
            Some(doc) => {
                let found = req.heredocs().iter().find(|h| h.name == doc);
                CopySource::Inline {
                    name: doc.clone(),
                    content: found.map(|h| h.content.clone()).unwrap_or_default(),
                    expand: found.is_none_or(|h| h.expand),
                }
            }
            None => CopySource::Path(src.clone()),
        };
        sources.push(source);
    }
    Ok(CopyLike {
        sources,
        dest: dest.clone(),
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link").unwrap_or(false),
        parents: flags.bool("parents").unwrap_or(false),
        excludes: flags
            .all("exclude")
            .filter_map(|f| f.value.clone())
            .collect(),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.bool("unpack"),
    })
}

/// The heredoc name in a word like BuildKit's `^(\d*)<<(-?)\s*([^<]*)$`
/// with quotes removed: `<<EOF`, `<<-"EOF"`, `3<<'x'`.
pub(crate) fn heredoc_name(word: &str) -> Option<String> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    (!name.is_empty()).then_some(name)
}
