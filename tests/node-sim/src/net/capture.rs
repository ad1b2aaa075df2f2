//! Mesh traffic capture: the iptables rules istio-init (`istio-iptables`)
//! and linkerd-init (`proxy-init`) install in a pod's network namespace,
//! built from the same arguments and annotations.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which mesh's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mesh {
    Istio,
    Linkerd,
}

/// An inclusive port range (`9000-9002`; a single port is `p-p`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange(pub u16, pub u16);

impl PortRange {
    fn iptables(&self) -> String {
        if self.0 == self.1 {
            self.0.to_string()
        } else {
            format!("{}:{}", self.0, self.1)
        }
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.0..=self.1).contains(&port)
    }
}

/// Parses `3306,9000-9002`; `*`, empty and malformed items are skipped.
pub fn parse_ports(text: &str) -> Vec<PortRange> {
    text.split(',')
        .filter_map(|item| {
            let item = item.trim();
            match item.split_once('-') {
                Some((a, b)) => Some(PortRange(a.parse().ok()?, b.parse().ok()?)),
                None => item.parse().ok().map(|p| PortRange(p, p)),
            }
        })
        .collect()
}

fn parse_cidrs(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_digit() || ch == '.' || ch == '/')
        })
        .map(str::to_owned)
        .collect()
}

/// What to capture and what to leave alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    pub mesh: Mesh,
    pub outbound_port: u16,
    pub inbound_port: u16,
    /// Traffic of this UID (the proxy's) is never captured.
    pub proxy_uid: u32,
    pub exclude_outbound_ports: Vec<PortRange>,
    pub exclude_inbound_ports: Vec<PortRange>,
    pub exclude_outbound_cidrs: Vec<String>,
}

/// Ports a mesh never captures inbound (its own health, admin and metrics).
fn own_inbound_ports(mesh: Mesh) -> Vec<PortRange> {
    let ports: &[u16] = match mesh {
        Mesh::Istio => &[15008, 15090, 15021, 15020],
        Mesh::Linkerd => &[4190, 4191],
    };
    ports.iter().map(|&p| PortRange(p, p)).collect()
}

impl CaptureConfig {
    pub fn defaults(mesh: Mesh) -> Self {
        let (outbound_port, inbound_port, proxy_uid) = match mesh {
            Mesh::Istio => (15001, 15006, 1337),
            Mesh::Linkerd => (4140, 4143, 2102),
        };
        Self {
            mesh,
            outbound_port,
            inbound_port,
            proxy_uid,
            exclude_outbound_ports: Vec::new(),
            exclude_inbound_ports: own_inbound_ports(mesh),
            exclude_outbound_cidrs: Vec::new(),
        }
    }

    /// From the init container's arguments (`istio-iptables -p 15001 ...`
    /// or `proxy-init --outgoing-proxy-port 4140 ...`).
    pub fn from_args(mesh: Mesh, args: &[String]) -> Self {
        let mut config = Self::defaults(mesh);
        let mut i = 0;
        while i < args.len() {
            let (flag, inline) = match args[i].split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (args[i].as_str(), None),
            };
            let takes_value = inline.is_none()
                && args
                    .get(i + 1)
                    .is_some_and(|v| !v.starts_with('-') || v.is_empty());
            let value = inline
                .clone()
                .or_else(|| takes_value.then(|| args[i + 1].clone()));
            if let Some(value) = value.as_deref() {
                config.apply(flag, value);
            }
            i += if takes_value { 2 } else { 1 };
        }
        config
    }

    fn apply(&mut self, flag: &str, value: &str) {
        match (self.mesh, flag) {
            (Mesh::Istio, "-p") | (Mesh::Linkerd, "--outgoing-proxy-port") => {
                self.outbound_port = value.parse().unwrap_or(self.outbound_port)
            }
            (Mesh::Istio, "-z") | (Mesh::Linkerd, "--incoming-proxy-port") => {
                self.inbound_port = value.parse().unwrap_or(self.inbound_port)
            }
            (Mesh::Istio, "-u") | (Mesh::Linkerd, "--proxy-uid") => {
                self.proxy_uid = value.parse().unwrap_or(self.proxy_uid)
            }
            (Mesh::Istio, "-o") | (Mesh::Linkerd, "--outbound-ports-to-ignore") => {
                self.exclude_outbound_ports.extend(parse_ports(value))
            }
            (Mesh::Istio, "-d") | (Mesh::Linkerd, "--inbound-ports-to-ignore") => {
                self.exclude_inbound_ports.extend(parse_ports(value))
            }
            (Mesh::Istio, "-x") | (Mesh::Linkerd, "--subnets-to-ignore") => {
                self.exclude_outbound_cidrs.extend(parse_cidrs(value))
            }
            _ => {}
        }
    }

    /// Adds the excludes the pod's annotations ask for (what the injector
    /// turns into init arguments).
    pub fn with_annotations(mut self, annotations: &Value) -> Self {
        let get = |key: &str| annotations.get(key).and_then(Value::as_str).unwrap_or("");
        match self.mesh {
            Mesh::Istio => {
                self.exclude_outbound_ports.extend(parse_ports(get(
                    "traffic.sidecar.istio.io/excludeOutboundPorts",
                )));
                self.exclude_inbound_ports.extend(parse_ports(get(
                    "traffic.sidecar.istio.io/excludeInboundPorts",
                )));
                self.exclude_outbound_cidrs.extend(parse_cidrs(get(
                    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
                )));
            }
            Mesh::Linkerd => {
                self.exclude_outbound_ports
                    .extend(parse_ports(get("config.linkerd.io/skip-outbound-ports")));
                self.exclude_inbound_ports
                    .extend(parse_ports(get("config.linkerd.io/skip-inbound-ports")));
            }
        }
        for list in [
            &mut self.exclude_outbound_ports,
            &mut self.exclude_inbound_ports,
        ] {
            let mut seen = Vec::new();
            list.retain(|r| {
                let new = !seen.contains(r);
                seen.push(*r);
                new
            });
        }
        self.exclude_outbound_cidrs.dedup();
        self
    }

    /// Whether an outbound connection to `port` is left uncaptured.
    pub fn outbound_excluded(&self, port: u16) -> bool {
        self.exclude_outbound_ports.iter().any(|r| r.contains(port))
    }

    /// The `nat` table for `iptables-restore`.
    pub fn rules(&self) -> String {
        match self.mesh {
            Mesh::Istio => self.istio_rules(),
            Mesh::Linkerd => self.linkerd_rules(),
        }
    }

    fn istio_rules(&self) -> String {
        let uid = self.proxy_uid;
        let mut r = String::from(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
             :ISTIO_INBOUND - [0:0]\n:ISTIO_IN_REDIRECT - [0:0]\n:ISTIO_OUTPUT - [0:0]\n:ISTIO_REDIRECT - [0:0]\n\
             -A PREROUTING -p tcp -j ISTIO_INBOUND\n-A OUTPUT -p tcp -j ISTIO_OUTPUT\n",
        );
        for range in &self.exclude_inbound_ports {
            let _ = writeln!(
                r,
                "-A ISTIO_INBOUND -p tcp --dport {} -j RETURN",
                range.iptables()
            );
        }
        let _ = writeln!(r, "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT");
        let _ = writeln!(
            r,
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.inbound_port
        );
        let _ = writeln!(r, "-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN");
        let _ = writeln!(
            r,
            "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner {uid} -j ISTIO_IN_REDIRECT"
        );
        let _ = writeln!(
            r,
            "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner {uid} -j RETURN"
        );
        let _ = writeln!(r, "-A ISTIO_OUTPUT -m owner --uid-owner {uid} -j RETURN");
        let _ = writeln!(r, "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN");
        for range in &self.exclude_outbound_ports {
            let _ = writeln!(
                r,
                "-A ISTIO_OUTPUT -p tcp --dport {} -j RETURN",
                range.iptables()
            );
        }
        for cidr in &self.exclude_outbound_cidrs {
            let _ = writeln!(r, "-A ISTIO_OUTPUT -d {cidr} -j RETURN");
        }
        let _ = writeln!(r, "-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
        let _ = writeln!(
            r,
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.outbound_port
        );
        r.push_str("COMMIT\n");
        r
    }

    fn linkerd_rules(&self) -> String {
        let mut r = String::from(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
             :PROXY_INIT_REDIRECT - [0:0]\n:PROXY_INIT_OUTPUT - [0:0]\n\
             -A PREROUTING -j PROXY_INIT_REDIRECT\n",
        );
        for range in &self.exclude_inbound_ports {
            let _ = writeln!(
                r,
                "-A PROXY_INIT_REDIRECT -p tcp --dport {} -j RETURN",
                range.iptables()
            );
        }
        let _ = writeln!(
            r,
            "-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.inbound_port
        );
        r.push_str("-A OUTPUT -j PROXY_INIT_OUTPUT\n");
        let _ = writeln!(
            r,
            "-A PROXY_INIT_OUTPUT -m owner --uid-owner {} -j RETURN",
            self.proxy_uid
        );
        r.push_str("-A PROXY_INIT_OUTPUT -o lo -j RETURN\n");
        for range in &self.exclude_outbound_ports {
            let _ = writeln!(
                r,
                "-A PROXY_INIT_OUTPUT -p tcp --dport {} -j RETURN",
                range.iptables()
            );
        }
        for cidr in &self.exclude_outbound_cidrs {
            let _ = writeln!(r, "-A PROXY_INIT_OUTPUT -d {cidr} -j RETURN");
        }
        let _ = writeln!(
            r,
            "-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports {}",
            self.outbound_port
        );
        r.push_str("COMMIT\n");
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn istio_arguments_and_annotations() {
        let config = CaptureConfig::from_args(
            Mesh::Istio,
            &strings(&["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "-o", "5432"]),
        )
        .with_annotations(&json!({"traffic.sidecar.istio.io/excludeOutboundPorts": "3306,9000-9002",
                                  "traffic.sidecar.istio.io/excludeOutboundIPRanges": "169.254.169.254/32"}));
        assert_eq!(
            (config.outbound_port, config.inbound_port, config.proxy_uid),
            (15001, 15006, 1337)
        );
        assert_eq!(
            config.exclude_outbound_ports,
            vec![
                PortRange(5432, 5432),
                PortRange(3306, 3306),
                PortRange(9000, 9002)
            ]
        );
        assert!(config.outbound_excluded(9001) && !config.outbound_excluded(80));
        let rules = config.rules();
        assert!(
            rules.contains("-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"),
            "{rules}"
        );
        assert!(rules.contains("-A ISTIO_OUTPUT -p tcp --dport 9000:9002 -j RETURN\n"));
        assert!(rules.contains("-A ISTIO_OUTPUT -d 169.254.169.254/32 -j RETURN\n"));
        assert!(rules.contains("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"));
        assert!(rules.contains("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"));
        assert!(rules.contains("-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN\n"));
        assert!(rules.ends_with("COMMIT\n"));
    }

    #[test]
    fn linkerd_arguments() {
        let config = CaptureConfig::from_args(
            Mesh::Linkerd,
            &strings(&[
                "--incoming-proxy-port",
                "4143",
                "--outgoing-proxy-port",
                "4140",
                "--proxy-uid",
                "2102",
                "--inbound-ports-to-ignore",
                "4190,4191,9990",
                "--outbound-ports-to-ignore",
                "3306,5432",
            ]),
        );
        assert_eq!(config.proxy_uid, 2102);
        assert!(config.outbound_excluded(5432));
        let rules = config.rules();
        assert!(
            rules.contains("-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN\n"),
            "{rules}"
        );
        assert!(rules.contains("-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140\n"));
        assert!(rules.contains("-A PROXY_INIT_REDIRECT -p tcp --dport 9990 -j RETURN\n"));
        assert!(rules.contains("-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143\n"));
    }

    #[test]
    fn port_lists_skip_wildcards_and_garbage() {
        assert_eq!(parse_ports("*"), vec![]);
        assert_eq!(parse_ports(""), vec![]);
        assert_eq!(
            parse_ports("80, x, 1-3"),
            vec![PortRange(80, 80), PortRange(1, 3)]
        );
        assert_eq!(
            parse_cidrs("10.0.0.0/8,$(evil)"),
            vec!["10.0.0.0/8".to_string()]
        );
    }
}
