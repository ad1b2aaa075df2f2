//! Signals to a pod's processes, with the sender classified and the
//! receiver's disposition attached.
//!
//! The kubelet never signals: containerd's shim runs `runc kill` (or crun,
//! runsc), CRI-O runs the runtime itself. So a signal from a short-lived
//! `runc`/`crun`/`runsc` whose parent is `containerd-shim*` or `crio` (or
//! from `crio` itself) is the container runtime; `SI_KERNEL` is the kernel
//! (OOM killer, the pid namespace's teardown); otherwise the sender's cgroup
//! says whether it is the same container, another container of the pod, or
//! some other process on the host.

use std::collections::HashMap;

use lifecycle_recording::event::{Event, Record};
use serde::{Deserialize, Serialize};

use super::{At, locate::Locator};

/// Who sent a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderClass {
    /// runc/crun/runsc under containerd-shim or crio.
    Runtime,
    /// A process of the target's own container (a preStop `kill`, tini).
    SameContainer,
    /// A process of another container of the same pod.
    OtherContainer,
    /// The kernel (`SI_KERNEL`).
    Kernel,
    /// Any other process.
    HostProcess,
}

impl SenderClass {
    /// The sender class in words, for reports (`container runtime`,
    /// `host process`, …).
    pub fn describe(self) -> &'static str {
        match self {
            Self::Runtime => "container runtime",
            Self::SameContainer => "same container",
            Self::OtherContainer => "another container",
            Self::Kernel => "kernel",
            Self::HostProcess => "host process",
        }
    }
}

const RUNTIME_BINARIES: &[&str] = &["runc", "crun", "runsc"];

fn is_runtime_parent(comm: &str) -> bool {
    comm.starts_with("containerd-shim") || comm == "crio"
}

/// Classifies a sender from what the probe saw.
pub fn classify_sender(
    code_name: &str,
    sender_comm: &str,
    parent_comm: &str,
    sender_container: Option<&str>,
    target_container: Option<&str>,
) -> SenderClass {
    if code_name == "SI_KERNEL" {
        return SenderClass::Kernel;
    }
    match (sender_container, target_container) {
        (Some(s), Some(t)) if s == t => return SenderClass::SameContainer,
        (Some(_), _) => return SenderClass::OtherContainer,
        _ => {}
    }
    let runtime = (RUNTIME_BINARIES.contains(&sender_comm) && is_runtime_parent(parent_comm))
        || sender_comm == "crio";
    if runtime {
        SenderClass::Runtime
    } else {
        SenderClass::HostProcess
    }
}

/// One signal to a process of the pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalObs {
    /// The `signal_generate` record.
    pub at: At,
    /// Signal number.
    pub signal: i32,
    /// Signal name (`SIGTERM`, `SIGKILL`, …).
    pub name: String,
    /// Name of the signal's `si_code` (`SI_USER`, `SI_KERNEL`, `SI_TKILL`, …).
    pub code_name: String,
    /// Who sent it.
    pub sender: SenderClass,
    /// Sender's host pid (kernel tgid).
    pub sender_pid: u32,
    /// Sender's command name.
    pub sender_comm: String,
    /// Command name of the sender's parent.
    pub sender_parent_comm: String,
    /// Host pid of the sender's parent.
    pub sender_parent_pid: u32,
    /// Target container name.
    pub container: String,
    /// Receiver's host pid.
    pub target_pid: u32,
    /// Receiver's start, ns since boot; with `target_pid` it names the process
    /// across pid reuse.
    pub target_start_ns: u64,
    /// delivered, ignored, already_pending, …
    pub result: String,
    /// The receiver's disposition when it acted: default, ignore, handler.
    pub handler: Option<String>,
    /// The receiver's disposition when the signal was sent (the kernel's
    /// probe reads it then): default, ignore, handler.
    pub target_action: Option<String>,
    /// The receiver was its pid namespace's init when the signal was sent.
    pub target_ns_init: Option<bool>,
    /// `seq` of the matching `signal_deliver`; `None` when no delivery was
    /// seen.
    pub deliver_seq: Option<u64>,
}

/// Signals whose target belongs to the pod, in time order.
pub fn collect(records: &[Record], locator: &Locator<'_>) -> Vec<SignalObs> {
    let mut out: Vec<SignalObs> = Vec::new();
    // (pid, start, signal) -> indices of signals not delivered yet.
    let mut waiting: HashMap<(u32, u64, i32), Vec<usize>> = HashMap::new();
    for record in records {
        match &record.event {
            Event::SignalGenerate(e) => {
                let Some(target) = locator.process(&e.target) else {
                    continue;
                };
                let sender = locator.process(&e.sender);
                let class = classify_sender(
                    &e.code_name,
                    &e.sender.comm,
                    &e.sender_parent_comm,
                    sender.as_ref().map(|s| s.container.as_str()),
                    Some(&target.container),
                );
                waiting
                    .entry((e.target.pid, e.target.start_ns, e.signal))
                    .or_default()
                    .push(out.len());
                out.push(SignalObs {
                    at: At::of(record),
                    signal: e.signal,
                    name: e.signal_name.clone(),
                    code_name: e.code_name.clone(),
                    sender: class,
                    sender_pid: e.sender.pid,
                    sender_comm: e.sender.comm.clone(),
                    sender_parent_comm: e.sender_parent_comm.clone(),
                    sender_parent_pid: e.sender_parent_pid,
                    container: target.container,
                    target_pid: e.target.pid,
                    target_start_ns: e.target.start_ns,
                    result: e.result.clone(),
                    handler: None,
                    target_action: e.target_action.clone(),
                    target_ns_init: e.target_ns_init,
                    deliver_seq: None,
                });
            }
            Event::SignalDeliver(e) => {
                let key = (e.process.pid, e.process.start_ns, e.signal);
                if let Some(pending) = waiting.get_mut(&key)
                    && !pending.is_empty()
                {
                    let index = pending.remove(0);
                    out[index].handler = Some(e.handler.clone());
                    out[index].deliver_seq = Some(record.seq);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_are_classified() {
        let c = |code, comm, parent, s, t| classify_sender(code, comm, parent, s, t);
        assert_eq!(
            c("SI_USER", "runc", "containerd-shim", None, Some("app")),
            SenderClass::Runtime
        );
        assert_eq!(
            c("SI_USER", "crun", "crio", None, Some("app")),
            SenderClass::Runtime
        );
        assert_eq!(
            c("SI_USER", "runc", "bash", None, Some("app")),
            SenderClass::HostProcess,
            "runc must run under the shim"
        );
        assert_eq!(
            c("SI_USER", "kill", "bash", None, Some("app")),
            SenderClass::HostProcess
        );
        assert_eq!(
            c("SI_KERNEL", "app", "x", Some("app"), Some("app")),
            SenderClass::Kernel
        );
        assert_eq!(
            c("SI_USER", "kill", "sh", Some("app"), Some("app")),
            SenderClass::SameContainer
        );
        assert_eq!(
            c("SI_USER", "kill", "sh", Some("proxy"), Some("app")),
            SenderClass::OtherContainer
        );
    }
}
