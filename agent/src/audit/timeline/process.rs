//! Processes of a pod's containers: which one is a run's PID 1, which are
//! the runtime's execs (hooks, exec probes) and which are children.
//!
//! A container's PID 1 is the oldest process of its run (smallest
//! `start_ns`): runc starts it before anything else can enter the cgroup.
//! A later process whose parent is not a process of the same run entered
//! from outside: that is the runtime's exec (`runc exec` for a preStop or
//! postStart hook or an exec probe). Forks inside the run are children.

use std::collections::{HashMap, hash_map::Entry};

use serde::{Deserialize, Serialize};

use super::{At, locate::Locator};
use crate::event::{Event, Process, Record};

/// `(pid, start_ns)`: a process across pid reuse.
pub type ProcKey = (u32, u64);

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitObs {
    pub at: At,
    /// What a runtime reports: the status, or 128 + signal.
    pub code: i32,
    pub killed_by: Option<i32>,
}

/// One run of a container, represented by its PID 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Container id (or `cgroup:<id>`).
    pub key: String,
    pub pid: u32,
    pub start_ns: u64,
    pub comm: String,
    /// Last program PID 1 exec'd.
    pub filename: Option<String>,
    /// PID 1's first exec; `None` when it predates the recording.
    pub exec: Option<At>,
    /// First record that showed the run.
    pub first: At,
    pub exit: Option<ExitObs>,
}

impl Instance {
    /// Whether PID 1 ran at `ns` (a run seen without its exec ran before
    /// the recording started).
    pub fn alive_at(&self, ns: i64) -> bool {
        self.exec.is_none_or(|e| e.ns <= ns) && self.exit.is_none_or(|x| x.at.ns > ns)
    }

    /// When the run began, as far as the recording shows.
    pub fn began(&self) -> At {
        self.exec.unwrap_or(self.first)
    }
}

/// A process the runtime exec'd into a running container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookExec {
    pub pid: u32,
    pub start_ns: u64,
    /// Index into the container's instances.
    pub instance: usize,
    pub exec: At,
    pub filename: String,
    pub exit: Option<ExitObs>,
}

/// What a process is to its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcRole {
    Pid1,
    RuntimeExec,
    Child,
}

/// Where a process sits: container (by name), run, role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub container: String,
    pub instance: usize,
    pub role: ProcRole,
}

#[derive(Clone, Debug)]
struct ProcInfo {
    key: ProcKey,
    comm: String,
    container: String,
    instance: String,
    first: At,
    exec: Option<At>,
    exec_parent: Option<u32>,
    filename: Option<String>,
    forked_inside: bool,
    exit: Option<ExitObs>,
}

/// The processes of one container, sorted into runs and hooks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerProcesses {
    pub instances: Vec<Instance>,
    pub hooks: Vec<HookExec>,
}

/// Collects every process of the pod, by container name.
pub struct ProcessTable {
    procs: HashMap<ProcKey, ProcInfo>,
}

impl ProcessTable {
    pub fn collect(records: &[Record], locator: &Locator<'_>) -> Self {
        let mut table = Self {
            procs: HashMap::new(),
        };
        for record in records {
            let at = At::of(record);
            match &record.event {
                Event::ProcessExec(e) => {
                    if let Some(info) = table.see(&e.process, at, locator) {
                        if e.recovered.is_some() {
                            // Found running at agent start: its exec was
                            // not seen, only its parent is known.
                            info.exec_parent.get_or_insert(e.parent_pid);
                        } else if info.exec.is_none() {
                            info.exec = Some(at);
                            info.exec_parent = Some(e.parent_pid);
                        }
                        info.filename = Some(e.filename.clone());
                        info.comm.clone_from(&e.process.comm);
                    }
                }
                Event::ProcessFork(e) => {
                    let parent_inside = locator.process(&e.parent).is_some();
                    if let Some(info) = table.see(&e.child, at, locator) {
                        info.forked_inside |= parent_inside;
                    }
                }
                Event::ProcessExit(e) => {
                    if let Some(info) = table.see(&e.process, at, locator) {
                        info.exit.get_or_insert(ExitObs {
                            at,
                            code: e.container_exit_code,
                            killed_by: e.killed_by_signal,
                        });
                    }
                }
                Event::SignalGenerate(e) => {
                    table.see(&e.sender, at, locator);
                    table.see(&e.target, at, locator);
                }
                Event::SignalDeliver(e) => {
                    table.see(&e.process, at, locator);
                }
                Event::Socket(e) => {
                    if let Some(owner) = &e.owner {
                        table.see(owner, at, locator);
                    }
                }
                Event::Cgroup(_) | Event::Pod(_) | Event::Stats(_) => {}
            }
        }
        table
    }

    fn see(&mut self, p: &Process, at: At, locator: &Locator<'_>) -> Option<&mut ProcInfo> {
        let key = (p.pid, p.start_ns);
        match self.procs.entry(key) {
            Entry::Occupied(known) => Some(known.into_mut()),
            Entry::Vacant(slot) => {
                let located = locator.process(p)?;
                Some(slot.insert(ProcInfo {
                    key,
                    comm: p.comm.clone(),
                    container: located.container,
                    instance: located.instance,
                    first: at,
                    exec: None,
                    exec_parent: None,
                    filename: None,
                    forked_inside: false,
                    exit: None,
                }))
            }
        }
    }

    /// Container names with processes.
    pub fn containers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.procs.values().map(|p| p.container.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Sorts the processes into runs and hooks; returns them per container
    /// and the place of every process.
    pub fn organise(self) -> (HashMap<String, ContainerProcesses>, HashMap<ProcKey, Place>) {
        let mut by_run: HashMap<(String, String), Vec<ProcInfo>> = HashMap::new();
        for info in self.procs.into_values() {
            by_run
                .entry((info.container.clone(), info.instance.clone()))
                .or_default()
                .push(info);
        }
        let mut runs: Vec<((String, String), Vec<ProcInfo>)> = by_run.into_iter().collect();
        for (_, procs) in &mut runs {
            procs.sort_by_key(|p| (p.key.1, p.key.0));
        }
        // Runs in the order their PID 1 started.
        runs.sort_by_key(|(_, procs)| procs[0].key.1);

        let mut out: HashMap<String, ContainerProcesses> = HashMap::new();
        let mut places = HashMap::new();
        for ((container, instance_key), procs) in runs {
            let entry = out.entry(container.clone()).or_default();
            let index = entry.instances.len();
            let pid1 = &procs[0];
            entry.instances.push(Instance {
                key: instance_key,
                pid: pid1.key.0,
                start_ns: pid1.key.1,
                comm: pid1.comm.clone(),
                filename: pid1.filename.clone(),
                exec: pid1.exec,
                first: pid1.first,
                exit: pid1.exit,
            });
            let pids: Vec<u32> = procs.iter().map(|p| p.key.0).collect();
            for (i, p) in procs.iter().enumerate() {
                let role = if i == 0 {
                    ProcRole::Pid1
                } else if p.forked_inside
                    || p.exec_parent.is_none_or(|parent| pids.contains(&parent))
                {
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
                        container: container.clone(),
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
}
