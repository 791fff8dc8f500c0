//! `buildr network create|ls|inspect|connect|disconnect|rm|prune`.

use std::process::ExitCode;

use anyhow::bail;
use buildr::container::{Label, NetworkCreateOptions, Subnet};

use super::container::each;
use super::images::render_table;
use crate::args::{Cli, NetworkCommand};

pub fn run(cli: &Cli, command: &NetworkCommand) -> anyhow::Result<ExitCode> {
    let containers = super::open_containers(cli)?;
    match command {
        NetworkCommand::Create {
            driver,
            subnet,
            internal,
            labels,
            name,
        } => {
            if driver != "bridge" {
                bail!("network driver {driver:?} is not supported: only bridge");
            }
            let subnet = subnet
                .as_deref()
                .map(|text| {
                    text.parse::<Subnet>()
                        .map_err(|e| anyhow::anyhow!("invalid --subnet: {e}"))
                })
                .transpose()?;
            let labels = labels
                .iter()
                .map(|l| l.parse::<Label>().map(|l| (l.key, l.value)))
                .collect::<Result<Vec<_>, _>>()?;
            let options = NetworkCreateOptions {
                subnet,
                internal: *internal,
                labels,
            };
            println!("{}", containers.networks().create(name, &options)?.id);
        }
        NetworkCommand::Ls {
            quiet,
            no_trunc,
            format,
        } => ls(&containers, *quiet, *no_trunc, format.as_deref())?,
        NetworkCommand::Inspect { format, names } => {
            let mut docs = Vec::new();
            let code = each(names, |name| {
                docs.push(serde_json::to_value(containers.inspect_network(name)?)?);
                Ok(())
            });
            super::inspect::print_documents(&docs, format.as_deref())?;
            return Ok(code);
        }
        NetworkCommand::Connect {
            aliases,
            ip,
            network,
            container,
        } => containers.connect_network(network, container, aliases, *ip)?,
        NetworkCommand::Disconnect {
            force: _,
            network,
            container,
        } => containers.disconnect_network(network, container)?,
        NetworkCommand::Rm { names } => {
            return Ok(each(names, |name| {
                containers.remove_network(name)?;
                println!("{name}");
                Ok(())
            }));
        }
        NetworkCommand::Prune { force: _ } => {
            let removed = containers.prune_networks()?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for name in removed {
                    println!("{name}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// docker's `network ls`: NETWORK ID, NAME, DRIVER, SCOPE.
fn ls(
    containers: &buildr::container::Containers,
    quiet: bool,
    no_trunc: bool,
    format: Option<&str>,
) -> anyhow::Result<()> {
    let networks = containers.networks().list()?;
    let id = |id: &str| {
        if no_trunc {
            id.to_owned()
        } else {
            id[..12.min(id.len())].to_owned()
        }
    };
    if quiet {
        for n in &networks {
            println!("{}", id(&n.id));
        }
        return Ok(());
    }
    if let Some(format) = format {
        let template = super::gotemplate::GoTemplate::parse(format)?;
        for n in &networks {
            let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let row = serde_json::json!({
                "ID": id(&n.id),
                "Name": n.name,
                "Driver": n.driver,
                "Scope": "local",
                "Internal": n.internal.to_string(),
                "IPv6": "false",
                "Labels": labels.join(","),
                "CreatedAt": super::container::go_time(&n.created_rfc3339()),
            });
            println!("{}", template.render(&row)?);
        }
        return Ok(());
    }
    let mut rows = vec![vec![
        "NETWORK ID".to_owned(),
        "NAME".to_owned(),
        "DRIVER".to_owned(),
        "SCOPE".to_owned(),
    ]];
    for n in &networks {
        rows.push(vec![
            id(&n.id),
            n.name.clone(),
            n.driver.clone(),
            "local".to_owned(),
        ]);
    }
    print!("{}", render_table(&rows));
    Ok(())
}
