//! `/proc` parsing, path resolution, and what a scan keeps.

use super::*;
use crate::attribution::{CacheConfig, CgroupDir, CgroupError};

#[test]
fn stat_fields_are_counted_from_the_last_parenthesis() {
    let stat = "4242 (we ird) (name) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
    assert_eq!(parse_stat(stat), Some((17, 98765)));
    assert_eq!(parse_stat("12 (x) S 1"), None);
    assert_eq!(parse_stat("garbage"), None);
}

#[test]
fn the_v2_line_is_picked_in_a_hybrid_layout() {
    let text = "12:pids:/kubepods/pod1\n1:name=systemd:/x\n0::/kubepods.slice/a.scope\n";
    assert_eq!(parse_cgroup_v2(text), Some("/kubepods.slice/a.scope"));
    assert_eq!(parse_cgroup_v2("1:cpu:/x\n"), None);
}

#[test]
fn paths_seen_from_a_private_cgroup_namespace_resolve_by_their_tail() {
    let scope = "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope";
    let index = PathIndex {
        paths: vec![
            (scope.to_owned(), 42),
            (
                "/kubepods.slice/kubepods-pod2.slice/cri-containerd-def.scope".to_owned(),
                43,
            ),
        ],
    };
    let nowhere = Path::new("/nonexistent");
    assert_eq!(index.resolve(scope, nowhere), Some(42));
    assert_eq!(
        index.resolve(
            "/../../kubepods-pod2.slice/cri-containerd-def.scope",
            nowhere
        ),
        Some(43)
    );
    assert_eq!(
        index.resolve(
            "/../../kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope",
            nowhere
        ),
        Some(42)
    );
    // A tail must end on a component boundary.
    assert_eq!(index.resolve("/containerd-abc.scope", nowhere), None);
    assert_eq!(index.resolve("/", nowhere), None);
}

#[test]
fn this_process_reads_back_with_its_parent_and_start() {
    let me = std::process::id();
    let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).expect("own stat");
    let (ppid, start) = parse_stat(&stat).expect("parses");
    assert_eq!(ppid, std::os::unix::process::parent_id());
    assert!(start > 0);
    // Our own start, in ns since boot, is before now.
    let now = nix_like_boottime().expect("boottime");
    assert!(start * tick_ns() <= now.as_nanos() as u64);
}

fn nix_like_boottime() -> Option<std::time::Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (rc == 0).then(|| std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// A fixed cgroup hierarchy.
struct Fixed(Vec<CgroupDir>);

impl HierarchyWalker for Fixed {
    fn walk(&mut self) -> Result<Vec<CgroupDir>, CgroupError> {
        Ok(self.0.clone())
    }
}

/// Writes `/proc/<pid>` with what a scan reads: cgroup, stat, comm.
fn fake_process(root: &Path, pid: u32, comm: &str, cgroup: &str, start_ticks: u64) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir).expect("proc dir");
    std::fs::write(dir.join("cgroup"), format!("0::{cgroup}\n")).expect("cgroup");
    let middle = vec!["0"; 17].join(" ");
    let stat = format!("{pid} ({comm}) S 1 {middle} {start_ticks} 1000 10");
    std::fs::write(dir.join("stat"), stat).expect("stat");
    std::fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
}

#[test]
fn runc_s_bootstrap_is_counted_not_recovered() {
    let scope = format!(
        "/kubepods.slice/kubepods-pod1c3e5f0a_7b2d_4e8f_9a10_b2c3d4e5f607.slice/cri-containerd-{:064x}.scope",
        7
    );
    let walker = Fixed(vec![
        CgroupDir {
            id: 1,
            path: "/".into(),
        },
        CgroupDir {
            id: 42,
            path: scope.clone(),
        },
    ]);
    let mut cache = CgroupCache::new(CacheConfig::default(), walker);
    cache.populate().expect("walk");
    let proc_root = tempfile::tempdir().expect("tempdir");
    // A running container next to one runc is still starting: all three
    // stages alive, [2:INIT] waiting for `runc start` before its exec.
    fake_process(proc_root.path(), 300, "pilot-agent", &scope, 100);
    fake_process(proc_root.path(), 310, "runc:[0:PARENT]", &scope, 200);
    fake_process(proc_root.path(), 311, "runc:[1:CHILD]", &scope, 200);
    fake_process(proc_root.path(), 312, "runc:[2:INIT]", &scope, 201);

    let found = scan(proc_root.path(), Path::new("/nonexistent"), &mut cache).expect("scan");
    let kept: Vec<(u32, &str)> = found
        .processes
        .iter()
        .map(|p| (p.pid, p.comm.as_str()))
        .collect();
    assert_eq!(kept, vec![(300, "pilot-agent")]);
    assert_eq!(found.runtime_setup, 3);
    assert_eq!(found.processes[0].cgroup_id, 42);
}
