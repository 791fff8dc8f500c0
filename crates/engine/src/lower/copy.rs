//! Lowering `COPY` and `ADD`: sources and destination expanded, the
//! destination made absolute against WORKDIR, `--from` bound to a stage's
//! vertex or a base image, flags checked.

use std::sync::{Arc, Mutex};

use buildr_parser::{CopyLike, CopySource, Instruction, Spanned};

use super::{LoweredOp, Lowering, StageLowering, expand};
use crate::error::{Error, Result};
use crate::gopath::clean_relative;
use crate::ops::copy::{CopyOp, LinkOp, Source};
use crate::ops::export::Step;

mod flags;
mod from;

impl Lowering<'_> {
    pub(crate) fn copy(
        &mut self,
        st: &mut StageLowering,
        at: &Spanned<Instruction>,
        copy: &CopyLike,
        env: &[(String, String)],
        is_add: bool,
    ) -> Result<()> {
        let dockerfile = self.plan.dockerfile;
        let location = self.location(at);
        let keyword = if is_add { "ADD" } else { "COPY" };
        let fail = |message: String| Error::Build {
            location: location.clone(),
            message,
        };
        let word = |w: &str| expand(&self.lexer, w, env, dockerfile, at);
        let (paths, inline) =
            copy_sources(copy, is_add, keyword, env, &word).map_err(|e| match e {
                SourceError::Build(e) => e,
                SourceError::Message(message) => fail(message),
            })?;
        if !paths.is_empty() && !inline.is_empty() {
            return Err(fail(format!(
                "{keyword}: mixing heredoc and path sources is not supported yet"
            )));
        }
        let raw_dest = word(&copy.dest)?;
        let (dest, dest_is_dir) = copy_dest(&raw_dest, &st.config.workdir());
        let chown = copy
            .chown
            .as_deref()
            .map(word)
            .transpose()?
            .filter(|c| !c.is_empty());
        let chmod = copy.chmod.as_deref().map(word).transpose()?;
        let chmod = chmod.map(|mode| flags::chmod(&mode)).transpose();
        let chmod = chmod.map_err(|e| fail(e.to_string()))?;
        let excludes = copy
            .excludes
            .iter()
            .map(|e| word(e))
            .collect::<Result<Vec<_>>>()?;
        // As BuildKit: `--link` with `--chmod` is a plain copy (its MergeOp
        // path requires no chmod).
        let link = copy.link && chmod.is_none();
        if link && let Some(chown) = &chown {
            check_link_chown(keyword, chown).map_err(|e| fail(e.to_string()))?;
        }
        let mut inputs = if link { Vec::new() } else { vec![st.vertex] };
        let urls = paths.iter().filter(|p| is_url(p)).count();
        if urls > 0 && !is_add {
            // BuildKit's wording: only ADD fetches URLs.
            return Err(fail("source can't be a URL for COPY".to_owned()));
        }
        let checksum = copy.checksum.as_deref().map(word).transpose()?;
        let checksum = checksum.map(|sum| flags::checksum(&sum, &paths, urls == 1));
        let checksum = checksum.transpose().map_err(|e| fail(e.to_string()))?;
        if urls > 0 && (urls != 1 || paths.len() != 1) {
            return Err(fail(format!(
                "{keyword}: one URL source per ADD is supported yet"
            )));
        }
        let url = (urls == 1).then(|| (paths[0].clone(), checksum));
        let source = self.copy_source(st, copy, url, inline, &mut inputs, &location)?;
        let created_by = created_by(keyword, copy, chown.as_deref(), &source, &paths, &raw_dest);
        let op = CopyOp {
            name: st.title(&self.lexer, &at.source),
            location: location.clone(),
            source,
            sources: if urls == 1 { Vec::new() } else { paths },
            dest,
            dest_is_dir,
            chown,
            chmod,
            unpack: is_add && copy.unpack != Some(false) && urls == 0,
            excludes,
            parents: copy.parents,
            link,
            env: self.plan.env.clone(),
            selection: Mutex::new(None),
            explain_id: Mutex::new(None),
        };
        st.vertex = self.add_copy(st, op, &inputs, location, link);
        st.steps.push(Step {
            created_by,
            from_op: true,
            comment: Some("buildkit.dockerfile.v0".to_owned()),
        });
        Ok(())
    }

    /// Where the copy's files come from: a URL (ADD), heredocs, another
    /// stage (its vertex added to `inputs`) or the build context.
    fn copy_source(
        &mut self,
        st: &mut StageLowering,
        copy: &CopyLike,
        url: Option<(String, Option<buildr_cache::Digest>)>,
        inline: Vec<(String, String)>,
        inputs: &mut Vec<buildr_solver::VertexId>,
        location: &str,
    ) -> Result<Source> {
        Ok(if let Some((url, checksum)) = url {
            Source::Url {
                url,
                checksum,
                fetched: Mutex::new(None),
            }
        } else if !inline.is_empty() {
            Source::Inline(inline)
        } else if let Some(from) = &copy.from {
            inputs.push(self.copy_from(st, from, location)?);
            Source::Stage
        } else {
            Source::Context(Arc::clone(&self.plan.context))
        })
    }

    /// Adds the COPY vertex; with `--link`, also the merge of its layer
    /// onto the stage (`LINK <instruction>`, as BuildKit names it). The
    /// stage's new last vertex.
    fn add_copy(
        &mut self,
        st: &StageLowering,
        op: CopyOp,
        inputs: &[buildr_solver::VertexId],
        location: String,
        link: bool,
    ) -> buildr_solver::VertexId {
        let name = op.name.clone();
        let copied = self.add(
            LoweredOp::Copy(Arc::new(op)),
            inputs,
            location.clone(),
            st.uncached,
        );
        if !link {
            return copied;
        }
        let name = match name.find("] ") {
            Some(at) => format!("{}LINK {}", &name[..at + 2], &name[at + 2..]),
            None => format!("LINK {name}"),
        };
        self.add(
            LoweredOp::Link(Arc::new(LinkOp { name })),
            &[st.vertex, copied],
            location,
            st.uncached,
        )
    }
}

/// A source BuildKit fetches over HTTP (`ADD` only; `COPY` refuses it).
fn is_url(path: &str) -> bool {
    path.starts_with("http://") || path.starts_with("https://")
}

/// Why a source could not be taken: an expansion error (located by its
/// word) or a message for the instruction's location.
enum SourceError {
    Build(Error),
    Message(String),
}

/// Path sources (expanded) and heredoc files (name, content).
type Sources = (Vec<String>, Vec<(String, String)>);

/// The sources of a COPY or ADD: paths (expanded; no git sources) or
/// heredoc files (their content expanded when the heredoc says so, with
/// quotes as content, as BuildKit).
fn copy_sources(
    copy: &CopyLike,
    is_add: bool,
    keyword: &str,
    env: &[(String, String)],
    word: &dyn Fn(&str) -> Result<String>,
) -> std::result::Result<Sources, SourceError> {
    let mut paths = Vec::new();
    let mut inline = Vec::new();
    for source in &copy.sources {
        match source {
            CopySource::Path(path) => {
                let path = word(path).map_err(SourceError::Build)?;
                if is_add
                    && (path.starts_with("git@")
                        || path.ends_with(".git")
                        || path.contains(".git#"))
                {
                    return Err(SourceError::Message(format!(
                        "ADD {path}: git sources are not supported yet (no git client)"
                    )));
                }
                paths.push(path);
            }
            CopySource::Inline {
                name,
                content,
                expand: do_expand,
            } => {
                // As BuildKit: quotes are content, `\` escapes whatever
                // the escape directive says.
                let content = if *do_expand {
                    buildr_parser::Lexer::new('\\')
                        .skip_process_quotes(true)
                        .process_word(content, &env)
                        .map(|r| r.value)
                        .map_err(|e| SourceError::Message(format!("{keyword} <<{name}: {e}")))?
                } else {
                    content.clone()
                };
                inline.push((name.clone(), content));
            }
        }
    }
    Ok((paths, inline))
}

/// The destination, absolute (under the workdir when relative) and
/// cleaned, and whether it names a directory. As BuildKit, several
/// sources need no `/` here: each is copied on its own, into the
/// destination when it is a directory by then.
fn copy_dest(raw_dest: &str, workdir: &str) -> (String, bool) {
    let dest_is_dir = raw_dest.ends_with('/')
        || raw_dest == "."
        || raw_dest.ends_with("/.")
        || (raw_dest.is_empty());
    let dest = if raw_dest.starts_with('/') {
        raw_dest.to_owned()
    } else {
        format!("{workdir}/{raw_dest}")
    };
    let dest = format!("/{}", clean_relative(&dest));
    (dest, dest_is_dir)
}

/// A `--link --chown` that names a user or group.
#[derive(Debug, thiserror::Error)]
#[error(
    "{keyword} --link --chown={chown}: {name:?} is a name; with --link only numeric ids (or root) are supported, since the stage's /etc/passwd is not read"
)]
struct LinkChownByName {
    keyword: String,
    chown: String,
    name: String,
}

/// `--link --chown` takes numeric ids (or root) only: the stage's
/// /etc/passwd is not read.
fn check_link_chown(keyword: &str, chown: &str) -> std::result::Result<(), LinkChownByName> {
    let named = chown
        .split(':')
        .find(|part| *part != "root" && part.parse::<u32>().is_err());
    match named {
        Some(name) => Err(LinkChownByName {
            keyword: keyword.to_owned(),
            chown: chown.to_owned(),
            name: name.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The history's `created_by`: `COPY [--parents] [--chown=..] [--chmod=..]
/// SOURCES DEST # buildkit`, heredoc names for heredoc sources.
fn created_by(
    keyword: &str,
    copy: &CopyLike,
    chown: Option<&str>,
    source: &Source,
    paths: &[String],
    raw_dest: &str,
) -> String {
    let mut shown = String::new();
    if copy.parents {
        shown.push_str("--parents ");
    }
    if let Some(chown) = chown {
        shown.push_str(&format!("--chown={chown} "));
    }
    if let Some(mode) = copy.chmod.as_deref() {
        shown.push_str(&format!("--chmod={mode} "));
    }
    let names: Vec<String> = match &source {
        Source::Inline(files) => files.iter().map(|(n, _)| n.clone()).collect(),
        _ => paths.to_vec(),
    };
    format!("{keyword} {shown}{} {raw_dest} # buildkit", names.join(" "))
}
