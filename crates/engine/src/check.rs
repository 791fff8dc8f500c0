//! `buildr check`: parse a Dockerfile and report its errors and warnings
//! without building, like `docker build --check`.

use std::io::Read;
use std::path::{Path, PathBuf};

use buildr_parser::{Diagnostic, Severity};

use crate::error::{Error, Result};

/// Where the Dockerfile to check comes from.
#[derive(Debug, Clone)]
pub enum DockerfileSource {
    /// `-f -`: read from standard input.
    Stdin,
    /// A path as the user gave it.
    Path(PathBuf),
}

/// What to check: docker's rules, a `-f` path or `<context>/Dockerfile`.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub context: PathBuf,
    pub dockerfile: Option<DockerfileSource>,
}

/// The outcome of a check: errors make the check fail, warnings do not.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The file name used in diagnostics.
    pub file: String,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Reads and parses the Dockerfile; a parse failure is a report with errors,
/// only a failure to read the file is an `Err`.
pub fn check(options: &CheckOptions) -> Result<CheckReport> {
    let (file, source) = read_dockerfile(options)?;
    let mut report = CheckReport {
        file: file.clone(),
        ..CheckReport::default()
    };
    match buildr_parser::parse(&file, &source) {
        Ok(dockerfile) => report.warnings = dockerfile.warnings,
        Err(err) => {
            let (errors, warnings) = err
                .diagnostics
                .into_iter()
                .partition(|d| d.severity == Severity::Error);
            report.errors = errors;
            report.warnings = warnings;
        }
    }
    Ok(report)
}

fn read_dockerfile(options: &CheckOptions) -> Result<(String, Vec<u8>)> {
    match &options.dockerfile {
        Some(DockerfileSource::Stdin) => {
            let mut source = Vec::new();
            std::io::stdin()
                .read_to_end(&mut source)
                .map_err(|source| Error::Io {
                    action: "read Dockerfile from",
                    path: PathBuf::from("<stdin>"),
                    source,
                })?;
            Ok(("Dockerfile".to_owned(), source))
        }
        Some(DockerfileSource::Path(path)) => read_file(path),
        None => read_file(&default_dockerfile(&options.context)),
    }
}

/// The Dockerfile of a context when none is named: `Dockerfile`, or
/// `dockerfile` when only that exists (docker's and BuildKit's fallback,
/// moby/moby#10858). A missing file is reported as `Dockerfile`.
pub(crate) fn default_dockerfile(context: &Path) -> PathBuf {
    let upper = context.join("Dockerfile");
    let lower = context.join("dockerfile");
    if upper.symlink_metadata().is_err() && lower.symlink_metadata().is_ok() {
        return lower;
    }
    upper
}

fn read_file(path: &Path) -> Result<(String, Vec<u8>)> {
    let source = std::fs::read(path).map_err(|source| Error::Io {
        action: "read Dockerfile",
        path: path.to_owned(),
        source,
    })?;
    Ok((path.display().to_string(), source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dockerfile_falls_back_to_lower_case() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        // Neither: the error names `Dockerfile`.
        assert_eq!(default_dockerfile(ctx), ctx.join("Dockerfile"));
        std::fs::write(ctx.join("dockerfile"), "FROM a\n").unwrap();
        assert_eq!(default_dockerfile(ctx), ctx.join("dockerfile"));
        // Both: `Dockerfile` wins, as in docker.
        std::fs::write(ctx.join("Dockerfile"), "FROM b\n").unwrap();
        assert_eq!(default_dockerfile(ctx), ctx.join("Dockerfile"));
    }
}
