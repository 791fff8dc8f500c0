//! Subcommand bodies: short, because the work lives in the `buildr` library.

pub mod check;
pub mod images;
pub mod import;
pub mod inspect;
pub mod load;
pub mod prune;
pub mod rmi;
pub mod save;
pub mod system;
pub mod tag;

use buildr::Images;

use crate::args::Cli;

/// Opens the image store at `--root` (or `BUILDR_ROOT`, or the default).
pub fn open_images(cli: &Cli) -> anyhow::Result<Images> {
    let root = match &cli.root {
        Some(root) => root.clone(),
        None => buildr::default_root()?,
    };
    Images::open(&root).map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot open the store at {}", root.display()))
    })
}
