//! Processes of a pod's containers, collected per process from the
//! records: what each one showed (its comm, exec, fork parent, exit), in
//! the types of [`super::procs`]. Which process is a run's PID 1, a
//! runtime exec, a child or the runtime's own is decided in [`super::runs`].

use std::collections::{HashMap, hash_map::Entry};

use lifecycle_recording::event::{Event, Process, Record};

use super::{
    procs::{ContainerProcesses, ExitObs, Place, ProcInfo, ProcKey},
    {At, locate::Locator, runs},
};

/// Notes the comm a record showed. An exec starts a new program, so what
/// the process was called before no longer counts.
fn saw(info: &mut ProcInfo, comm: &str, exec: bool) {
    let bootstrap = runs::is_runtime_bootstrap(comm);
    info.bootstrap = bootstrap || (info.bootstrap && !exec);
}

/// Collects every process of the pod, by container name.
pub struct ProcessTable {
    procs: HashMap<ProcKey, ProcInfo>,
}

impl ProcessTable {
    /// Gathers the pod's processes from every record that shows one (execs,
    /// forks, exits, signal senders and targets, socket owners).
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
                            saw(info, &e.process.comm, true);
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
                Event::Cgroup(_) | Event::Pod(_) | Event::Stats(_) | Event::SignalSummary(_) => {}
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
        saw(info, &p.comm, false);
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
