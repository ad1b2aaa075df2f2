//! Sorting a pod's processes into runs: per run (one container id) which
//! process is PID 1, which are the runtime's execs (hooks, exec probes),
//! which are children, and which belong to the container runtime itself.
//!
//! PID 1 is the process that execs the container's entrypoint. It is not
//! the oldest process of the cgroup: the runtime's setup is there first.
//! So those setup processes are set aside, and PID 1 is the oldest process
//! left. What the runtimes do, read in their sources:
//!
//! * runc (`libcontainer/nsenter/nsexec.c`, `process_linux.go`, v1.1.5):
//!   `runc create` moves its bootstrap, which names itself
//!   `runc:[0:PARENT]` with `prctl(PR_SET_NAME)`, into the new cgroup
//!   before anything else. It clones `runc:[1:CHILD]`, which clones
//!   `runc:[2:INIT]` (both with `CLONE_PARENT`, so neither is the other's
//!   child for the kernel); the first two exit 0, and `[2:INIT]` execs the
//!   entrypoint once `runc start` comes, keeping its pid and fork time.
//!   `runc exec` runs the same stages and `[2:INIT]` execs the hook's
//!   program: 1.1.5 moves only `[2:INIT]` into the cgroup, once the other
//!   two are gone; from 1.5 `runc init` is cloned straight into it
//!   (`CLONE_INTO_CGROUP`, `setnsProcess.startWithCgroupFD`) and exec'd
//!   there, so all three stages show. A process seen under one of these
//!   names since its last exec is runc's, not the container's.
//! * crun (`src/libcrun/linux.c`, `libcrun_run_linux_container` and
//!   `init_container`, 1.8.1): the container process is a clone of crun
//!   that keeps crun's name and execs the entrypoint itself, so the oldest
//!   process is already PID 1. When it has to join an existing pid or time
//!   namespace without a user namespace, it forks once more and the first
//!   clone exits 0. That one is told by what it does: it never exec'd, it
//!   exited, and a process it forked exec'd after that exit (a PID 1 that
//!   exits takes its container with it, so this is not one).
//! * runsc (gVisor, `runsc/container/container.go`): the container's
//!   processes live inside the sandbox's own kernel; on the host only the
//!   sandbox and gofer processes (comm `exe`) run, in the sandbox's cgroup.
//!   A container's own cgroup holds no process, so there is no PID 1 to
//!   find and the audit falls back on the API.
//!
//! A later process whose parent is not a process of the run entered from
//! outside: that is the runtime's exec (a preStop or postStart hook, an
//! exec probe). Forks inside the run are children; a fork by the runtime's
//! setup is not.

use std::collections::{HashMap, HashSet};

use super::procs::{ContainerProcesses, HookExec, Instance, Place, ProcInfo, ProcKey, ProcRole};

/// The comms runc gives its bootstrap stages.
const RUNC_BOOTSTRAP: &[&str] = &["runc:[0:PARENT]", "runc:[1:CHILD]", "runc:[2:INIT]"];

/// Whether `comm` names a stage of a runtime's bootstrap: the runtime
/// setting a container up (or an exec into it), not the container.
pub fn is_runtime_bootstrap(comm: &str) -> bool {
    RUNC_BOOTSTRAP.contains(&comm)
}

/// The processes of one run, oldest first, and which are the runtime's.
struct Run {
    container: String,
    key: String,
    procs: Vec<ProcInfo>,
    setup: Vec<bool>,
}

impl Run {
    fn new(container: String, key: String, mut procs: Vec<ProcInfo>) -> Self {
        procs.sort_by_key(|p| (p.key.1, p.key.0));
        let setup = runtime_setup(&procs);
        Self {
            container,
            key,
            procs,
            setup,
        }
    }

    /// The container's own processes, oldest first.
    fn own(&self) -> impl Iterator<Item = &ProcInfo> {
        self.procs
            .iter()
            .zip(&self.setup)
            .filter(|(_, setup)| !**setup)
            .map(|(p, _)| p)
    }

    fn pid1(&self) -> Option<&ProcInfo> {
        self.own().next()
    }
}

/// Which processes of a run (oldest first) are the runtime's setup: those
/// under a bootstrap comm anywhere in the run, and, before PID 1, crun's
/// intermediate.
fn runtime_setup(procs: &[ProcInfo]) -> Vec<bool> {
    let mut setup: Vec<bool> = procs.iter().map(|p| p.bootstrap).collect();
    for (i, p) in procs.iter().enumerate() {
        if setup[i] {
            continue;
        }
        if !handed_over(p, procs) {
            break;
        }
        setup[i] = true;
    }
    setup
}

/// Never exec'd, exited, and a process it forked exec'd after that exit.
fn handed_over(p: &ProcInfo, procs: &[ProcInfo]) -> bool {
    let Some(exit) = p.exit.filter(|_| p.exec.is_none()) else {
        return false;
    };
    procs
        .iter()
        .any(|c| c.forked_by == Some(p.key) && c.exec.is_some_and(|e| e > exit.at))
}

/// Groups the processes by run and sorts each run out.
pub(super) fn organise(
    procs: impl IntoIterator<Item = ProcInfo>,
) -> (HashMap<String, ContainerProcesses>, HashMap<ProcKey, Place>) {
    let mut by_run: HashMap<(String, String), Vec<ProcInfo>> = HashMap::new();
    for info in procs {
        by_run
            .entry((info.container.clone(), info.instance.clone()))
            .or_default()
            .push(info);
    }
    let mut runs: Vec<Run> = by_run
        .into_iter()
        .map(|((container, key), procs)| Run::new(container, key, procs))
        .collect();
    // Runs in the order their PID 1 started.
    runs.sort_by_key(|r| r.pid1().map(|p| (p.key.1, p.key.0)));
    let setup: HashSet<ProcKey> = runs
        .iter()
        .flat_map(|r| r.procs.iter().zip(&r.setup))
        .filter(|(_, setup)| **setup)
        .map(|(p, _)| p.key)
        .collect();

    let mut out: HashMap<String, ContainerProcesses> = HashMap::new();
    let mut places = HashMap::new();
    for run in &runs {
        let entry = out.entry(run.container.clone()).or_default();
        entry.runtime_setup += run.setup.iter().filter(|s| **s).count();
        let Some(pid1) = run.pid1() else {
            // Only the runtime so far: the entrypoint is not exec'd yet.
            continue;
        };
        let index = entry.instances.len();
        entry.instances.push(Instance {
            key: run.key.clone(),
            pid: pid1.key.0,
            start_ns: pid1.key.1,
            comm: pid1.comm.clone(),
            filename: pid1.filename.clone(),
            exec: pid1.exec,
            first: pid1.first,
            exit: pid1.exit,
        });
        let pids: Vec<u32> = run.own().map(|p| p.key.0).collect();
        for p in run.own() {
            let forked_inside = p.forked_by.is_some_and(|parent| !setup.contains(&parent));
            let role = if p.key == pid1.key {
                ProcRole::Pid1
            } else if forked_inside || p.exec_parent.is_none_or(|parent| pids.contains(&parent)) {
                ProcRole::Child
            } else {
                ProcRole::RuntimeExec
            };
            if role == ProcRole::RuntimeExec
                && let Some(exec) = p.exec
            {
                entry.hooks.push(HookExec {
                    pid: p.key.0,
                    start_ns: p.key.1,
                    instance: index,
                    exec,
                    filename: p.filename.clone().unwrap_or_default(),
                    exit: p.exit,
                });
            }
            places.insert(
                p.key,
                Place {
                    container: run.container.clone(),
                    instance: index,
                    role,
                },
            );
        }
    }
    for entry in out.values_mut() {
        entry.hooks.sort_by_key(|h| h.exec);
    }
    (out, places)
}
