//! What a build reads: its context (a directory, a tar, or stdin told by
//! content) and its Dockerfile.

use super::*;

pub(super) enum ContextInput {
    Dir(PathBuf),
    Tar(Box<dyn Read + Send>),
    /// A tar, or a Dockerfile with an empty context ([`StdinInput`]).
    TarOrDockerfile(Box<dyn Read + Send>),
}

pub(super) enum DockerfileInput {
    Default,
    Source(DockerfileSource),
    Bytes { name: String, bytes: Vec<u8> },
}

impl Builder {
    pub(super) fn open_context(
        &mut self,
        store: &Store,
    ) -> Result<(BuildContext, Option<PathBuf>)> {
        let dockerfile_path = match &self.dockerfile {
            DockerfileInput::Source(DockerfileSource::Path(path)) => Some(path.clone()),
            _ => None,
        };
        let temp_opts = ContextOptions {
            temp_dir: Some(store.root().join("tmp")),
            ..ContextOptions::default()
        };
        let input = self.context.take().ok_or_else(|| Error::BuildOption {
            message: "no build context: give a directory (context_dir), a tar (context_tar) or stdin's tar or Dockerfile (context_tar_or_dockerfile)".into(),
        })?;
        let context = match input {
            ContextInput::Dir(dir) => {
                let ignore = load_dockerignore(dockerfile_path.as_deref(), &dir)?;
                let opts = ContextOptions {
                    dockerignore: Some(ignore),
                    state_root: Some(store.root().to_path_buf()),
                    ..temp_opts
                };
                BuildContext::from_dir(&dir, &opts)?
            }
            ContextInput::Tar(tar) => tar_context(tar, &temp_opts)?,
            ContextInput::TarOrDockerfile(input) => match sniff_stdin(input)? {
                StdinInput::Tar(tar) => tar_context(tar, &temp_opts)?,
                StdinInput::Dockerfile(bytes) => {
                    self.dockerfile = DockerfileInput::Bytes {
                        name: "Dockerfile".to_owned(),
                        bytes,
                    };
                    return Ok((BuildContext::empty(&temp_opts)?, None));
                }
            },
        };
        Ok((context, dockerfile_path))
    }

    pub(super) fn read_dockerfile(
        &self,
        context: &Path,
        path: Option<&Path>,
    ) -> Result<(String, Vec<u8>)> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| Error::Io {
                action: "read Dockerfile",
                path: path.to_path_buf(),
                source,
            })
        };
        match &self.dockerfile {
            DockerfileInput::Bytes { name, bytes } => Ok((name.clone(), bytes.clone())),
            DockerfileInput::Source(DockerfileSource::Stdin) => {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .map_err(|source| Error::Io {
                        action: "read Dockerfile from",
                        path: PathBuf::from("<stdin>"),
                        source,
                    })?;
                Ok(("Dockerfile".to_owned(), bytes))
            }
            DockerfileInput::Source(DockerfileSource::Path(_)) | DockerfileInput::Default => {
                let path = path.map_or_else(
                    || crate::check::default_dockerfile(context),
                    Path::to_path_buf,
                );
                let name = path
                    .file_name()
                    .map_or("Dockerfile".into(), |n| n.to_string_lossy().into_owned());
                Ok((name, read(&path)?))
            }
        }
    }
}

/// A context unpacked from a tar stream, with the `.dockerignore` inside it.
fn tar_context(tar: Box<dyn Read + Send>, opts: &ContextOptions) -> Result<BuildContext> {
    let mut context = BuildContext::from_tar(tar, opts)?;
    if find_dockerignore(None, context.root()).is_some() {
        let ignore: DockerIgnore = load_dockerignore(None, context.root())?;
        context.set_dockerignore(ignore);
    }
    Ok(context)
}

/// Tells a context tar from a Dockerfile on stdin ([`StdinInput::sniff`]).
fn sniff_stdin(input: Box<dyn Read + Send>) -> Result<StdinInput> {
    StdinInput::sniff(input).map_err(|source| Error::Io {
        action: "read the build context from",
        path: PathBuf::from("<stdin>"),
        source,
    })
}
