//! The agent's tests on the real kernel, as root: the probes and the
//! recording (`kernel_events`, `ring_buffer_drops`), the signal mask
//! (`signal_filter`, and `signal_stop_mask` widened by a pod's stop
//! signal), the join with a pod watch (`kernel_pod_join`), the audit of
//! real stop sequences (`audit_e2e`), `doctor` on this machine, and the
//! `run` daemon end to end.
//!
//! Not root, each test writes "needs root, skipped" to stderr and passes,
//! unless `LIFECYCLE_REQUIRE_ROOT=1` (set by `cargo xtask test`) makes it
//! fail. One test runs at a time ([`support::kernel`]).

#![allow(clippy::unwrap_used)]
// setrlimit and kill in test children.
#![allow(unsafe_code)]

#[path = "../support"]
mod support {
    pub mod agent;
    pub mod cluster;
    pub mod daemon;
    pub mod kernel;
}

mod audit_e2e;
mod doctor;
mod kernel_events;
mod kernel_pod_join;
mod ring_buffer_drops;
mod run_daemon;
mod signal_filter;
mod signal_stop_mask;
