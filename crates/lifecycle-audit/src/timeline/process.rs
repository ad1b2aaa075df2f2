//! Processes of a pod's containers, collected per process from the
//! records: what each one showed (its comm, exec, fork parent, exit), and
//! the types a run is described with. Which process is a run's PID 1, a
//! runtime exec, a child or the runtime's own is decided in [`super::runs`].

use std::collections::{HashMap, hash_map::Entry};

use serde::{Deserialize, Serialize};

use super::{At, locate::Locator, runs};
use lifecycle_recording::event::{Event, Process, Record};

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

/// One run of a container, represented by its PID 1: the process that
/// exec'd the entrypoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Container id (or `cgroup:<id>`).
    pub key: String,
    pub pid: u32,
    /// When the process was forked, which for runc's `[2:INIT]` is some
    /// 35 ms before the entrypoint's exec.
    pub start_ns: u64,
    pub comm: String,
    /// Last program PID 1 exec'd.
    pub filename: Option<String>,
    /// PID 1's first exec (the entrypoint); `None` when it predates the
    /// recording.
    pub exec: Option<At>,
    /// First record that showed PID 1 (its fork, when that was seen).
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

/// What a process is to its container. The container runtime's own setup
/// processes have no role: they are not the container's.
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

/// What the records showed of one process.
#[derive(Clone, Debug)]
pub(super) struct ProcInfo {
    pub key: ProcKey,
    pub comm: String,
    pub container: String,
    pub instance: String,
    pub first: At,
    /// Its first exec seen (a `/proc` recovery is not one).
    pub exec: Option<At>,
    pub exec_parent: Option<u32>,
    pub filename: Option<String>,
    /// The process that forked it, when the fork was seen in the pod.
    pub forked_by: Option<ProcKey>,
    /// Seen under a comm of the runtime's bootstrap since its last exec.
    pub bootstrap: bool,
    pub exit: Option<ExitObs>,
}

impl ProcInfo {
    /// Notes the comm a record showed. An exec starts a new program, so
    /// what the process was called before no longer counts.
    fn saw(&mut self, comm: &str, exec: bool) {
        let bootstrap = runs::is_runtime_bootstrap(comm);
        self.bootstrap = bootstrap || (self.bootstrap && !exec);
    }
}

/// The processes of one container, sorted into runs and hooks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerProcesses {
    pub instances: Vec<Instance>,
    pub hooks: Vec<HookExec>,
    /// Processes of the container runtime's setup seen in its cgroups.
    pub runtime_setup: usize,
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
                        } else {
                            info.saw(&e.process.comm, true);
                            if info.exec.is_none() {
                                info.exec = Some(at);
                                info.exec_parent = Some(e.parent_pid);
                            }
                        }
                        info.filename = Some(e.filename.clone());
                        info.comm.clone_from(&e.process.comm);
                    }
                }
                Event::ProcessFork(e) => {
                    let parent = table.see(&e.parent, at, locator).map(|p| p.key);
                    if let Some(info) = table.see(&e.child, at, locator) {
                        info.forked_by = info.forked_by.or(parent);
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

    /// The process of a record, when it is one of the pod's; notes the
    /// comm the record showed.
    fn see(&mut self, p: &Process, at: At, locator: &Locator<'_>) -> Option<&mut ProcInfo> {
        let key = (p.pid, p.start_ns);
        let info = match self.procs.entry(key) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                let located = locator.process(p)?;
                slot.insert(ProcInfo {
                    key,
                    comm: p.comm.clone(),
                    container: located.container,
                    instance: located.instance,
                    first: at,
                    exec: None,
                    exec_parent: None,
                    filename: None,
                    forked_by: None,
                    bootstrap: false,
                    exit: None,
                })
            }
        };
        info.saw(&p.comm, false);
        Some(info)
    }

    /// Container names with processes.
    pub fn containers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.procs.values().map(|p| p.container.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Sorts the processes into runs and hooks; returns them per container
    /// and the place of every process of a container.
    pub fn organise(self) -> (HashMap<String, ContainerProcesses>, HashMap<ProcKey, Place>) {
        runs::organise(self.procs.into_values())
    }
}
