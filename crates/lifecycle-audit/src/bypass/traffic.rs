//! Classifying a meshed pod's app TCP flows.
//!
//! * refused by capture (fail-closed, M4): an app connect refused by the
//!   capture port (15001/4140), or refused for a redirected destination
//!   while nothing listened on the capture port;
//! * proxied: the proxy accepted, on its capture port, a connection whose
//!   remote address:port is the app socket's local address:port (inbound:
//!   the proxy's own connect is the app's accepted peer);
//! * plaintext bypass (M3): an app connection established to a non-loopback
//!   peer that no proxy accept matches, or one made under the proxy's UID
//!   (not captured);
//! * excluded: a destination port or CIDR the mesh is told to skip;
//! * local: loopback traffic that does not involve the proxy;
//! * other: failures for other reasons and attempts without an outcome.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::{
    mesh::MeshContext,
    timeline::{Accepted, At, Connection, socket::is_loopback},
};

/// What became of an app flow with respect to the mesh (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowClass {
    /// Refused because nothing listened on the capture port: fail-closed (M4).
    RefusedByCapture,
    /// Left or entered the pod without the proxy (M3).
    PlaintextBypass,
    /// Went through the proxy.
    Proxied,
    /// To a port or CIDR (inbound: on a port) the mesh is configured to skip.
    Excluded,
    /// Loopback traffic that does not involve the proxy.
    Local,
    /// Failed for another reason, had no outcome, or was reset by a capture
    /// listener whose proxy had exited.
    Other,
}

/// Which way a flow goes, seen from the app container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A connection the app opened.
    Outbound,
    /// A connection the app accepted.
    Inbound,
}

/// One app flow and its class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// App container the flow belongs to.
    pub container: String,
    /// Opened or accepted by the app.
    pub direction: Direction,
    /// When it was first seen (its first connect record, or the accept).
    pub at: At,
    /// What became of it.
    pub class: FlowClass,
    /// Why it got its class, in words.
    pub reason: String,
    /// App-side endpoint, `addr:port` (`[addr]:port` for IPv6).
    pub local: String,
    /// Peer endpoint, in the same form.
    pub remote: String,
    /// `seq` of the flow's records.
    pub evidence: Vec<u64>,
}

/// Counts per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficCounts {
    /// Connections refused by the capture (fail-closed, M4).
    pub refused_by_capture: u32,
    /// Flows that bypassed the proxy in plaintext (M3).
    pub plaintext_bypass: u32,
    /// Flows through the proxy.
    pub proxied: u32,
    /// Flows the mesh is configured to skip.
    pub excluded: u32,
    /// Loopback flows not involving the proxy.
    pub local: u32,
    /// Other failures, attempts without an outcome, and connections reset by an
    /// orphaned capture listener.
    pub other: u32,
}

impl TrafficCounts {
    /// Counts one flow of `class`.
    pub fn add(&mut self, class: FlowClass) {
        let slot = match class {
            FlowClass::RefusedByCapture => &mut self.refused_by_capture,
            FlowClass::PlaintextBypass => &mut self.plaintext_bypass,
            FlowClass::Proxied => &mut self.proxied,
            FlowClass::Excluded => &mut self.excluded,
            FlowClass::Local => &mut self.local,
            FlowClass::Other => &mut self.other,
        };
        *slot += 1;
    }

    /// Flows of every class.
    pub fn total(&self) -> u32 {
        self.refused_by_capture
            + self.plaintext_bypass
            + self.proxied
            + self.excluded
            + self.local
            + self.other
    }
}

fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// Whether `addr` falls in one of the excluded CIDRs (IPv4 and IPv6).
fn in_cidrs(addr: &str, cidrs: &[Box<str>]) -> bool {
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    cidrs.iter().any(|cidr| {
        let (net, bits) = cidr.split_once('/').unwrap_or((cidr, ""));
        let Ok(net) = net.trim().parse::<std::net::IpAddr>() else {
            return false;
        };
        match (ip, net) {
            (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) => {
                let bits: u32 = bits.parse().unwrap_or(32).min(32);
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(a) & mask == u32::from(n) & mask
            }
            (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) => {
                let bits: u32 = bits.parse().unwrap_or(128).min(128);
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    })
}

/// The proxy's side of the flows, indexed by the peer endpoint.
pub struct ProxySide {
    /// Remote endpoints of connections the proxy accepted on its outbound
    /// capture port (= the app sockets' local endpoints).
    accepted_from: HashSet<(String, u16)>,
    /// Local endpoints of the proxy's own connections (= the peers the app
    /// sees on inbound connections).
    connected_from: HashSet<(String, u16)>,
    /// `[exit, listen_stop)` of each outbound capture listener that outlived
    /// the proxy run that opened it. The kernel reports a process's exit
    /// before it closes its files, so for a moment the listener still
    /// completes handshakes that the redirect sends it: the app sees its
    /// connection established, nobody accepts it, and the listener's close
    /// resets it. Such a connection never left the pod.
    orphaned: Vec<(i64, i64)>,
}

impl ProxySide {
    /// Indexes the proxy's accepts on the capture port, its own connections and
    /// its orphaned capture listeners.
    pub fn of(mesh: &MeshContext<'_>) -> Self {
        let capture = mesh.outbound_port();
        let sockets = &mesh.proxy.sockets;
        Self {
            accepted_from: sockets
                .accepts
                .iter()
                .filter(|a| Some(a.local_port) == capture)
                .map(|a| (a.remote_addr.clone(), a.remote_port))
                .collect(),
            connected_from: sockets
                .connections
                .iter()
                .map(|c| (c.local_addr.clone(), c.local_port))
                .collect(),
            orphaned: sockets
                .listens
                .iter()
                .filter(|l| Some(l.port) == capture)
                .filter_map(|l| {
                    let stop = l.end?.ns;
                    let (_, run) = mesh.proxy.instance_at(l.start.map_or(i64::MIN, |s| s.ns))?;
                    let exit = run.exit?.at.ns;
                    (exit < stop).then_some((exit, stop))
                })
                .collect(),
        }
    }

    /// Whether a connection started at `ns` reached a capture listener
    /// whose proxy had already exited.
    fn orphaned_at(&self, ns: i64) -> bool {
        self.orphaned
            .iter()
            .any(|(exit, stop)| *exit <= ns && ns < *stop)
    }
}

/// Classifies an app's outbound connection; `proxy_down` says whether it
/// started inside a bypass window.
pub fn outbound(
    mesh: &MeshContext<'_>,
    proxy: &ProxySide,
    container: &str,
    c: &Connection,
    proxy_down: bool,
) -> Option<Flow> {
    let at = c.first()?;
    let capture = mesh.outbound_port();
    let to_capture = Some(c.remote_port) == capture;
    let loopback = is_loopback(&c.remote_addr);
    let excluded = mesh
        .info
        .excluded_outbound_ports
        .iter()
        .any(|r| r.contains(c.remote_port))
        || in_cidrs(&c.remote_addr, &mesh.info.excluded_outbound_cidrs);
    let matched = c.established.is_some()
        && proxy
            .accepted_from
            .contains(&(c.local_addr.clone(), c.local_port));
    let (class, reason) = if loopback && !to_capture {
        (FlowClass::Local, "loopback".to_owned())
    } else if mesh.proxy_uid() == Some(c.uid) {
        (
            FlowClass::PlaintextBypass,
            format!("socket runs as the proxy UID {}: not captured", c.uid),
        )
    } else if excluded {
        (
            FlowClass::Excluded,
            "excluded by the mesh configuration".to_owned(),
        )
    } else if c.failed.is_some() {
        let error = c.error.clone().unwrap_or_else(|| "failed".to_owned());
        if error == "ECONNREFUSED" && (to_capture || proxy_down) {
            (
                FlowClass::RefusedByCapture,
                "refused: nothing listened on the capture port".to_owned(),
            )
        } else {
            (FlowClass::Other, format!("failed: {error}"))
        }
    } else if c.established.is_some() {
        if matched {
            (FlowClass::Proxied, "accepted by the proxy".to_owned())
        } else if proxy.orphaned_at(at.ns) {
            (
                FlowClass::Other,
                format!(
                    "handshake completed by {}'s capture listener after the proxy exited; never accepted (reset)",
                    mesh.proxy.name
                ),
            )
        } else {
            (
                FlowClass::PlaintextBypass,
                format!(
                    "no proxy accept for {}",
                    endpoint(&c.local_addr, c.local_port)
                ),
            )
        }
    } else {
        (FlowClass::Other, "no outcome recorded".to_owned())
    };
    Some(Flow {
        container: container.to_owned(),
        direction: Direction::Outbound,
        at,
        class,
        reason,
        local: endpoint(&c.local_addr, c.local_port),
        remote: endpoint(&c.remote_addr, c.remote_port),
        evidence: c.seqs(),
    })
}

/// Classifies a connection an app container accepted.
pub fn inbound(mesh: &MeshContext<'_>, proxy: &ProxySide, container: &str, a: &Accepted) -> Flow {
    let from_proxy = proxy
        .connected_from
        .contains(&(a.remote_addr.clone(), a.remote_port));
    let excluded = mesh
        .info
        .excluded_inbound_ports
        .iter()
        .any(|r| r.contains(a.local_port));
    let (class, reason) = if from_proxy {
        (FlowClass::Proxied, "connected by the proxy".to_owned())
    } else if is_loopback(&a.remote_addr) {
        (FlowClass::Local, "loopback".to_owned())
    } else if excluded {
        (
            FlowClass::Excluded,
            "excluded by the mesh configuration".to_owned(),
        )
    } else {
        (
            FlowClass::PlaintextBypass,
            "accepted without the proxy in the path".to_owned(),
        )
    };
    Flow {
        container: container.to_owned(),
        direction: Direction::Inbound,
        at: a.at,
        class,
        reason,
        local: endpoint(&a.local_addr, a.local_port),
        remote: endpoint(&a.remote_addr, a.remote_port),
        evidence: vec![a.at.seq],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_match_v4_and_v6() {
        let cidrs: Vec<Box<str>> = vec!["10.96.0.0/12".into(), "fd00::/8".into(), "1.2.3.4".into()];
        assert!(in_cidrs("10.100.1.1", &cidrs));
        assert!(!in_cidrs("10.112.0.1", &cidrs));
        assert!(in_cidrs("fd12::1", &cidrs));
        assert!(in_cidrs("1.2.3.4", &cidrs));
        assert!(!in_cidrs("1.2.3.5", &cidrs));
        assert!(!in_cidrs("x", &cidrs));
    }

    #[test]
    fn counts_add_up() {
        let mut c = TrafficCounts::default();
        for class in [
            FlowClass::Proxied,
            FlowClass::Proxied,
            FlowClass::RefusedByCapture,
        ] {
            c.add(class);
        }
        assert_eq!((c.proxied, c.refused_by_capture, c.total()), (2, 1, 3));
    }
}
