//! `buildr pull [--platform P] [-q] IMAGE`: docker's progress lines
//! (`<layer>: Pull complete`, `Digest:`, `Status:`), then the full name.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Mutex;

use buildr::ProgressSink;
use buildr::Registry;
use buildr::registry::PullOptions;
use buildr::registry::RegistryEvent;

use crate::args::{Cli, PullArgs};

pub fn run(cli: &Cli, args: &PullArgs) -> anyhow::Result<ExitCode> {
    let images = super::open_images(cli)?;
    let registry = Registry::from_env()?;
    let progress = (!args.quiet).then(|| {
        if !has_tag_or_digest(&args.image) {
            println!("Using default tag: latest");
        }
        printer()
    });
    let opts = PullOptions {
        platform: args.platform.clone(),
        progress,
        lazy: false,
    };
    let report = registry.pull(&images, &args.image, &opts)?;
    let familiar = buildr::image::familiar_name(&report.name);
    if !args.quiet {
        println!("Digest: {}", report.digest);
        if report.downloaded {
            println!("Status: Downloaded newer image for {familiar}");
        } else {
            println!("Status: Image is up to date for {familiar}");
        }
    }
    println!("{}", report.name);
    Ok(ExitCode::SUCCESS)
}

/// Whether the user named a tag or digest (docker says "Using default tag"
/// otherwise).
fn has_tag_or_digest(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    image.contains('@') || last.contains(':')
}

/// Prints one line per layer state change, as docker does without a tty.
fn printer() -> ProgressSink<RegistryEvent> {
    let present: Mutex<HashSet<buildr::image::Digest>> = Mutex::new(HashSet::new());
    ProgressSink::new(move |event: RegistryEvent| {
        let mut present = present.lock().unwrap_or_else(|e| e.into_inner());
        match &event {
            RegistryEvent::Resolved { reference, .. } => {
                let (path, what) = remote_path(reference);
                println!("{what}: Pulling from {path}");
            }
            RegistryEvent::LayerExists { digest } => {
                present.insert(*digest);
                println!("{}: Already exists", short(digest));
            }
            RegistryEvent::LayerStart { digest, .. } => {
                println!("{}: Pulling fs layer", short(digest));
            }
            RegistryEvent::LayerDone { digest } => {
                println!("{}: Download complete", short(digest));
            }
            RegistryEvent::LayerUnpacked { digest } if !present.contains(digest) => {
                println!("{}: Pull complete", short(digest));
            }
            _ => {}
        }
    })
}

/// `127.0.0.1:5000/x:v1` -> (`x`, `v1`); a digest reference gives the digest.
fn remote_path(reference: &str) -> (&str, &str) {
    let (name, what) = match reference.split_once('@') {
        Some((name, digest)) => (name, digest),
        None => {
            let slash = reference.rfind('/').map_or(0, |i| i + 1);
            match reference[slash..].rfind(':') {
                Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
                None => (reference, "latest"),
            }
        }
    };
    // A reference with both keeps its tag before the '@'.
    let name = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    let path = name.split_once('/').map_or(name, |(_, path)| path);
    (path, what)
}

pub(crate) fn short(digest: &buildr::image::Digest) -> String {
    digest.hex()[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            remote_path("docker.io/library/busybox:latest"),
            ("library/busybox", "latest")
        );
        assert_eq!(remote_path("127.0.0.1:5000/x:v1"), ("x", "v1"));
        assert_eq!(
            remote_path(&format!("127.0.0.1:5000/a/b@{d}")),
            ("a/b", d.as_str())
        );
        assert_eq!(
            remote_path(&format!("127.0.0.1:5000/a/b:t@{d}")),
            ("a/b", d.as_str())
        );
        assert!(!has_tag_or_digest("127.0.0.1:5000/x"));
        assert!(has_tag_or_digest("127.0.0.1:5000/x:v1"));
        assert!(has_tag_or_digest("x@sha256:00"));
    }
}
