//! After a restart the probes have missed everything that happened while
//! the agent was down. What is still there: the container cgroups (the
//! cgroup cache walks them) and the processes in them, read here from
//! `/proc`. Each becomes a `process_exec` record marked `recovered`, so a
//! pod that is terminating while the agent comes back is still audited from
//! what can be seen, and its audit says it is partial.
//!
//! A container's cgroup can also hold the runtime still setting a container
//! up (runc's `runc:[0:PARENT]` and `runc:[1:CHILD]`, or `runc:[2:INIT]`
//! before it execs the entrypoint). Those are not the container's
//! processes and are only counted; the probes see `[2:INIT]`'s exec when
//! it comes.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use thiserror::Error;

use crate::{
    attribution::{CgroupCache, CgroupClass, HierarchyWalker},
    audit::timeline::is_runtime_bootstrap,
    clock::format_rfc3339_nanos,
    event::{Event, Process, ProcessExec, Record, Recovered},
};

#[derive(Debug, Error)]
pub enum RecoverError {
    #[error("cannot list processes in {path}: {source}")]
    ProcUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RecoverError {
    pub fn label(&self) -> &'static str {
        match self {
            Self::ProcUnreadable { .. } => "proc_unreadable",
        }
    }
}

/// A process found in a container cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundProcess {
    pub pid: u32,
    pub parent_pid: u32,
    /// Start since boot, rounded down to a clock tick.
    pub start_ns: u64,
    pub comm: String,
    pub filename: String,
    pub cgroup_id: u64,
    pub class: CgroupClass,
}

/// What a scan found and what it could not read.
#[derive(Debug, Default)]
pub struct Scan {
    pub processes: Vec<FoundProcess>,
    /// Processes that vanished or could not be read while scanning.
    pub unreadable: u64,
    /// Processes whose cgroup path did not resolve to a cgroup id.
    pub unresolved: u64,
    /// Processes of the container runtime's setup, left out.
    pub runtime_setup: u64,
    /// Nanoseconds per clock tick of `/proc/<pid>/stat`.
    pub resolution_ns: u64,
}

/// Nanoseconds per `/proc/<pid>/stat` clock tick (`USER_HZ`).
pub fn tick_ns() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

/// Fields 4 (ppid) and 22 (starttime, in ticks) of `/proc/<pid>/stat`. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start))
}

/// The cgroup v2 path of `/proc/<pid>/cgroup` (the `0::` line).
pub fn parse_cgroup_v2(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Container cgroups by path, from the cache's walk.
pub struct PathIndex {
    paths: Vec<(String, u64)>,
}

impl PathIndex {
    pub fn of<W: HierarchyWalker>(cache: &CgroupCache<W>) -> Self {
        let paths = cache
            .entries()
            .filter(|(_, e)| e.removed_at.is_none() && matches!(e.class, CgroupClass::Container(_)))
            .map(|(id, e)| (e.path.clone(), id))
            .collect();
        Self { paths }
    }

    /// The cgroup id of a `/proc/<pid>/cgroup` path. In a pod the agent
    /// usually has its own cgroup namespace, and other processes' paths
    /// then start with `/..` components: those are dropped and the rest
    /// matched as the tail of a walked path (container cgroup names hold
    /// the container id, so the tail is unique). Without a match, the
    /// directory's inode under the mount is the id.
    pub fn resolve(&self, path: &str, mount: &Path) -> Option<u64> {
        let mut rest = path;
        while let Some(r) = rest.strip_prefix("/..") {
            rest = r;
        }
        // `rest` starts with `/`, so a tail match ends on a path component.
        let found = self.paths.iter().find(|(p, _)| p == rest).or_else(|| {
            (rest.len() > 1 && rest.starts_with('/'))
                .then(|| self.paths.iter().find(|(p, _)| p.ends_with(rest)))
                .flatten()
        });
        if let Some((_, id)) = found {
            return Some(*id);
        }
        std::fs::metadata(mount.join(rest.trim_start_matches('/')))
            .ok()
            .map(|m| m.ino())
    }
}

/// Reads every process below `proc_root` whose cgroup is a container's.
pub fn scan<W: HierarchyWalker>(
    proc_root: &Path,
    cgroup_mount: &Path,
    cache: &mut CgroupCache<W>,
) -> Result<Scan, RecoverError> {
    let entries = std::fs::read_dir(proc_root).map_err(|source| RecoverError::ProcUnreadable {
        path: proc_root.to_path_buf(),
        source,
    })?;
    let index = PathIndex::of(cache);
    let tick = tick_ns();
    let mut out = Scan {
        resolution_ns: tick,
        ..Scan::default()
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let Ok(cgroup_text) = std::fs::read_to_string(dir.join("cgroup")) else {
            out.unreadable += 1;
            continue;
        };
        let Some(path) = parse_cgroup_v2(&cgroup_text) else {
            continue;
        };
        let Some(cgroup_id) = index.resolve(path, cgroup_mount) else {
            out.unresolved += 1;
            continue;
        };
        let Some(class) = cache.lookup(cgroup_id).map(|e| e.class.clone()) else {
            out.unresolved += 1;
            continue;
        };
        if !matches!(class, CgroupClass::Container(_)) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s));
        let Some((parent_pid, start_ticks)) = stat else {
            out.unreadable += 1;
            continue;
        };
        let comm = std::fs::read_to_string(dir.join("comm"))
            .map(|c| c.trim_end().to_owned())
            .unwrap_or_default();
        if is_runtime_bootstrap(&comm) {
            out.runtime_setup += 1;
            continue;
        }
        let filename = std::fs::read_link(dir.join("exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| comm.clone());
        out.processes.push(FoundProcess {
            pid,
            parent_pid,
            start_ns: start_ticks.saturating_mul(tick),
            comm,
            filename,
            cgroup_id,
            class,
        });
    }
    out.processes.sort_by_key(|p| (p.start_ns, p.pid));
    Ok(out)
}

/// The recording lines of a scan, stamped with the time it was taken.
pub fn records(scan: &Scan, now_ns: i64) -> Vec<Record> {
    scan.processes
        .iter()
        .map(|p| Record {
            seq: 0,
            time: format_rfc3339_nanos(now_ns as i128),
            time_ns: now_ns,
            boot_ns: None,
            cpu: None,
            event: Event::ProcessExec(ProcessExec {
                process: Process {
                    pid: p.pid,
                    tid: p.pid,
                    start_ns: p.start_ns,
                    comm: p.comm.clone(),
                    cgroup_id: p.cgroup_id,
                    cgroup: Some(p.class.clone()),
                    k8s: None,
                },
                parent_pid: p.parent_pid,
                filename: p.filename.clone(),
                filename_truncated: false,
                recovered: Some(Recovered {
                    source: "proc".into(),
                    start_resolution_ns: scan.resolution_ns,
                }),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests;
