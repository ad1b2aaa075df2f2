//! Termination audit: what happened from the first kill activity (t0) to
//! the last exit, per container, and the verdicts of T1–T7, X1, X2, M1, M2.
//!
//! * [`mod@measure`] finds the trigger, t0, G and the per-container facts;
//! * [`order`] judges stop order and timing (T1, T2, T4, T7);
//! * [`kill`] judges SIGKILLs, deadlines and restarts (T3, T5, T6, X2);
//! * [`squeeze`] reports native sidecars left less than the kubelet's
//!   2 s minimum by an app that used nearly all of G (T3, info);
//! * [`senders`] judges who sent stop signals and SIGKILLs, during the
//!   termination or at any other time (X1);
//! * [`held`] reports native sidecars their own preStop held back after
//!   the app exited (T2, info);
//! * [`mesh`] judges the mesh-specific rules (M1, M2).

pub mod held;
pub mod job_phase;
pub mod kill;
pub mod measure;
pub mod mesh;
pub mod order;
pub mod restart;
pub mod senders;
pub mod squeeze;

use lifecycle_recording::pods::{ContainerKind, SidecarRole};
use serde::{Deserialize, Serialize};

use super::timeline::{At, SenderClass};

pub use measure::measure;

/// What started the termination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// A graceful delete (`deletionTimestamp` set).
    Deletion {
        /// When the request reached the API server, whole seconds.
        request_s: i64,
        /// `deletionTimestamp`, whole seconds.
        deletion_timestamp_s: i64,
        /// When the agent saw the request.
        observed: At,
    },
    /// A Job pod's main containers all exited by themselves.
    JobCompletion {
        /// The last main container's exit (kernel).
        at: At,
    },
    /// Kill activity without a deletion in the recording (eviction or a
    /// delete the agent did not see).
    Unknown {
        /// The first runtime stop signal to a PID 1 from which the whole pod
        /// went down.
        first_activity: At,
    },
}

/// How the kubelet orders the stop signals of this pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopOrder {
    /// Native sidecars on a kubelet that orders them (≥ 1.29): main
    /// containers first, then sidecars in reverse spec order.
    NativeOrdered,
    /// Every container at once (legacy sidecars, no sidecars, 1.28).
    Parallel,
}

/// A grace period as set and changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraceChange {
    /// When the agent saw the request that set it.
    pub at: At,
    /// The grace period requested, seconds.
    pub grace_s: i64,
}

/// The preStop hook of a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreStop {
    /// The spec has none.
    None,
    /// An exec hook seen in the kernel: the runtime's exec into the
    /// container until it exited.
    Exec {
        /// The exec of the hook's program.
        start: At,
        /// Its exit; `None` if not seen.
        end: Option<At>,
        /// Its exit code; `None` if the exit was not seen.
        exit_code: Option<i32>,
        /// Path of the program exec'd.
        filename: String,
    },
    /// An exec hook the spec declares but the recording does not show.
    ExecNotSeen {
        /// The hook's command, from the spec.
        command: String,
    },
    /// A sleep or HTTP hook: run by the kubelet itself, invisible to the
    /// kernel probes.
    NotObservable {
        /// What the hook does, e.g. `sleep 5s` or `httpGet`.
        action: String,
    },
    /// The container had no spec facts.
    Unknown,
}

/// A signal in the termination story.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalMark {
    /// When it was generated.
    pub at: At,
    /// The signal number.
    pub signal: i32,
    /// The signal name, e.g. `SIGTERM`.
    pub name: String,
    /// Who sent it.
    pub sender: SenderClass,
    /// The sender's comm, e.g. `runc`.
    pub sender_comm: String,
    /// The sender's host pid.
    pub sender_pid: u32,
    /// The sender's parent, `comm` and host pid (who ran `kill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_parent: Option<SenderParent>,
    /// What the kernel did with it: `delivered`, `ignored`, `already_pending`, …
    pub result: String,
    /// PID 1's disposition when it was delivered (`default`, `handler`,
    /// `ignore`); `None` when no delivery was seen.
    pub handler: Option<String>,
    /// PID 1's disposition when the signal was sent (`default`, `handler`,
    /// `ignore`); `None` in recordings without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_action: Option<String>,
    /// PID 1 was its pid namespace's init when the signal was sent: without
    /// a handler, the kernel drops SIGTERM and any other catchable signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ns_init: Option<bool>,
}

/// The parent of a signal's sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderParent {
    /// Its command name, e.g. `bash`.
    pub comm: String,
    /// Its host pid.
    pub pid: u32,
}

impl SignalMark {
    /// Why PID 1 did not act on this signal, if the record says: a pid
    /// namespace's init without a handler, or a process ignoring it.
    pub fn ignored_because(&self) -> Option<String> {
        let ignored = self.result == "ignored" || self.handler.as_deref() == Some("ignore");
        if !ignored {
            return None;
        }
        Some(match (self.target_action.as_deref(), self.target_ns_init) {
            (Some("default"), Some(true)) => format!(
                "PID 1 without a handler; the kernel ignores {} for a namespace init",
                self.name
            ),
            (Some("ignore"), _) => format!("PID 1 ignored {} (SIG_IGN)", self.name),
            _ => format!("PID 1 ignored {}", self.name),
        })
    }
}

/// How a container's PID 1 ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitMark {
    /// When PID 1 exited.
    pub at: At,
    /// As a runtime reports it: the status, or 128 + signal.
    pub code: i32,
    /// The signal that killed it; `None` when it exited by itself.
    pub killed_by: Option<i32>,
}

/// What the API said about the end (whole seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiExit {
    /// `finishedAt`, whole Unix seconds; `None` when the API gave none.
    pub finished_at_s: Option<i64>,
    /// The exit code the API reported.
    pub exit_code: i32,
    /// The API's reason, e.g. `Completed`, `Error`, `OOMKilled`.
    pub reason: Option<String>,
    /// `seq` of the pod record that reported it.
    pub seq: u64,
}

/// The container's state when termination began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateAtStart {
    /// A run's PID 1 was alive at t0, or a run began after it.
    Running,
    /// Its run had already exited.
    Exited,
    /// No run, in the kernel or the API.
    NeverStarted,
    /// The API says it ran, the kernel shows nothing.
    Unknown,
}

/// One container's termination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerTermination {
    /// The container's name.
    pub container: String,
    /// Init, native sidecar, legacy sidecar or app; `None` when unknown.
    pub kind: Option<ContainerKind>,
    /// What the container is for (mesh proxy, log shipper, …); `None` when
    /// unknown.
    pub role: Option<SidecarRole>,
    /// A regular container (spec.containers).
    pub main: bool,
    /// Its state at t0 (when the kill window opened, without t0).
    pub state_at_start: StateAtStart,
    /// Its preStop hook and what the recording shows of it.
    pub prestop: PreStop,
    /// First stop signal to PID 1.
    pub stop_signal: Option<SignalMark>,
    /// Further stop signals to PID 1 (rule X2).
    pub repeated_stop_signals: Vec<SignalMark>,
    /// First SIGKILL to PID 1, not from the kernel.
    pub sigkill: Option<SignalMark>,
    /// The exit of the run it had when termination began; `None` if not seen.
    pub exit: Option<ExitMark>,
    /// The API's first report of its end after termination began.
    pub api_exit: Option<ApiExit>,
    /// (exit − kubelet start) / (deadline − kubelet start).
    pub grace_used: Option<f64>,
    /// Runs that began after t0.
    pub restarts: Vec<At>,
}

/// How the API's whole seconds order two exits, next to the kernel's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiOrder {
    /// Same `finishedAt` second: the API cannot order them (A1).
    SameSecond,
    /// The seconds order the exits as the kernel does (or the kernel lacks
    /// one of the exits).
    Agrees,
    /// The seconds order the exits the other way round.
    Disagrees,
    /// A `finishedAt` second is missing on either side.
    Missing,
}

/// A sidecar's exit relative to a main container's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitPair {
    /// The sidecar container.
    pub sidecar: String,
    /// The main container.
    pub main: String,
    /// sidecar exit − main exit (kernel); negative: the sidecar went first.
    pub kernel_gap_s: Option<f64>,
    /// The API's whole-second view of the same order.
    pub api: ApiOrder,
}

/// The termination of one pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TerminationAudit {
    /// What started the termination.
    pub trigger: Trigger,
    /// How the kubelet orders the stop signals.
    pub order: StopOrder,
    /// G: the grace period in force (the shortest one requested).
    pub grace_s: i64,
    /// Where G came from: `deletion`, `spec`, or `default`.
    pub grace_source: String,
    /// Every grace period requested, in order.
    pub grace_changes: Vec<GraceChange>,
    /// First kill activity, from the kernel; `None` when unknown (A1).
    pub t0: Option<At>,
    /// Which container and action defined t0.
    pub t0_cause: Option<String>,
    /// t0 minus the API's request time, as the range the whole seconds
    /// allow: `[t0 − (request_s + 1), t0 − request_s]`.
    pub t0_after_request_s: Option<(f64, f64)>,
    /// The API server's clock minus the node's (seconds, positive when the
    /// API is ahead), measured on the delete request; `None` when it is
    /// within the request's whole second and a watch delivery, or without
    /// a delete. The audit's times are the kernel's either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_clock_offset_s: Option<f64>,
    /// When the kubelet started killing, as far as can be told: t0, or the
    /// agent's observation of the delete request when that came first
    /// (preStop hooks the kernel cannot see: sleep, httpGet). Unix ns; `None`
    /// without t0.
    pub kubelet_start: Option<i64>,
    /// The instant the grace runs out (kubelet start + G, or sooner when
    /// the grace was shortened; after a kubelet restart, its retry + G),
    /// Unix ns; `None` without t0.
    pub deadline: Option<i64>,
    /// A kubelet restart during the termination, which retried it with the
    /// full grace ([`restart`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_restart: Option<restart::KubeletRestart>,
    /// One per container, in the timeline's order.
    pub containers: Vec<ContainerTermination>,
    /// Containers by kernel exit time (those without one are left out).
    pub exit_order: Vec<String>,
    /// Every (sidecar, main) pair that both ended.
    pub exit_pairs: Vec<ExitPair>,
}

impl TerminationAudit {
    /// The termination of the container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerTermination> {
        self.containers.iter().find(|c| c.container == name)
    }

    /// Seconds from t0 to `ns` (Unix ns); `None` when t0 is unknown.
    pub fn offset_s(&self, ns: i64) -> Option<f64> {
        self.t0.map(|t0| super::fmt::to_s(ns - t0.ns))
    }

    /// G in nanoseconds.
    pub fn grace_ns(&self) -> i64 {
        self.grace_s * lifecycle_recording::time::NS_PER_S
    }
}
