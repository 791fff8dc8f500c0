//! Finding the files, the environment and the project name; reading each file
//! with its `include`s and `extends`; merging them in order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dotenv;
use crate::error::Error;
use crate::interpolate::Variables;
use crate::merge::{merge_files, merge_service};
use crate::model::Project;
use crate::resolve;
use crate::volumes::{clean, host_path};
use crate::yaml::{self, Key, Node, Pos, Value};

/// The file names compose looks for, in its order.
pub const FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The override files compose reads after a found file, in its order.
const OVERRIDE_NAMES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// How deep `include` and `extends` may nest (a cycle is found before this).
const MAX_DEPTH: usize = 32;

/// What to load: the CLI's flags, the working directory and the environment.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-f` files, in order; empty means search (`COMPOSE_FILE`, then upward).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file`, in order; empty means `.env` in the project directory.
    pub env_files: Vec<PathBuf>,
    /// `--profile`; empty means `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// The directory relative paths on the command line resolve against.
    pub working_dir: PathBuf,
    /// The process environment (wins over `.env`).
    pub environment: BTreeMap<String, String>,
}

/// Loads, merges and resolves a project.
pub fn load(options: &Options) -> Result<Project, Error> {
    let files = compose_files(options)?;
    let first_dir = files
        .first()
        .and_then(|(_, path)| path.parent())
        .map_or_else(|| options.working_dir.clone(), Path::to_path_buf);
    let project_dir = match &options.project_directory {
        Some(dir) => clean(&options.working_dir.join(dir)),
        None => first_dir,
    };
    let mut variables = Variables::new(environment(options, &project_dir)?);
    let mut warnings = Vec::new();
    let mut merged: Option<Node> = None;
    for (shown, path) in &files {
        let node = read_file(
            path,
            shown,
            &project_dir,
            &mut variables,
            &mut warnings,
            0,
            false,
        )?;
        merged = Some(match merged {
            Some(base) => merge_files(base, node),
            None => node,
        });
    }
    let root = merged.unwrap_or_else(|| Node::new(Value::Null, Pos::synthetic(&Arc::from(""))));
    for name in variables.unset() {
        warnings.push(format!(
            "the {name:?} variable is not set, defaulting to a blank string"
        ));
    }
    let profiles = if options.profiles.is_empty() {
        variables
            .values
            .get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        options.profiles.clone()
    };
    let name = project_name(options, &variables.values, &root, &project_dir)?;
    let mut project = resolve::project(
        &root,
        &resolve::Setup {
            name,
            project_dir: &project_dir,
            profiles: &profiles,
            variables: &variables.values,
        },
    )?;
    warnings.append(&mut project.warnings);
    project.warnings = warnings;
    Ok(project)
}

/// The files to read, each as (name shown in messages, absolute path).
fn compose_files(options: &Options) -> Result<Vec<(String, PathBuf)>, Error> {
    let given: Vec<PathBuf> = if !options.files.is_empty() {
        options.files.clone()
    } else if let Some(list) = options
        .environment
        .get("COMPOSE_FILE")
        .filter(|l| !l.is_empty())
    {
        let sep = options
            .environment
            .get("COMPOSE_PATH_SEPARATOR")
            .map_or(":", String::as_str);
        list.split(sep)
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .collect()
    } else {
        Vec::new()
    };
    if given.is_empty() {
        return find(options);
    }
    Ok(given
        .into_iter()
        .map(|f| {
            (
                f.display().to_string(),
                clean(&options.working_dir.join(&f)),
            )
        })
        .collect())
}

/// Searches the working directory and its parents; adds the override file beside the find.
fn find(options: &Options) -> Result<Vec<(String, PathBuf)>, Error> {
    let start = options.project_directory.as_ref().map_or_else(
        || options.working_dir.clone(),
        |d| clean(&options.working_dir.join(d)),
    );
    for dir in start.ancestors() {
        let Some(found) = FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file()) else {
            continue;
        };
        let shown = |p: &Path| match p.strip_prefix(&options.working_dir) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => p.display().to_string(),
        };
        let mut files = vec![(shown(&found), found)];
        if let Some(over) = OVERRIDE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
        {
            files.push((shown(&over), over));
        }
        return Ok(files);
    }
    Err(Error::NotFound { dir: start })
}

/// `.env` (or `--env-file`s) with the process environment over it.
fn environment(options: &Options, project_dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let files: Vec<PathBuf> = if options.env_files.is_empty() {
        let default = project_dir.join(".env");
        if default.is_file() {
            vec![default]
        } else {
            Vec::new()
        }
    } else {
        options
            .env_files
            .iter()
            .map(|f| options.working_dir.join(f))
            .collect()
    };
    let mut values = BTreeMap::new();
    for file in files {
        let mut lookup = values.clone();
        lookup.extend(options.environment.clone());
        for (k, v) in dotenv::read(&file, &lookup)? {
            match v {
                Some(v) => values.insert(k, v),
                None => values.remove(&k),
            };
        }
    }
    values.extend(options.environment.clone());
    Ok(values)
}

/// `-p`, `COMPOSE_PROJECT_NAME` (both must be valid as given), `name:`, else the
/// project directory's name (both normalised), as compose picks it.
fn project_name(
    options: &Options,
    env: &BTreeMap<String, String>,
    root: &Node,
    project_dir: &Path,
) -> Result<String, Error> {
    let explicit = [
        ("-p", options.project_name.as_ref()),
        (
            "COMPOSE_PROJECT_NAME",
            env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()),
        ),
    ];
    for (origin, name) in explicit {
        let Some(name) = name else { continue };
        if normalize_name(name) != *name || name.is_empty() {
            return Err(Error::invalid(
                &Pos::synthetic(&Arc::from(origin)),
                "",
                format!(
                    "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens and underscores as well as start with a letter or number"
                ),
            ));
        }
        return Ok(name.clone());
    }
    let from_file = root.get("name").and_then(|n| match &n.value {
        Value::Str { text, .. } => Some(text.clone()),
        _ => None,
    });
    let raw = from_file.unwrap_or_else(|| {
        project_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let name = normalize_name(&raw);
    if name.is_empty() {
        return Err(Error::invalid(
            &root.pos,
            "name",
            format!("project name {raw:?} is empty once normalised; set one with -p or name:"),
        ));
    }
    Ok(name)
}

/// Compose's normalisation: lowercase, only `[a-z0-9_-]`, starting with a letter or digit.
pub fn normalize_name(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_owned()
}

/// Reads one file: YAML, interpolation, `include`, `extends`.
fn read_file(
    path: &Path,
    shown: &str,
    project_dir: &Path,
    variables: &mut Variables,
    warnings: &mut Vec<String>,
    depth: usize,
    rebase: bool,
) -> Result<Node, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: Arc<str> = Arc::from(shown);
    let mut node = yaml::parse(&text, &file)?;
    if let Value::Null = node.value {
        node.value = Value::Map(Vec::new());
    }
    if !matches!(node.value, Value::Map(_)) {
        return Err(Error::invalid(&node.pos, "", "a compose file is a mapping"));
    }
    variables.interpolate(&mut node, "")?;
    let dir = path.parent().unwrap_or(project_dir);
    if rebase {
        rebase_services(&mut node, dir);
    }
    resolve_extends(&mut node, dir, variables, depth)?;
    include(node, dir, project_dir, variables, warnings, depth)
}

/// Applies `include:`: each listed file is read (relative to `dir`) and its
/// resources added; one the including file defines too is an error.
fn include(
    mut node: Node,
    dir: &Path,
    project_dir: &Path,
    variables: &mut Variables,
    warnings: &mut Vec<String>,
    depth: usize,
) -> Result<Node, Error> {
    let Value::Map(entries) = &mut node.value else {
        return Ok(node);
    };
    let Some(at) = entries.iter().position(|(k, _)| k.name == "include") else {
        return Ok(node);
    };
    let (key, list) = entries.remove(at);
    if depth >= MAX_DEPTH {
        return Err(Error::Cycle {
            pos: key.pos,
            key: "include".into(),
            what: "include".into(),
        });
    }
    let items = match list.value {
        Value::Seq(items) => items,
        _ => {
            return Err(Error::invalid(
                &list.pos,
                "include",
                "expected a list of files",
            ));
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        let keypath = format!("include[{i}]");
        let paths: Vec<String> = match &item.value {
            Value::Str { text, .. } => vec![text.clone()],
            Value::Map(_) => {
                let field = crate::fields::Field::new(&item, &keypath);
                crate::fields::check_keys(
                    &field,
                    &["path"],
                    &["project_directory", "env_file"],
                    warnings,
                )?;
                let p = item
                    .get("path")
                    .ok_or_else(|| field.err("an include needs a path"))?;
                crate::fields::Field::new(p, &keypath).str_list()?
            }
            _ => {
                return Err(Error::invalid(
                    &item.pos,
                    &keypath,
                    "expected a file or a mapping",
                ));
            }
        };
        for p in paths {
            let target = host_path(&p, dir);
            let included = read_file(
                &target,
                &p,
                project_dir,
                variables,
                warnings,
                depth + 1,
                true,
            )?;
            add_included(&mut node, included, &item.pos, &keypath)?;
        }
    }
    Ok(node)
}

fn add_included(node: &mut Node, included: Node, pos: &Pos, keypath: &str) -> Result<(), Error> {
    let (Value::Map(entries), Value::Map(more)) = (&mut node.value, included.value) else {
        return Ok(());
    };
    for (section, value) in more {
        if !matches!(
            section.name.as_str(),
            "services" | "networks" | "volumes" | "secrets" | "configs"
        ) {
            continue;
        }
        let Value::Map(items) = value.value else {
            continue;
        };
        let slot = match entries.iter().position(|(k, _)| k.name == section.name) {
            Some(i) => i,
            None => {
                entries.push((
                    section.clone(),
                    Node::new(Value::Map(Vec::new()), pos.clone()),
                ));
                entries.len() - 1
            }
        };
        let Value::Map(target) = &mut entries[slot].1.value else {
            continue;
        };
        for (k, v) in items {
            if target.iter().any(|(t, _)| t.name == k.name) {
                return Err(Error::invalid(
                    pos,
                    keypath,
                    format!(
                        "{}.{} conflicts with an imported resource",
                        section.name, k.name
                    ),
                ));
            }
            target.push((k, v));
        }
    }
    Ok(())
}

/// Resolves `extends` of every service of a file.
fn resolve_extends(
    node: &mut Node,
    dir: &Path,
    variables: &mut Variables,
    depth: usize,
) -> Result<(), Error> {
    let Some(Value::Map(services)) = node.get("services").map(|s| s.value.clone()) else {
        return Ok(());
    };
    let mut resolved = Vec::new();
    for (key, service) in &services {
        let mut chain = vec![key.name.clone()];
        resolved.push((
            key.clone(),
            extend(
                service.clone(),
                &services,
                dir,
                variables,
                &mut chain,
                depth,
            )?,
        ));
    }
    if let Value::Map(entries) = &mut node.value
        && let Some((_, s)) = entries.iter_mut().find(|(k, _)| k.name == "services")
    {
        s.value = Value::Map(resolved);
    }
    Ok(())
}

fn extend(
    mut service: Node,
    siblings: &[(Key, Node)],
    dir: &Path,
    variables: &mut Variables,
    chain: &mut Vec<String>,
    depth: usize,
) -> Result<Node, Error> {
    let Value::Map(entries) = &mut service.value else {
        return Ok(service);
    };
    let Some(at) = entries.iter().position(|(k, _)| k.name == "extends") else {
        return Ok(service);
    };
    let (key, spec) = entries.remove(at);
    let path = format!("services.{}.extends", chain[0]);
    let (name, file) = match &spec.value {
        Value::Str { text, .. } => (text.clone(), None),
        Value::Map(_) => {
            let field = crate::fields::Field::new(&spec, &path);
            crate::fields::check_keys(&field, &["service", "file"], &[], &mut Vec::new())?;
            let name = spec
                .get("service")
                .ok_or_else(|| field.err("extends needs a service"))?;
            let file = spec
                .get("file")
                .map(|f| crate::fields::Field::new(f, &path).str())
                .transpose()?;
            (crate::fields::Field::new(name, &path).str()?, file)
        }
        _ => {
            return Err(Error::invalid(
                &spec.pos,
                &path,
                "expected a service name or a mapping",
            ));
        }
    };
    if chain.contains(&name) && file.is_none() || depth + chain.len() > MAX_DEPTH {
        return Err(Error::Cycle {
            pos: key.pos,
            key: path,
            what: name,
        });
    }
    let base = match file {
        None => {
            let (_, base) = siblings
                .iter()
                .find(|(k, _)| k.name == name)
                .ok_or_else(|| {
                    Error::invalid(
                        &spec.pos,
                        &path,
                        format!("cannot extend service {name:?}: no such service"),
                    )
                })?;
            chain.push(name);
            extend(base.clone(), siblings, dir, variables, chain, depth)?
        }
        Some(file) => {
            let target = host_path(&file, dir);
            let mut warnings = Vec::new();
            let other = read_file(
                &target,
                &file,
                dir,
                variables,
                &mut warnings,
                depth + chain.len() + 1,
                true,
            )?;
            other
                .get("services")
                .and_then(|s| s.get(&name))
                .cloned()
                .ok_or_else(|| {
                    Error::invalid(
                        &spec.pos,
                        &path,
                        format!("cannot extend service {name:?}: not in {file}"),
                    )
                })?
        }
    };
    Ok(merge_service(base, service))
}

/// Makes the relative paths of a file's services absolute against its own
/// directory, so they keep their meaning once merged into another file.
fn rebase_services(node: &mut Node, dir: &Path) {
    let Value::Map(entries) = &mut node.value else {
        return;
    };
    // Top-level secrets' and configs' files.
    for (_, section) in entries
        .iter_mut()
        .filter(|(k, _)| k.name == "secrets" || k.name == "configs")
    {
        let Value::Map(objects) = &mut section.value else {
            continue;
        };
        for (_, object) in objects {
            let Value::Map(fields) = &mut object.value else {
                continue;
            };
            for (k, v) in fields {
                if let ("file", Value::Str { text, .. }) = (k.name.as_str(), &mut v.value) {
                    absolutize(text, dir);
                }
            }
        }
    }
    let Some((_, services)) = entries.iter_mut().find(|(k, _)| k.name == "services") else {
        return;
    };
    let Value::Map(services) = &mut services.value else {
        return;
    };
    for (_, service) in services {
        let Value::Map(fields) = &mut service.value else {
            continue;
        };
        for (key, value) in fields {
            match (key.name.as_str(), &mut value.value) {
                ("build", Value::Str { text, .. }) => absolutize(text, dir),
                ("build", Value::Map(build)) => {
                    for (k, v) in build {
                        if let ("context", Value::Str { text, .. }) =
                            (k.name.as_str(), &mut v.value)
                        {
                            absolutize(text, dir);
                        }
                    }
                }
                ("env_file", Value::Str { text, .. }) => absolutize(text, dir),
                ("env_file" | "volumes", Value::Seq(items)) => {
                    for item in items {
                        rebase_item(item, dir, key.name == "volumes");
                    }
                }
                _ => {}
            }
        }
    }
}

fn rebase_item(item: &mut Node, dir: &Path, volume: bool) {
    match &mut item.value {
        Value::Str { text, .. } if !volume => absolutize(text, dir),
        Value::Str { text, .. } if text.starts_with('.') => {
            if let Some((source, rest)) = text.split_once(':') {
                *text = format!("{}:{rest}", host_path(source, dir).display());
            }
        }
        Value::Str { .. } => {}
        Value::Map(fields) => {
            for (k, v) in fields {
                if let ("source" | "path", Value::Str { text, .. }) =
                    (k.name.as_str(), &mut v.value)
                    && text.starts_with('.')
                {
                    absolutize(text, dir);
                }
            }
        }
        _ => {}
    }
}

fn absolutize(text: &mut String, dir: &Path) {
    if !text.contains("://") && !text.starts_with('/') && !text.starts_with('~') {
        *text = host_path(text, dir).display().to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_name;

    #[test]
    fn names_normalise_as_compose_does() {
        assert_eq!(normalize_name("My.App_1-x"), "myapp_1-x");
        assert_eq!(normalize_name("__x"), "x");
        assert_eq!(normalize_name("..."), "");
    }
}
