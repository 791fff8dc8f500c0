//! Command-line arguments, one clap struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// buildr: build Dockerfiles into OCI images and run them, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "buildr", version, about)]
pub struct Cli {
    /// The store directory (default: /var/lib/buildr as root, else
    /// $XDG_DATA_HOME/buildr or ~/.local/share/buildr).
    #[arg(long, global = true, env = "BUILDR_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a Dockerfile for errors and warnings without building it.
    Check(CheckArgs),
    /// List images.
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Remove one or more images (untag; blobs go with `prune`).
    Rmi(RmiArgs),
    /// Display detailed information on one or more images.
    Inspect(InspectArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(SaveArgs),
    /// Load images from a tar archive or STDIN.
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Remove unused data: untagged images' content, dangling snapshots.
    Prune(PruneArgs),
    /// Manage buildr.
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show images of this repository (and tag).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of an image given by id that has several tags.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive layout: `docker` (docker-archive) or `oci` (OCI image layout).
    #[arg(long, default_value = "docker", value_parser = ["docker", "oci"])]
    pub format: String,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Set commit message for imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform (only `linux/<arch>`).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// The root filesystem tar (`-` for STDIN).
    #[arg(value_name = "FILE|-")]
    pub file: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also remove all build cache, keeping only tagged images.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show buildr disk usage.
    Df,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile); `-` reads stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The build context directory.
    #[arg(default_value = ".", value_name = "CONTEXT")]
    pub context: PathBuf,
}
