//! Queries over the agent's recording.

use serde_json::Value;

/// The agent's NDJSON lines.
pub struct Rec(pub Vec<Value>);

/// Milliseconds, for messages.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

pub fn boot(record: &Value) -> u64 {
    record["boot_ns"].as_u64().unwrap_or(0)
}

impl Rec {
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> {
        self.0.iter().filter(move |r| r["type"] == kind)
    }

    /// `signal_generate` records sent to `pid`.
    pub fn signals_to(&self, pid: u32) -> Vec<&Value> {
        self.of_type("signal_generate")
            .filter(|r| r["target"]["pid"] == pid)
            .collect()
    }

    pub fn exec_of(&self, pid: u32) -> Option<&Value> {
        self.of_type("process_exec")
            .find(|r| r["process"]["pid"] == pid)
    }

    pub fn exit_of(&self, pid: u32) -> Option<&Value> {
        self.of_type("process_exit")
            .find(|r| r["process"]["pid"] == pid)
    }

    /// Socket events of `op` whose socket belongs to `container` of `pod`.
    pub fn sockets<'a>(
        &'a self,
        pod: &'a str,
        container: &'a str,
        op: &'a str,
    ) -> impl Iterator<Item = &'a Value> {
        self.of_type("socket").filter(move |r| {
            r["op"] == op
                && r["socket_k8s"]["pod"] == pod
                && r["socket_k8s"]["container"] == container
        })
    }

    /// The first `listen_start` on `port` in the container at or after `after`.
    pub fn listen_start<'a>(
        &'a self,
        pod: &'a str,
        container: &'a str,
        port: u16,
        after: u64,
    ) -> Option<&'a Value> {
        self.sockets(pod, container, "listen_start")
            .filter(|r| r["local_port"] == port && boot(r) >= after)
            .min_by_key(|r| boot(r))
    }

    /// Connects refused (`connect_failed` with ECONNREFUSED) in the container.
    pub fn refused<'a>(&'a self, pod: &'a str, container: &'a str) -> Vec<&'a Value> {
        self.sockets(pod, container, "connect_failed")
            .filter(|r| r["error"] == "ECONNREFUSED")
            .collect()
    }

    /// `pod` records of one pod with a change of this kind.
    pub fn pod_changes<'a>(
        &'a self,
        pod: &'a str,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a Value> {
        self.of_type("pod")
            .filter(move |r| r["pod"] == pod && r["change"]["kind"] == kind)
    }

    /// The phases the agent recorded for the pod, in order.
    pub fn phases<'a>(&'a self, pod: &'a str) -> Vec<&'a str> {
        self.pod_changes(pod, "phase_changed")
            .filter_map(|r| r["change"]["phase"].as_str())
            .collect()
    }

    /// The closing stats line.
    pub fn last_stats(&self) -> &Value {
        self.0
            .iter()
            .rev()
            .find(|r| r["type"] == "stats")
            .expect("closing stats line")
    }
}
