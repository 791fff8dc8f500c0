//! The merged tree into a [`Project`]: top-level keys checked, services typed,
//! profiles applied, references checked, the default network added.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;
use crate::fields::{Field, check_keys};
use crate::model::{FileObject, Ipam, IpamPool, MountKind, Network, Project, Volume};
use crate::service::{self, Context};
use crate::volumes::host_path;
use crate::yaml::{Node, Pos};

/// What resolving needs besides the tree.
pub(crate) struct Setup<'a> {
    pub name: String,
    pub project_dir: &'a Path,
    pub profiles: &'a [String],
    pub variables: &'a BTreeMap<String, String>,
}

/// Resolves the merged tree.
pub(crate) fn project(root: &Node, setup: &Setup<'_>) -> Result<Project, Error> {
    let mut warnings = Vec::new();
    let top = Field::new(root, "");
    check_keys(
        &top,
        &[
            "version", "name", "services", "networks", "volumes", "secrets", "configs", "include",
        ],
        &[],
        &mut warnings,
    )?;
    if let Some(version) = root.get("version") {
        warnings.push(format!(
            "{}: version: the attribute is obsolete, it is ignored",
            version.pos
        ));
    }
    let mut project = Project {
        name: setup.name.clone(),
        working_dir: setup.project_dir.to_owned(),
        extensions: crate::fields::extensions(&top),
        ..Project::default()
    };
    let mut cx = Context {
        base: setup.project_dir,
        variables: setup.variables,
        warnings: &mut warnings,
    };
    if let Some(services) = root.get("services") {
        let field = Field::new(services, "services");
        for (key, node) in field.map_or_null()? {
            let path = field.sub(key);
            let service = service::parse(&Field::new(node, &path), &mut cx)?;
            let enabled = service.profiles.is_empty()
                || service
                    .profiles
                    .iter()
                    .any(|p| setup.profiles.iter().any(|a| a == p || a == "*"));
            if enabled {
                project.services.insert(key.name.clone(), service);
            } else {
                project.disabled.insert(key.name.clone(), service);
            }
        }
    }
    project.networks = networks(root, &setup.name, &mut warnings)?;
    project.volumes = volumes(root, &setup.name, &mut warnings)?;
    project.secrets = file_objects(
        root,
        "secrets",
        &setup.name,
        setup.project_dir,
        &mut warnings,
    )?;
    project.configs = file_objects(
        root,
        "configs",
        &setup.name,
        setup.project_dir,
        &mut warnings,
    )?;
    add_default_network(&mut project);
    check_references(root, &project)?;
    check_cycles(root, &project)?;
    drop_unused(&mut project);
    project.warnings = warnings;
    Ok(project)
}

fn networks(
    root: &Node,
    project: &str,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Network>, Error> {
    let mut out = BTreeMap::new();
    let Some(node) = root.get("networks") else {
        return Ok(out);
    };
    let field = Field::new(node, "networks");
    for (key, value) in field.map_or_null()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        check_keys(
            &sub,
            &[
                "name",
                "driver",
                "driver_opts",
                "ipam",
                "external",
                "internal",
                "enable_ipv6",
                "labels",
            ],
            &["attachable", "enable_ipv4"],
            warnings,
        )?;
        let mut network = Network::default();
        let mut name = None;
        for (k, v) in sub.map_or_null()? {
            let p = sub.sub(k);
            let f = Field::new(v, &p);
            match k.name.as_str() {
                "name" => name = f.opt_str()?,
                "driver" => network.driver = f.opt_str()?,
                "driver_opts" => network.driver_opts = f.labels()?,
                "ipam" => network.ipam = ipam(&f, warnings)?,
                "external" => network.external = f.bool()?,
                "internal" => network.internal = f.bool()?,
                "enable_ipv6" => network.enable_ipv6 = f.bool()?,
                "labels" => network.labels = f.labels()?,
                _ => {}
            }
        }
        network.name = resource_name(name, network.external, project, &key.name);
        out.insert(key.name.clone(), network);
    }
    Ok(out)
}

fn ipam(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<Ipam, Error> {
    check_keys(field, &["driver", "config"], &["options"], warnings)?;
    let mut out = Ipam::default();
    for (k, v) in field.map()? {
        let p = field.sub(k);
        let f = Field::new(v, &p);
        match k.name.as_str() {
            "driver" => out.driver = f.opt_str()?,
            "config" => {
                for (i, item) in f.seq()?.iter().enumerate() {
                    let p = format!("{p}[{i}]");
                    let item = Field::new(item, &p);
                    check_keys(
                        &item,
                        &["subnet", "gateway", "ip_range"],
                        &["aux_addresses"],
                        warnings,
                    )?;
                    let get = |name: &str| {
                        item.node
                            .get(name)
                            .map(|n| Field::new(n, &p).opt_str())
                            .transpose()
                            .map(Option::flatten)
                    };
                    out.config.push(IpamPool {
                        subnet: get("subnet")?,
                        gateway: get("gateway")?,
                        ip_range: get("ip_range")?,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn volumes(
    root: &Node,
    project: &str,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Volume>, Error> {
    let mut out = BTreeMap::new();
    let Some(node) = root.get("volumes") else {
        return Ok(out);
    };
    let field = Field::new(node, "volumes");
    for (key, value) in field.map_or_null()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        check_keys(
            &sub,
            &["name", "driver", "driver_opts", "external", "labels"],
            &[],
            warnings,
        )?;
        let mut volume = Volume::default();
        let mut name = None;
        for (k, v) in sub.map_or_null()? {
            let p = sub.sub(k);
            let f = Field::new(v, &p);
            match k.name.as_str() {
                "name" => name = f.opt_str()?,
                "driver" => volume.driver = f.opt_str()?,
                "driver_opts" => volume.driver_opts = f.labels()?,
                "external" => volume.external = f.bool()?,
                "labels" => volume.labels = f.labels()?,
                _ => {}
            }
        }
        volume.name = resource_name(name, volume.external, project, &key.name);
        out.insert(key.name.clone(), volume);
    }
    Ok(out)
}

fn file_objects(
    root: &Node,
    section: &str,
    project: &str,
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, FileObject>, Error> {
    let mut out = BTreeMap::new();
    let Some(node) = root.get(section) else {
        return Ok(out);
    };
    let field = Field::new(node, section);
    for (key, value) in field.map_or_null()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        check_keys(
            &sub,
            &["name", "file", "environment", "content", "external"],
            &["labels", "driver", "driver_opts", "template_driver"],
            warnings,
        )?;
        let mut object = FileObject::default();
        let mut name = None;
        for (k, v) in sub.map()? {
            let p = sub.sub(k);
            let f = Field::new(v, &p);
            match k.name.as_str() {
                "name" => name = f.opt_str()?,
                "file" => object.file = Some(host_path(&f.str()?, dir)),
                "environment" => object.environment = f.opt_str()?,
                "content" if section == "configs" => object.content = f.opt_str()?,
                "content" => return Err(f.err("content is for configs only")),
                "external" => object.external = f.bool()?,
                _ => {}
            }
        }
        let sources = [
            object.file.is_some(),
            object.environment.is_some(),
            object.content.is_some(),
            object.external,
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(sub.err("exactly one of file, environment, content or external is needed"));
        }
        object.name = resource_name(name, object.external, project, &key.name);
        out.insert(key.name.clone(), object);
    }
    Ok(out)
}

/// `<project>_<key>` unless a name is set; an external resource is its key.
fn resource_name(name: Option<String>, external: bool, project: &str, key: &str) -> String {
    match name {
        Some(name) => name,
        None if external => key.to_owned(),
        None => format!("{project}_{key}"),
    }
}

/// A service with no `networks` joins `default`, which then exists.
fn add_default_network(project: &mut Project) {
    let mut used = false;
    for service in project.services.values_mut() {
        if service.networks.is_empty() {
            service.networks.insert("default".to_owned(), None);
            used = true;
        }
        used |= service.networks.contains_key("default");
    }
    if used && !project.networks.contains_key("default") {
        let network = Network {
            name: format!("{}_default", project.name),
            ipam: Ipam::default(),
            ..Network::default()
        };
        project.networks.insert("default".to_owned(), network);
    }
}

/// Top-level resources no enabled service uses are left out, as compose leaves them out.
fn drop_unused(project: &mut Project) {
    let services = &project.services;
    project
        .networks
        .retain(|key, _| services.values().any(|s| s.networks.contains_key(key)));
    project.volumes.retain(|key, _| {
        services.values().any(|s| {
            s.volumes
                .iter()
                .any(|m| m.kind == MountKind::Volume && m.source.as_deref() == Some(key))
        })
    });
    project.secrets.retain(|key, _| {
        services.values().any(|s| {
            let build = s.build.as_ref().map_or(&[][..], |b| &b.secrets[..]);
            s.secrets.iter().chain(build).any(|r| &r.source == key)
        })
    });
    project.configs.retain(|key, _| {
        services
            .values()
            .any(|s| s.configs.iter().any(|r| &r.source == key))
    });
}

/// Every name a service uses exists (and a dependency is enabled).
fn check_references(root: &Node, project: &Project) -> Result<(), Error> {
    for (name, service) in &project.services {
        let node = root.get("services").and_then(|s| s.get(name));
        let pos = node.map_or_else(|| root.pos.clone(), |n| n.pos.clone());
        let at = |key: &str| {
            let pos = node
                .and_then(|n| n.get(key))
                .map_or_else(|| pos.clone(), |n| n.pos.clone());
            (pos, format!("services.{name}.{key}"))
        };
        for (dep, spec) in &service.depends_on {
            if project.services.contains_key(dep) || !spec.required {
                continue;
            }
            let (pos, key) = at("depends_on");
            let message = match project.disabled.get(dep) {
                Some(d) => format!(
                    "service {dep:?} is required by {name:?} but is disabled; enable it with the profile(s) {}",
                    d.profiles.join(", ")
                ),
                None => format!("depends on undefined service {dep:?}"),
            };
            return Err(Error::Invalid { pos, key, message });
        }
        for network in service.networks.keys() {
            if !project.networks.contains_key(network) {
                let (pos, key) = at("networks");
                return Err(undefined(pos, key, "network", network));
            }
        }
        for mount in &service.volumes {
            if let (MountKind::Volume, Some(source)) = (mount.kind, &mount.source)
                && !project.volumes.contains_key(source)
            {
                let (pos, key) = at("volumes");
                return Err(undefined(pos, key, "volume", source));
            }
        }
        for (section, refs, known) in [
            ("secrets", &service.secrets, &project.secrets),
            ("configs", &service.configs, &project.configs),
        ] {
            if let Some(r) = refs.iter().find(|r| !known.contains_key(&r.source)) {
                let (pos, key) = at(section);
                return Err(undefined(
                    pos,
                    key,
                    &section[..section.len() - 1],
                    &r.source,
                ));
            }
        }
    }
    Ok(())
}

/// A `depends_on` cycle is an error naming its path, at the first service's `depends_on`.
fn check_cycles(root: &Node, project: &Project) -> Result<(), Error> {
    let graph: BTreeMap<&str, Vec<&str>> = project
        .services
        .iter()
        .map(|(name, s)| {
            (
                name.as_str(),
                s.depends_on.keys().map(String::as_str).collect(),
            )
        })
        .collect();
    let Some(path) = crate::order::find_cycle(&graph) else {
        return Ok(());
    };
    let first = &path[0];
    let service = root.get("services").and_then(|s| s.get(first));
    let pos = service
        .and_then(|s| s.get("depends_on"))
        .or(service)
        .map_or_else(|| root.pos.clone(), |n| n.pos.clone());
    Err(Error::Invalid {
        pos,
        key: format!("services.{first}.depends_on"),
        message: format!("dependency cycle detected: {}", path.join(" -> ")),
    })
}

fn undefined(pos: Pos, key: String, what: &str, name: &str) -> Error {
    Error::Invalid {
        pos,
        key,
        message: format!("refers to undefined {what} {name:?}"),
    }
}
