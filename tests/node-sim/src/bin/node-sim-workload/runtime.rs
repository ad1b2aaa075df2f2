//! The container runtime's signal path, as the kernel sees it on a node:
//! `containerd-shim-runc-v2` (comm `containerd-shim`) runs a short-lived
//! `runc kill` per stop signal, whose parent it is.
//!
//! Shim protocol, one line each way: the driver writes
//! `ID kill PID SIG` or `ID kill-all CGROUP_DIR SIG`; the shim answers
//! `ID RUNC_PID RUNC_EXIT REPORT`, where REPORT is runc's JSON line
//! (`before_boot_ns`, `after_boot_ns`, the pids signalled and each result).

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::common::boot_ns;

/// The shim's loop; ends when its stdin closes.
pub fn shim() -> i32 {
    let argv0 = std::env::args().next().unwrap_or_default();
    let runc = PathBuf::from(argv0).with_file_name("runc");
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in BufReader::new(stdin.lock()).lines() {
        let Ok(line) = line else { break };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let reply = match fields.as_slice() {
            [id, "kill", pid, sig] => run_runc(&runc, id, &["kill", pid, sig]),
            [id, "kill-all", dir, sig] => run_runc(&runc, id, &["kill", "--all", dir, sig]),
            _ => format!("? 0 2 {{\"error\":\"bad request {line}\"}}"),
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    0
}

fn run_runc(runc: &PathBuf, id: &str, args: &[&str]) -> String {
    let child = Command::new(runc)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return format!("{id} 0 127 {{\"error\":\"spawn runc: {e}\"}}"),
    };
    let mut report = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut report);
    }
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(255);
    let report = report.trim();
    let report = if report.is_empty() { "{}" } else { report };
    format!("{id} {} {code} {report}", child.id())
}

/// `runc kill PID SIG` or `runc kill --all CGROUP_DIR SIG`.
pub fn runc(args: &[String]) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (pids, sig) = match args.as_slice() {
        ["kill", "--all", dir, sig] => {
            let procs = std::fs::read_to_string(format!("{dir}/cgroup.procs")).unwrap_or_default();
            (
                procs
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect(),
                *sig,
            )
        }
        ["kill", pid, sig] => match pid.parse::<i32>() {
            Ok(pid) => (vec![pid], *sig),
            Err(_) => return 2,
        },
        _ => {
            eprintln!("usage: runc kill [--all CGROUP_DIR | PID] SIGNAL");
            return 2;
        }
    };
    let Ok(sig) = sig.parse::<i32>() else {
        return 2;
    };
    let before = boot_ns();
    let results: Vec<String> = pids
        .iter()
        .map(|&pid: &i32| {
            // SAFETY: kill(2) on a pid the runtime was asked to signal.
            let rc = unsafe { libc::kill(pid, sig) };
            let errno = if rc == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            };
            format!("{{\"pid\":{pid},\"errno\":{errno}}}")
        })
        .collect();
    let after = boot_ns();
    println!(
        "{{\"before_boot_ns\":{before},\"after_boot_ns\":{after},\"signal\":{sig},\"targets\":[{}]}}",
        results.join(",")
    );
    if results.iter().all(|r| r.ends_with("\"errno\":0}")) {
        0
    } else {
        1
    }
}
