//! What every scenario's recording must show, compared with the driver's
//! log, plus lookups into that log.

use std::collections::BTreeSet;

use node_sim::{Action, Entry};
use serde_json::Value;

use super::{
    Played,
    recording::{boot, ms},
};

/// How far the runtime's `finishedAt` may lie from the kernel's exit (the
/// shim reaps the init and stamps the exit).
const REAP_LAG_NS: u64 = 500_000_000;

/// How far the kernel's exec of a container's entrypoint may lie from the
/// runtime's `startedAt` (containerd stamps it when runc's start returns,
/// around the exec).
const EXEC_LAG_NS: u64 = 200_000_000;

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

    /// `signal_generate` records of `signal` to any of the container's runs.
    fn signals_to<'a>(
        &'a self,
        pod: &str,
        container: &str,
        signal: i32,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let pids = self.pids(pod, container);
        self.rec
            .of_type("signal_generate")
            .filter(move |r| r["signal"] == signal && pids.iter().any(|p| r["target"]["pid"] == *p))
    }

    /// Kernel time of the first `signal` the container's process got from
    /// runc (after its stop timeout containerd's shim SIGKILLs the init and
    /// then everything in the container: two SIGKILLs).
    pub fn kernel_signal(&self, pod: &str, container: &str, signal: i32) -> u64 {
        self.signals_to(pod, container, signal)
            .filter(|r| r["sender"]["comm"] == "runc")
            .map(boot)
            .min()
            .unwrap_or_else(|| panic!("{pod}/{container}: no signal {signal} from runc"))
    }

    pub fn has_kernel_signal(&self, pod: &str, container: &str, signal: i32) -> bool {
        self.signals_to(pod, container, signal).next().is_some()
    }

    /// The container's `run`-th pid and its record of `kind` (`exit_of`,
    /// `exec_of`).
    fn kernel_record<'a>(
        &'a self,
        pod: &str,
        container: &str,
        run: usize,
        kind: &str,
        find: impl Fn(u32) -> Option<&'a Value>,
    ) -> &'a Value {
        let pid = self.pids(pod, container)[run];
        find(pid).unwrap_or_else(|| panic!("no {kind} of {pod}/{container} pid {pid}"))
    }

    /// Kernel exit of the container's `run`-th process.
    pub fn kernel_exit(&self, pod: &str, container: &str, run: usize) -> &Value {
        self.kernel_record(pod, container, run, "process_exit", |pid| {
            self.rec.exit_of(pid)
        })
    }

    pub fn kernel_exec(&self, pod: &str, container: &str, run: usize) -> &Value {
        self.kernel_record(pod, container, run, "process_exec", |pid| {
            self.rec.exec_of(pid)
        })
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

    /// One second in ns (scenarios play at real speed).
    pub fn second_ns(&self) -> u64 {
        1_000_000_000
    }
}

/// Checks that hold for every scenario.
pub fn common(played: &Played) {
    stop_signals_come_from_runc(played);
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

/// The pid and shim of each sandbox, by pod key.
fn shims(played: &Played) -> std::collections::BTreeMap<String, u32> {
    played
        .report
        .log
        .iter()
        .filter_map(|e| match e.action {
            Action::SandboxStarted { shim_pid, .. } => Some((e.pod.clone(), shim_pid)),
            _ => None,
        })
        .collect()
}

/// Every `StopContainer` the driver made shows in the recording as the
/// stop signal to that container's PID 1, sent between the call and its
/// return by a `runc` whose parent is the pod's `containerd-shim`
/// (SI_USER), attributed to the container; and every SIGTERM or SIGKILL
/// a process sent to the scenario's pods came from `runc` (the kernel's own
/// SIGKILLs, SI_KERNEL, when a pid namespace's init exits, are not sent by
/// anyone).
fn stop_signals_come_from_runc(played: &Played) {
    let shims = shims(played);
    let log = &played.report.log;
    for (i, entry) in log.iter().enumerate() {
        let (Action::StopRequested { .. }, Some(container)) = (&entry.action, &entry.container)
        else {
            continue;
        };
        // A restarted kubelet's retry of a stop the runtime already
        // signalled: containerd 1.6 skips the second signal ("a prior stop
        // with timeout>0 request already sent the signal").
        let retried = log[..i]
            .iter()
            .rev()
            .any(|e| e.pod == entry.pod && matches!(e.action, Action::TerminationRetried))
            && log[..i].iter().any(|e| {
                e.pod == entry.pod
                    && e.container == entry.container
                    && matches!(e.action, Action::StopRequested { .. })
            });
        if retried {
            continue;
        }
        let returned = log[i..]
            .iter()
            .find(|e| {
                e.pod == entry.pod
                    && e.container == entry.container
                    && matches!(e.action, Action::StopReturned)
            })
            .map_or(u64::MAX, |e| e.at.boot_ns);
        let (_, pod) = entry.pod.split_once('/').expect("namespace/name");
        let pids = played.pids(pod, container);
        let what = format!("{} {container}: StopContainer", entry.pod);
        let record = played
            .rec
            .of_type("signal_generate")
            .filter(|r| pids.iter().any(|p| r["target"]["pid"] == *p))
            .filter(|r| (entry.at.boot_ns..=returned).contains(&boot(r)))
            .find(|r| r["sender"]["comm"] == "runc")
            .unwrap_or_else(|| {
                panic!("{what}: no signal from runc to PID 1 {pids:?} while it ran")
            });
        assert_eq!(
            record["sender_parent_comm"], "containerd-shim",
            "{what}: {record}"
        );
        assert_eq!(
            record["sender_parent_pid"],
            shims.get(&entry.pod).copied().unwrap_or(0),
            "{what}: the pod's shim: {record}"
        );
        assert_eq!(record["code_name"], "SI_USER", "{what}: {record}");
        assert_eq!(
            record["target"]["k8s"]["container"],
            container.as_str(),
            "{what}: {record}"
        );
    }
    let uids: BTreeSet<String> = played.report.pods.iter().map(|p| p.uid.clone()).collect();
    // The scenario's own `hostKill` steps: those shells are the only other
    // senders allowed, each to the pid it was aimed at.
    let host_kills: BTreeSet<(u64, u64)> = played
        .report
        .log
        .iter()
        .filter_map(|e| match e.action {
            Action::HostSignalSent {
                sender_pid,
                target_pid,
                ..
            } => Some((sender_pid.into(), target_pid.into())),
            _ => None,
        })
        .collect();
    for record in played
        .rec
        .of_type("signal_generate")
        .filter(|r| r["signal"] == 15 || r["signal"] == 9)
        .filter(|r| r["code_name"] != "SI_KERNEL")
        .filter(|r| {
            let pair = (
                r["sender"]["pid"].as_u64().unwrap_or(0),
                r["target"]["pid"].as_u64().unwrap_or(0),
            );
            !host_kills.contains(&pair)
        })
        // Inside one container a process may stop another (pilot-agent
        // SIGKILLs its child Envoy).
        .filter(|r| {
            let id = |p: &Value| p["cgroup"]["container_id"].as_str().map(str::to_owned);
            id(&r["sender"]).is_none() || id(&r["sender"]) != id(&r["target"])
        })
        .filter(|r| {
            let uid = r["target"]["cgroup"]["pod_uid"]
                .as_str()
                .unwrap_or_default();
            uids.contains(uid)
        })
    {
        let sender = record["sender"]["comm"].as_str().unwrap_or_default();
        assert!(
            sender == "runc" || sender.starts_with("containerd-shim"),
            "a stop signal not from the runtime: {record}"
        );
    }
}

/// Every exit the runtime reported is in the recording with the same exit
/// code, close to the runtime's finish time, attributed to the container.
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
        // The runtime reads a signal out of any exit code above 128; the
        // kernel tells a death by that signal from an exit(143) (what
        // cloud-sql-proxy does on SIGTERM).
        match signal {
            Some(sig) => assert!(
                record["killed_by_signal"] == sig
                    || (record["killed_by_signal"].is_null() && record["exit_status"] == exit_code),
                "{what}: {record}"
            ),
            None => assert!(record["killed_by_signal"].is_null(), "{what}: {record}"),
        }
        let at = boot(record);
        assert!(
            at.abs_diff(entry.at.boot_ns) < REAP_LAG_NS,
            "{what}: kernel exit at {} ms, the runtime's finishedAt at {} ms",
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

/// Every container's init is in the recording: its exec of the entrypoint
/// in the container's own cgroup (`/kubepods/…/pod<uid>/<container id>`),
/// attributed through the API to pod and container, its parent the pod's
/// shim, PID 1 of its own pid namespace unless the pod shares one.
fn execs_attributed(played: &Played) {
    let shims = shims(played);
    let mut namespaced = 0;
    for entry in &played.report.log {
        let Action::ContainerStarted {
            ref container_id,
            pid,
            restart,
            ns_pid,
            ref cgroup,
            cgroup_id,
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
        // The directory runc made at `<cgroup2>/kubepods/<qos>/pod<uid>/<id>`
        // (its inode is the cgroup id the kernel reports).
        let tail = format!("/pod{}/{container_id}", played.uid(pod));
        assert!(
            cgroup.contains("/kubepods/") && cgroup.ends_with(&tail),
            "{what}: {cgroup}"
        );
        assert_eq!(process["cgroup_id"], cgroup_id, "{what}: {record}");
        assert_eq!(process["cgroup"]["driver"], "cgroupfs", "{what}: {record}");
        assert_eq!(process["k8s"]["namespace"], namespace, "{what}: {record}");
        assert_eq!(process["k8s"]["pod"], pod, "{what}: {record}");
        let name = entry.container.as_deref().unwrap_or_default();
        assert_eq!(
            process["k8s"]["container"], name,
            "{what} (restart {restart}): {record}"
        );
        assert_eq!(
            record["parent_pid"],
            shims.get(&entry.pod).copied().unwrap_or(0),
            "{what}: the init's parent is the pod's shim: {record}"
        );
        let shared = played
            .scenario
            .pods
            .iter()
            .find(|p| p.manifest.pointer("/metadata/name").and_then(Value::as_str) == Some(pod))
            .and_then(|p| p.manifest.pointer("/spec/shareProcessNamespace"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        // Read from /proc right after the start: a container that already
        // exited (an init container's short task) has none.
        if !shared && let Some(ns_pid) = ns_pid {
            assert_eq!(ns_pid, 1, "{what}: PID 1 of its pid namespace");
            namespaced += 1;
        }
        assert!(
            boot(record).abs_diff(entry.at.boot_ns) < EXEC_LAG_NS,
            "{what}: exec at {} ms, the runtime's startedAt at {} ms",
            ms(boot(record)),
            ms(entry.at.boot_ns)
        );
    }
    let shared_everywhere = played.scenario.pods.iter().all(|p| {
        p.manifest
            .pointer("/spec/shareProcessNamespace")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    });
    assert!(
        shared_everywhere || namespaced > 0,
        "no container's PID 1 was seen in its own pid namespace"
    );
}

/// Exec hooks (`ExecSync`) run as the hook's program in their container's
/// cgroup while the hook runs, not as a new run of the container.
fn hooks_run_inside_containers(played: &Played) {
    let log = &played.report.log;
    for (i, entry) in log.iter().enumerate() {
        let Action::HookStarted {
            exec: Some(ref cmd),
            hook,
        } = entry.action
        else {
            continue;
        };
        let finished = log[i..]
            .iter()
            .find(|e| {
                e.pod == entry.pod
                    && e.container == entry.container
                    && matches!(e.action, Action::HookFinished { .. })
            })
            .map_or(u64::MAX, |e| e.at.boot_ns);
        let what = format!("{} {:?} {hook:?} hook {cmd:?}", entry.pod, entry.container);
        let container = entry.container.as_deref().unwrap_or_default();
        let pod_name = entry.pod.split_once('/').map_or("", |p| p.1);
        let pid_ones = played.pids(pod_name, container);
        // The hook's program can be the container's own entrypoint (Istio's
        // proxy image runs `pilot-agent` for both), and runc's exec of the
        // container's PID 1 can land just after the hook has started. So the
        // hook is an exec of its program in the container's cgroup, during the
        // hook, by a process that is not one of the container's PID 1s.
        let execs: Vec<&Value> = played
            .rec
            .of_type("process_exec")
            .filter(|r| (entry.at.boot_ns..=finished).contains(&boot(r)))
            .filter(|r| {
                r["process"]["k8s"]["container"] == container
                    && r["filename"].as_str() == Some(cmd[0].as_str())
            })
            .collect();
        assert!(
            !execs.is_empty(),
            "{what}: no exec of the hook in the container"
        );
        assert!(
            execs
                .iter()
                .any(|r| !pid_ones.iter().any(|p| r["process"]["pid"] == *p)),
            "{what}: every exec of the hook's program is one of the container's PID 1s: {execs:?}"
        );
    }
}
