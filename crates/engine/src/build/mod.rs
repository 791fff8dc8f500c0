//! The build: [`Builder`] turns a Dockerfile and a context into an image in
//! the local store — parse, lower the reachable stages into a graph, solve
//! it in parallel against the store's cache, export config and manifest,
//! then set the tags.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let context = dir.path().join("ctx");
//! std::fs::create_dir(&context)?;
//! std::fs::write(context.join("hello.txt"), "hello\n")?;
//! std::fs::write(
//!     context.join("Dockerfile"),
//!     "FROM scratch\nCOPY hello.txt /hello.txt\nCMD [\"/hello\"]\n",
//! )?;
//! let result = buildr::Builder::new(dir.path().join("store"))
//!     .context_dir(&context)
//!     .tag("example:latest")
//!     .build()?;
//! assert!(result.image_id.to_string().starts_with("sha256:"));
//! assert_eq!(result.tags, ["docker.io/library/example:latest"]);
//! // A second build of the same inputs is served from the cache.
//! let again = buildr::Builder::new(dir.path().join("store"))
//!     .context_dir(&context)
//!     .build()?;
//! assert!(again.steps.iter().all(|s| s.cached));
//! assert_eq!(again.image_id.to_string().len(), result.image_id.to_string().len());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use buildr_cache::{Digest, Store};
use buildr_oci::LayerOptions;
use buildr_solver::{CacheStatus, Solver};

use crate::build_cache::BuildCache;
use crate::check::DockerfileSource;
use crate::context::{
    BuildContext, ContextOptions, StdinInput, find_dockerignore, load_dockerignore,
};
use crate::dockerignore::DockerIgnore;
use crate::error::{Error, Result};
use crate::image::Images;
use crate::lower::base::StoreImages;
use crate::lower::{Plan, lower};
use crate::ops::commit::Env;
use crate::ops::export::export;
use crate::registry::PullPolicy;
use cache_io::Imports;

/// A progress event of a build (a step started, was cached, logged,
/// finished or failed), as the solver emits it.
pub use buildr_solver::Event as ProgressEvent;
pub use buildr_solver::{CacheKey, CancelToken, LogStream, ProgressSink, VertexInfo};
pub use cache_io::{
    CacheDestination, CacheExport, CacheExportReport, CacheImport, CacheMode, CachePruneReport,
    prune_registry_cache,
};
pub use epoch::RewriteTimestamp;
use input::{ContextInput, DockerfileInput};
pub use output::{DEFAULT_GZIP_LEVEL, LayerCompression, Output};
use output::{layer_options, rfc3339};
pub(crate) use secrets::Secrets;
pub use secrets::{SecretSource, parse_ssh};

pub(crate) mod cache_io;
mod epoch;
mod input;
mod output;
mod secrets;

/// The network `RUN` steps get by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// The default network: one isolated namespace per build, reaching the
    /// outside through slirp4netns (user-mode networking), never the host's
    /// loopback; steps that hit the cache never start it.
    #[default]
    Default,
    /// No network (loopback only).
    None,
    /// The host's network; needs [`Builder::allow_host_network`].
    Host,
}

/// Builds one Dockerfile. Configure with the chained setters, then call
/// [`build`](Builder::build).
pub struct Builder {
    root: PathBuf,
    context: Option<ContextInput>,
    dockerfile: DockerfileInput,
    tags: Vec<String>,
    build_args: BTreeMap<String, String>,
    target: Option<String>,
    no_cache: bool,
    no_cache_filter: Vec<String>,
    pull: bool,
    labels: BTreeMap<String, String>,
    network: NetworkMode,
    allow_host_network: bool,
    secrets: secrets::Secrets,
    platform: Option<String>,
    jobs: Option<NonZeroUsize>,
    events: Option<ProgressSink<ProgressEvent>>,
    cancel: Option<CancelToken>,
    run_output_in_errors: bool,
    output: Output,
    layer_compression: LayerCompression,
    rewrite_timestamp: RewriteTimestamp,
    cache_to: Vec<CacheExport>,
    cache_from: Vec<CacheImport>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("root", &self.root)
            .field("tags", &self.tags)
            .field("target", &self.target)
            .field("no_cache", &self.no_cache)
            .finish_non_exhaustive()
    }
}

/// One step of a finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// `[build 2/4] COPY . .`
    pub name: String,
    /// `Dockerfile:7`
    pub location: String,
    /// The result came from the cache.
    pub cached: bool,
    pub duration: Duration,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The image id: the digest of the config blob.
    pub image_id: Digest,
    pub manifest_digest: Digest,
    /// The tags set, normalized (`docker.io/library/app:latest`).
    pub tags: Vec<String>,
    /// Every step the build looked at, in the order they completed.
    pub steps: Vec<StepReport>,
    /// Warnings (unused build args, ...).
    pub warnings: Vec<String>,
    /// The stages that were built (names, or `stage-N`), dependencies first.
    pub stages: Vec<String>,
    /// One per `--cache-to` that was written.
    pub cache_exports: Vec<CacheExportReport>,
}

impl Builder {
    /// A build against the store at `root`. It needs a context
    /// ([`Builder::context_dir`], [`Builder::context_tar`] or
    /// [`Builder::context_tar_or_dockerfile`]; a build without one is an
    /// error, never the current directory by accident) and reads
    /// `<context>/Dockerfile` unless told otherwise.
    pub fn new(root: impl Into<PathBuf>) -> Builder {
        Builder {
            root: root.into(),
            context: None,
            dockerfile: DockerfileInput::Default,
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            target: None,
            no_cache: false,
            no_cache_filter: Vec::new(),
            pull: false,
            labels: BTreeMap::new(),
            network: NetworkMode::Default,
            allow_host_network: false,
            secrets: secrets::Secrets::default(),
            platform: None,
            jobs: None,
            events: None,
            cancel: None,
            run_output_in_errors: true,
            output: Output::Image,
            layer_compression: LayerCompression::default(),
            rewrite_timestamp: RewriteTimestamp::default(),
            cache_to: Vec::new(),
            cache_from: Vec::new(),
        }
    }

    /// Also exports the build cache there (`--cache-to`, repeatable).
    pub fn cache_to(mut self, export: CacheExport) -> Builder {
        self.cache_to.push(export);
        self
    }

    /// Also looks steps up there, after the store and in the order given
    /// (`--cache-from`, repeatable).
    pub fn cache_from(mut self, import: CacheImport) -> Builder {
        self.cache_from.push(import);
        self
    }

    /// Also writes the result there (`-o`).
    pub fn output(mut self, output: Output) -> Builder {
        self.output = output;
        self
    }

    /// How the layers this build makes are compressed (default: gzip
    /// level [`DEFAULT_GZIP_LEVEL`]).
    pub fn layer_compression(mut self, compression: LayerCompression) -> Builder {
        self.layer_compression = compression;
        self
    }

    /// Whether `SOURCE_DATE_EPOCH` clamps the file times inside the layers
    /// (default: it does; see [`RewriteTimestamp`]).
    pub fn rewrite_timestamp(mut self, rewrite: RewriteTimestamp) -> Builder {
        self.rewrite_timestamp = rewrite;
        self
    }

    /// The build context directory.
    pub fn context_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.context = Some(ContextInput::Dir(dir.as_ref().to_path_buf()));
        self
    }

    /// A tar stream (plain, gzip or zstd) as the context (`buildr build -`).
    pub fn context_tar(mut self, tar: impl Read + Send + 'static) -> Builder {
        self.context = Some(ContextInput::Tar(Box::new(tar)));
        self
    }

    /// A tar stream as the context, or else a Dockerfile built with an
    /// empty context, told by content as docker's `build -` does (the
    /// Dockerfile then replaces any [`dockerfile`](Self::dockerfile)).
    pub fn context_tar_or_dockerfile(mut self, input: impl Read + Send + 'static) -> Builder {
        self.context = Some(ContextInput::TarOrDockerfile(Box::new(input)));
        self
    }

    /// The Dockerfile (`-f`): a path, or standard input.
    pub fn dockerfile(mut self, source: DockerfileSource) -> Builder {
        self.dockerfile = DockerfileInput::Source(source);
        self
    }

    /// The Dockerfile's text, named `name` in messages.
    pub fn dockerfile_bytes(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Builder {
        self.dockerfile = DockerfileInput::Bytes {
            name: name.to_owned(),
            bytes: bytes.into(),
        };
        self
    }

    /// Tags the result (may be given several times).
    pub fn tag(mut self, name: &str) -> Builder {
        self.tags.push(name.to_owned());
        self
    }

    /// `--build-arg name=value`.
    pub fn build_arg(mut self, name: &str, value: &str) -> Builder {
        self.build_args.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Builds this stage instead of the last.
    pub fn target(mut self, stage: &str) -> Builder {
        self.target = Some(stage.to_owned());
        self
    }

    /// Never use cached results (they are still saved).
    pub fn no_cache(mut self, on: bool) -> Builder {
        self.no_cache = on;
        self
    }

    /// `--pull`: always ask the registry for base images, even when the
    /// local store has them (without it, the local store is used first).
    pub fn pull(mut self, pull: bool) -> Builder {
        self.pull = pull;
        self
    }

    /// Never use cached results for this stage (and what depends on it).
    pub fn no_cache_filter(mut self, stage: &str) -> Builder {
        self.no_cache_filter.push(stage.to_owned());
        self
    }

    /// Adds a label to the image config.
    pub fn label(mut self, key: &str, value: &str) -> Builder {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The default network of `RUN` steps.
    pub fn network(mut self, mode: NetworkMode) -> Builder {
        self.network = mode;
        self
    }

    /// Grants the `network.host` entitlement.
    pub fn allow_host_network(mut self, on: bool) -> Builder {
        self.allow_host_network = on;
        self
    }

    /// A secret for `RUN --mount=type=secret,id=ID` (`--secret`). Its value
    /// is read when a step mounts it and never enters a key, layer or config.
    pub fn secret(mut self, id: &str, source: SecretSource) -> Builder {
        self.secrets.secrets.insert(id.to_owned(), source);
        self
    }

    /// An ssh-agent socket for `RUN --mount=type=ssh,id=ID` (`--ssh`).
    pub fn ssh(mut self, id: &str, socket: impl Into<PathBuf>) -> Builder {
        self.secrets.ssh.insert(id.to_owned(), socket.into());
        self
    }

    /// The target platform (`linux/amd64`); only the host's is supported.
    pub fn platform(mut self, platform: &str) -> Builder {
        self.platform = Some(platform.to_owned());
        self
    }

    /// Steps run at once (default: the number of cores).
    pub fn jobs(mut self, jobs: NonZeroUsize) -> Builder {
        self.jobs = Some(jobs);
        self
    }

    /// Where progress events go.
    pub fn progress(mut self, events: impl Into<ProgressSink<ProgressEvent>>) -> Builder {
        self.events = Some(events.into());
        self
    }

    /// Whether a failed RUN's error carries the step's last output lines
    /// (`last output:`; the default). A caller whose progress view has
    /// shown that output (BuildKit's `------ > [2/2] RUN ...:` block)
    /// turns it off, so the lines are not printed twice.
    pub fn run_output_in_errors(mut self, include: bool) -> Builder {
        self.run_output_in_errors = include;
        self
    }

    /// Cancels the build when `token` is cancelled.
    pub fn cancel_token(mut self, token: CancelToken) -> Builder {
        self.cancel = Some(token);
        self
    }

    /// Runs the build.
    pub fn build(mut self) -> Result<BuildResult> {
        let store = Store::open(&self.root)?;
        let images = Images::with_store(store.clone());
        let host_platform = format!("linux/{}", crate::image::host_architecture());
        let platform = self
            .platform
            .clone()
            .unwrap_or_else(|| host_platform.clone());
        if platform != host_platform {
            return Err(Error::BuildOption {
                message: format!(
                    "--platform {platform}: only the host platform {host_platform} can be built"
                ),
            });
        }
        self.secrets.check()?;
        let (context, dockerfile_path) = self.open_context(&store)?;
        let (file, text) = self.read_dockerfile(context.root(), dockerfile_path.as_deref())?;
        let dockerfile = buildr_parser::parse(&file, &text)?;
        // A failure located in the Dockerfile carries the lines it points at.
        self.build_parsed(store, images, platform, context, &dockerfile)
            .map_err(|err| err.in_dockerfile(&dockerfile, &text))
    }

    /// The network RUN steps join: the default one is one isolated
    /// user-mode network (slirp4netns) set up once per build and joined by
    /// every RUN step, so it costs no per-step latency; it starts only when
    /// a RUN step actually runs (a fully cached build starts no helper) and
    /// is torn down when the returned holder drops.
    fn run_network(
        &self,
        dockerfile: &buildr_parser::Dockerfile,
    ) -> Result<(Option<buildr_exec::BuildNetwork>, buildr_exec::Network)> {
        let build_network = match self.network {
            // Made even without a RUN instruction in the file: a base
            // image's ONBUILD RUN needs it too. Without slirp4netns, only
            // a file that has RUN steps fails.
            NetworkMode::Default => {
                match buildr_exec::BuildNetwork::lazy(&buildr_exec::BuildNetworkOptions::default())
                {
                    Ok(network) => Some(network),
                    Err(e) if has_run(dockerfile) => return Err(e.into()),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let network = match self.network {
            NetworkMode::Default => match &build_network {
                Some(net) => net.network(),
                None => buildr_exec::Network::None,
            },
            NetworkMode::None => buildr_exec::Network::None,
            NetworkMode::Host if self.allow_host_network => buildr_exec::Network::Host,
            NetworkMode::Host => {
                return Err(Error::BuildOption {
                    message: "--network host needs the entitlement: pass --allow network.host"
                        .to_owned(),
                });
            }
        };
        Ok((build_network, network))
    }

    /// Solves the lowered graph. A cache hit whose layers turned out
    /// unusable when a step needed them (a blob gone or not what its entry
    /// says) makes the build run again without the caches, on what is
    /// verified and local by now: a cache never fails a build.
    fn solve(
        &self,
        cache: Arc<BuildCache>,
        lowered: &crate::lower::Lowered,
        imports: &Imports,
        seen: &cache_io::Seen,
    ) -> Result<buildr_solver::Solution<crate::ops::State>> {
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN));
        let mut solver = Solver::new(cache).jobs(jobs);
        if let Some(events) = &self.events {
            solver = solver.events(events.clone());
        }
        if let Some(cancel) = &self.cancel {
            solver = solver.cancel_token(cancel.clone());
        }
        Ok(match solver.solve(&lowered.graph, &[lowered.target]) {
            // A cache hit whose layers turned out unusable when a step
            // needed them (a blob gone or not what its entry says): the
            // build runs again without the caches, on what is verified
            // and local by now. A cache never fails a build.
            Err(buildr_solver::Error::Backend {
                action: "prepare",
                source,
                ..
            }) if !imports.is_empty() => {
                imports.abandon(&format!(
                    "a cache hit could not be used ({}); building without the caches",
                    crate::error::error_chain(&*source)
                ));
                seen.clear();
                solver
                    .solve(&lowered.graph, &[lowered.target])
                    .map_err(located)?
            }
            other => other.map_err(located)?,
        })
    }

    /// Writes every `--cache-to`; a failed one with `ignore-error=true` is a
    /// warning.
    fn export_caches(
        &self,
        store: &Store,
        seen: &cache_io::Seen,
        chain: &std::collections::HashSet<buildr_cache::RecordKey>,
        imports: &Imports,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<CacheExportReport>> {
        let mut cache_exports = Vec::new();
        for export in &self.cache_to {
            match cache_io::export(store, export, seen, chain, imports) {
                Ok(report) => cache_exports.push(report),
                Err(e) if export.ignore_error => {
                    let warning = format!("cache export failed (ignore-error=true): {e}");
                    tracing::debug!("{warning}");
                    warnings.push(warning);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(cache_exports)
    }

    /// Where the build's `FROM` images come from: the store, pulled when
    /// missing or under `--pull`.
    fn base_images<'a>(&self, images: &'a Images) -> StoreImages<'a> {
        StoreImages {
            images,
            policy: if self.pull {
                PullPolicy::Always
            } else {
                PullPolicy::Missing
            },
            // Lazily (config now, layers when read) when the build has
            // `--cache-from` sources: its steps may never read the layers.
            lazy: !self.cache_from.is_empty(),
        }
    }

    /// [`Builder::build`] once the context is open and the Dockerfile parsed.
    fn build_parsed(
        &self,
        store: Store,
        images: Images,
        platform: String,
        context: BuildContext,
        dockerfile: &buildr_parser::Dockerfile,
    ) -> Result<BuildResult> {
        let (_build_network, network) = self.run_network(dockerfile)?;
        let _lease = store.lease()?;
        // Blobs, snapshots and records of this build skip their fsyncs; one
        // `syncfs` before the tags makes them durable (the rule is in
        // buildr-cache's `durability.rs` and ARCHITECTURE.md).
        let deferred = store.defer_sync()?;
        let work = work_dir(&store)?;
        let source_date_epoch = epoch::source_date_epoch();
        let imports = Arc::new(Imports::open(&self.cache_from, !self.cache_to.is_empty()));
        let env = Env {
            store: store.clone(),
            work: work.path().to_path_buf(),
            layer: layer_options(
                self.layer_compression,
                self.rewrite_timestamp.layer_epoch(source_date_epoch),
            ),
            caches: Arc::clone(&imports),
            output_in_errors: self.run_output_in_errors,
        };
        let context = Arc::new(context);
        let plan = Plan {
            dockerfile,
            build_args: self.build_args.clone(),
            target: self.target.clone(),
            platform,
            network,
            allow_host_network: self.allow_host_network,
            secrets: Arc::new(self.secrets.clone()),
            no_cache_filter: self.no_cache_filter.clone(),
            base_images: &self.base_images(&images),
            context: Arc::clone(&context),
            env,
        };
        let lowered = lower(&plan)?;
        let cache = self.build_cache(&store, &plan.env.layer, &imports)?;
        let seen = cache.seen();
        let cache_key_salt = cache.clone();
        let solution = self.solve(Arc::new(cache), &lowered, &imports, &seen)?;
        let state = solution
            .output(lowered.target)
            .cloned()
            .ok_or_else(|| Error::from(buildr_solver::Error::Cancelled))?;

        // Layers no step read stay in the cache they came from until
        // something reads them (see `image::remote_blobs`).
        imports.finish(&store, &state)?;

        // The store keys of the final stage's steps (`mode=min`, inline).
        let chain = lowered
            .graph
            .first_input_chain(lowered.target)
            .iter()
            .filter_map(|digest| solution.report(digest))
            .map(|report| cache_key_salt.store_key(&report.key))
            .collect();
        let config = self.final_config(lowered.config, &seen, &chain, &state);
        let created = rfc3339(source_date_epoch.unwrap_or(state.created));
        let exported = export(&store, &state, config, &lowered.steps, &created)?;
        if let Some(deferred) = deferred {
            deferred.finish()?;
        }
        let tags = self
            .tags
            .iter()
            .map(|tag| {
                let name = crate::image::tag_name(tag)?;
                store.set_tag(&name, &exported.manifest)?;
                Ok(name)
            })
            .collect::<Result<Vec<_>>>()?;
        self.write_output(&store, &images, &state, &tags, &exported.manifest)?;
        // Best effort: a stat cache that cannot be saved only costs rehashing.
        let _ = context.save();
        let mut warnings = lowered.warnings;
        warnings.extend(imports.take_warnings());
        let cache_exports = self.export_caches(&store, &seen, &chain, &imports, &mut warnings)?;
        let steps = step_reports(&solution);
        Ok(BuildResult {
            image_id: exported.config,
            manifest_digest: exported.manifest,
            tags,
            steps,
            warnings,
            stages: stage_names(dockerfile, &lowered.stages),
            cache_exports,
        })
    }

    /// The solver's cache over the store: this build's `--no-cache`, its
    /// layer options and its `--cache-from` imports.
    fn build_cache(
        &self,
        store: &Store,
        layer: &LayerOptions,
        imports: &Arc<Imports>,
    ) -> Result<BuildCache> {
        Ok(BuildCache::new(store.clone(), self.no_cache)
            .map_err(|source| Error::Io {
                action: "create the cache lock directory in",
                path: store.root().to_path_buf(),
                source,
            })?
            .layer_options(layer, &layer_options(LayerCompression::default(), None))
            .imports(Arc::clone(imports)))
    }

    /// The lowered target's config with what this build adds: its inline
    /// cache (never a base image's) and `--label`s.
    fn final_config(
        &self,
        mut config: buildr_oci::ImageConfig,
        seen: &cache_io::Seen,
        chain: &std::collections::HashSet<buildr_cache::RecordKey>,
        state: &crate::ops::State,
    ) -> buildr_oci::ImageConfig {
        // A base image's inline cache describes the base's build, not this one.
        config.extra.remove(cache_io::INLINE_FIELD);
        if let Some((field, value)) = cache_io::inline_field(&self.cache_to, seen, chain, state) {
            config.extra.insert(field.to_owned(), value);
        }
        if !self.labels.is_empty() {
            let container = config.config.get_or_insert_with(Default::default);
            let labels = container.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(self.labels.clone());
        }
        config
    }
}

/// `<store>/tmp/build-*`: this build's work dir, removed when dropped.
fn work_dir(store: &Store) -> Result<tempfile::TempDir> {
    let tmp = store.root().join("tmp");
    tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&tmp)
        .map_err(|source| Error::Io {
            action: "create a build directory in",
            path: tmp.clone(),
            source,
        })
}

/// The names of the lowered stages (`stage-N` for an unnamed one).
fn stage_names(dockerfile: &buildr_parser::Dockerfile, stages: &[usize]) -> Vec<String> {
    stages
        .iter()
        .map(|&idx| {
            dockerfile.stages[idx]
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{idx}"))
        })
        .collect()
}

/// What each step did, for the caller.
fn step_reports(solution: &buildr_solver::Solution<crate::ops::State>) -> Vec<StepReport> {
    solution
        .reports()
        .iter()
        .map(|r| StepReport {
            name: r.vertex.name.clone(),
            location: r.vertex.location.clone(),
            cached: r.status == CacheStatus::Cached,
            duration: r.duration,
        })
        .collect()
}

/// A failed step's own error (`Dockerfile:7: RUN false: exit code 1`)
/// rather than the solver's wrapper, when the step located it already.
fn located(err: buildr_solver::Error) -> Error {
    match err {
        buildr_solver::Error::OpFailed {
            name,
            location,
            digest,
            source,
        } => match source.downcast::<Error>() {
            Ok(own) if matches!(*own, Error::Build { .. } | Error::Step { .. }) => *own,
            Ok(own) => Error::from(buildr_solver::Error::OpFailed {
                name,
                location,
                digest,
                source: own,
            }),
            Err(source) => Error::from(buildr_solver::Error::OpFailed {
                name,
                location,
                digest,
                source,
            }),
        },
        other => Error::from(other),
    }
}

/// Whether any stage has a RUN step (directly or as an ONBUILD trigger's
/// text), i.e. whether the build needs its network at all.
fn has_run(dockerfile: &buildr_parser::Dockerfile) -> bool {
    dockerfile.stages.iter().any(|stage| {
        stage
            .instructions
            .iter()
            .any(|i| matches!(i.value, buildr_parser::Instruction::Run(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_GZIP_LEVEL, LayerCompression, Output};
    use buildr_oci::Compression;

    #[test]
    fn output_specs_carry_layer_compression() {
        let default = LayerCompression::from_output_spec("type=image").unwrap();
        assert_eq!(default.compression, Compression::Gzip);
        assert_eq!(default.level, Some(DEFAULT_GZIP_LEVEL));
        let zstd =
            LayerCompression::from_output_spec("type=oci,dest=x.tar,compression=zstd").unwrap();
        assert_eq!((zstd.compression, zstd.level), (Compression::Zstd, None));
        let gz9 = LayerCompression::from_output_spec("type=image,compression-level=9").unwrap();
        assert_eq!((gz9.compression, gz9.level), (Compression::Gzip, Some(9)));
        let none = LayerCompression::from_output_spec("compression=uncompressed").unwrap();
        assert_eq!(none.compression, Compression::None);
        for bad in [
            "type=image,compression=lz4",
            "type=image,compression-level=10",
            "compression=zstd,compression-level=0",
            "compression-level=x",
        ] {
            let err = LayerCompression::from_output_spec(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        assert!(matches!(
            Output::parse("type=oci,dest=o.tar,compression=zstd,compression-level=3").unwrap(),
            Output::Oci(_)
        ));
        assert!(matches!(
            Output::parse("type=image,compression=gzip").unwrap(),
            Output::Image
        ));
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
