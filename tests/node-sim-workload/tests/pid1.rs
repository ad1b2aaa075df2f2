//! The workload as PID 1 of its own pid namespace, as in a container: it
//! reaps the orphans handed to it, and SIGTERM does what each role's flags
//! say (the kernel drops it for a PID 1 without a handler). Needs root
//! (`unshare --pid`, `nsenter`).

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure
#![allow(unsafe_code)] // kill(2) of the processes under test

mod common;

use std::{path::Path, process::Command, time::Duration};

use common::{BINARY, Running, Scratch, children_of, pid_of, poll};
use lifecycle_testkit::require_root;

const SECOND: Duration = Duration::from_secs(1);

/// Runs `sleep` in the workload's pid namespace from a shell that exits at
/// once, so the sleep is orphaned to the namespace's PID 1; asserts it got
/// there and was reaped (no zombie left) after it ended.
fn assert_reaps_an_orphan(workload: &Running) {
    let status = Command::new("nsenter")
        .args(["--target", &workload.pid.to_string(), "--pid", "--"])
        .args(["/bin/sh", "-c", "sleep 0.5 & exit 0"])
        .status()
        .expect("run nsenter");
    assert!(status.success(), "nsenter: {status}");
    let adopted = children_of(workload.pid);
    assert_eq!(adopted.len(), 1, "the orphaned sleep is PID 1's child");
    let left = poll(3 * SECOND, || {
        let children = children_of(workload.pid);
        children.is_empty().then_some(())
    });
    let state = std::fs::read_to_string(format!("/proc/{}/stat", adopted[0])).unwrap_or_default();
    assert!(left.is_some(), "a child is left behind: {state}");
}

fn started_as_pid1(workload: &Running) {
    let started = workload.event("started", 5 * SECOND);
    assert_eq!(pid_of(&started), Some(1), "{started}");
}

#[test]
fn pause_as_pid1_reaps_orphans_and_exits_on_sigterm() {
    require_root();
    let scratch = Scratch::new("pid1-pause");
    let pause = scratch.install_as("pause");
    let workload = Running::as_pid1(&pause, &[]);
    started_as_pid1(&workload);
    assert_reaps_an_orphan(&workload);
    workload.signal(libc::SIGTERM);
    workload.event("sigterm", 5 * SECOND);
    assert_eq!(workload.exit(5 * SECOND).code(), Some(0));
}

#[test]
fn app_as_pid1_reaps_orphans_and_drains_on_sigterm() {
    require_root();
    let workload = Running::as_pid1(Path::new(BINARY), &["app", "--drain-ms", "200"]);
    started_as_pid1(&workload);
    assert_reaps_an_orphan(&workload);
    workload.signal(libc::SIGTERM);
    let sigterm = workload.event("sigterm", 5 * SECOND);
    assert!(sigterm.contains("\"drain_ms\":200"), "{sigterm}");
    workload.event("exit", 5 * SECOND);
    assert_eq!(workload.exit(5 * SECOND).code(), Some(0));
}

#[test]
fn app_ignoring_sigterm_as_pid1_lasts_until_sigkill() {
    require_root();
    let mut workload = Running::as_pid1(Path::new(BINARY), &["app", "--ignore-term"]);
    started_as_pid1(&workload);
    workload.signal(libc::SIGTERM);
    std::thread::sleep(SECOND / 2);
    assert!(workload.running(), "SIGTERM ended an app told to ignore it");
    workload.signal(libc::SIGKILL);
    let rest = workload.rest(5 * SECOND);
    assert!(
        !rest.iter().any(|line| line.contains("\"ev\":\"sigterm\"")),
        "a SIGTERM handler ran: {rest:?}"
    );
    let status = workload.exit(5 * SECOND);
    assert!(!status.success(), "{status}");
}

#[test]
fn job_worker_as_pid1_has_no_sigterm_handler_so_the_kernel_drops_it() {
    require_root();
    let workload = Running::as_pid1(
        Path::new(BINARY),
        &["job-worker", "--work-ms", "800", "--exit", "3"],
    );
    started_as_pid1(&workload);
    workload.signal(libc::SIGTERM);
    let exit = workload.event("exit", 5 * SECOND);
    assert!(exit.contains("\"code\":3"), "it worked to the end: {exit}");
    assert_eq!(workload.exit(5 * SECOND).code(), Some(3));
}

/// mesh-init runs its tool as a child; as PID 1 the reaper must hand the
/// tool's status back rather than take it. That race is lost only now and
/// then, so the run repeats.
#[test]
fn mesh_init_as_pid1_gets_its_tools_exit_code() {
    require_root();
    let scratch = Scratch::new("pid1-mesh-init");
    let rules = scratch.path().join("rules.sh");
    // The "tool" is a shell reading the rules as its script; its sleep is
    // orphaned to PID 1 too.
    std::fs::write(&rules, "sleep 0.2 &\nexit 3\n").expect("write the rules");
    let rules = rules.to_string_lossy().into_owned();
    let mesh_init = |tool: &str| {
        Running::as_pid1(
            Path::new(BINARY),
            &["mesh-init", "--rules", &rules, "--iptables-restore", tool],
        )
    };
    for run in 0..20 {
        let workload = mesh_init("/bin/sh");
        let applied = workload.event("rules_applied", 5 * SECOND);
        assert_eq!(pid_of(&applied), Some(1), "{applied}");
        assert!(applied.contains("\"code\":3"), "run {run}: {applied}");
        assert_eq!(workload.exit(5 * SECOND).code(), Some(3), "run {run}");
    }
    let workload = mesh_init("/nonexistent/iptables-restore");
    let error = workload.event("error", 5 * SECOND);
    assert!(
        error.contains("run /nonexistent/iptables-restore"),
        "{error}"
    );
    assert_eq!(
        workload.exit(5 * SECOND).code(),
        Some(1),
        "an error, no panic"
    );
}
