//! `lifecycle-agent doctor` on this machine (root, a kernel with BTF,
//! tracefs and cgroup v2): every check is reported, none fails, and a
//! broken input turns into a failing check and exit code 1.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use lifecycle_agent::preflight::CHECK_NAMES;
use serde_json::Value;

use crate::support::agent::command;
use crate::support::kernel::exclusive_blocking;

fn doctor(args: &[&str]) -> Output {
    doctor_command(args)
        .output()
        .expect("run lifecycle-agent doctor")
}

fn doctor_command(args: &[&str]) -> Command {
    let mut command = command(&["doctor"]);
    command.args(args);
    command
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --format json printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("check {name} missing: {report}"))
}

#[test]
fn doctor_passes_on_this_machine_with_every_check_named() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let out = doctor(&["--format", "json"]);
    let report = json(&out);
    assert!(
        out.status.success(),
        "doctor failed here: {}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(report["failed"], false);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, CHECK_NAMES);
    for name in CHECK_NAMES {
        let c = check(&report, name);
        assert_ne!(c["status"], "fail", "{c}");
        assert!(!c["detail"].as_str().unwrap_or("").is_empty(), "{c}");
    }
    // The facts this machine is known to have.
    for (name, status) in [
        ("kernel_version", "ok"),
        ("btf", "ok"),
        ("tracefs", "ok"),
        ("tracepoints", "ok"),
        ("capabilities", "ok"),
        ("bpf_memory", "ok"),
        ("ring_buffer", "ok"),
        ("proc", "ok"),
    ] {
        assert_eq!(check(&report, name)["status"], status, "{name}");
    }
    let memory = check(&report, "bpf_memory")["detail"].as_str().unwrap();
    assert!(memory.contains("charged to the memory cgroup"), "{memory}");
    let release = report["kernel_release"].as_str().expect("release");
    assert!(
        check(&report, "kernel_version")["detail"]
            .as_str()
            .unwrap()
            .contains(release)
    );
}

#[test]
fn doctor_text_lists_every_check_and_a_summary() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let out = doctor(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.starts_with("lifecycle-agent doctor: kernel "),
        "{text}"
    );
    for name in CHECK_NAMES {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("0 failed"), "{text}");
}

#[test]
fn doctor_fails_with_exit_code_1_when_btf_is_missing() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let out = doctor(&["--format", "json", "--btf-path", "/nonexistent/vmlinux"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["failed"], true);
    let btf = check(&report, "btf");
    assert_eq!(btf["status"], "fail");
    assert_eq!(btf["label"], "btf_unavailable");
    assert!(
        btf["remedy"]
            .as_str()
            .unwrap()
            .contains("CONFIG_DEBUG_INFO_BTF")
    );
    // The offsets need BTF: reported as not checked, not as a crash.
    assert_eq!(check(&report, "kernel_offsets")["status"], "fail");
    // The rest is unaffected.
    assert_eq!(check(&report, "ring_buffer")["status"], "ok");
}

#[test]
fn doctor_flags_a_tracefs_path_that_is_not_tracefs_and_a_container_proc() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_proc = dir.path().join("proc");
    std::fs::create_dir_all(fake_proc.join("1")).expect("mkdir");
    let out = doctor(&[
        "--format",
        "json",
        "--tracefs-path",
        dir.path().to_str().unwrap(),
        "--proc-root",
        fake_proc.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(check(&report, "tracefs")["label"], "tracefs_unavailable");
    assert_eq!(check(&report, "tracepoints")["status"], "fail");
    let proc = check(&report, "proc");
    assert_eq!(proc["status"], "warn");
    assert_eq!(proc["label"], "proc_not_host");
}

#[test]
fn doctor_passes_under_a_64_kib_memlock_limit_it_cannot_raise() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    // This kernel (6.18) charges BPF memory to the memory cgroup: an 8 MiB
    // ring buffer fits under a 64 KiB RLIMIT_MEMLOCK, and the check neither
    // raises the limit nor needs CAP_SYS_RESOURCE to (the hard limit is 64
    // KiB too, and this machine's root lacks the capability anyway).
    let mut command = doctor_command(&["--format", "json"]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64 << 10,
                rlim_max: 64 << 10,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = command.output().expect("run lifecycle-agent doctor");
    let report = json(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(check(&report, "bpf_memory")["status"], "ok");
    assert_eq!(check(&report, "ring_buffer")["status"], "ok");
    let limits = check(&report, "bpf_limits")["detail"].as_str().unwrap();
    assert!(
        limits.starts_with("RLIMIT_MEMLOCK 64 KiB (hard 64 KiB)"),
        "the limit was changed: {limits}"
    );
}
