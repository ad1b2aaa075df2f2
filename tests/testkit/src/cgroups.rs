//! Pod and container cgroups named exactly as the kubelet names them.

use std::{
    fs,
    os::unix::{fs::MetadataExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use crate::{random_hex, random_uid};

/// The kubelet's cgroup driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`
    Systemd,
    /// `kubepods/besteffort/pod<uid>/<id>`
    Cgroupfs,
}

/// The mount points in `/proc/self/mounts` whose filesystem type is one
/// of `fstypes`, in mount order.
fn mounts_of(fstypes: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    Ok(mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            fstypes.contains(&fstype).then(|| PathBuf::from(dir))
        })
        .collect())
}

/// Where cgroup v2 is mounted: `/sys/fs/cgroup` (pure v2) or
/// `/sys/fs/cgroup/unified` (hybrid); `None` without a cgroup2 mount.
/// Shared with the node simulator.
pub fn find_cgroup2_mount() -> std::io::Result<Option<PathBuf>> {
    Ok(mounts_of(&["cgroup2"])?.into_iter().next())
}

/// Every cgroup hierarchy's mount point (v2 and each v1 controller).
pub fn cgroup_mounts() -> std::io::Result<Vec<PathBuf>> {
    mounts_of(&["cgroup", "cgroup2"])
}

/// [`find_cgroup2_mount`] for tests: panics without one.
pub fn cgroup2_mount() -> PathBuf {
    find_cgroup2_mount()
        .expect("read /proc/self/mounts")
        .expect("no cgroup2 mount on this machine")
}

/// A pod cgroup; removed (with its containers) on drop.
pub struct FakePod {
    pub uid: String,
    pub driver: Driver,
    pub dir: PathBuf,
    containers: Vec<PathBuf>,
}

/// A container cgroup inside a [`FakePod`].
#[derive(Clone, Debug)]
pub struct FakeContainer {
    pub id: String,
    pub dir: PathBuf,
}

impl FakeContainer {
    /// The cgroup id the kernel reports (the directory's inode).
    pub fn cgroup_id(&self) -> u64 {
        fs::metadata(&self.dir).expect("container cgroup").ino()
    }
}

impl FakePod {
    /// A Burstable pod (systemd driver) or a BestEffort pod (cgroupfs driver).
    pub fn create(driver: Driver) -> Self {
        Self::with_uid(driver, &random_uid())
    }

    /// Like [`FakePod::create`] for a pod uid the API server chose.
    pub fn with_uid(driver: Driver, uid: &str) -> Self {
        let uid = uid.to_string();
        let mount = cgroup2_mount();
        let dir = match driver {
            Driver::Systemd => mount
                .join("kubepods.slice/kubepods-burstable.slice")
                .join(format!(
                    "kubepods-burstable-pod{}.slice",
                    uid.replace('-', "_")
                )),
            Driver::Cgroupfs => mount.join("kubepods/besteffort").join(format!("pod{uid}")),
        };
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Self {
            uid,
            driver,
            dir,
            containers: Vec::new(),
        }
    }

    /// A containerd container cgroup in this pod.
    pub fn add_container(&mut self) -> FakeContainer {
        let id = random_hex(64);
        let name = match self.driver {
            Driver::Systemd => format!("cri-containerd-{id}.scope"),
            Driver::Cgroupfs => id.clone(),
        };
        let dir = self.dir.join(name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        self.containers.push(dir.clone());
        FakeContainer { id, dir }
    }
}

impl Drop for FakePod {
    fn drop(&mut self) {
        for dir in self.containers.iter().chain(std::iter::once(&self.dir)) {
            kill_all(dir);
        }
        for dir in self
            .containers
            .iter()
            .rev()
            .chain(std::iter::once(&self.dir))
        {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Kills every process in a cgroup and waits until it is empty.
pub fn kill_all(dir: &Path) {
    let _ = fs::write(dir.join("cgroup.kill"), "1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(procs) if !procs.trim().is_empty() => std::thread::sleep(Duration::from_millis(10)),
            _ => return,
        }
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` file is
/// `procs`. Made for a `pre_exec` hook: it only calls open, write and close
/// (async-signal-safe) and allocates nothing. Shared with the node simulator.
pub fn join_cgroup(procs: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: plain system calls on a NUL-terminated path and a static buffer.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        if written != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Starts `cmd` inside the cgroup `dir`: the child moves itself there
/// between fork and exec, as runc does with a container's init.
pub fn spawn_in(dir: &Path, cmd: &mut Command) -> Child {
    let procs = std::ffi::CString::new(
        dir.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("path without NUL");
    // SAFETY: between fork and exec the hook only calls `join_cgroup`
    // (async-signal-safe, no allocation: the path was built before).
    unsafe {
        cmd.pre_exec(move || join_cgroup(&procs));
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?} in {}: {e}", dir.display()))
}

/// The kubelet's parent cgroups under `mount`: `kubepods` and its QoS
/// children (cgroupfs driver), `kubepods.slice` and its `kubepods-*.slice`
/// children (systemd driver). Pods are not included.
pub fn kubelet_parents(mount: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut found = std::collections::BTreeSet::new();
    let layouts = [
        ("kubepods", ["burstable", "besteffort"]),
        (
            "kubepods.slice",
            ["kubepods-burstable.slice", "kubepods-besteffort.slice"],
        ),
    ];
    for (root, qos_parents) in layouts {
        let root = mount.join(root);
        if !root.is_dir() {
            continue;
        }
        found.extend(
            qos_parents
                .iter()
                .map(|q| root.join(q))
                .filter(|p| p.is_dir()),
        );
        found.insert(root);
    }
    found
}

/// Removes the kubelet parents under `mount` that were not in `before`
/// and hold no cgroup any more, children first: what the tests' pods
/// left behind once every test ended. Returns what it removed; a parent
/// still in use (rmdir fails) stays.
pub fn remove_new_kubelet_parents(
    mount: &Path,
    before: &std::collections::BTreeSet<PathBuf>,
) -> Vec<PathBuf> {
    let mut new: Vec<PathBuf> = kubelet_parents(mount)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    // Deepest first, so a root goes after its children.
    new.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    new.into_iter()
        .filter(|p| fs::remove_dir(p).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_empty_kubelet_parents_are_removed() {
        let mount = std::env::temp_dir().join(format!("testkit-parents-{}", std::process::id()));
        let _ = fs::remove_dir_all(&mount);
        fs::create_dir_all(mount.join("kubepods/burstable")).unwrap();
        let before = kubelet_parents(&mount);
        fs::create_dir_all(mount.join("kubepods.slice/kubepods-besteffort.slice")).unwrap();
        fs::create_dir_all(mount.join("kubepods/besteffort/pod1234")).unwrap();
        let removed = remove_new_kubelet_parents(&mount, &before);
        assert_eq!(
            removed,
            vec![
                mount.join("kubepods.slice/kubepods-besteffort.slice"),
                mount.join("kubepods.slice"),
            ],
            "kubepods/besteffort still holds a pod; kubepods/burstable was there before"
        );
        assert!(mount.join("kubepods/burstable").is_dir());
        assert!(mount.join("kubepods/besteffort/pod1234").is_dir());
        fs::remove_dir_all(&mount).unwrap();
    }
}
