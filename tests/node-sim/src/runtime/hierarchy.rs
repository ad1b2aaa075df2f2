//! Pod cgroups in every cgroup hierarchy of the machine, kept the way the
//! kubelet's cgroupfs driver keeps them: created in all hierarchies before
//! RunPodSandbox, killed and removed from all of them after
//! RemovePodSandbox. runc puts a container at the same relative path in
//! the cgroup v2 hierarchy (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
//! in hybrid mode) and in each cgroup v1 controller hierarchy.

use std::{
    fs, io,
    path::{Component, Path, PathBuf},
    time::{Duration, Instant},
};

use super::containerd::procfs::read_mounts;

/// How long killed processes get to leave their cgroups.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long an rmdir is retried while the kernel still holds the cgroup.
const RMDIR_WAIT: Duration = Duration::from_secs(2);

/// What failed with a pod cgroup.
#[derive(Debug, thiserror::Error)]
pub enum HierarchyError {
    #[error("cgroup path {0:?} is not a plain relative path (empty, or has `.` or `..`)")]
    InvalidPath(PathBuf),
    #[error("cannot read /proc/self/mountinfo")]
    MountinfoUnreadable(#[source] io::Error),
    #[error("no cgroup hierarchy is mounted (none in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("cannot create cgroup {path}")]
    CreateFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot kill the processes of cgroup {path}")]
    KillFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {path} still holds processes {pids:?} {waited:?} after they were killed")]
    StillPopulated {
        path: PathBuf,
        pids: Vec<u32>,
        waited: Duration,
    },
    #[error("cannot remove cgroup {path}")]
    RemoveFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// cgroup v2 (`cgroup.kill` works there).
    pub unified: bool,
}

impl Hierarchy {
    /// `relative` inside this hierarchy.
    pub fn dir(&self, relative: &Path) -> PathBuf {
        self.mount.join(relative)
    }
}

/// Every cgroup hierarchy mounted here, each once (the v2 one and, in
/// hybrid mode, one per v1 controller or named hierarchy).
pub fn hierarchies() -> Result<Vec<Hierarchy>, HierarchyError> {
    let mounts = read_mounts().map_err(HierarchyError::MountinfoUnreadable)?;
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for m in mounts {
        let unified = match m.fstype.as_str() {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        if seen.contains(&m.device) {
            continue;
        }
        seen.push(m.device);
        found.push(Hierarchy {
            mount: m.point,
            unified,
        });
    }
    if found.is_empty() {
        return Err(HierarchyError::NoHierarchy);
    }
    Ok(found)
}

/// `relative` as a plain relative path: a leading `/` (the CRI's
/// `cgroup_parent` form) is dropped; `.`, `..` and an empty path are
/// refused, so nothing outside a pod's directory is ever touched.
pub fn normalize(relative: &Path) -> Result<PathBuf, HierarchyError> {
    let mut out = PathBuf::new();
    for part in relative.components() {
        match part {
            Component::RootDir => {}
            Component::Normal(p) => out.push(p),
            _ => return Err(HierarchyError::InvalidPath(relative.to_owned())),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(HierarchyError::InvalidPath(relative.to_owned()));
    }
    Ok(out)
}

/// `mkdir -p` of a pod cgroup in every hierarchy. In a v1 `cpuset`
/// hierarchy each new directory gets its parent's cpus and mems (a new
/// cpuset starts empty and accepts no process).
pub fn create_pod_cgroup(relative: &Path) -> Result<(), HierarchyError> {
    let relative = normalize(relative)?;
    for hierarchy in hierarchies()? {
        let mut dir = hierarchy.mount.clone();
        for part in relative.components() {
            let parent = dir.clone();
            dir.push(part);
            create_one(&dir)?;
            if !hierarchy.unified {
                inherit_cpuset(&parent, &dir);
            }
        }
    }
    Ok(())
}

/// One mkdir; a parent removed meanwhile by another node's cleanup (an
/// empty `kubepods/<qos>`) is made again.
fn create_one(dir: &Path) -> Result<(), HierarchyError> {
    let mut tries = 0;
    loop {
        match fs::create_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 5 => {
                tries += 1;
                if let Some(parent) = dir.parent() {
                    let _ = fs::create_dir_all(parent);
                }
            }
            Err(source) => {
                return Err(HierarchyError::CreateFailed {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

fn inherit_cpuset(parent: &Path, dir: &Path) {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = fs::read_to_string(dir.join(file));
        if own.is_ok_and(|v| v.trim().is_empty())
            && let Ok(value) = fs::read_to_string(parent.join(file))
        {
            let _ = fs::write(dir.join(file), value.trim());
        }
    }
}

/// Kills everything in a pod cgroup and removes it (children first) from
/// every hierarchy, as the kubelet does after RemovePodSandbox. A cgroup
/// that is already gone is not an error.
pub fn remove_pod_cgroup(relative: &Path) -> Result<(), HierarchyError> {
    let relative = normalize(relative)?;
    let hierarchies = hierarchies()?;
    kill_cgroup(&hierarchies, &relative)?;
    for hierarchy in &hierarchies {
        remove_tree(&hierarchy.dir(&relative))?;
    }
    Ok(())
}

/// SIGKILLs every process under `relative` (`cgroup.kill` in cgroup v2,
/// each listed pid elsewhere) and waits until no hierarchy lists any.
pub(crate) fn kill_cgroup(
    hierarchies: &[Hierarchy],
    relative: &Path,
) -> Result<(), HierarchyError> {
    let started = Instant::now();
    let unified = hierarchies.iter().find(|h| h.unified);
    loop {
        let pids: Vec<u32> = hierarchies
            .iter()
            .flat_map(|h| pids_in_tree(&h.dir(relative)))
            .collect();
        if pids.is_empty() {
            return Ok(());
        }
        if started.elapsed() > KILL_WAIT {
            return Err(HierarchyError::StillPopulated {
                path: relative.to_owned(),
                pids,
                waited: started.elapsed(),
            });
        }
        if let Some(kill) = unified
            .map(|h| h.dir(relative).join("cgroup.kill"))
            .filter(|k| k.exists())
        {
            fs::write(&kill, "1")
                .map_err(|source| HierarchyError::KillFailed { path: kill, source })?;
        }
        // Also each listed pid: one a v1 hierarchy lists may sit elsewhere
        // in v2, and a kernel without cgroup.kill has only this.
        for pid in &pids {
            // SAFETY: kill(2) has no memory effects; the pid is from cgroup.procs.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids listed in `dir` and every cgroup below it.
fn pids_in_tree(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for child in subdirs(dir) {
        pids.extend(pids_in_tree(&child));
    }
    pids
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// rmdir of `dir` and everything below it, deepest first.
fn remove_tree(dir: &Path) -> Result<(), HierarchyError> {
    for child in subdirs(dir) {
        remove_tree(&child)?;
    }
    let started = Instant::now();
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && started.elapsed() < RMDIR_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(HierarchyError::RemoveFailed {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

/// rmdir of each parent of `relative` (`kubepods/<qos>`, `kubepods`) in
/// every hierarchy, innermost first, where it is empty; one that another
/// node still uses keeps its children and so stays. Returns how many
/// directories went.
pub fn remove_empty_parents(relative: &Path) -> Result<usize, HierarchyError> {
    let relative = normalize(relative)?;
    let mut removed = 0;
    for hierarchy in hierarchies()? {
        for parent in relative.ancestors().skip(1) {
            if parent.as_os_str().is_empty() || fs::remove_dir(hierarchy.dir(parent)).is_err() {
                break;
            }
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_accepted() {
        assert_eq!(
            normalize(Path::new("/kubepods/besteffort/pod1")).unwrap(),
            PathBuf::from("kubepods/besteffort/pod1")
        );
        for bad in ["", "/", "kubepods/../..", "./kubepods"] {
            assert!(normalize(Path::new(bad)).is_err(), "{bad:?} accepted");
        }
    }
}
