//! What every scenario's recording must show, compared with the driver's
//! log, plus lookups into that log.

use std::collections::BTreeSet;

use node_sim::{Action, Entry};
use serde_json::Value;

use super::{
    Played,
    recording::{boot, ms},
};

/// How long after the kernel saw a process exit the driver may reap it.
const REAP_LAG_NS: u64 = 500_000_000;

/// How long after the driver's stamp the kernel may still report a
/// container's exec. `spawn` returns once exec closed the child's
/// close-on-exec error pipe, which comes before the binary is loaded and
/// `sched_process_exec` fires; a busy machine can preempt the child in
/// between.
const EXEC_LAG_NS: u64 = 100_000_000;

impl Played {
    /// `namespace/name` of the pod called `name`.
    pub fn key(&self, name: &str) -> String {
        let pod = self
            .report
            .pod(name)
            .unwrap_or_else(|| panic!("no pod {name}"));
        format!("{}/{}", pod.namespace, pod.name)
    }

    pub fn uid(&self, name: &str) -> String {
        self.report.pod(name).expect("pod").uid.clone()
    }

    pub fn entries(&self, pod: &str, container: Option<&str>) -> Vec<&Entry> {
        self.report.entries(pod, container).collect()
    }

    /// Pids of the container's runs, in order.
    pub fn pids(&self, pod: &str, container: &str) -> Vec<u32> {
        self.entries(pod, Some(container))
            .iter()
            .filter_map(|e| match e.action {
                Action::ContainerStarted { pid, .. } => Some(pid),
                _ => None,
            })
            .collect()
    }

    pub fn pid(&self, pod: &str, container: &str) -> u32 {
        *self
            .pids(pod, container)
            .first()
            .unwrap_or_else(|| panic!("{container} never started"))
    }

    /// runc's kill window `[before, after]` (boot ns) of each `signal` the
    /// driver sent to the container's main process.
    pub fn signal_windows(&self, pod: &str, container: &str, signal: i32) -> Vec<(u64, u64)> {
        let pids = self.pids(pod, container);
        self.entries(pod, Some(container))
            .iter()
            .filter_map(|e| match e.action {
                Action::SignalSent {
                    signal: s,
                    target_pid,
                    before_boot_ns,
                    after_boot_ns,
                    ..
                } if s == signal && pids.contains(&target_pid) => {
                    Some((before_boot_ns, after_boot_ns))
                }
                _ => None,
            })
            .collect()
    }

    /// Kernel time of the one `signal` the container's process got from runc.
    pub fn kernel_signal(&self, pod: &str, container: &str, signal: i32) -> u64 {
        let pids = self.pids(pod, container);
        let found: Vec<u64> = self
            .rec
            .of_type("signal_generate")
            .filter(|r| r["signal"] == signal && pids.iter().any(|p| r["target"]["pid"] == *p))
            .map(boot)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{pod}/{container}: expected one signal {signal}, got {found:?}"
        );
        found[0]
    }

    pub fn has_kernel_signal(&self, pod: &str, container: &str, signal: i32) -> bool {
        let pids = self.pids(pod, container);
        self.rec
            .of_type("signal_generate")
            .any(|r| r["signal"] == signal && pids.iter().any(|p| r["target"]["pid"] == *p))
    }

    /// Kernel exit of the container's `run`-th process.
    pub fn kernel_exit(&self, pod: &str, container: &str, run: usize) -> &Value {
        let pid = self.pids(pod, container)[run];
        self.rec
            .exit_of(pid)
            .unwrap_or_else(|| panic!("no process_exit of {pod}/{container} pid {pid}"))
    }

    pub fn kernel_exec(&self, pod: &str, container: &str, run: usize) -> &Value {
        let pid = self.pids(pod, container)[run];
        self.rec
            .exec_of(pid)
            .unwrap_or_else(|| panic!("no process_exec of {pod}/{container} pid {pid}"))
    }

    /// When the driver began the pod's termination (t0), boot ns.
    pub fn t0(&self, pod: &str) -> u64 {
        self.entries(pod, None)
            .iter()
            .find(|e| matches!(e.action, Action::TerminationStarted { .. }))
            .map(|e| e.at.boot_ns)
            .unwrap_or_else(|| panic!("{pod} never terminated"))
    }

    /// Workload events `ev` of a container.
    pub fn events(&self, pod: &str, container: &str, ev: &str) -> Vec<&Value> {
        self.report
            .events_of(pod, container, ev)
            .map(|e| &e.event)
            .collect()
    }

    /// The scale: real ns per scenario second.
    pub fn second_ns(&self) -> u64 {
        (self.report.scale * 1e9) as u64
    }
}

/// Checks that hold for every scenario.
pub fn common(played: &Played) {
    signals_come_from_runc(played);
    exits_match(played);
    execs_attributed(played);
    hooks_run_inside_containers(played);
    let stats = played.rec.last_stats();
    if stats["kernel_drops_total"] != 0 {
        // Another workload flooded kubepods cgroups meanwhile (a benchmark
        // on a shared machine); the checks above fail if ours were lost.
        eprintln!(
            "warning: the kernel dropped events: {}",
            stats["kernel_drops"]
        );
    }
    assert_eq!(stats["pod_store"]["malformed_objects"], 0, "{stats}");
}

/// Every signal the driver sent is in the recording with the runtime's
/// shape (sender `runc`, its parent `containerd-shim` = the pod's shim,
/// SI_USER), inside runc's kill window, attributed to the target's
/// container; and no other SIGTERM or SIGKILL reached the pods.
fn signals_come_from_runc(played: &Played) {
    let mut expected = 0;
    for entry in &played.report.log {
        let Action::SignalSent {
            signal,
            target_pid,
            runc_pid,
            shim_pid,
            before_boot_ns,
            after_boot_ns,
            errno,
        } = entry.action
        else {
            continue;
        };
        if errno != 0 {
            continue;
        }
        expected += 1;
        let what = format!(
            "{} {:?}: signal {signal} to {target_pid} by runc {runc_pid}",
            entry.pod, entry.container
        );
        let record = played
            .rec
            .of_type("signal_generate")
            .find(|r| {
                r["sender"]["pid"] == runc_pid
                    && r["target"]["pid"] == target_pid
                    && r["signal"] == signal
            })
            .unwrap_or_else(|| panic!("{what}: not in the recording"));
        assert_eq!(record["sender"]["comm"], "runc", "{what}: {record}");
        assert_eq!(
            record["sender_parent_comm"], "containerd-shim",
            "{what}: {record}"
        );
        assert_eq!(record["sender_parent_pid"], shim_pid, "{what}: {record}");
        assert_eq!(record["code_name"], "SI_USER", "{what}: {record}");
        let at = boot(record);
        assert!(
            (before_boot_ns..=after_boot_ns).contains(&at),
            "{what}: kernel time {} outside runc's kill window [{}, {}] ms",
            ms(at),
            ms(before_boot_ns),
            ms(after_boot_ns)
        );
        let (namespace, pod) = entry.pod.split_once('/').expect("namespace/name");
        let k8s = &record["target"]["k8s"];
        match &entry.container {
            Some(container) => {
                assert_eq!(k8s["namespace"], namespace, "{what}: {record}");
                assert_eq!(k8s["pod"], pod, "{what}: {record}");
                assert_eq!(k8s["container"], container.as_str(), "{what}: {record}");
            }
            // The sandbox: its id is never in the API; the agent names its
            // pod once every container has reported an id, and never
            // names a container for it.
            None => {
                let uid = played
                    .report
                    .pods
                    .iter()
                    .find(|p| p.name == pod)
                    .map(|p| p.uid.as_str());
                assert_eq!(
                    record["target"]["cgroup"]["pod_uid"].as_str(),
                    uid,
                    "{what}: {record}"
                );
                assert!(
                    k8s["container"].is_null(),
                    "{what}: the sandbox has no container name: {record}"
                );
            }
        }
    }
    let uids: BTreeSet<String> = played.report.pods.iter().map(|p| p.uid.clone()).collect();
    let stops: Vec<&Value> = played
        .rec
        .of_type("signal_generate")
        .filter(|r| r["signal"] == 15 || r["signal"] == 9)
        .filter(|r| {
            let uid = r["target"]["cgroup"]["pod_uid"]
                .as_str()
                .unwrap_or_default();
            uids.contains(uid)
        })
        .collect();
    for record in &stops {
        assert_eq!(
            record["sender"]["comm"], "runc",
            "a stop signal not from the runtime: {record}"
        );
    }
    assert_eq!(
        stops.len(),
        expected,
        "stop signals recorded vs sent: {stops:#?}"
    );
}

/// Every container exit the driver reaped is in the recording with the
/// same exit code, shortly before the driver saw it.
fn exits_match(played: &Played) {
    for entry in &played.report.log {
        let Action::ContainerExited {
            pid,
            exit_code,
            signal,
            ..
        } = entry.action
        else {
            continue;
        };
        let what = format!("{} {:?} pid {pid}", entry.pod, entry.container);
        let record = played
            .rec
            .exit_of(pid)
            .unwrap_or_else(|| panic!("{what}: no process_exit"));
        assert_eq!(record["container_exit_code"], exit_code, "{what}: {record}");
        match signal {
            Some(sig) => assert_eq!(record["killed_by_signal"], sig, "{what}: {record}"),
            None => assert!(record["killed_by_signal"].is_null(), "{what}: {record}"),
        }
        let at = boot(record);
        assert!(
            at <= entry.at.boot_ns && entry.at.boot_ns - at < REAP_LAG_NS,
            "{what}: kernel exit at {} ms, reaped at {} ms",
            ms(at),
            ms(entry.at.boot_ns)
        );
        assert_eq!(
            record["process"]["k8s"]["container"],
            entry.container.as_deref().unwrap_or_default(),
            "{what}: {record}"
        );
    }
}

/// Every container process is in the recording, exec'd in its container's
/// cgroup and attributed through the API to pod and container.
fn execs_attributed(played: &Played) {
    for entry in &played.report.log {
        let Action::ContainerStarted {
            ref container_id,
            pid,
            restart,
            ..
        } = entry.action
        else {
            continue;
        };
        let what = format!("{} {:?} pid {pid}", entry.pod, entry.container);
        let record = played
            .rec
            .exec_of(pid)
            .unwrap_or_else(|| panic!("{what}: no process_exec"));
        let (namespace, pod) = entry.pod.split_once('/').expect("namespace/name");
        let process = &record["process"];
        assert_eq!(
            process["cgroup"]["container_id"],
            container_id.as_str(),
            "{what}: {record}"
        );
        assert_eq!(process["k8s"]["namespace"], namespace, "{what}: {record}");
        assert_eq!(process["k8s"]["pod"], pod, "{what}: {record}");
        let name = entry.container.as_deref().unwrap_or_default();
        assert_eq!(
            process["k8s"]["container"], name,
            "{what} (restart {restart}): {record}"
        );
        assert_eq!(
            process["k8s"]["pod_uid"], process["cgroup"]["pod_uid"],
            "{what}: {record}"
        );
        assert_eq!(
            record["parent_pid"], played.driver_pid,
            "{what}: started by the driver: {record}"
        );
        assert!(
            boot(record) <= entry.at.boot_ns + EXEC_LAG_NS,
            "{what}: exec at {} ms, well after the driver's stamp at {} ms",
            ms(boot(record)),
            ms(entry.at.boot_ns)
        );
    }
}

/// Exec hooks run as processes in their container's cgroup whose parent
/// (the driver) is outside the container.
fn hooks_run_inside_containers(played: &Played) {
    for entry in &played.report.log {
        let Action::HookStarted {
            pid: Some(pid),
            hook,
        } = entry.action
        else {
            continue;
        };
        let what = format!(
            "{} {:?} {hook:?} hook pid {pid}",
            entry.pod, entry.container
        );
        let record = played
            .rec
            .exec_of(pid)
            .unwrap_or_else(|| panic!("{what}: no process_exec"));
        assert_eq!(
            record["process"]["k8s"]["container"],
            entry.container.as_deref().unwrap_or_default(),
            "{what}: {record}"
        );
        assert_eq!(record["parent_pid"], played.driver_pid, "{what}: {record}");
        let parent_in_container = played
            .rec
            .of_type("process_exec")
            .any(|r| r["process"]["pid"] == played.driver_pid);
        assert!(
            !parent_in_container,
            "{what}: the hook's parent must not be a container process"
        );
    }
}
