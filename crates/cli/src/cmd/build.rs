//! `buildr build`: options to a `buildr::Builder`, progress rendered on
//! stderr while the build runs.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;

use anyhow::{Context, bail};
use buildr::Builder;
use buildr::build::CacheExport;
use buildr::build::CacheImport;
use buildr::build::LayerCompression;
use buildr::build::NetworkMode;
use buildr::build::Output;
use buildr::build::RewriteTimestamp;
use buildr::build::SecretSource;
use buildr::check::DockerfileSource;

use crate::args::{BuildArgs, Cli};
use crate::progress::{self, Mode};

pub fn run(cli: &Cli, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    // First, before any thread is spawned (they inherit the mask).
    let cancel = buildr::build::CancelToken::new();
    let caught = cancel_on_signals(&cancel);
    let root = match &cli.root {
        Some(root) => root.clone(),
        None => buildr::default_root()?,
    };
    let mut builder = configure(Builder::new(&root), args)?;
    let mode = Mode::choose(args.quiet, &args.progress);
    let (tx, rx) = mpsc::channel();
    // The tty and plain views show a failed step's output; the error
    // need not say it again.
    builder = builder
        .progress(tx)
        .run_output_in_errors(!matches!(mode, Mode::Tty | Mode::Plain));
    let interrupted = cancel.clone();
    let render = std::thread::spawn(move || progress::render(mode, &rx, &interrupted));
    let result = builder.cancel_token(cancel).build();
    let _ = render.join();
    // From here on (push, output), SIGINT and SIGTERM act as usual again.
    let _ = signal_set().thread_unblock();
    let signal = caught.load(Ordering::SeqCst);
    if signal != 0 {
        // The build was cancelled and cleaned up; exit as a shell would
        // report the signal.
        eprintln!("buildr: build interrupted by signal {signal}");
        return Ok(ExitCode::from(128u8.saturating_add(signal as u8)));
    }
    let result = match result {
        Ok(result) => result,
        Err(err) => {
            // BuildKit's source block (`Dockerfile:2`, the instruction's
            // lines marked `>>>`) above the error, as `docker build` prints
            // it (in every mode: the error itself is plain text too).
            if let Some(source_map) = err.source_map() {
                eprint!("{source_map}");
            }
            return Err(err.into());
        }
    };
    let mut stderr = std::io::stderr().lock();
    for warning in &result.warnings {
        writeln!(stderr, "WARNING: {warning}")?;
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, result.image_id.to_string())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let files_out = match &args.output {
        Some(spec) => match Output::parse(spec)? {
            Output::Local(_) => Some("exporting to client directory"),
            Output::Tar(_) => Some("exporting to client tarball"),
            _ => None,
        },
        None => None,
    };
    report(&result, args.quiet, mode, files_out, &mut stderr)?;
    if args.push {
        if result.tags.is_empty() {
            bail!("--push needs at least one -t NAME:TAG");
        }
        drop(stderr);
        for tag in &result.tags {
            super::push::push(cli, tag, args.quiet)
                .with_context(|| format!("the build succeeded but pushing {tag} failed"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The build the flags ask for.
fn configure(builder: Builder, args: &BuildArgs) -> anyhow::Result<Builder> {
    let mut builder = builder.pull(args.pull);
    builder = if args.context == "-" {
        if args.file.as_deref().is_some_and(|f| f.as_os_str() == "-") {
            bail!("the context and the Dockerfile cannot both come from stdin");
        }
        builder.context_tar_or_dockerfile(std::io::stdin())
    } else {
        builder.context_dir(&args.context)
    };
    if let Some(file) = &args.file {
        builder = builder.dockerfile(if file.as_os_str() == "-" {
            DockerfileSource::Stdin
        } else {
            DockerfileSource::Path(file.clone())
        });
    }
    for tag in &args.tags {
        builder = builder.tag(tag);
    }
    for arg in &args.build_args {
        builder = match arg.split_once('=') {
            Some((key, value)) => builder.build_arg(key, value),
            // `--build-arg KEY` takes the value from the environment, as docker does.
            None => match std::env::var(arg) {
                Ok(value) => builder.build_arg(arg, &value),
                Err(_) => builder,
            },
        };
    }
    for label in &args.labels {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        builder = builder.label(key, value);
    }
    if let Some(target) = &args.target {
        builder = builder.target(target);
    }
    for stage in &args.no_cache_filter {
        builder = builder.no_cache_filter(stage);
    }
    builder = builder.no_cache(args.no_cache);
    for spec in &args.cache_to {
        builder = builder.cache_to(CacheExport::parse(spec)?);
    }
    for spec in &args.cache_from {
        builder = builder.cache_from(CacheImport::parse(spec)?);
    }
    builder = builder.network(match args.network.as_str() {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        _ => NetworkMode::Default,
    });
    for entitlement in &args.allow {
        match entitlement.as_str() {
            "network.host" => builder = builder.allow_host_network(true),
            other => bail!("--allow {other}: unknown entitlement (known: network.host)"),
        }
    }
    for spec in &args.secrets {
        let (id, source) = SecretSource::parse(spec)?;
        builder = builder.secret(&id, source);
    }
    for spec in &args.ssh {
        let (id, socket) = buildr::build::parse_ssh(spec)?;
        builder = builder.ssh(&id, socket);
    }
    if let Some(platform) = &args.platform {
        builder = builder.platform(platform);
    }
    if let Some(output) = &args.output {
        builder = builder
            .output(Output::parse(output)?)
            .layer_compression(LayerCompression::from_output_spec(output)?);
        if let Some(rewrite) = RewriteTimestamp::from_output_spec(output)? {
            builder = builder.rewrite_timestamp(rewrite);
        }
    }
    if let Some(jobs) = args.jobs {
        builder = builder.jobs(jobs);
    }
    Ok(builder)
}

/// What a finished build prints: its id (`-q`), the json `done` event, or
/// the cache exports, image id and tags as BuildKit's last lines; for a
/// `-o type=local|tar` build (no image written) BuildKit's exporter line
/// `files_out` instead of "writing image".
fn report(
    result: &buildr::build::BuildResult,
    quiet: bool,
    mode: Mode,
    files_out: Option<&str>,
    stderr: &mut impl Write,
) -> anyhow::Result<()> {
    if quiet {
        println!("{}", result.image_id);
    } else {
        match mode {
            Mode::Json => {
                let done = serde_json::json!({
                    "event": "done",
                    "image_id": result.image_id.to_string(),
                    "manifest": result.manifest_digest.to_string(),
                    "tags": result.tags,
                    "stages": result.stages,
                });
                writeln!(stderr, "{done}")?;
            }
            _ => {
                for export in &result.cache_exports {
                    writeln!(
                        stderr,
                        "exporting cache to {}: {} entries, {} blobs ({} bytes) uploaded done",
                        export.destination,
                        export.entries,
                        export.blobs_uploaded,
                        export.bytes_uploaded
                    )?;
                }
                match files_out {
                    Some(exporter) => writeln!(stderr, "{exporter} done")?,
                    None => writeln!(stderr, "writing image {} done", result.image_id)?,
                }
                for tag in &result.tags {
                    writeln!(stderr, "naming to {tag} done")?;
                }
            }
        }
    }
    Ok(())
}

/// Blocks SIGINT and SIGTERM here (and so in every thread spawned later)
/// and cancels `cancel` from a thread when one arrives, so the build tears
/// down its sandboxes, mounts and temp files instead of dying mid-write.
/// Returns the signal caught (0 while none).
fn cancel_on_signals(cancel: &buildr::build::CancelToken) -> Arc<AtomicI32> {
    let caught = Arc::new(AtomicI32::new(0));
    let set = signal_set();
    if set.thread_block().is_err() {
        return caught;
    }
    let cancel = cancel.clone();
    let flag = Arc::clone(&caught);
    std::thread::spawn(move || {
        if let Ok(signal) = set.wait() {
            flag.store(signal as i32, Ordering::SeqCst);
            cancel.cancel();
        }
    });
    caught
}

fn signal_set() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}
