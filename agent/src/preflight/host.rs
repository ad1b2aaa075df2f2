//! The host views the agent needs: the cgroup v2 hierarchy with the
//! kubelet's pods in it, and a `/proc` showing the host's processes.

use std::path::Path;

use crate::attribution::{
    CgroupDriver, HierarchyWalker, cgroup_fs::Cgroup2Walker, find_cgroup2_mount_info, is_watch_root,
};

use super::Check;

/// Pure v2, hybrid, or elsewhere, from the cgroup2 mount point.
pub fn describe_layout(mount_point: &Path) -> String {
    match mount_point.to_str() {
        Some("/sys/fs/cgroup") => "pure cgroup v2 at /sys/fs/cgroup".to_owned(),
        Some("/sys/fs/cgroup/unified") => "hybrid: cgroup v2 at /sys/fs/cgroup/unified".to_owned(),
        _ => format!("cgroup v2 at {}", mount_point.display()),
    }
}

/// The `0::` path of a `/proc/<pid>/cgroup` text.
pub fn own_cgroup_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

pub(super) fn check_cgroup() -> Check {
    const NAME: &str = "cgroup";
    let mount = match find_cgroup2_mount_info() {
        Ok(m) => m,
        Err(e) => {
            return Check::fail(
                NAME,
                e.to_string(),
                "the agent needs the cgroup v2 hierarchy (pure v2, or hybrid with \
                 /sys/fs/cgroup/unified); in a pod, mount the host's /sys/fs/cgroup read-only",
            )
            .with_label("cgroup2_unavailable");
        }
    };
    let layout = describe_layout(&mount.mount_point);
    let mut walker = Cgroup2Walker::with_root(&mount.mount_point, &mount.root);
    let dirs = match walker.walk() {
        Ok(d) => d,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{layout}; {e}"),
                "the hierarchy must be readable",
            )
            .with_label("cgroup_walk_failed");
        }
    };
    let roots: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            is_watch_root(&d.path).map(|driver| {
                let driver = match driver {
                    CgroupDriver::Systemd => "systemd",
                    CgroupDriver::Cgroupfs => "cgroupfs",
                };
                format!("{} ({driver} driver)", d.path)
            })
        })
        .collect();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let in_namespace_root = own_cgroup_path(&own) == Some("/");
    let host_mount_in_namespace = mount.root.starts_with("/..");
    let mut detail = format!("{layout}; {} cgroups", dirs.len());
    if roots.is_empty() {
        if in_namespace_root && !host_mount_in_namespace {
            detail.push_str(
                "; no kubepods cgroup, and this process sits at the root of its cgroup \
                 namespace: the mount shows only this container's own cgroup",
            );
            return Check::warn(
                NAME,
                detail,
                "mount the host's /sys/fs/cgroup at /sys/fs/cgroup (hostPath, read-only)",
            )
            .with_label("cgroup_namespace_only");
        }
        detail.push_str("; no kubepods cgroup (kubepods.slice or kubepods) found");
        return Check::warn(
            NAME,
            detail,
            "expected on a machine that is not a Kubernetes node; on a node, check that the \
             kubelet runs pods (the agent also finds kubepods roots created later)",
        )
        .with_label("kubepods_not_found");
    }
    detail.push_str(&format!("; kubepods roots: {}", roots.join(", ")));
    if host_mount_in_namespace {
        detail.push_str(&format!(
            "; private cgroup namespace (mount root {}): kernel events carry global ids and \
             paths, /proc/<pid>/cgroup paths are relative to the namespace",
            mount.root
        ));
    }
    Check::ok(NAME, detail)
}

/// Whether a `/proc` shows the initial pid namespace: only there are kernel
/// threads visible, and kthreadd is always pid 2.
pub fn shows_host_pids(proc_root: &Path) -> bool {
    std::fs::read_to_string(proc_root.join("2/comm")).is_ok_and(|c| c.trim() == "kthreadd")
}

pub(super) fn check_proc(proc_root: &Path) -> Check {
    const NAME: &str = "proc";
    let entries = match std::fs::read_dir(proc_root) {
        Ok(e) => e,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot list {}: {e}", proc_root.display()),
                "mount the host's /proc read-only (hostPath /proc at /host/proc) and pass \
                 --proc-root /host/proc",
            )
            .with_label("proc_unreadable");
        }
    };
    let (mut processes, mut readable) = (0usize, 0usize);
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_none_or(|n| n.parse::<u32>().is_err()) {
            continue;
        }
        processes += 1;
        let dir = entry.path();
        if std::fs::read(dir.join("stat")).is_ok() && std::fs::read(dir.join("cgroup")).is_ok() {
            readable += 1;
        }
    }
    let host = shows_host_pids(proc_root);
    let detail = format!(
        "{}: {} pid namespace; stat and cgroup readable for {readable} of {processes} processes",
        proc_root.display(),
        if host {
            "the host's"
        } else {
            "not the host's (no kernel threads)"
        },
    );
    if !host {
        return Check::warn(
            NAME,
            detail,
            "the probes report host pids, and restart recovery reads them here: mount the \
             host's /proc at /host/proc and pass --proc-root /host/proc (or use hostPID)",
        )
        .with_label("proc_not_host");
    }
    if readable * 10 < processes * 9 {
        return Check::warn(
            NAME,
            detail,
            "restart recovery misses processes it cannot read: check hidepid on the host's /proc",
        )
        .with_label("proc_partly_unreadable");
    }
    Check::ok(NAME, detail)
}
