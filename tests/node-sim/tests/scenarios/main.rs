//! Every scenario of `tests/scenarios/` played with `lifecycle-agent
//! record` attached; the recording is checked against the driver's own log
//! (`common::checks::common` for what holds everywhere, each test for what
//! its scenario is about). Times are the kernel's boot clock; tolerances
//! are stated where they are used.
//!
//! Audit findings: `common::play` audits every recording (put on the
//! cluster's clock) with the agent's audit library and asserts that the
//! findings are exactly the scenario file's `expect` list
//! (`common::audit`); tests add what else the audit must have measured.
//!
//! One module per theme: Istio, Linkerd, Jobs and helper sidecars, local
//! dependencies,
//! termination and kubelet versions.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

#[path = "../common/mod.rs"]
mod common;

mod dependencies;
mod istio;
mod jobs;
mod linkerd;
mod termination;

use common::{
    Played,
    recording::{boot, ms},
};

/// Slack for "right after" / "at about" on this 2-core machine: thread
/// wake-ups, a fork and an exec of runc.
const SLACK_NS: u64 = 300_000_000;

fn assert_before(a: u64, b: u64, what: &str) {
    assert!(a < b, "{what}: {} ms is not before {} ms", ms(a), ms(b));
}

fn assert_near(at: u64, expected: u64, slack: u64, what: &str) {
    assert!(
        at + 10_000_000 >= expected && at <= expected + slack,
        "{what}: at {} ms, expected {} ms (+{} ms)",
        ms(at),
        ms(expected),
        ms(slack)
    );
}

/// The proxy (Envoy) listens on the capture port: its first listen_start.
fn capture_listen(p: &Played, pod: &str, container: &str, port: u16, after: u64) -> u64 {
    boot(
        p.rec
            .listen_start(pod, container, port, after)
            .unwrap_or_else(|| panic!("{container} never listened on {port}")),
    )
}

/// Asserts no connect of the container was refused.
fn assert_no_refusals(p: &Played, pod: &str, container: &str) {
    let refused = p.rec.refused(pod, container);
    assert!(
        refused.is_empty(),
        "{container}: {} refused connects, first {}",
        refused.len(),
        refused[0]
    );
}
