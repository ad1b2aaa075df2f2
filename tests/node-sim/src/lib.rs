//! A kubelet-like node simulator: runs pod specs on this machine with real
//! cgroups (kubelet systemd or cgroupfs names, cgroup v2 or hybrid), a
//! network namespace per pod wired to a "cluster" namespace holding the
//! pods' peers, Istio/Linkerd-style iptables capture, containers as
//! processes (`node-sim-workload` roles) placed like runc places them,
//! stop signals sent like containerd sends them (a short-lived `runc` whose
//! parent is `containerd-shim`), the kubelet's startup and termination
//! ordering per version, and the pod's status published through the test
//! API server with whole-second times.
//!
//! Time runs scaled ([`TimeScale`]): a 30 s grace period takes 1.5 s at the
//! default 0.05. The cluster's clock ([`ScenarioClock`]), which stamps the
//! API's times, runs at the same speed; a recording is put on it for the
//! audits with [`ScenarioClock::to_scenario_time`]. What the driver did,
//! and when, is in its [`SimLog`] — the ground truth tests compare the
//! agent's recording with.
//!
//! Everything it creates (cgroups, namespaces with their veths and
//! iptables rules, processes, files) is removed when the [`Node`] drops,
//! also on error paths.

pub mod api;
pub mod clock;
pub mod env;
pub mod error;
pub mod kubelet;
pub mod log;
pub mod net;
pub mod node;
pub mod runtime;
pub mod scenario;

pub use api::SimApi;
pub use clock::{ScenarioClock, Stamp, TimeScale};
pub use error::SimError;
pub use kubelet::{ContainerKind, KubeletVersion, PodPlan};
pub use log::{Action, Entry, HookPhase, ProbeKind, SimLog, StopCause};
pub use node::{Node, NodeOptions, PodInfo};
pub use runtime::CgroupDriver;
pub use scenario::{RunOptions, Scenario, ScenarioReport, WorkloadEvent};
