//! One service's mapping, read into a typed [`Service`].

use std::collections::BTreeMap;
use std::path::Path;

use crate::dotenv;
use crate::error::Error;
use crate::fields::{Field, check_keys};
use crate::model::{
    Build, Condition, Dependency, Deploy, EnvFile, FileRef, Healthcheck, Limits, Resources,
    Service, ServiceNetwork,
};
use crate::yaml::Value;
use crate::{ports, volumes};

/// The service keys buildr models.
const KNOWN: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "networks",
    "depends_on",
    "healthcheck",
    "restart",
    "user",
    "working_dir",
    "labels",
    "hostname",
    "init",
    "stop_signal",
    "stop_grace_period",
    "deploy",
    "extra_hosts",
    "tty",
    "stdin_open",
    "profiles",
    "secrets",
    "configs",
    "container_name",
    "extends",
];

/// Compose-spec service keys buildr accepts but does not model yet (warned, ignored).
const NOT_YET: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "external_links",
    "gpus",
    "group_add",
    "ipc",
    "isolation",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "post_start",
    "pre_stop",
    "privileged",
    "pull_policy",
    "read_only",
    "runtime",
    "scale",
    "security_opt",
    "shm_size",
    "stop_timeout",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "ulimits",
    "userns_mode",
    "uts",
    "volumes_from",
];

/// What reading a service needs besides its node.
pub(crate) struct Context<'a> {
    /// Relative paths resolve against this directory.
    pub base: &'a Path,
    /// Variables env files may interpolate.
    pub variables: &'a BTreeMap<String, String>,
    /// Warnings collected on the way.
    pub warnings: &'a mut Vec<String>,
}

/// Reads `services.<name>`.
pub(crate) fn parse(field: &Field<'_>, cx: &mut Context<'_>) -> Result<Service, Error> {
    check_keys(field, KNOWN, NOT_YET, cx.warnings)?;
    let mut service = Service {
        extensions: crate::fields::extensions(field),
        ..Service::default()
    };
    let mut environment = BTreeMap::new();
    for (key, value) in field.map()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        match key.name.as_str() {
            "image" => service.image = sub.strict_opt_str()?,
            "build" => service.build = Some(build(&sub, cx)?),
            "command" => service.command = argv(&sub)?,
            "entrypoint" => service.entrypoint = argv(&sub)?,
            "environment" => environment = sub.dict()?,
            "env_file" => service.env_file = env_files(&sub, cx.base)?,
            "ports" => {
                for (i, item) in sub.seq()?.iter().enumerate() {
                    let path = format!("{path}[{i}]");
                    service
                        .ports
                        .extend(ports::parse(&Field::new(item, &path), cx.warnings)?);
                }
            }
            "expose" => service.expose = sub.str_list()?,
            "volumes" => {
                for (i, item) in sub.seq()?.iter().enumerate() {
                    let path = format!("{path}[{i}]");
                    service.volumes.push(volumes::parse(
                        &Field::new(item, &path),
                        cx.base,
                        cx.warnings,
                    )?);
                }
            }
            "networks" => service.networks = networks(&sub, cx.warnings)?,
            "depends_on" => service.depends_on = depends_on(&sub, cx.warnings)?,
            "healthcheck" => service.healthcheck = Some(healthcheck(&sub, cx.warnings)?),
            "restart" => service.restart = Some(restart(&sub)?),
            "user" => service.user = sub.strict_opt_str()?,
            "working_dir" => service.working_dir = sub.strict_opt_str()?,
            "labels" => service.labels = sub.labels()?,
            "hostname" => service.hostname = sub.strict_opt_str()?,
            "init" => service.init = Some(sub.bool()?),
            "stop_signal" => service.stop_signal = sub.strict_opt_str()?,
            "stop_grace_period" => service.stop_grace_period = Some(sub.duration()?),
            "deploy" => service.deploy = Some(deploy(&sub, cx.warnings)?),
            "extra_hosts" => service.extra_hosts = extra_hosts(&sub)?,
            "tty" => service.tty = sub.bool()?,
            "stdin_open" => service.stdin_open = sub.bool()?,
            "profiles" => service.profiles = sub.str_list()?,
            "secrets" => {
                service.secrets = file_refs(&sub, cx.warnings)?;
                // Compose mounts a secret without a target at /run/secrets/<source>.
                for secret in &mut service.secrets {
                    if secret.target.is_none() {
                        secret.target = Some(format!("/run/secrets/{}", secret.source));
                    }
                }
            }
            "configs" => service.configs = file_refs(&sub, cx.warnings)?,
            "container_name" => service.container_name = sub.strict_opt_str()?,
            _ => {}
        }
    }
    for env_file in &service.env_file {
        if !env_file.path.exists() && !env_file.required {
            continue;
        }
        for (k, v) in dotenv::read(&env_file.path, cx.variables)? {
            service.environment.insert(k, v);
        }
    }
    service.environment.extend(environment);
    // A name without a value takes the project environment's, as compose resolves it.
    for (name, value) in service.environment.iter_mut() {
        if value.is_none() {
            *value = cx.variables.get(name).cloned();
        }
    }
    if let Some(build) = service.build.as_mut() {
        let args = std::mem::take(&mut build.args);
        build.args = args
            .into_iter()
            .filter_map(|(name, value)| match value {
                Some(v) => Some((name, Some(v))),
                None => cx.variables.get(&name).map(|v| (name, Some(v.clone()))),
            })
            .collect();
    }
    if service.image.is_none() && service.build.is_none() {
        return Err(field.err("a service needs an image or a build"));
    }
    Ok(service)
}

/// `command`/`entrypoint`: a list as is, a string split as a shell would.
fn argv(field: &Field<'_>) -> Result<Option<Vec<String>>, Error> {
    match &field.node.value {
        Value::Null => Ok(None),
        Value::Str { text, .. } => split_words(text)
            .map(Some)
            .ok_or_else(|| field.err(format!("unbalanced quotes in {text:?}"))),
        _ => field.strict_str_list().map(Some),
    }
}

/// Splits like a POSIX shell without expansions: quotes group, backslash escapes.
pub(crate) fn split_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => word.push(c),
                            '\n' => {}
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => word.push('\\'),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

fn build(field: &Field<'_>, cx: &mut Context<'_>) -> Result<Build, Error> {
    let mut build = Build::default();
    let context = match &field.node.value {
        Value::Str { text, .. } => text.clone(),
        _ => {
            check_keys(
                field,
                &[
                    "context",
                    "dockerfile",
                    "dockerfile_inline",
                    "args",
                    "target",
                    "labels",
                    "cache_from",
                    "cache_to",
                    "network",
                    "platforms",
                    "ssh",
                    "secrets",
                ],
                &[
                    "additional_contexts",
                    "entitlements",
                    "extra_hosts",
                    "isolation",
                    "no_cache",
                    "privileged",
                    "pull",
                    "shm_size",
                    "tags",
                    "ulimits",
                ],
                cx.warnings,
            )?;
            let mut context = ".".to_owned();
            for (key, value) in field.map()? {
                let path = field.sub(key);
                let sub = Field::new(value, &path);
                match key.name.as_str() {
                    "context" => context = sub.str()?,
                    "dockerfile" => build.dockerfile = sub.opt_str()?,
                    "dockerfile_inline" => build.dockerfile_inline = sub.opt_str()?,
                    "args" => build.args = sub.dict()?,
                    "target" => build.target = sub.opt_str()?,
                    "labels" => build.labels = sub.labels()?,
                    "cache_from" => build.cache_from = sub.str_list()?,
                    "cache_to" => build.cache_to = sub.str_list()?,
                    "network" => build.network = sub.opt_str()?,
                    "platforms" => build.platforms = sub.str_list()?,
                    "ssh" => build.ssh = ssh(&sub)?,
                    "secrets" => build.secrets = file_refs(&sub, cx.warnings)?,
                    _ => {}
                }
            }
            context
        }
    };
    build.context = if is_remote(&context) {
        context
    } else {
        volumes::host_path(&context, cx.base).display().to_string()
    };
    if build.dockerfile.is_some() && build.dockerfile_inline.is_some() {
        return Err(field.err("dockerfile and dockerfile_inline are mutually exclusive"));
    }
    if build.dockerfile.is_none() && build.dockerfile_inline.is_none() {
        build.dockerfile = Some("Dockerfile".to_owned());
    }
    Ok(build)
}

/// A build context that is not a local directory (git or https URL).
fn is_remote(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

fn ssh(field: &Field<'_>) -> Result<Vec<String>, Error> {
    match &field.node.value {
        Value::Map(_) => Ok(field
            .dict()?
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k,
            })
            .collect()),
        _ => field.str_list(),
    }
}

fn env_files(field: &Field<'_>, base: &Path) -> Result<Vec<EnvFile>, Error> {
    let items: Vec<&crate::yaml::Node> = match &field.node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![field.node],
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("{}[{i}]", field.path);
        let sub = Field::new(item, &path);
        let (file, required) = match &item.value {
            Value::Map(_) => {
                let file = item
                    .get("path")
                    .ok_or_else(|| sub.err("an env_file entry needs a path"))?;
                let required = match item.get("required") {
                    Some(r) => Field::new(r, &path).bool()?,
                    None => true,
                };
                (Field::new(file, &path).str()?, required)
            }
            _ => (sub.str()?, true),
        };
        out.push(EnvFile {
            path: volumes::host_path(&file, base),
            required,
        });
    }
    Ok(out)
}

fn networks(
    field: &Field<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Option<ServiceNetwork>>, Error> {
    let mut out = BTreeMap::new();
    if let Value::Seq(_) | Value::Str { .. } = &field.node.value {
        for name in field.str_list()? {
            out.insert(name, None);
        }
        return Ok(out);
    }
    for (key, value) in field.map()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        if value.value == Value::Null {
            out.insert(key.name.clone(), None);
            continue;
        }
        check_keys(
            &sub,
            &["aliases", "ipv4_address", "ipv6_address"],
            &[
                "priority",
                "link_local_ips",
                "mac_address",
                "driver_opts",
                "gw_priority",
                "interface_name",
            ],
            warnings,
        )?;
        let mut network = ServiceNetwork::default();
        for (k, v) in sub.map()? {
            let p = sub.sub(k);
            let f = Field::new(v, &p);
            match k.name.as_str() {
                "aliases" => network.aliases = f.str_list()?,
                "ipv4_address" => network.ipv4_address = f.opt_str()?,
                "ipv6_address" => network.ipv6_address = f.opt_str()?,
                _ => {}
            }
        }
        out.insert(key.name.clone(), Some(network));
    }
    Ok(out)
}

fn depends_on(
    field: &Field<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Dependency>, Error> {
    let started = || Dependency {
        condition: Condition::ServiceStarted,
        restart: false,
        required: true,
    };
    let mut out = BTreeMap::new();
    if let Value::Seq(_) = &field.node.value {
        for name in field.str_list()? {
            out.insert(name, started());
        }
        return Ok(out);
    }
    for (key, value) in field.map()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        check_keys(&sub, &["condition", "restart", "required"], &[], warnings)?;
        let mut dep = started();
        for (k, v) in sub.map()? {
            let p = sub.sub(k);
            let f = Field::new(v, &p);
            match k.name.as_str() {
                "condition" => {
                    dep.condition = match f.str()?.as_str() {
                        "service_started" => Condition::ServiceStarted,
                        "service_healthy" => Condition::ServiceHealthy,
                        "service_completed_successfully" => Condition::ServiceCompletedSuccessfully,
                        other => return Err(f.err(format!("invalid condition {other:?}"))),
                    }
                }
                "restart" => dep.restart = f.bool()?,
                "required" => dep.required = f.bool()?,
                _ => {}
            }
        }
        out.insert(key.name.clone(), dep);
    }
    Ok(out)
}

fn healthcheck(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<Healthcheck, Error> {
    check_keys(
        field,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
        &[],
        warnings,
    )?;
    let mut check = Healthcheck::default();
    for (key, value) in field.map()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        match key.name.as_str() {
            "test" => {
                check.test = match &value.value {
                    Value::Str { text, .. } => vec!["CMD-SHELL".to_owned(), text.clone()],
                    _ => sub.strict_str_list()?,
                };
                if let Some(first) = check.test.first()
                    && !matches!(first.as_str(), "CMD" | "CMD-SHELL" | "NONE")
                {
                    return Err(sub.err(format!(
                        "a test list starts with CMD, CMD-SHELL or NONE, not {first:?}"
                    )));
                }
            }
            "interval" => check.interval = Some(sub.duration()?),
            "timeout" => check.timeout = Some(sub.duration()?),
            "retries" => check.retries = Some(sub.u64()?),
            "start_period" => check.start_period = Some(sub.duration()?),
            "start_interval" => check.start_interval = Some(sub.duration()?),
            "disable" => check.disable = sub.bool()?,
            _ => {}
        }
    }
    Ok(check)
}

fn restart(field: &Field<'_>) -> Result<String, Error> {
    let text = field.str()?;
    let ok = match text.split_once(':') {
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        Some(_) => false,
        None => matches!(
            text.as_str(),
            "no" | "always" | "on-failure" | "unless-stopped"
        ),
    };
    if !ok {
        return Err(field.err(format!("invalid restart policy {text:?}")));
    }
    Ok(text)
}

fn deploy(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<Deploy, Error> {
    check_keys(
        field,
        &["replicas", "resources"],
        &[
            "mode",
            "placement",
            "update_config",
            "rollback_config",
            "restart_policy",
            "labels",
            "endpoint_mode",
        ],
        warnings,
    )?;
    let mut deploy = Deploy::default();
    if let Some(node) = field.node.get("replicas") {
        deploy.replicas = Some(Field::new(node, &format!("{}.replicas", field.path)).u64()?);
    }
    let Some(resources) = field.node.get("resources") else {
        return Ok(deploy);
    };
    let path = format!("{}.resources", field.path);
    let resources = Field::new(resources, &path);
    check_keys(&resources, &["limits"], &["reservations"], warnings)?;
    let Some(limits) = resources.node.get("limits") else {
        deploy.resources = Some(Resources::default());
        return Ok(deploy);
    };
    let path = format!("{path}.limits");
    let limits = Field::new(limits, &path);
    check_keys(&limits, &["cpus", "memory", "pids"], &[], warnings)?;
    let mut out = Limits::default();
    for (key, value) in limits.map()? {
        let path = limits.sub(key);
        let sub = Field::new(value, &path);
        match key.name.as_str() {
            "cpus" => {
                let text = sub.str()?;
                let cpus: f64 = text
                    .parse()
                    .ok()
                    .filter(|c: &f64| c.is_finite() && *c >= 0.0)
                    .ok_or_else(|| sub.err(format!("invalid cpus {text:?}")))?;
                out.cpus = Some(cpus);
            }
            "memory" => out.memory = Some(crate::fields::bytes(&sub)?),
            "pids" => {
                let text = sub.str()?;
                out.pids = Some(
                    text.parse()
                        .map_err(|_| sub.err(format!("invalid pids {text:?}")))?,
                );
            }
            _ => {}
        }
    }
    deploy.resources = Some(Resources { limits: Some(out) });
    Ok(deploy)
}

/// `extra_hosts` as `host=ip` (list `host:ip`/`host=ip` or mapping).
fn extra_hosts(field: &Field<'_>) -> Result<Vec<String>, Error> {
    if let Value::Map(_) = &field.node.value {
        return Ok(field
            .dict()?
            .into_iter()
            .map(|(k, v)| format!("{k}={}", v.unwrap_or_default()))
            .collect());
    }
    field
        .str_list()?
        .into_iter()
        .map(|entry| {
            let (host, ip) = entry
                .split_once('=')
                .or_else(|| entry.split_once(':'))
                .ok_or_else(|| {
                    field.err(format!("invalid extra host {entry:?}: expected host=ip"))
                })?;
            Ok(format!("{host}={ip}"))
        })
        .collect()
}

fn file_refs(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<Vec<FileRef>, Error> {
    let mut out = Vec::new();
    for (i, item) in field.seq()?.iter().enumerate() {
        let path = format!("{}[{i}]", field.path);
        let sub = Field::new(item, &path);
        if let Value::Str { text, .. } = &item.value {
            out.push(FileRef {
                source: text.clone(),
                ..FileRef::default()
            });
            continue;
        }
        check_keys(
            &sub,
            &["source", "target", "uid", "gid", "mode"],
            &[],
            warnings,
        )?;
        let mut r = FileRef::default();
        for (key, value) in sub.map()? {
            let p = sub.sub(key);
            let f = Field::new(value, &p);
            match key.name.as_str() {
                "source" => r.source = f.str()?,
                "target" => r.target = f.opt_str()?,
                "uid" => r.uid = f.opt_str()?,
                "gid" => r.gid = f.opt_str()?,
                "mode" => {
                    let text = f.str()?;
                    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
                        .map_err(|_| f.err(format!("invalid mode {text:?}")))?;
                    r.mode = Some(mode);
                }
                _ => {}
            }
        }
        if r.source.is_empty() {
            return Err(sub.err("a reference needs a source"));
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn strings_split_as_a_shell_would() {
        assert_eq!(
            split_words(r#"sh -c 'echo "a b"' x\ y "q\"z""#).unwrap(),
            ["sh", "-c", "echo \"a b\"", "x y", "q\"z"]
        );
        assert_eq!(split_words("").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("'open").is_none());
    }
}
