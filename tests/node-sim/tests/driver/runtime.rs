//! The runtime's signal path: stop signals from `runc` under the pod's
//! shim, the SIGKILL timeout and its floor, restarts with new container ids.

use std::collections::BTreeMap;

use node_sim::Action;

use crate::{Live, PLAIN, at, events, run, scenario, serial, sigterm, t0};

#[test]
fn stop_signals_are_sent_by_runc_children_of_the_pods_shim() {
    let _serial = serial();
    let live = Live::start(&scenario(PLAIN));
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
    let web = live
        .containers()
        .into_iter()
        .find(|c| c.0 == "web")
        .expect("web")
        .1;
    let parent = std::fs::read_to_string(format!("/proc/{web}/stat")).expect("stat");
    let parent: u32 = parent
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    assert_eq!(
        parent, shim,
        "the container's init is a child of the pod's shim"
    );
    let (log, seen) = live.delete_then(|live| events(live, "web", "sigterm"));
    let stop = at(&log, "web", |a| matches!(a, Action::StopRequested { .. }));
    assert!(matches!(
        stop.action,
        Action::StopRequested { timeout_s: 10 }
    ));
    let seen = seen.first().cloned().expect("the app logged its SIGTERM");
    // runc runs outside the container's pid namespace: the kernel reports
    // its pid to the receiver as 0.
    assert_eq!(seen["sender_pid"], 0, "a sender from outside: {seen}");
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
    let second = 1_000_000_000;
    let term = sigterm(log, "app");
    let stop = at(log, "app", |a| matches!(a, Action::StopRequested { .. }));
    assert!(
        matches!(stop.action, Action::StopRequested { timeout_s: 2 }),
        "{stop:?}"
    );
    assert!(
        term >= t0(log) + 3 * second,
        "SIGTERM after the 3 s preStop"
    );
    // 4 s grace - 3 s preStop = 1 s left, raised to the 2 s minimum: the
    // runtime's SIGKILL (and so the exit) comes 2 s after the stop.
    let exit = at(log, "app", |a| matches!(a, Action::ContainerExited { .. }));
    let gap = exit.at.boot_ns - term;
    assert!(
        gap >= 2 * second && gap < 2 * second + 500_000_000,
        "exit {} ms after the stop",
        gap / 1_000_000
    );
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
    // As PID 1 of its pid namespace the kernel drops the proxy's own
    // SIGABRT; glibc's abort() then ends it by a fault: 139 (SIGSEGV).
    assert!(
        matches!(
            crash.action,
            Action::ContainerExited {
                exit_code: 139,
                signal: Some(11),
                ..
            }
        ),
        "{crash:?}"
    );
    let backoff = runs[&1].1 - crash.at.boot_ns;
    let ten_seconds = 10_000_000_000;
    assert!(
        backoff >= ten_seconds,
        "CrashLoopBackOff starts at 10 s: waited {} ms",
        backoff / 1_000_000
    );
}

#[test]
fn a_container_the_runtime_cannot_start_fails_the_scenario_with_the_runtimes_message() {
    let _serial = serial();
    lifecycle_testkit::require_root();
    let scenario = scenario(
        r#"
name: bad-seccomp
description: a Localhost seccomp profile that is not on the node
pods:
  - manifest:
      metadata: {name: bad-seccomp-1, namespace: default}
      spec:
        terminationGracePeriodSeconds: 2
        containers:
          - name: app
            image: app:1
            securityContext: {seccompProfile: {type: Localhost, localhostProfile: profiles/missing.json}}
    containers:
      app: {role: app-server}
"#,
    );
    let api = node_sim::SimApi::start(scenario.kubelet).expect("API server");
    let started = std::time::Instant::now();
    let error = node_sim::scenario::run(&scenario, api.server(), Default::default())
        .expect_err("the runtime refuses the container");
    let text = error.to_string();
    assert!(
        text.contains("bad-seccomp-1") && text.contains("CRI ") && text.contains("Container"),
        "names the pod and the CRI call: {text}"
    );
    assert!(
        text.contains("seccomp") && text.contains("missing.json"),
        "carries the runtime's message: {text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "fails at once, does not wait out the step timeout"
    );
}

#[test]
fn a_failing_liveness_probe_makes_the_kubelet_kill_and_restart_the_container() {
    let _serial = serial();
    let report = run(r#"
name: liveness
description: a liveness probe on a port nothing listens on
pods:
  - manifest:
      metadata: {name: live-1, namespace: default}
      spec:
        terminationGracePeriodSeconds: 3
        containers:
          - name: app
            image: app:1
            livenessProbe: {httpGet: {path: /healthz, port: 8081}, periodSeconds: 1, failureThreshold: 2}
    containers:
      app: {role: app-server, serve: 8080}
steps:
  - waitRestarts: {pod: live-1, container: app, count: 1}
  - delete: {pods: live-1}
  - waitGone: live-1
"#);
    let log = &report.log;
    let failed = at(log, "app", |a| {
        matches!(a, Action::LivenessFailed { failures: 2 })
    });
    let stop = at(log, "app", |a| matches!(a, Action::StopRequested { .. }));
    assert!(
        matches!(stop.action, Action::StopRequested { timeout_s: 3 }),
        "killed with the pod's grace: {stop:?}"
    );
    assert!(stop.at.boot_ns >= failed.at.boot_ns);
    let exit = at(log, "app", |a| matches!(a, Action::ContainerExited { .. }));
    assert!(
        exit.at.boot_ns >= stop.at.boot_ns,
        "the kill ended the first run"
    );
    let ids: Vec<&str> = log
        .iter()
        .filter_map(|e| match &e.action {
            Action::ContainerStarted { container_id, .. } => Some(container_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2, "restarted once: {ids:?}");
    assert_ne!(ids[0], ids[1], "as a new container");
}
