//! Removing everything one containerd instance made, for its own drop and
//! for a dead owner's leftovers alike: its processes, the pods' processes
//! and cgroups, its mounts, the files containerd writes outside its
//! directories, and the directories.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::Child,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use super::{
    layout::{CNI_RESULTS_DIR, Layout, SHIM_SOCKET_DIR},
    procfs,
};
use crate::runtime::hierarchy;

/// How long containerd gets to stop after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How long SIGKILLed processes get to die.
const KILL_WAIT: Duration = Duration::from_secs(3);

/// What one cleanup removed, and what it could not.
#[derive(Clone, Debug, Default)]
pub struct CleanReport {
    pub processes: usize,
    pub mounts: usize,
    pub cgroups: usize,
    pub shim_sockets: usize,
    pub cni_results: usize,
    pub problems: Vec<String>,
}

/// Cleans up after `layout`'s instance. `daemon` is containerd when this
/// process started it (stopped with SIGTERM first); `tracked` are the pod
/// cgroups the kubelet made.
pub(crate) fn clean(layout: &Layout, daemon: Option<Child>, tracked: &[PathBuf]) -> CleanReport {
    let mut report = CleanReport::default();
    if let Some(child) = daemon {
        stop_daemon(child, &mut report);
    }
    // Read before anything goes: the tasks' ids name the shim sockets and
    // the CNI results, runc's state names the containers' cgroups.
    let tasks = task_ids(layout);
    let mut cgroups: Vec<PathBuf> = tracked.to_vec();
    cgroups.extend(runc_cgroups(&layout.runc_root()));
    cgroups.sort();
    cgroups.dedup();

    let hierarchies = hierarchy::hierarchies().unwrap_or_else(|error| {
        report.problems.push(error.to_string());
        Vec::new()
    });
    let kill_pods = |report: &mut CleanReport| {
        for cgroup in &cgroups {
            if let Err(error) = hierarchy::kill_cgroup(&hierarchies, cgroup) {
                report.problems.push(error.to_string());
            }
        }
    };
    // containerd (a dead owner's too), the shims and any runc first, so
    // that nothing reacts to the pods' deaths by starting more.
    let kill_instance = |report: &mut CleanReport| {
        let leftovers = procfs::processes_naming(&layout.markers());
        report.processes += procfs::kill_and_wait(&leftovers, KILL_WAIT);
    };
    kill_instance(&mut report);
    kill_pods(&mut report);
    kill_instance(&mut report);

    let (unmounted, still) = procfs::unmount_under(&[&layout.dir, &layout.run_dir]);
    report.mounts = unmounted;
    report.problems.extend(
        still
            .iter()
            .map(|p| format!("still mounted: {}", p.display())),
    );

    for cgroup in &cgroups {
        match hierarchy::remove_pod_cgroup(cgroup) {
            Ok(()) => report.cgroups += 1,
            Err(error) => report.problems.push(error.to_string()),
        }
    }
    for cgroup in &cgroups {
        if let Err(error) = hierarchy::remove_empty_parents(cgroup) {
            report.problems.push(error.to_string());
        }
    }

    let address = layout.address();
    for (namespace, id) in &tasks {
        let socket = shim_socket(&address, namespace, id);
        if remove_file(&socket, &mut report) {
            report.shim_sockets += 1;
        }
    }
    report.cni_results = remove_cni_results(layout, &tasks, &mut report);

    if still.is_empty() {
        // The record (in `dir`) goes last: while it exists a later run
        // retries.
        for dir in [&layout.run_dir, &layout.dir] {
            if let Err(error) = fs::remove_dir_all(dir)
                && error.kind() != io::ErrorKind::NotFound
            {
                report
                    .problems
                    .push(format!("cannot remove {}: {error}", dir.display()));
            }
        }
    } else {
        report
            .problems
            .push("instance directories kept: mounts remain below them".into());
    }
    report
}

fn stop_daemon(mut child: Child, report: &mut CleanReport) {
    // SAFETY: kill(2) on our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let started = Instant::now();
    while started.elapsed() < STOP_WAIT {
        if let Ok(Some(_)) = child.try_wait() {
            report.processes += 1;
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::warn!(pid = child.id(), waited = ?STOP_WAIT, "containerd ignored SIGTERM; killing it");
    let _ = child.kill();
    let _ = child.wait();
    report.processes += 1;
}

/// The shim socket containerd 1.6 names for a task (runtime/v2/shim
/// `SocketAddress`): `/run/containerd/s/` and the hex sha256 of the
/// daemon's address joined with the namespace and the id (the sandbox id
/// for a pod's containers, the container id otherwise).
pub(crate) fn shim_socket(address: &Path, namespace: &str, id: &str) -> PathBuf {
    let joined = address.join(namespace).join(id);
    let digest = Sha256::digest(joined.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(SHIM_SOCKET_DIR).join(hex)
}

/// (namespace, id) of every task bundle in the state dir and every sandbox
/// and container the CRI plugin recorded in the root.
fn task_ids(layout: &Layout) -> Vec<(String, String)> {
    let names = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    };
    let mut ids = Vec::new();
    let tasks = layout.state().join("io.containerd.runtime.v2.task");
    for namespace in names(&tasks) {
        for id in names(&tasks.join(&namespace)) {
            ids.push((namespace.clone(), id));
        }
    }
    let cri = layout.root().join("io.containerd.grpc.v1.cri");
    for kind in ["sandboxes", "containers"] {
        ids.extend(
            names(&cri.join(kind))
                .into_iter()
                .map(|id| ("k8s.io".to_owned(), id)),
        );
    }
    ids.sort();
    ids.dedup();
    ids
}

/// The cgroups (relative to each hierarchy's root) of the containers in
/// runc's state, cgroupfs form only: ones the kubelet forgot to track.
fn runc_cgroups(runc_root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for namespace in fs::read_dir(runc_root).into_iter().flatten().flatten() {
        for container in fs::read_dir(namespace.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(text) = fs::read_to_string(container.path().join("state.json")) else {
                continue;
            };
            let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            // Only the container's own cgroup, named by its id: never a
            // parent that other pods or nodes share.
            if let Some(path) = state
                .pointer("/config/cgroups/path")
                .and_then(|p| p.as_str())
                && !path.contains(':')
                && let Ok(relative) = hierarchy::normalize(Path::new(path))
                && relative.file_name() == Some(container.file_name().as_os_str())
            {
                found.push(relative);
            }
        }
    }
    found
}

/// libcni's results of this instance: `<network>-<sandbox id>-eth0` of its
/// own network, `cni-loopback-<sandbox id>-lo` of its sandboxes.
fn remove_cni_results(
    layout: &Layout,
    tasks: &[(String, String)],
    report: &mut CleanReport,
) -> usize {
    let own = format!("{}-", layout.network());
    let mut removed = 0;
    for entry in fs::read_dir(CNI_RESULTS_DIR)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.strip_prefix(&own).is_some_and(|rest| {
            rest.split_once('-')
                .is_some_and(|(id, _)| is_sandbox_id(id))
        }) || tasks
            .iter()
            .any(|(_, id)| name == format!("cni-loopback-{id}-lo"));
        if ours && remove_file(&entry.path(), report) {
            removed += 1;
        }
    }
    removed
}

fn is_sandbox_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes a file; absent is fine. Returns whether it was there.
fn remove_file(path: &Path, report: &mut CleanReport) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(error) => {
            report
                .problems
                .push(format!("cannot remove {}: {error}", path.display()));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_socket_is_sha256_of_address_namespace_and_id() {
        // printf %s /run/node-sim/proto/containerd.sock/k8s.io/c1 | sha256sum,
        // and the socket a 1.6.20 shim made for task c1 of that daemon.
        let socket = shim_socket(
            Path::new("/run/node-sim/proto/containerd.sock"),
            "k8s.io",
            "c1",
        );
        assert_eq!(
            socket,
            PathBuf::from(
                "/run/containerd/s/846d59ca1d2160a8bb3d5e5c9a5d40829ce84a4a44fe4f2913880909f483c7bb"
            )
        );
    }
}
