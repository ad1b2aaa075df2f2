//! TCP activity of a pod's containers: listening periods, outbound
//! connections (start, established or failed) and accepted connections.
//!
//! A socket belongs to the container of its own cgroup (`socket_k8s` /
//! `socket_cgroup`), or failing that to its owner's. Kernel socket
//! addresses are reused after a close, so a new `connect_start` or
//! `listen_start` on the same address opens a new entry.

use std::collections::HashMap;

use lifecycle_recording::event::{Event, Record, SocketChange, SocketOp};
use serde::{Deserialize, Serialize};

use super::{At, locate::Locator};

/// A period a socket listened on `addr:port`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenPeriod {
    /// Kernel socket address (hex), the same for every event of the socket.
    pub socket: String,
    /// Local address listened on.
    pub addr: String,
    /// Local port listened on.
    pub port: u16,
    /// `None`: already listening when the recording started.
    pub start: Option<At>,
    /// `None`: still listening when the recording ended.
    pub end: Option<At>,
    /// UID owning the socket.
    pub uid: u32,
}

impl ListenPeriod {
    /// Whether the socket was listening at `ns` (wall-clock ns).
    pub fn covers(&self, ns: i64) -> bool {
        self.start.is_none_or(|s| s.ns <= ns) && self.end.is_none_or(|e| e.ns > ns)
    }
}

/// An outbound connection attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Kernel socket address (hex) of the connecting socket.
    pub socket: String,
    /// The `connect_start`; `None` when only the outcome was seen.
    pub start: Option<At>,
    /// The `connect_established`; `None` if not (yet) established.
    pub established: Option<At>,
    /// The `connect_failed`; `None` if it did not fail.
    pub failed: Option<At>,
    /// errno name of a failure (ECONNREFUSED, ETIMEDOUT, …).
    pub error: Option<String>,
    /// Local address (taken from `connect_established` once seen).
    pub local_addr: String,
    /// Local port; 0 while only `connect_start` was seen (the kernel picks it
    /// later).
    pub local_port: u16,
    /// Destination address.
    pub remote_addr: String,
    /// Destination port.
    pub remote_port: u16,
    /// UID owning the socket.
    pub uid: u32,
    /// Pid of the socket's owner; `None` when the socket predates the agent.
    pub owner_pid: Option<u32>,
}

impl Connection {
    /// When the attempt was first seen.
    pub fn first(&self) -> Option<At> {
        [self.start, self.established, self.failed]
            .into_iter()
            .flatten()
            .min()
    }

    /// `seq` of each of its records (start, established, failed), for evidence.
    pub fn seqs(&self) -> Vec<u64> {
        [self.start, self.established, self.failed]
            .into_iter()
            .flatten()
            .map(|a| a.seq)
            .collect()
    }
}

/// A connection that completed its handshake on one of our listeners.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Kernel socket address (hex) of the accepted connection.
    pub socket: String,
    /// The `accept` record: the handshake completing on the listener.
    pub at: At,
    /// Local address the connection arrived at.
    pub local_addr: String,
    /// Local port it arrived at (the listener's).
    pub local_port: u16,
    /// Peer's address.
    pub remote_addr: String,
    /// Peer's port.
    pub remote_port: u16,
    /// UID owning the socket.
    pub uid: u32,
}

/// The TCP activity of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketActivity {
    /// Listening periods, in record order.
    pub listens: Vec<ListenPeriod>,
    /// Outbound connection attempts, in record order.
    pub connections: Vec<Connection>,
    /// Connections that completed their handshake on its listeners, in record
    /// order.
    pub accepts: Vec<Accepted>,
}

fn container_of(e: &SocketChange, locator: &Locator<'_>) -> Option<String> {
    locator
        .cgroup(
            e.socket_cgroup.as_ref(),
            e.socket_cgroup_id,
            e.socket_k8s.as_ref(),
        )
        .or_else(|| e.owner.as_ref().and_then(|o| locator.process(o)))
        .map(|l| l.container)
}

/// Collects socket activity per container name.
pub fn collect(records: &[Record], locator: &Locator<'_>) -> HashMap<String, SocketActivity> {
    let mut out: HashMap<String, SocketActivity> = HashMap::new();
    for record in records {
        let Event::Socket(e) = &record.event else {
            continue;
        };
        let Some(container) = container_of(e, locator) else {
            continue;
        };
        let at = At::of(record);
        let activity = out.entry(container).or_default();
        match e.op {
            SocketOp::ListenStart => activity.listens.push(ListenPeriod {
                socket: e.socket.clone(),
                addr: e.local_addr.clone(),
                port: e.local_port,
                start: Some(at),
                end: None,
                uid: e.uid,
            }),
            SocketOp::ListenStop => {
                let open = activity
                    .listens
                    .iter_mut()
                    .rev()
                    .find(|l| l.socket == e.socket && l.end.is_none());
                match open {
                    Some(period) => period.end = Some(at),
                    None => activity.listens.push(ListenPeriod {
                        socket: e.socket.clone(),
                        addr: e.local_addr.clone(),
                        port: e.local_port,
                        start: None,
                        end: Some(at),
                        uid: e.uid,
                    }),
                }
            }
            SocketOp::ConnectStart => activity.connections.push(connection(e, Some(at))),
            SocketOp::ConnectEstablished | SocketOp::ConnectFailed => {
                let open = activity.connections.iter_mut().rev().find(|c| {
                    c.socket == e.socket && c.established.is_none() && c.failed.is_none()
                });
                let conn = match open {
                    Some(conn) => conn,
                    None => {
                        activity.connections.push(connection(e, None));
                        activity.connections.last_mut().expect("just pushed")
                    }
                };
                if e.op == SocketOp::ConnectEstablished {
                    conn.established = Some(at);
                    conn.local_addr.clone_from(&e.local_addr);
                    conn.local_port = e.local_port;
                } else {
                    conn.failed = Some(at);
                    conn.error.clone_from(&e.error);
                }
            }
            SocketOp::Accept => activity.accepts.push(Accepted {
                socket: e.socket.clone(),
                at,
                local_addr: e.local_addr.clone(),
                local_port: e.local_port,
                remote_addr: e.remote_addr.clone(),
                remote_port: e.remote_port,
                uid: e.uid,
            }),
            SocketOp::Close => {}
        }
    }
    out
}

fn connection(e: &SocketChange, start: Option<At>) -> Connection {
    Connection {
        socket: e.socket.clone(),
        start,
        established: None,
        failed: None,
        error: None,
        local_addr: e.local_addr.clone(),
        local_port: e.local_port,
        remote_addr: e.remote_addr.clone(),
        remote_port: e.remote_port,
        uid: e.uid,
        owner_pid: e.owner.as_ref().map(|o| o.pid),
    }
}

/// Whether an address is loopback (127.0.0.0/8, ::1, v4-mapped loopback).
pub fn is_loopback(addr: &str) -> bool {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_forms() {
        assert!(is_loopback("127.0.0.9"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("::ffff:127.0.0.1"));
        assert!(!is_loopback("10.0.0.5"));
        assert!(!is_loopback("not an address"));
    }
}
