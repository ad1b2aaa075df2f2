//! Tests against the real cgroup2 hierarchy of the test machine (needs root).
//!
//! Each test builds its own kubelet-shaped subtree with a random pod uid and
//! container id. The shared parents (`kubepods.slice`, the QoS slice) are
//! created when missing but never removed, because other tests may be using
//! them at the same time; the test's own directories are removed, children
//! first, when the test ends (even on failure).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cgroup_fs::{Cgroup2Walker, find_cgroup2_mount, walk_cgroups};
use super::test_support::ManualClock;
use super::*;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_uuid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A besteffort pod with one containerd container, built under the real mount.
struct KubeletTree {
    mount: PathBuf,
    pod_uid: String,
    container_id: String,
    /// Directories this test created, parents first.
    owned: Vec<PathBuf>,
}

const QOS_PARENT: &str = "/kubepods.slice/kubepods-besteffort.slice";

impl KubeletTree {
    fn create() -> Self {
        let mount = find_cgroup2_mount().expect("cgroup2 mount");
        let shared = mount.join(QOS_PARENT.trim_start_matches('/'));
        match fs::create_dir_all(&shared) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("create {}: {e}", shared.display()),
        }
        let mut tree = Self {
            mount,
            pod_uid: random_uuid(),
            container_id: random_hex(32),
            owned: Vec::new(),
        };
        let pod = tree.pod_path();
        let container = tree.container_path();
        tree.mkdir(&pod);
        tree.mkdir(&container);
        tree
    }

    fn pod_path(&self) -> String {
        let uid = self.pod_uid.replace('-', "_");
        format!("{QOS_PARENT}/kubepods-besteffort-pod{uid}.slice")
    }

    fn container_path(&self) -> String {
        format!(
            "{}/cri-containerd-{}.scope",
            self.pod_path(),
            self.container_id
        )
    }

    fn abs(&self, rel: &str) -> PathBuf {
        self.mount.join(rel.trim_start_matches('/'))
    }

    fn mkdir(&mut self, rel: &str) -> u64 {
        let abs = self.abs(rel);
        fs::create_dir(&abs).unwrap_or_else(|e| panic!("mkdir {}: {e}", abs.display()));
        self.owned.push(abs.clone());
        ino(&abs)
    }

    fn rmdir(&mut self, rel: &str) {
        let abs = self.abs(rel);
        fs::remove_dir(&abs).unwrap_or_else(|e| panic!("rmdir {}: {e}", abs.display()));
        self.owned.retain(|p| p != &abs);
    }

    fn id(&self, rel: &str) -> u64 {
        ino(&self.abs(rel))
    }
}

impl Drop for KubeletTree {
    fn drop(&mut self) {
        for dir in self.owned.iter().rev() {
            if let Err(e) = fs::remove_dir(dir) {
                eprintln!("cleanup: rmdir {}: {e}", dir.display());
            }
        }
    }
}

fn ino(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .ino()
}

fn real_cache(config: CacheConfig, clock: &ManualClock) -> CgroupCache<Cgroup2Walker> {
    let walker = Cgroup2Walker::discover().expect("cgroup2 walker");
    CgroupCache::new(config, walker).with_time_source(clock.source())
}

fn config() -> CacheConfig {
    CacheConfig {
        removed_ttl: Duration::from_secs(60),
        max_entries: 100_000,
        rewalk_interval: Duration::from_secs(5),
    }
}

#[test]
fn real_mount_is_cgroup2() {
    let mount = find_cgroup2_mount().expect("cgroup2 mount");
    assert!(
        mount.join("cgroup.controllers").exists(),
        "{}",
        mount.display()
    );
    let dirs = walk_cgroups(&mount).expect("walk");
    assert_eq!(dirs[0].path, "/");
    assert_eq!(dirs[0].id, ino(&mount));
}

#[test]
fn real_walker_reports_inode_ids_for_kubelet_tree() {
    lifecycle_testkit::needs_root!();
    let mut tree = KubeletTree::create();
    let nested = format!("{}/container", tree.container_path());
    tree.mkdir(&nested);
    let dirs = walk_cgroups(&tree.mount).expect("walk");
    for rel in [
        QOS_PARENT.to_owned(),
        tree.pod_path(),
        tree.container_path(),
        nested.clone(),
    ] {
        let found = dirs.iter().find(|d| d.path == rel);
        let found = found.unwrap_or_else(|| panic!("walk did not list {rel}"));
        assert_eq!(found.id, tree.id(&rel), "{rel}");
        assert_eq!(found.id, ino(&tree.abs(&rel)));
    }
    let class = parse_cgroup_path(&nested);
    let container = class
        .container()
        .expect("nested cgroup belongs to the container");
    assert_eq!(container.container_id, tree.container_id);
    assert_eq!(container.sub_path.as_deref(), Some("container"));
}

#[test]
fn real_cache_attributes_and_keeps_removed_until_ttl() {
    lifecycle_testkit::needs_root!();
    let mut tree = KubeletTree::create();
    let clock = ManualClock::new();
    let mut cache = real_cache(config(), &clock);
    cache.populate().expect("populate");
    let path = tree.container_path();
    let id = tree.id(&path);
    let entry = cache.lookup(id).expect("attributed after the initial walk");
    let expected = ContainerCgroup {
        runtime: Runtime::Containerd,
        container_id: tree.container_id.clone(),
        pod_uid: tree.pod_uid.clone(),
        qos: QosClass::BestEffort,
        driver: CgroupDriver::Systemd,
        sub_path: None,
    };
    assert_eq!(entry.class, CgroupClass::Container(expected.clone()));
    assert_eq!(entry.path, path);
    let pod_id = tree.id(&tree.pod_path());
    assert_eq!(
        cache.lookup(pod_id).and_then(|e| e.class.pod_uid()),
        Some(tree.pod_uid.as_str())
    );

    tree.rmdir(&path);
    let removed_at = clock.now();
    cache.on_rmdir(id, &path);
    clock.advance(Duration::from_secs(59));
    let entry = cache.lookup(id).expect("still attributed within the TTL");
    assert_eq!(entry.removed_at, Some(removed_at));
    assert_eq!(entry.class, CgroupClass::Container(expected));

    clock.advance(Duration::from_secs(1));
    assert!(
        cache.lookup(id).is_none(),
        "expired, and a re-walk cannot find it"
    );
    assert!(cache.counters().expired >= 1);
}

#[test]
fn real_miss_triggers_rate_limited_rewalk() {
    lifecycle_testkit::needs_root!();
    let mut tree = KubeletTree::create();
    let clock = ManualClock::new();
    let mut cache = real_cache(config(), &clock);
    cache.populate().expect("populate");
    let rewalks = cache.counters().rewalks;

    // A container whose mkdir event never reached the cache.
    let late = format!(
        "{}/cri-containerd-{}.scope",
        tree.pod_path(),
        random_hex(32)
    );
    let late_id = tree.mkdir(&late);
    assert!(
        cache.lookup(late_id).is_none(),
        "no re-walk inside the interval"
    );
    assert_eq!(cache.counters().rewalks, rewalks);

    clock.advance(Duration::from_secs(5));
    let entry = cache.lookup(late_id).expect("re-walk found it");
    assert_eq!(entry.path, late);
    assert!(entry.class.container().is_some());
    assert_eq!(cache.counters().rewalks, rewalks + 1);
    assert_eq!(cache.counters().resolved_by_rewalk, 1);

    // Unknown id right after: counted, but no second walk.
    assert!(cache.lookup(u64::MAX).is_none());
    assert_eq!(cache.counters().rewalks, rewalks + 1);

    // A removal whose event was lost is noticed by the next re-walk.
    tree.rmdir(&late);
    clock.advance(Duration::from_secs(5));
    assert!(cache.lookup(u64::MAX).is_none());
    let entry = cache.peek(late_id).expect("kept after removal");
    assert_eq!(entry.removed_at, Some(clock.now()));
}
