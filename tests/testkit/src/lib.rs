//! Test kit for real-kernel tests: kubelet-style pod and container cgroups
//! on the machine's cgroup v2 hierarchy, processes started inside them, and
//! a running `lifecycle-agent record` to read events back from.

// Test programs make raw system calls (kill, setns, open/write in pre_exec, geteuid).
#![allow(unsafe_code)]

pub mod agent;
pub mod cgroups;
pub mod fixtures;
pub mod http;

use std::path::PathBuf;

pub use agent::Recording;
pub use cgroups::{
    Driver, FakeContainer, FakePod, cgroup2_mount, find_cgroup2_mount, join_cgroup, spawn_in,
};
pub use fixtures::{fixtures_dir, pod_fixture, poll, recording_fixture};
pub use http::{free_local_addr, http_get};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Panics unless running as root: these tests need real cgroups and eBPF.
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (cgroups, eBPF): run the suite as root"
    );
}

/// Set to `1` to make [`needs_root!`] fail a test instead of skipping it
/// (`cargo xtask test` sets it, so CI never passes by skipping).
pub const REQUIRE_ROOT_ENV: &str = "LIFECYCLE_REQUIRE_ROOT";

/// Whether a real-kernel test may go on. As root: yes. Otherwise the test
/// is skipped with "needs root" written straight to stderr (past libtest's
/// capture, so it shows), or fails when [`REQUIRE_ROOT_ENV`] is `1`.
pub fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    if std::env::var(REQUIRE_ROOT_ENV).is_ok_and(|v| v == "1") {
        panic!("{test} needs root (cgroups, eBPF, tracefs) and {REQUIRE_ROOT_ENV}=1 is set");
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "{test}: needs root (cgroups, eBPF, tracefs), skipped"
    );
    false
}

/// Returns from the calling test unless it runs as root (see
/// [`root_or_skip`]): `lifecycle_testkit::needs_root!();` as its first line.
#[macro_export]
macro_rules! needs_root {
    () => {
        if !$crate::root_or_skip() {
            return;
        }
    };
}

/// The `lifecycle-workload` binary, built by `cargo test --workspace` next
/// to the test executables.
pub fn workload_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("lifecycle-workload");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p lifecycle-testkit` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// A random lowercase hex string of `len` digits.
pub fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    let file = std::fs::File::open("/dev/urandom").expect("open /dev/urandom");
    std::io::Read::read_exact(&mut &file, &mut bytes).expect("read /dev/urandom");
    let mut out: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    out.truncate(len);
    out
}

/// A random RFC 4122-shaped pod uid.
pub fn random_uid() -> String {
    let h = random_hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
