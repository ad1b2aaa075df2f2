//! What earlier runs left behind: instances whose owner died (SIGKILL, a
//! panic that aborted, a lost machine) are cleaned exactly as their drop
//! would have, and their node netns deleted. An instance is never reused.
//! A live owner's instance (another test thread or process) is left alone.

use std::{
    fs::{self, File},
    io,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use super::containerd::{
    layout::{LIB_BASE, Layout, Owner, RUN_BASE},
    procfs,
};
use crate::net::netns::{run, tool};

/// A record-less instance dir younger than this may be one being created.
const CREATION_GRACE: Duration = Duration::from_secs(60);

/// What failed while looking for stale instances.
#[derive(Debug, thiserror::Error)]
pub enum StaleError {
    #[error("cannot list {dir}")]
    ListFailed {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What [`clear_stale`] found and removed.
#[derive(Clone, Debug, Default)]
pub struct StaleReport {
    /// The instances cleared.
    pub cleared: Vec<String>,
    /// Instances left alone: their owner runs (or is being created).
    pub live: usize,
    pub processes: usize,
    pub mounts: usize,
    pub cgroups: usize,
    pub shim_sockets: usize,
    pub cni_results: usize,
    pub netns: usize,
    pub problems: Vec<String>,
}

/// Cleans every instance of a dead owner (its pid gone, a zombie, or
/// running with another start time).
pub fn clear_stale() -> Result<StaleReport, StaleError> {
    let mut names = instance_names(Path::new(LIB_BASE))?;
    names.extend(instance_names(Path::new(RUN_BASE))?);
    names.sort();
    names.dedup();
    let mut report = StaleReport::default();
    for name in names {
        let layout = Layout::new(&name);
        let owner = Owner::read(&layout.owner_file());
        let stale = match &owner {
            Some(owner) => !owner.is_alive(),
            None => !recently_made(&layout.dir),
        };
        if !stale {
            report.live += 1;
            continue;
        }
        // Two runs starting at once: one cleans, the other moves on.
        let Some(_lock) = lock(&layout.owner_file()) else {
            continue;
        };
        clear_one(&layout, owner.as_ref(), &mut report);
    }
    if !report.cleared.is_empty() {
        tracing::warn!(
            instances = ?report.cleared,
            processes = report.processes,
            mounts = report.mounts,
            cgroups = report.cgroups,
            shim_sockets = report.shim_sockets,
            cni_results = report.cni_results,
            netns = report.netns,
            problems = ?report.problems,
            "cleared containerd instances of dead owners"
        );
    }
    Ok(report)
}

fn clear_one(layout: &Layout, owner: Option<&Owner>, report: &mut StaleReport) {
    let cleaned = super::containerd::clean_stale(layout);
    if let Some(owner) = owner {
        tracing::warn!(
            instance = layout.name,
            owner_pid = owner.pid,
            netns = owner.netns,
            "instance of a dead owner"
        );
        if delete_netns(owner, report) {
            report.netns += 1;
        }
    }
    report.cleared.push(layout.name.clone());
    report.processes += cleaned.processes;
    report.mounts += cleaned.mounts;
    report.cgroups += cleaned.cgroups;
    report.shim_sockets += cleaned.shim_sockets;
    report.cni_results += cleaned.cni_results;
    report.problems.extend(cleaned.problems);
}

/// The owner's node netns: what still runs in it is killed (it was the
/// dead owner's), then the name deleted, both only while
/// `/run/netns/<name>` is still that namespace.
fn delete_netns(owner: &Owner, report: &mut StaleReport) -> bool {
    use std::os::unix::fs::MetadataExt;
    let path = Path::new("/run/netns").join(&owner.netns);
    let same =
        fs::metadata(&path).is_ok_and(|m| m.dev() == owner.netns_dev && m.ino() == owner.netns_ino);
    if owner.netns.is_empty() || !same {
        return false;
    }
    let inside = procfs::processes_in_netns(owner.netns_dev, owner.netns_ino);
    report.processes += procfs::kill_and_wait(&inside, Duration::from_secs(3));
    match run(Command::new(tool("ip")).args(["netns", "delete", &owner.netns])) {
        Ok(_) => true,
        Err(error) => {
            report.problems.push(error.to_string());
            false
        }
    }
}

/// Entries of `base` named like instances; a missing `base` has none.
fn instance_names(base: &Path) -> Result<Vec<String>, StaleError> {
    let entries = match fs::read_dir(base) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StaleError::ListFailed {
                dir: base.to_owned(),
                source,
            });
        }
    };
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| Layout::is_instance_name(n))
        .collect())
}

fn recently_made(dir: &Path) -> bool {
    fs::metadata(dir)
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() < CREATION_GRACE)
}

/// An exclusive flock on the owner record, held while the instance is
/// cleaned; `None` when another process holds it. An instance without a
/// record needs no lock (nobody writes one into a stale dir).
fn lock(owner_file: &Path) -> Option<Option<File>> {
    let Ok(file) = File::open(owner_file) else {
        return Some(None);
    };
    // SAFETY: flock(2) on a descriptor owned by `file`.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    locked.then_some(Some(file))
}
