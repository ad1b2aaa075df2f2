//! A kubelet-like node driver on a real container runtime. Each node gets
//! its own containerd (CRI plugin, runc, CNI bridge) running inside a
//! network namespace of its own, and this crate plays the kubelet above
//! it over CRI v1: pod cgroups as the cgroupfs driver names them,
//! `RunPodSandbox` with a locally built pause image, `CreateContainer` /
//! `StartContainer` with the pod's namespaces and security context,
//! `StopContainer` with the remaining grace after the preStop, exits read
//! from `ContainerStatus`, hooks and exec probes through `ExecSync`, HTTP
//! and TCP probes against the pod's address, the kubelet's startup and
//! termination ordering per version, and the pod's status published
//! through the test API server. The containers run the node-sim workload
//! (one static binary, packed as an OCI image and imported without a
//! registry). Istio/Linkerd-style iptables capture goes into the pod's
//! network namespace at the init container's step.
//!
//! Scenarios play at real speed: the kernel's times and the API's whole
//! seconds are one clock. What the driver did, and when, is in its
//! [`SimLog`] — the ground truth tests compare the agent's recording with.
//!
//! Everything a node creates (containers, sandboxes, shims, mounts,
//! namespaces, pod cgroups, the files containerd writes outside its root)
//! is removed when the [`Node`] drops, also on error paths; what a killed
//! run left behind is cleared when the next node starts.

// Test programs make raw system calls (kill, setns, open/write in pre_exec, geteuid).
#![allow(unsafe_code)]

pub mod api;
pub mod clock;
pub mod daemonset;
pub mod env;
pub mod error;
pub mod kubelet;
pub mod log;
pub mod net;
pub mod node;
pub mod runtime;
pub mod scenario;

pub use api::SimApi;
pub use clock::Stamp;
pub use error::SimError;
pub use kubelet::{ContainerKind, KubeletVersion, PodPlan};
pub use log::{Action, Entry, HookPhase, ProbeKind, SimLog, StopCause};
pub use node::{Node, NodeOptions, PodInfo};
pub use scenario::{RunOptions, Scenario, ScenarioReport, WorkloadEvent};
