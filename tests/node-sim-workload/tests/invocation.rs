//! How the binary picks its role: by the first argument, or `pause` by its
//! own file name.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure
#![allow(unsafe_code)] // kill(2) of the processes under test

mod common;

use std::{process::Command, time::Duration};

use common::{BINARY, Running, Scratch};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn named_pause_without_arguments_it_pauses_until_sigterm() {
    let scratch = Scratch::new("named-pause");
    let pause = scratch.install_as("pause");
    let by_name = Command::new(&pause);
    let mut by_role = Command::new(BINARY);
    by_role.arg("pause");
    for mut cmd in [by_name, by_role] {
        let running = Running::start(&mut cmd);
        running.event("started", 5 * SECOND);
        running.signal(libc::SIGTERM);
        let sigterm = running.event("sigterm", 5 * SECOND);
        assert!(
            sigterm.contains(&format!("\"sender_pid\":{}", std::process::id())),
            "{cmd:?}: the event names the sender: {sigterm}"
        );
        assert_eq!(running.exit(5 * SECOND).code(), Some(0), "{cmd:?}");
    }
}

#[test]
fn the_name_pause_counts_only_without_arguments() {
    let scratch = Scratch::new("pause-with-role");
    let pause = scratch.install_as("pause");
    let out = Command::new(&pause)
        .args(["init-task", "--exit", "4"])
        .output()
        .expect("run pause init-task");
    assert_eq!(out.status.code(), Some(4), "the init-task role ran");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ev\":\"exit\""));
}

#[test]
fn without_a_role_or_with_an_unknown_one_it_prints_usage() {
    for (args, problem) in [
        (&[][..], "no role given"),
        (&["runc"][..], "unknown role runc"),
    ] {
        let out = Command::new(BINARY).args(args).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(problem), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: node-sim-workload ROLE"), "{stderr}");
    }
}
