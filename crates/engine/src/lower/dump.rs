//! A deterministic text dump of a lowered build, for the snapshot tests in
//! `tests.rs`: each distinct vertex (merged ones once) in the order
//! lowering added it, which is topological, with its inputs by number and
//! what lowering decided for its op; then the target, its config, history
//! and warnings. Host paths become `<context>` and `<store>`; nothing that
//! varies between runs (nonces, times, temp paths) is shown.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use buildr_exec::Network;
use buildr_solver::VertexId;

use super::{Lowered, LoweredOp, Plan};
use crate::ops::copy::{CopyOp, Source};
use crate::ops::from::FromOp;
use crate::ops::run::RunOp;

/// One vertex as lowering added it (before the graph merged equal ones).
#[derive(Clone)]
pub(crate) struct Added {
    pub vertex: VertexId,
    pub op: LoweredOp,
    pub inputs: Vec<VertexId>,
    /// Under `--no-cache-filter`: its definition carries the build's nonce.
    pub uncached: bool,
}

/// Where host paths are replaced by placeholders.
struct Roots<'a> {
    context: &'a Path,
    store: &'a Path,
}

impl Roots<'_> {
    /// `path` with the context or store root replaced by its placeholder.
    fn show(&self, path: &Path) -> String {
        if let Ok(rel) = path.strip_prefix(self.context) {
            return format!("<context>/{}", rel.display());
        }
        if let Ok(rel) = path.strip_prefix(self.store) {
            return format!("<store>/{}", rel.display());
        }
        path.display().to_string()
    }
}

/// The dump of `lowered`, made from `plan`.
pub(crate) fn dump(lowered: &Lowered, plan: &Plan<'_>) -> String {
    let roots = Roots {
        context: plan.context.root(),
        store: plan.env.store.root(),
    };
    let mut out = String::new();
    // Vertex ids to dump numbers; merged vertices share one number.
    let mut numbers: HashMap<VertexId, usize> = HashMap::new();
    let mut by_digest = HashMap::new();
    for added in &lowered.added {
        let Some(info) = lowered.graph.vertex(added.vertex) else {
            let _ = writeln!(out, "?? vertex {:?} is not in the graph", added.vertex);
            continue;
        };
        if let Some(&number) = by_digest.get(&info.digest) {
            numbers.insert(added.vertex, number);
            continue;
        }
        let number = by_digest.len();
        by_digest.insert(info.digest, number);
        numbers.insert(added.vertex, number);
        let _ = writeln!(out, "v{number} {}", info.name);
        let _ = writeln!(out, "  at {}", info.location);
        if !added.inputs.is_empty() {
            let inputs: Vec<String> = added
                .inputs
                .iter()
                .map(|v| numbers.get(v).map_or("?".to_owned(), |n| format!("v{n}")))
                .collect();
            let _ = writeln!(out, "  inputs {}", inputs.join(" "));
        }
        if added.uncached {
            let _ = writeln!(out, "  uncached (--no-cache-filter)");
        }
        match &added.op {
            LoweredOp::From(op) => from(&mut out, op),
            LoweredOp::Run(op) => run(&mut out, op, &roots),
            LoweredOp::Copy(op) => copy(&mut out, op),
            LoweredOp::Link(_) => {
                let _ = writeln!(out, "  link: input 1 on input 0");
            }
        }
    }
    let target = numbers
        .get(&lowered.target)
        .map_or("?".to_owned(), |n| format!("v{n}"));
    let _ = writeln!(out, "\ntarget {target}, stages {:?}", lowered.stages);
    config(&mut out, lowered);
    out
}

/// The target's container config, history and the warnings.
fn config(out: &mut String, lowered: &Lowered) {
    let config =
        serde_json::to_string_pretty(&lowered.config.config).unwrap_or_else(|e| format!("?? {e}"));
    let _ = writeln!(out, "config {config}");
    let _ = writeln!(out, "history");
    for step in &lowered.steps {
        let layer = if step.from_op { "" } else { " (no layer)" };
        // One line per entry: a heredoc's newlines are shown as `\n`.
        let created_by = step.created_by.replace('\n', "\\n");
        let _ = writeln!(out, "  {created_by}{layer}");
    }
    for warning in &lowered.warnings {
        let _ = writeln!(out, "warning {warning}");
    }
}

fn from(out: &mut String, op: &FromOp) {
    match &op.manifest {
        None => {
            let _ = writeln!(out, "  from scratch");
        }
        Some(digest) => {
            let _ = writeln!(out, "  from {digest}, layers {}", op.layers.len());
        }
    }
    for layer in &op.layers {
        let _ = writeln!(out, "    layer {} size {}", layer.diff_id, layer.size);
    }
    if let Some(note) = &op.note {
        let _ = writeln!(out, "  note {}", note.trim_end());
    }
}

fn run(out: &mut String, op: &RunOp, roots: &Roots<'_>) {
    let network = match &op.network {
        Network::None => "none",
        Network::Host => "host",
        Network::Join { .. } => "default",
    };
    let _ = writeln!(out, "  run {:?}", op.argv);
    let _ = writeln!(out, "    env {:?}", op.env);
    let _ = writeln!(
        out,
        "    cwd {:?} user {:?} network {network}",
        op.cwd, op.user
    );
    if !op.args.is_empty() {
        let _ = writeln!(out, "    args {:?}", op.args);
    }
    if !op.proxy_env.is_empty() {
        let _ = writeln!(out, "    proxy env {:?}", op.proxy_env);
    }
    if let Some(hostname) = &op.hostname {
        let _ = writeln!(out, "    hostname {hostname:?}");
    }
    for tmpfs in &op.tmpfs {
        let _ = writeln!(
            out,
            "    tmpfs {} size {:?}",
            tmpfs.dst.display(),
            tmpfs.size
        );
    }
    for cache in &op.caches {
        let _ = writeln!(
            out,
            "    cache {} at {} readonly {} locked {} seed {:?} subpath {:?} mode {:?} uid {:?} gid {:?}",
            cache.target,
            roots.show(&cache.host),
            cache.readonly,
            cache.locked,
            cache.seed,
            cache.subpath,
            cache.mode,
            cache.uid,
            cache.gid
        );
    }
    for bind in &op.binds {
        let _ = writeln!(
            out,
            "    bind {} from {} readonly {}",
            bind.dst.display(),
            roots.show(&bind.src),
            bind.readonly
        );
    }
    for bind in &op.stage_binds {
        let _ = writeln!(
            out,
            "    bind {} from input {} path {} readonly {}",
            bind.target, bind.input, bind.source, bind.readonly
        );
    }
    for s in &op.secrets {
        let _ = writeln!(
            out,
            "    secret {} target {:?} env {:?} required {} mode {:o} uid {} gid {}",
            s.id, s.target, s.env, s.required, s.mode, s.uid, s.gid
        );
    }
    for s in &op.ssh {
        let _ = writeln!(
            out,
            "    ssh {} target {} required {} mode {:o} uid {} gid {}",
            s.id, s.target, s.required, s.mode, s.uid, s.gid
        );
    }
    for file in &op.inline {
        let _ = writeln!(
            out,
            "    file {} mode {:o} {:?}",
            file.target,
            file.mode,
            String::from_utf8_lossy(&file.content)
        );
    }
}

fn copy(out: &mut String, op: &CopyOp) {
    let source = match &op.source {
        Source::Context(_) => "context".to_owned(),
        Source::Stage => "input 1".to_owned(),
        Source::Inline(files) => format!("heredocs {files:?}"),
        Source::Mkdir => "mkdir".to_owned(),
        Source::Url { url, checksum, .. } => match checksum {
            Some(checksum) => format!("url {url} checksum {checksum}"),
            None => format!("url {url}"),
        },
    };
    let _ = writeln!(out, "  copy from {source}");
    if !op.sources.is_empty() {
        let _ = writeln!(out, "    sources {:?}", op.sources);
    }
    let dir = if op.dest_is_dir { " (a directory)" } else { "" };
    let _ = writeln!(out, "    dest {}{dir}", op.dest);
    if let Some(chown) = &op.chown {
        let _ = writeln!(out, "    chown {chown}");
    }
    if let Some(chmod) = &op.chmod {
        let _ = writeln!(out, "    chmod {chmod:?}");
    }
    let flags: Vec<&str> = [
        (op.unpack, "unpack"),
        (op.parents, "parents"),
        (op.link, "link"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    if !flags.is_empty() {
        let _ = writeln!(out, "    flags {}", flags.join(" "));
    }
    if !op.excludes.is_empty() {
        let _ = writeln!(out, "    excludes {:?}", op.excludes);
    }
}
