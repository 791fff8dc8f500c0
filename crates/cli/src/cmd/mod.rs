//! Subcommand bodies: short, because the work lives in the `buildr` library.

pub mod build;
pub mod bundle;
pub mod cache;
pub mod check;
pub mod commit;
pub mod compose;
pub mod container;
pub mod cp;
pub mod events;
pub mod exec;
mod gotemplate;
pub mod history;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod load;
pub mod login;
pub mod logout;
pub mod network;
pub mod prune;
pub mod pull;
pub mod push;
pub mod resources;
pub mod rmi;
pub mod run;
pub mod save;
pub mod shell;
pub mod system;
pub mod tag;
pub mod verify;
pub mod volume;

use buildr::Images;

use crate::args::Cli;

/// The store root: `--root`, `BUILDR_ROOT`, or the default.
pub fn store_root(cli: &Cli) -> anyhow::Result<std::path::PathBuf> {
    Ok(match &cli.root {
        Some(root) => root.clone(),
        None => buildr::default_root()?,
    })
}

/// Opens the containers of the store.
pub fn open_containers(cli: &Cli) -> anyhow::Result<buildr::Containers> {
    let root = store_root(cli)?;
    buildr::Containers::open(&root).map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot open the store at {}", root.display()))
    })
}

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
