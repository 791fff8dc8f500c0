//! `ports:` entries, short (`[IP:][HOST[-RANGE]:]CONTAINER[-RANGE][/PROTO]`) and long syntax.

use crate::error::Error;
use crate::fields::{Field, check_keys};
use crate::model::Port;
use crate::yaml::Value;

/// Parses one `ports:` entry; a short-syntax range gives one port per container port.
pub(crate) fn parse(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<Vec<Port>, Error> {
    match &field.node.value {
        Value::Map(_) => long(field, warnings).map(|p| vec![p]),
        Value::Str { text, .. } => short(text).map_err(|why| {
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            };
            field.err(format!("invalid port {text:?}{why}"))
        }),
        _ => Err(field.err(format!("expected a port, found {}", field.node.kind()))),
    }
}

fn long(field: &Field<'_>, warnings: &mut Vec<String>) -> Result<Port, Error> {
    check_keys(
        field,
        &[
            "name",
            "target",
            "published",
            "host_ip",
            "protocol",
            "mode",
            "app_protocol",
        ],
        &[],
        warnings,
    )?;
    let mut port = Port {
        name: None,
        mode: "ingress".to_owned(),
        host_ip: None,
        target: 0,
        published: None,
        protocol: "tcp".to_owned(),
        app_protocol: None,
    };
    let mut has_target = false;
    for (key, value) in field.map()? {
        let path = field.sub(key);
        let sub = Field::new(value, &path);
        match key.name.as_str() {
            "target" => {
                let text = sub.str()?;
                port.target =
                    number(&text).ok_or_else(|| sub.err(format!("invalid port {text:?}")))?;
                has_target = true;
            }
            "published" => {
                let text = sub.opt_str()?;
                if let Some(text) = &text {
                    range(text).ok_or_else(|| sub.err(format!("invalid port {text:?}")))?;
                }
                port.published = text.filter(|t| !t.is_empty());
            }
            "host_ip" => port.host_ip = sub.opt_str()?,
            "protocol" => port.protocol = protocol(&sub)?,
            "mode" => {
                let mode = sub.str()?;
                if mode != "ingress" && mode != "host" {
                    return Err(sub.err(format!("invalid mode {mode:?}: expected ingress or host")));
                }
                port.mode = mode;
            }
            "name" => port.name = sub.opt_str()?,
            "app_protocol" => port.app_protocol = sub.opt_str()?,
            _ => {}
        }
    }
    if !has_target {
        return Err(field.err("a port needs a target"));
    }
    Ok(port)
}

fn protocol(field: &Field<'_>) -> Result<String, Error> {
    let text = field.str()?.to_ascii_lowercase();
    match text.as_str() {
        "tcp" | "udp" | "sctp" => Ok(text),
        _ => Err(field.err(format!("invalid protocol {text:?}"))),
    }
}

/// The short syntax; the error is the reason (possibly empty).
fn short(text: &str) -> Result<Vec<Port>, String> {
    let (spec, proto) = match text.rsplit_once('/') {
        Some((spec, proto)) => (spec, proto.to_ascii_lowercase()),
        None => (text, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol {proto:?}"));
    }
    let (host_ip, rest) = match spec.strip_prefix('[') {
        Some(after) => {
            let (ip, rest) = after.split_once(']').ok_or("unclosed [")?;
            let rest = rest
                .strip_prefix(':')
                .ok_or("expected : after the address")?;
            (Some(ip.to_owned()), rest)
        }
        None => match spec.matches(':').count() {
            0 | 1 => (None, spec),
            _ => {
                let (ip, rest) = rsplit_nth_colon(spec);
                (Some(ip.to_owned()), rest)
            }
        },
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, rest),
    };
    let targets = range(target).ok_or("")?;
    let published = published.filter(|p| !p.is_empty());
    let hosts = match published {
        Some(p) => Some(range(p).ok_or("")?),
        None => None,
    };
    let port = |target: u16, published: Option<String>| Port {
        name: None,
        mode: "ingress".to_owned(),
        host_ip: host_ip.clone().filter(|ip| !ip.is_empty()),
        target,
        published,
        protocol: proto.clone(),
        app_protocol: None,
    };
    let count = targets.1 - targets.0;
    match hosts {
        Some(hosts) if count > 0 => {
            if hosts.1 - hosts.0 != count {
                return Err("the host and container ranges differ in size".to_owned());
            }
            Ok((0..=count)
                .map(|i| port(targets.0 + i, Some((hosts.0 + i).to_string())))
                .collect())
        }
        _ => Ok((targets.0..=targets.1)
            .map(|t| port(t, published.map(str::to_owned)))
            .collect()),
    }
}

/// Splits `a:b:c:d` into (`a:b`, `c:d`): the address keeps its own colons (IPv6).
fn rsplit_nth_colon(spec: &str) -> (&str, &str) {
    let mut colons = spec.rmatch_indices(':');
    colons.next();
    match colons.next() {
        Some((at, _)) => (&spec[..at], &spec[at + 1..]),
        None => ("", spec),
    }
}

fn number(text: &str) -> Option<u16> {
    text.parse().ok()
}

/// `80` or `8000-8010`, as (first, last).
fn range(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            (a <= b).then_some((a, b))
        }
        None => number(text).map(|n| (n, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Port {
        let mut ports = short(text).unwrap();
        assert_eq!(ports.len(), 1, "{text}");
        ports.remove(0)
    }

    #[test]
    fn short_syntax_forms() {
        let p = one("80");
        assert_eq!(
            (p.target, p.published.as_deref(), p.host_ip.as_deref()),
            (80, None, None)
        );
        let p = one("8080:80/udp");
        assert_eq!(
            (p.target, p.published.as_deref(), p.protocol.as_str()),
            (80, Some("8080"), "udp")
        );
        let p = one("127.0.0.1:8080:80");
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        let p = one("127.0.0.1::80");
        assert_eq!(
            (p.host_ip.as_deref(), p.published),
            (Some("127.0.0.1"), None)
        );
        let p = one("[::1]:8080:80");
        assert_eq!(p.host_ip.as_deref(), Some("::1"));
        let p = one("9090-9091:80");
        assert_eq!(p.published.as_deref(), Some("9090-9091"));
        let ports = short("8000-8001:80-81").unwrap();
        assert_eq!(ports.len(), 2);
        assert_eq!(
            (ports[1].target, ports[1].published.as_deref()),
            (81, Some("8001"))
        );
    }

    #[test]
    fn bad_short_syntax_is_an_error() {
        for bad in [
            "abc", "80:abc", "70000", "1-2:3-5", "80/icmp", "[::1:80", "9-8", "",
        ] {
            assert!(short(bad).is_err(), "{bad}");
        }
    }
}
