//! Where BPF memory is charged: the `bpf_memory` decision on kernel
//! releases, the loader's error, and the probe on this machine's kernel.

use std::sync::Mutex;

use super::bpf::{OVERLAY_REMEDY, memlock_limit};
use super::memlock::{Accounting, Kmem, Probe, Raise, prepare, prepare_running_kernel, probe};
use super::memory_check::check_memory;
use super::*;
use crate::event_loop::LoopError;

/// The probe lowers this process's RLIMIT_MEMLOCK for a moment: tests that
/// read the limit take turns.
static LIMIT: Mutex<()> = Mutex::new(());

const MIB8: u64 = 8 << 20;

fn facts(release: &str, probe: Probe, raise: Raise) -> BpfMemory {
    BpfMemory {
        version: KernelVersion::parse(release),
        probe,
        limit: Some((MIB8, MIB8)),
        raise,
        kmem: Kmem::On,
    }
}

/// What `prepare` finds on a node without CAP_SYS_RESOURCE: below 5.11
/// the probe is refused and raising fails; from 5.11 neither runs.
fn without_sys_resource(release: &str) -> BpfMemory {
    let old = KernelVersion::parse(release).is_some_and(|v| v < MEMCG_ACCOUNTING);
    if old {
        facts(release, Probe::Refused, Raise::Failed(libc::EPERM))
    } else {
        facts(release, Probe::NotRun, Raise::NotNeeded)
    }
}

#[test]
fn kernels_5_8_to_5_10_need_the_overlay_and_5_11_on_pass() {
    for release in [
        "5.8.0",
        "5.10.200",
        "5.10.0-28-amd64",
        "5.10.210-201.852.amzn2.x86_64",
    ] {
        let memory = without_sys_resource(release);
        assert_eq!(memory.accounting(), Accounting::Memlock, "{release}");
        let check = check_memory(&memory);
        assert_eq!(check.status, Status::Fail, "{release}: {check:?}");
        assert_eq!(check.label, Some("memlock_too_low"), "{release}");
        assert!(
            check.detail.starts_with("kernel 5.8–5.10 (5.")
                && check.detail.contains("RLIMIT_MEMLOCK 8192 KiB"),
            "{release}: {}",
            check.detail
        );
        assert_eq!(check.remedy.as_deref(), Some(OVERLAY_REMEDY));
    }
    for release in [
        "5.11.0",
        "5.15.0-1057-gke",
        "6.1.0-18-amd64",
        "6.18.0",
        "6.18.44-fc-v669",
    ] {
        let memory = without_sys_resource(release);
        assert_eq!(memory.accounting(), Accounting::Memcg, "{release}");
        let check = check_memory(&memory);
        assert_eq!(check.status, Status::Ok, "{release}: {check:?}");
        assert!(
            check.detail.contains("memory cgroup (5.11 and later)"),
            "{}",
            check.detail
        );
        assert!(check.detail.contains("CAP_SYS_RESOURCE is not needed"));
    }
}

#[test]
fn a_5_10_node_passes_once_the_limit_is_unlimited_or_memcg_was_backported() {
    let raised = check_memory(&facts("5.10.200", Probe::Refused, Raise::Raised));
    assert_eq!(raised.status, Status::Ok);
    assert!(
        raised.detail.contains("raised to unlimited"),
        "{}",
        raised.detail
    );
    let mut unlimited = facts("5.10.200", Probe::Refused, Raise::NotNeeded);
    unlimited.limit = Some((libc::RLIM_INFINITY, libc::RLIM_INFINITY));
    let already = check_memory(&unlimited);
    assert_eq!(already.status, Status::Ok);
    assert!(
        already
            .detail
            .contains("RLIMIT_MEMLOCK unlimited (hard unlimited): unlimited already")
    );
    // A finite limit nobody raised is no pass, whatever the reason.
    let untouched = check_memory(&facts("5.10.200", Probe::Refused, Raise::NotNeeded));
    assert_eq!(untouched.status, Status::Fail, "{untouched:?}");
    let backport = facts("5.10.200", Probe::Created, Raise::NotNeeded);
    assert_eq!(backport.accounting(), Accounting::Memcg);
    let check = check_memory(&backport);
    assert_eq!(check.status, Status::Ok);
    assert!(check.detail.contains("backported"), "{}", check.detail);
}

#[test]
fn an_unparsable_release_is_decided_by_the_probe() {
    let refused = facts("linux-5.10", Probe::Refused, Raise::Failed(libc::EPERM));
    assert_eq!(refused.accounting(), Accounting::Memlock);
    assert_eq!(check_memory(&refused).label, Some("memlock_too_low"));
    let unknown = facts(
        "linux-5.10",
        Probe::Inconclusive("creating a BPF array map failed: EPERM".into()),
        Raise::Failed(libc::EPERM),
    );
    assert_eq!(unknown.accounting(), Accounting::Unknown);
    let check = check_memory(&unknown);
    assert_eq!(check.status, Status::Warn);
    assert_eq!(check.label, Some("bpf_memory_unknown"));
    assert!(check.remedy.unwrap().contains("overlays/kernel-5.8"));
    let created = facts("linux-5.10", Probe::Created, Raise::NotNeeded);
    assert_eq!(check_memory(&created).status, Status::Ok);
}

#[test]
fn below_the_minimum_only_the_version_check_fails() {
    let release = "5.4.0-150-generic";
    let check = check_memory(&without_sys_resource(release));
    assert_eq!(check.status, Status::Ok);
    assert!(check.detail.starts_with("not judged"), "{}", check.detail);
    let version = kernel::check_version(&Ok(release.to_owned()));
    assert_eq!(version.label, Some("kernel_too_old"));
}

#[test]
fn the_loader_stops_with_the_overlay_named_only_when_the_limit_applies() {
    let error = facts("5.10.200-1", Probe::Refused, Raise::Failed(libc::EPERM))
        .require_raised()
        .expect_err("a 5.10 kernel with a finite limit cannot load");
    let source = std::error::Error::source(&error).expect("the setrlimit error");
    assert_eq!(
        source
            .downcast_ref::<std::io::Error>()
            .and_then(|e| e.raw_os_error()),
        Some(libc::EPERM)
    );
    let error = LoopError::from(error);
    assert_eq!(error.label(), "memlock_too_low");
    let message = error.to_string();
    for part in [
        "kernel 5.10.200",
        "RLIMIT_MEMLOCK 8192 KiB",
        "deploy/overlays/kernel-5.8",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    // Nothing to stop for: charged elsewhere, raised, or only a guess.
    assert!(without_sys_resource("6.18.0").require_raised().is_ok());
    assert!(
        facts("5.10.200", Probe::Refused, Raise::Raised)
            .require_raised()
            .is_ok()
    );
    let unknown = facts(
        "x",
        Probe::Inconclusive("no".into()),
        Raise::Failed(libc::EPERM),
    );
    assert!(unknown.require_raised().is_ok());
}

#[test]
fn kernel_memory_accounting_is_read_from_the_command_line() {
    let cmdline = "BOOT_IMAGE=/vmlinuz root=/dev/vda1 cgroup.memory=nosocket,nokmem quiet";
    assert_eq!(Kmem::from_cmdline(cmdline), Kmem::Off);
    assert_eq!(Kmem::from_cmdline("cgroup_disable=memory"), Kmem::NoMemcg);
    assert_eq!(Kmem::from_cmdline("cgroup.memory=nosocket ro"), Kmem::On);
    assert_eq!(Kmem::from_cmdline(""), Kmem::On);
    let mut memory = without_sys_resource("6.1.0");
    memory.kmem = Kmem::Off;
    let check = check_memory(&memory);
    assert_eq!(check.status, Status::Ok);
    assert!(check.detail.contains("nokmem"), "{}", check.detail);
}

#[test]
fn on_this_kernel_the_limit_is_left_alone() {
    let _turn = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    let before = memlock_limit();
    let memory = prepare_running_kernel();
    assert!(
        memory.version.is_some_and(|v| v >= MEMCG_ACCOUNTING),
        "this test expects a kernel of 5.11 or later: {memory:?}"
    );
    assert_eq!(memory.probe, Probe::NotRun);
    assert_eq!(memory.raise, Raise::NotNeeded);
    assert_eq!(memlock_limit(), before);
    assert_eq!(check_memory(&memory).status, Status::Ok);
}

#[test]
fn the_probe_finds_memcg_accounting_here_and_restores_the_limit() {
    lifecycle_testkit::needs_root!();
    let _turn = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    let before = memlock_limit();
    assert_eq!(
        probe(),
        Probe::Created,
        "kernel {:?}",
        kernel::uname_release().ok()
    );
    assert_eq!(memlock_limit(), before);
    // Told it runs on 5.10, prepare asks the kernel, which charges the
    // memory cgroup: no raise, and the check calls it a backport.
    let memory = prepare(Some(KernelVersion::new(5, 10, 0)));
    assert_eq!(memory.probe, Probe::Created);
    assert_eq!(memory.raise, Raise::NotNeeded);
    assert_eq!(memlock_limit(), before);
    assert!(check_memory(&memory).detail.contains("backported"));
}
