//! `container inspect`: docker's document for a container.

use super::*;

impl Containers {
    /// A docker-like `inspect` document.
    pub fn inspect(&self, reference: &str) -> Result<serde_json::Value> {
        let c = self.get(reference)?;
        let time = |t: Option<i128>| {
            t.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), logs::format_time)
        };
        let mut mounts = Vec::new();
        for bind in &c.config.binds {
            mounts.push(serde_json::json!({
                "Type": "bind", "Source": bind.src, "Destination": bind.dst, "RW": !bind.readonly,
            }));
        }
        for volume in &c.config.volumes {
            let source = self
                .volumes
                .inspect(&volume.name)
                .map(|v| v.mountpoint)
                .ok();
            mounts.push(serde_json::json!({
                "Type": "volume", "Name": volume.name, "Source": source,
                "Destination": volume.destination, "RW": !volume.readonly,
            }));
        }
        for t in &c.config.tmpfs {
            mounts.push(serde_json::json!({"Type": "tmpfs", "Destination": t.dst, "RW": true}));
        }
        let paths = self.paths(&c.config.id);
        let mut doc = serde_json::json!({
            "Id": c.config.id,
            "Name": format!("/{}", c.config.name),
            "Created": logs::format_time(c.config.created),
            "Path": c.config.argv.first(),
            "Args": c.config.argv.get(1..).unwrap_or_default(),
            "State": {
                "Status": c.state.status.as_str(),
                "Running": c.is_running(),
                "OOMKilled": c.state.oom_killed,
                "Dead": c.state.exit_code == Some(EXIT_SUPERVISOR_DIED) && c.state.error.is_some(),
                "Pid": if c.is_running() { c.state.pid.or(c.state.supervisor_pid.map(|p| p as i32)) } else { None },
                "ExitCode": c.state.exit_code.unwrap_or(0),
                "Error": c.state.error.clone().unwrap_or_default(),
                "StartedAt": time(c.state.started_at),
                "FinishedAt": time(c.state.finished_at),
            },
            "Image": c.config.image_id,
            "LogPath": paths.log(),
            "HostConfig": {
                "NetworkMode": c.config.network.as_str(),
                "PortBindings": c.config.ports,
                "Memory": c.config.limits.memory.unwrap_or(0),
                "PidsLimit": c.config.limits.pids,
                "NanoCpus": c.config.limits.cpus.map_or(0, |c| (c * 1e9) as i64),
                "AutoRemove": c.config.auto_remove,
                "ReadonlyRootfs": c.config.read_only,
            },
            "Mounts": mounts,
            "NetworkSettings": {
                "IPAddress": c.state.ip.clone().unwrap_or_default(),
                "Ports": c.state.ports,
            },
            "Config": {
                "Hostname": c.config.hostname,
                "User": c.config.user,
                "Env": c.config.env,
                "Cmd": c.config.argv,
                "Image": c.config.image,
                "WorkingDir": c.config.cwd,
                "StopSignal": c.config.stop_signal,
                "Labels": c.config.labels,
                "Tty": c.config.tty,
                "OpenStdin": c.config.open_stdin,
            },
            "GraphDriver": {
                "Name": "overlay2",
                "Data": { "UpperDir": paths.upper(), "WorkDir": paths.work() },
            },
        });
        if let Some(health) = &c.state.health {
            doc["State"]["Health"] = health.to_json();
        }
        if let Some(check) = &c.config.healthcheck {
            doc["Config"]["Healthcheck"] = serde_json::json!(check);
        }
        Ok(doc)
    }
}
