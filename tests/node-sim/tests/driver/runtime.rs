//! The runtime's signal path: stop signals from `runc` under the pod's
//! shim, the SIGKILL timeout and its floor, restarts with new container ids.

use std::collections::BTreeMap;

use node_sim::{Action, runtime::CgroupDriver};

use crate::{Live, PLAIN, at, events, run, scenario, serial, sigterm, t0};

#[test]
fn stop_signals_are_sent_by_runc_children_of_the_pods_shim() {
    let _serial = serial();
    let live = Live::start(&scenario(PLAIN), CgroupDriver::Systemd);
    let shim = live
        .entries()
        .into_iter()
        .find_map(|e| match e.action {
            Action::SandboxStarted { shim_pid, .. } => Some(shim_pid),
            _ => None,
        })
        .expect("sandbox");
    let comm = std::fs::read_to_string(format!("/proc/{shim}/comm")).expect("shim comm");
    assert_eq!(
        comm.trim(),
        "containerd-shim",
        "15-character cut of containerd-shim-runc-v2"
    );
    let ppid = std::fs::read_to_string(format!("/proc/{shim}/stat")).expect("stat");
    let ppid: u32 = ppid
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    assert_eq!(ppid, std::process::id(), "the driver started the shim");
    let web = live
        .containers()
        .into_iter()
        .find(|c| c.0 == "web")
        .expect("web")
        .1;
    let (log, seen) = live.delete_then(|live| events(live, "web", "sigterm"));
    let (runc, shim_pid) = log
        .iter()
        .find_map(|e| match e.action {
            Action::SignalSent {
                signal: 15,
                target_pid,
                runc_pid,
                shim_pid,
                ..
            } if target_pid == web => Some((runc_pid, shim_pid)),
            _ => None,
        })
        .expect("web got SIGTERM");
    assert_eq!(shim_pid, shim, "through the pod's shim");
    assert!(
        runc != shim && runc != std::process::id(),
        "a process of its own"
    );
    let seen = seen.first().cloned().expect("the app logged its SIGTERM");
    assert_eq!(
        seen["sender_pid"], runc,
        "the app got SIGTERM from runc: {seen}"
    );
    assert_eq!(seen["si_code"], 0, "SI_USER: {seen}");
}

#[test]
fn sigkill_follows_the_remaining_grace_with_a_two_second_floor() {
    let _serial = serial();
    let report = run(r#"
name: floor
description: preStop eats most of the grace
pods:
  - manifest:
      metadata: {name: floor-1, namespace: default}
      spec:
        terminationGracePeriodSeconds: 4
        containers:
          - {name: app, image: app:1, lifecycle: {preStop: {sleep: {seconds: 3}}}}
    containers:
      app: {role: app-server, ignoreTerm: true}
"#);
    let log = &report.log;
    let second = (report.scale * 1e9) as u64;
    let kill = match at(log, "app", |a| {
        matches!(a, Action::SignalSent { signal: 9, .. })
    })
    .action
    {
        Action::SignalSent { before_boot_ns, .. } => before_boot_ns,
        _ => unreachable!(),
    };
    let term = sigterm(log, "app");
    assert!(
        term >= t0(log) + 3 * second,
        "SIGTERM after the 3 s preStop"
    );
    // 4 s grace - 3 s preStop = 1 s left, raised to the 2 s minimum.
    let gap = kill - term;
    assert!(
        gap >= 2 * second && gap < 2 * second + 300_000_000,
        "SIGKILL {} ms after SIGTERM",
        gap / 1_000_000
    );
    let exit = at(log, "app", |a| matches!(a, Action::ContainerExited { .. }));
    assert!(matches!(
        exit.action,
        Action::ContainerExited {
            exit_code: 137,
            signal: Some(9),
            ..
        }
    ));
}

#[test]
fn restart_backoff_and_container_ids_per_run() {
    let _serial = serial();
    let report = run(r#"
name: crashloop
description: a proxy that crashes once
pods:
  - manifest:
      metadata: {name: crash-1, namespace: default, annotations: {linkerd.io/inject: enabled}}
      spec:
        terminationGracePeriodSeconds: 5
        containers:
          - {name: linkerd-proxy, image: proxy:1, securityContext: {runAsUser: 2102}}
    containers:
      linkerd-proxy: {role: mesh-proxy, crashAfter: 1}
steps:
  - waitRestarts: {pod: crash-1, container: linkerd-proxy, count: 1}
  - delete: {pods: crash-1}
  - waitGone: crash-1
"#);
    let runs: BTreeMap<u32, (String, u64)> = report
        .log
        .iter()
        .filter_map(|e| match &e.action {
            Action::ContainerStarted {
                restart,
                container_id,
                ..
            } => Some((*restart, (container_id.clone(), e.at.boot_ns))),
            _ => None,
        })
        .collect();
    assert_eq!(runs.len(), 2);
    assert_ne!(runs[&0].0, runs[&1].0, "each run is a new container");
    let crash = at(&report.log, "linkerd-proxy", |a| {
        matches!(a, Action::ContainerExited { .. })
    });
    assert!(matches!(
        crash.action,
        Action::ContainerExited {
            exit_code: 134,
            signal: Some(6),
            ..
        }
    ));
    let backoff = runs[&1].1 - crash.at.boot_ns;
    let ten_seconds = (10.0 * report.scale * 1e9) as u64;
    assert!(
        backoff >= ten_seconds,
        "CrashLoopBackOff starts at 10 s: waited {} ms",
        backoff / 1_000_000
    );
}
