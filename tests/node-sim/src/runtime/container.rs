//! One run of a container in the real runtime: created and started over
//! CRI, then watched by a thread that polls its status the way the
//! kubelet's PLEG relists, and reports the exit with the runtime's exit
//! code, reason and finish time.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use k8s_cri::v1::{ContainerConfig, ContainerState, PodSandboxConfig};

use super::cri::{Cri, CriError};
use crate::clock::Stamp;

/// How often the watcher asks the runtime (the kubelet's PLEG relists
/// every second; a test driver can afford finer).
const POLL: Duration = Duration::from_millis(25);

/// Consecutive failed status calls after which the watcher gives up.
const GIVE_UP_AFTER: u32 = 40;

/// How a container's init ended, as the runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// The runtime's exit code (128 + signal for a signal death).
    pub exit_code: i32,
    /// The signal that killed it, read from the exit code.
    pub signal: Option<i32>,
    /// `ContainerStatus.reason`: `Completed`, `Error`, `OOMKilled`, ...
    pub reason: String,
    pub message: String,
    /// The runtime's finish time.
    pub at: Stamp,
}

impl ExitInfo {
    fn from_status(exit_code: i32, reason: String, message: String, finished_ns: i64) -> Self {
        let signal = (129..=128 + 64)
            .contains(&exit_code)
            .then(|| exit_code - 128);
        Self {
            exit_code,
            signal,
            reason,
            message,
            at: Stamp::from_wall_ns(finished_ns.max(0) as u64),
        }
    }
}

/// A started container (one restart of it).
pub struct Instance {
    pub name: String,
    /// containerd's 64-hex id.
    pub id: String,
    /// Host pid of the container's init.
    pub pid: u32,
    /// The runtime's start time.
    pub started: Stamp,
    /// The container's cgroup v2 directory (runc's, under the pod's).
    pub cgroup: PathBuf,
    watcher: Mutex<Option<JoinHandle<()>>>,
    stop_watching: Arc<AtomicBool>,
}

/// What `Instance::start` needs to create the container.
pub struct Launch {
    /// `namespace/name/container`, for error messages.
    pub target: String,
    pub sandbox_id: String,
    pub sandbox_config: PodSandboxConfig,
    pub config: ContainerConfig,
    /// The pod's cgroup v2 directory; the container's is `<it>/<id>`.
    pub pod_cgroup: PathBuf,
}

/// Why a container could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Cri(#[from] CriError),
    #[error("cannot start the status watcher of {target}: {source}")]
    Watcher {
        target: String,
        #[source]
        source: std::io::Error,
    },
}

impl Instance {
    /// CreateContainer + StartContainer; `on_exit` runs on the watcher
    /// thread once the runtime reports the container exited.
    pub fn start(
        cri: Arc<Cri>,
        name: &str,
        launch: Launch,
        on_exit: impl FnOnce(ExitInfo) + Send + 'static,
    ) -> Result<Self, StartError> {
        let target = launch.target.clone();
        let id = cri.create_container(
            &target,
            &launch.sandbox_id,
            launch.config,
            launch.sandbox_config,
        )?;
        if let Err(error) = cri.start_container(&target, &id) {
            let _ = cri.remove_container(&target, &id);
            return Err(error.into());
        }
        let status = cri.container_status(&target, &id)?;
        // A container whose process ended before we asked has pid 0; its
        // exit is still reported through the watcher below.
        let started = Stamp::from_wall_ns(status.started_at_ns.max(0) as u64);
        let stop_watching = Arc::new(AtomicBool::new(false));
        let stop = stop_watching.clone();
        let (watch_cri, watch_id, watch_target) = (cri.clone(), id.clone(), target.clone());
        let watcher = std::thread::Builder::new()
            .name(format!("pleg-{name}"))
            .spawn(move || {
                if let Some(exit) = watch(&watch_cri, &watch_target, &watch_id, &stop) {
                    on_exit(exit);
                }
            })
            .map_err(|source| StartError::Watcher {
                target: target.clone(),
                source,
            })?;
        Ok(Self {
            name: name.to_owned(),
            pid: status.pid,
            started,
            cgroup: launch.pod_cgroup.join(&id),
            id,
            watcher: Mutex::new(Some(watcher)),
            stop_watching,
        })
    }

    /// Waits for the watcher (after the exit was reported); when `abandon`,
    /// it stops polling first (the pod is being torn down).
    pub fn join(&self, abandon: bool) {
        if abandon {
            self.stop_watching.store(true, Ordering::Relaxed);
        }
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(watcher) = watcher {
            let _ = watcher.join();
        }
    }
}

/// Polls `ContainerStatus` until the container exited; `None` when told to
/// stop or when the runtime stopped answering.
fn watch(cri: &Cri, target: &str, id: &str, stop: &AtomicBool) -> Option<ExitInfo> {
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) {
        match cri.container_status(target, id) {
            Ok(s) if s.state == ContainerState::ContainerExited => {
                return Some(ExitInfo::from_status(
                    s.exit_code,
                    s.reason,
                    s.message,
                    s.finished_at_ns,
                ));
            }
            Ok(_) => failures = 0,
            Err(error) => {
                failures += 1;
                if failures >= GIVE_UP_AFTER {
                    tracing::warn!(%error, target, "the runtime stopped answering: no exit reported");
                    return None;
                }
            }
        }
        std::thread::sleep(POLL);
    }
    None
}
