use std::path::Path;

use super::bpf::parse_lockdown;
use super::caps::missing;
use super::host::{describe_layout, own_cgroup_path, shows_host_pids};
use super::*;

#[test]
fn kernel_releases_of_common_distributions_parse() {
    let v = |s| KernelVersion::parse(s);
    assert_eq!(v("6.18.44-fc-v669"), Some(KernelVersion::new(6, 18, 44)));
    assert_eq!(v("5.15.0-1057-gke"), Some(KernelVersion::new(5, 15, 0)));
    assert_eq!(
        v("5.10.210-201.852.amzn2.x86_64"),
        Some(KernelVersion::new(5, 10, 210))
    );
    assert_eq!(v("6.1.0-18-amd64"), Some(KernelVersion::new(6, 1, 0)));
    assert_eq!(v("6.8.0-rc3"), Some(KernelVersion::new(6, 8, 0)));
    assert_eq!(v("4.19"), Some(KernelVersion::new(4, 19, 0)));
    assert_eq!(v("5.8\n"), Some(KernelVersion::new(5, 8, 0)));
    assert_eq!(v("linux-6.1"), None);
    assert_eq!(v("6"), None);
    assert_eq!(v(""), None);
}

#[test]
fn kernel_versions_compare_numerically() {
    assert!(KernelVersion::new(5, 10, 210) < KernelVersion::new(5, 11, 0));
    assert!(KernelVersion::new(5, 7, 19) < MIN_KERNEL);
    assert!(KernelVersion::new(5, 8, 0) >= MIN_KERNEL);
    assert!(KernelVersion::new(10, 0, 0) > KernelVersion::new(9, 99, 99));
    assert_eq!(KernelVersion::new(6, 18, 44).to_string(), "6.18.44");
}

#[test]
fn version_check_fails_old_and_passes_new_kernels() {
    let check = |r: &str| kernel::check_version(&Ok(r.to_owned()));
    let old = check("5.4.0-150-generic");
    assert_eq!(old.status, Status::Fail);
    assert_eq!(old.label, Some("kernel_too_old"));
    assert!(old.remedy.is_some());
    let bullseye = check("5.10.0-28-amd64");
    assert_eq!(bullseye.status, Status::Ok);
    assert!(
        bullseye.detail.contains("RLIMIT_MEMLOCK"),
        "{}",
        bullseye.detail
    );
    assert_eq!(check("6.18.44-fc-v669").status, Status::Ok);
    assert_eq!(check("weird").status, Status::Warn);
}

#[test]
fn cap_eff_is_read_from_status_and_decoded() {
    let status = "Name:\tlifecycle-agent\nCapInh:\t0000000000000000\nCapPrm:\t000000c001000000\n\
                  CapEff:\t000000c001000000\nCapBnd:\t000001ffffffffff\n";
    let caps = CapSet::from_status(status).expect("CapEff");
    assert_eq!(caps.0, 0xc0_0100_0000);
    assert_eq!(
        caps.names(),
        ["cap_sys_resource", "cap_perfmon", "cap_bpf"].map(String::from)
    );
    assert!(caps.has(39) && caps.has(38) && caps.has(24) && !caps.has(21));
    assert_eq!(CapSet::from_status("CapPrm:\t0\n"), None);
    assert_eq!(CapSet::from_status("CapEff:\tzz\n"), None);
    // Bits past the names table keep a numeric name.
    assert_eq!(CapSet(1 << 45).names(), ["cap_45"]);
}

#[test]
fn capability_names_map_both_spellings() {
    assert_eq!(capability_bit("CAP_BPF"), Some(39));
    assert_eq!(capability_bit("PERFMON"), Some(38));
    assert_eq!(capability_bit("sys_resource"), Some(24));
    assert_eq!(capability_bit("cap_sys_admin"), Some(21));
    assert_eq!(capability_bit("NOPE"), None);
    assert_eq!(capability_name(2), "cap_dac_read_search");
    for (i, name) in CAPABILITY_NAMES.iter().enumerate() {
        assert_eq!(capability_bit(name), Some(i as u32), "{name}");
    }
}

#[test]
fn missing_capabilities_follow_tracefs_mounting() {
    let bpf_perfmon = CapSet((1 << 39) | (1 << 38));
    assert!(missing(bpf_perfmon, false).is_empty());
    assert_eq!(missing(bpf_perfmon, true), ["cap_sys_admin"]);
    assert_eq!(missing(CapSet(1 << 39), false), ["cap_perfmon"]);
    assert_eq!(missing(CapSet(0), false), ["cap_bpf", "cap_perfmon"]);
    // CAP_SYS_ADMIN stands in for both.
    assert!(missing(CapSet(1 << 21), true).is_empty());
}

#[test]
fn requirements_name_known_capabilities() {
    for (name, _, why) in REQUIREMENTS {
        assert!(capability_bit(name).is_some(), "{name}");
        assert!(!why.is_empty());
    }
}

#[test]
fn lockdown_mode_is_the_bracketed_word() {
    assert_eq!(
        parse_lockdown("none [integrity] confidentiality\n"),
        Some("integrity")
    );
    assert_eq!(
        parse_lockdown("[none] integrity confidentiality"),
        Some("none")
    );
    assert_eq!(parse_lockdown("none integrity"), None);
}

#[test]
fn cgroup_layout_and_own_path() {
    assert_eq!(
        describe_layout(Path::new("/sys/fs/cgroup/unified")),
        "hybrid: cgroup v2 at /sys/fs/cgroup/unified"
    );
    assert!(describe_layout(Path::new("/sys/fs/cgroup")).starts_with("pure"));
    let text = "12:pids:/user.slice\n0::/system.slice/containerd.service\n";
    assert_eq!(
        own_cgroup_path(text),
        Some("/system.slice/containerd.service")
    );
    assert_eq!(own_cgroup_path("1:name=systemd:/\n"), None);
}

#[test]
fn host_pid_namespace_is_recognised_by_kthreadd() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(!shows_host_pids(dir.path()));
    std::fs::create_dir(dir.path().join("2")).expect("mkdir");
    std::fs::write(dir.path().join("2/comm"), "bash\n").expect("write");
    assert!(!shows_host_pids(dir.path()));
    std::fs::write(dir.path().join("2/comm"), "kthreadd\n").expect("write");
    assert!(shows_host_pids(dir.path()));
}

#[test]
fn proc_check_warns_about_a_container_pid_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    for pid in ["1", "7"] {
        std::fs::create_dir(dir.path().join(pid)).expect("mkdir");
        std::fs::write(dir.path().join(pid).join("stat"), "1 (x) S").expect("stat");
        std::fs::write(dir.path().join(pid).join("cgroup"), "0::/\n").expect("cgroup");
    }
    let check = host::check_proc(dir.path());
    assert_eq!(check.status, Status::Warn);
    assert_eq!(check.label, Some("proc_not_host"));
    assert!(check.detail.contains("2 of 2"), "{}", check.detail);
    let missing = host::check_proc(&dir.path().join("absent"));
    assert_eq!(missing.status, Status::Fail);
}

#[test]
fn report_renders_text_and_json() {
    let report = Report {
        kernel_release: "6.1.0-test".into(),
        checks: vec![
            Check::ok("kernel_version", "6.1.0"),
            Check::warn("cgroup", "no kubepods cgroup found", "run on a node")
                .with_label("kubepods_not_found"),
            Check::fail("btf", "cannot read BTF", "enable CONFIG_DEBUG_INFO_BTF"),
        ],
    };
    assert!(report.failed());
    assert_eq!(report.count(Status::Warn), 1);
    let text = report.render_text();
    assert!(
        text.starts_with("lifecycle-agent doctor: kernel 6.1.0-test\n"),
        "{text}"
    );
    assert!(text.contains("  FAIL  btf"), "{text}");
    assert!(text.contains("-> run on a node"), "{text}");
    assert!(
        text.contains("3 checks: 1 ok, 1 warning(s), 1 failed"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.render_json()).expect("json");
    assert_eq!(json["failed"], true);
    assert_eq!(json["warnings"], 1);
    assert_eq!(json["checks"][1]["status"], "warn");
    assert_eq!(json["checks"][1]["label"], "kubepods_not_found");
    assert!(json["checks"][0].get("remedy").is_none());
    let ok = Report {
        kernel_release: "x".into(),
        checks: vec![Check::ok("proc", "fine")],
    };
    assert!(!ok.failed());
}

#[test]
fn preflight_errors_have_labels() {
    let e = PreflightError::RingBufferCreateFailed {
        bytes: 4096,
        source: std::io::Error::from_raw_os_error(libc::EPERM),
    };
    assert_eq!(e.label(), "ring_buffer_create_failed");
    assert!(e.to_string().contains("4096"), "{e}");
    assert_eq!(
        PreflightError::KernelReleaseUnparsable("x".into()).label(),
        "kernel_release_unparsable"
    );
}
