//! The state of one pod as the kubelet tracks it, shared by the pod's
//! threads (lifecycle, container waiters, probers, stop workers) through a
//! mutex and a condition variable.

use std::{
    collections::BTreeMap,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::Instant,
};

use crate::runtime::{ExitInfo, Instance};

/// A value guarded by a mutex whose changes wake every waiter.
pub struct Monitor<T> {
    value: Mutex<T>,
    changed: Condvar,
}

impl<T> Monitor<T> {
    pub fn new(value: T) -> Self {
        Self {
            value: Mutex::new(value),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, T> {
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock())
    }

    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let result = f(&mut self.lock());
        self.changed.notify_all();
        result
    }

    /// Waits until `check` returns `Some`, or the deadline passes (`None`).
    pub fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&T) -> Option<R>,
    ) -> Option<R> {
        let mut guard = self.lock();
        loop {
            if let Some(result) = check(&guard) {
                return Some(result);
            }
            match deadline {
                None => guard = self.changed.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    guard = self
                        .changed
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

/// One container across its runs.
#[derive(Default)]
pub struct ContainerState {
    /// The current (or last) run.
    pub current: Option<Arc<Instance>>,
    /// Earlier runs, kept until the pod goes.
    pub previous: Vec<Arc<Instance>>,
    pub running: bool,
    pub last_exit: Option<ExitInfo>,
    /// The lifecycle loop has dealt with `last_exit`.
    pub exit_handled: bool,
    pub started: bool,
    pub ready: bool,
    pub restarts: u32,
    /// Termination ordering: this container counts as stopped.
    pub stop_done: bool,
}

/// Where the pod is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Preparing,
    Initializing,
    Running,
    /// Job pod whose main containers are done.
    Completed,
    Terminating,
    Gone,
}

/// The pod as the driver knows it.
pub struct PodState {
    pub containers: BTreeMap<String, ContainerState>,
    pub stage: Stage,
    pub phase: String,
    /// A graceful delete asked for this grace (scenario seconds).
    pub deletion: Option<i64>,
    pub aborted: bool,
    pub failure: Option<String>,
    /// The pod's Ready condition as last published.
    pub pod_ready: bool,
    /// The sandbox's address, once CNI gave it one.
    pub pod_ip: Option<std::net::Ipv4Addr>,
    /// The kubelet generation this state last heard of, and whether that
    /// kubelet is still down (restarting).
    pub kubelet_generation: u64,
    pub kubelet_down: bool,
}

impl PodState {
    pub fn new(names: impl Iterator<Item = String>) -> Self {
        Self {
            containers: names.map(|n| (n, ContainerState::default())).collect(),
            stage: Stage::Preparing,
            phase: "Pending".into(),
            deletion: None,
            aborted: false,
            failure: None,
            pod_ready: false,
            pod_ip: None,
            kubelet_generation: 0,
            kubelet_down: false,
        }
    }

    /// A delete or an abort is pending: startup steps stop here.
    pub fn interrupted(&self) -> bool {
        self.deletion.is_some() || self.aborted
    }

    pub fn container(&self, name: &str) -> Option<&ContainerState> {
        self.containers.get(name)
    }

    pub fn container_mut(&mut self, name: &str) -> &mut ContainerState {
        self.containers.entry(name.to_owned()).or_default()
    }

    pub fn running(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter(|(_, c)| c.running)
            .map(|(n, _)| n.clone())
            .collect()
    }
}
