//! One real containerd (1.6, with runc and the CRI plugin) per simulated
//! node, run inside the node's network namespace with every file of its
//! own under per-instance directories, and removed with all it made when
//! dropped.

mod cleanup;
pub(crate) mod layout;
pub(crate) mod procfs;
mod start;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, ExitStatus},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

pub use cleanup::CleanReport;
use layout::Layout;
pub use start::StartOptions;
pub(crate) use start::find_program;

use super::{images::ImageError, images::Images, stale::StaleError};

/// What failed while starting containerd.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("cannot clear what earlier runs left behind")]
    Stale(#[source] StaleError),
    #[error("{program} not found at any of {looked}: run `cargo xtask setup`")]
    ProgramMissing {
        program: &'static str,
        looked: String,
    },
    #[error("CNI plugin {0} is missing: run `cargo xtask setup`")]
    CniPluginMissing(PathBuf),
    #[error("cannot prepare the node's containerd images")]
    Images(#[source] ImageError),
    #[error("cannot prepare {path} for containerd")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {program}")]
    SpawnFailed {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd exited at start ({status}); the end of its log {log}:\n{tail}")]
    ExitedAtStart {
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "containerd did not answer on {address} within {waited:?}; the end of its log {log}:\n{tail}"
    )]
    NoAnswer {
        address: PathBuf,
        waited: Duration,
        log: PathBuf,
        tail: String,
    },
    #[error("cannot import the images into containerd")]
    Import(#[source] ImageError),
}

/// A containerd daemon of one simulated node.
pub struct Containerd {
    layout: Layout,
    address: PathBuf,
    images: Images,
    daemon: Option<Child>,
    /// Pod cgroups to remove on drop (also in the instance's record).
    tracked: Mutex<Vec<PathBuf>>,
}

impl Containerd {
    /// The gRPC socket (CRI is served there too).
    pub fn address(&self) -> &Path {
        &self.address
    }

    /// The imported images (the pause one is the config's sandbox image).
    pub fn images(&self) -> &Images {
        &self.images
    }

    /// containerd's own log (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.layout.log()
    }

    /// The last `lines` lines of containerd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.layout.log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `/var/lib/node-sim/<instance>`: config, log, records, containerd's root.
    pub fn instance_dir(&self) -> &Path {
        &self.layout.dir
    }

    /// `/run/node-sim/<instance>`: sockets, containerd's state, runc's root.
    pub fn run_dir(&self) -> &Path {
        &self.layout.run_dir
    }

    /// runc's state root for this instance's containers.
    pub fn runc_root(&self) -> PathBuf {
        self.layout.runc_root()
    }

    /// Records a pod cgroup (relative to each hierarchy's root) the kubelet
    /// made, so that drop, or a later run if this process dies, removes it.
    pub fn track_cgroup(&self, relative: &Path) {
        let relative = match super::hierarchy::normalize(relative) {
            Ok(r) => r,
            Err(error) => {
                tracing::error!(%error, "not tracking an invalid pod cgroup path");
                return;
            }
        };
        let mut tracked = self.tracked.lock().unwrap_or_else(PoisonError::into_inner);
        if tracked.contains(&relative) {
            return;
        }
        let line = format!("{}\n", relative.display());
        let appended = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.layout.cgroups_file())
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        if let Err(error) = appended {
            tracing::error!(%error, cgroup = %relative.display(), "cannot record a tracked pod cgroup");
        }
        tracked.push(relative);
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let started = Instant::now();
        let mut cgroups = self
            .tracked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        cgroups.extend(self.layout.recorded_cgroups());
        let report = cleanup::clean(&self.layout, self.daemon.take(), &cgroups);
        let took_ms = started.elapsed().as_millis() as u64;
        if report.problems.is_empty() {
            tracing::info!(
                instance = self.layout.name,
                processes = report.processes,
                mounts = report.mounts,
                cgroups = report.cgroups,
                shim_sockets = report.shim_sockets,
                cni_results = report.cni_results,
                took_ms,
                "containerd removed"
            );
        } else {
            tracing::warn!(
                instance = self.layout.name,
                problems = ?report.problems,
                took_ms,
                "containerd removed, with problems"
            );
        }
    }
}

/// Cleans up after a dead owner's instance: [`cleanup::clean`] with the
/// pod cgroups of its record.
pub(crate) fn clean_stale(layout: &Layout) -> CleanReport {
    cleanup::clean(layout, None, &layout.recorded_cgroups())
}
