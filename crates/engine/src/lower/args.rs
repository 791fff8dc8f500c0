//! Build arguments as Docker scopes them: global `ARG`s before the first
//! `FROM` (usable in `FROM` lines, and in a stage only once redeclared),
//! `--build-arg` overrides, the predefined proxy args (passed to `RUN` but
//! kept out of the history unless declared) and the automatic platform args.

use std::collections::{BTreeMap, BTreeSet};

/// Proxy args every `RUN` sees without a declaration.
pub(crate) const PROXY_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// An ordered set of `name=value`; the last setting of a name wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    vars: Vec<(String, String)>,
}

impl Scope {
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.vars.push((name.to_owned(), value.to_owned())),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.vars.iter()
    }
}

/// The `--build-arg`s of a build and which ones some `ARG` consumed.
#[derive(Debug, Default)]
pub(crate) struct BuildArgs {
    pub given: BTreeMap<String, String>,
    pub used: BTreeSet<String>,
}

impl BuildArgs {
    /// The value a declaration gets from `--build-arg`, marking it used.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        let value = self.given.get(name).cloned()?;
        self.used.insert(name.to_owned());
        Some(value)
    }

    /// Proxy args given on the command line (never reported unused).
    pub(crate) fn proxies(&self) -> Vec<(String, String)> {
        PROXY_ARGS
            .iter()
            .filter_map(|name| {
                self.given
                    .get(*name)
                    .map(|v| ((*name).to_owned(), v.clone()))
            })
            .collect()
    }

    /// `--build-arg`s no `ARG` declared (proxy args excepted), sorted.
    pub(crate) fn unused(&self) -> Vec<String> {
        self.given
            .keys()
            .filter(|k| !self.used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// The automatic platform args for `os/arch[/variant]` target and the host.
pub(crate) fn platform_args(target: &str, build: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (prefix, platform) in [("TARGET", target), ("BUILD", build)] {
        let mut parts = platform.split('/');
        let os = parts.next().unwrap_or("linux");
        let arch = parts.next().unwrap_or("");
        let variant = parts.next().unwrap_or("");
        out.push((format!("{prefix}PLATFORM"), platform.to_owned()));
        out.push((format!("{prefix}OS"), os.to_owned()));
        out.push((format!("{prefix}ARCH"), arch.to_owned()));
        out.push((format!("{prefix}VARIANT"), variant.to_owned()));
    }
    out
}
