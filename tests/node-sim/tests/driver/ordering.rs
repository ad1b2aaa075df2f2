//! Termination ordering per kubelet version: native sidecars after the app
//! in reverse order, 1.28 in parallel, the never-started-sidecar bug of
//! 1.29 and its fix, Job completion.

use node_sim::{Action, StopCause};

use crate::{at, exited, run, serial, sigterm, t0};

/// Two native sidecars around an init container and one app; `kubelet`
/// and the steps vary.
fn sidecar_pod(kubelet: &str, steps: &str, restart_policy: &str, migrate_work: u32) -> String {
    format!(
        r#"
name: sidecars
description: two native sidecars and an app
kubelet: "{kubelet}"
pods:
  - manifest:
      metadata: {{name: sidecars-1, namespace: default}}
      spec:
        restartPolicy: {restart_policy}
        terminationGracePeriodSeconds: 6
        initContainers:
          - {{name: logs, image: fluent-bit:3, restartPolicy: Always}}
          - {{name: migrate, image: migrate:1}}
          - {{name: proxy, image: envoy:1, restartPolicy: Always, lifecycle: {{preStop: {{sleep: {{seconds: 1}}}}}}}}
        containers:
          - {{name: app, image: app:1}}
    containers:
      logs: {{role: app-server}}
      migrate: {{role: init-task, work: {migrate_work}}}
      proxy: {{role: app-server}}
      app: {{role: {app_role}}}
steps:
{steps}
"#,
        app_role = if restart_policy == "Never" {
            "job-worker, work: 2"
        } else {
            "app-server, drain: 2"
        },
    )
}

const DELETE_WHEN_READY: &str =
    "  - waitReady: sidecars-1\n  - delete: {pods: sidecars-1}\n  - waitGone: sidecars-1";

#[test]
fn native_sidecars_stop_after_the_app_in_reverse_order() {
    let _serial = serial();
    let log = run(&sidecar_pod("1.33", DELETE_WHEN_READY, "Always", 0)).log;
    let app_exit = exited(&log, "app");
    assert!(sigterm(&log, "app") < app_exit);
    assert!(app_exit < sigterm(&log, "proxy"), "proxy after the app");
    assert!(
        exited(&log, "proxy") < sigterm(&log, "logs"),
        "logs after the proxy"
    );
    let hook = at(&log, "proxy", |a| matches!(a, Action::HookStarted { .. }))
        .at
        .boot_ns;
    assert!(
        hook - t0(&log) < 300_000_000,
        "the sidecar's preStop starts at t0"
    );
}

#[test]
fn kubelet_1_28_stops_sidecars_and_app_together() {
    let _serial = serial();
    let log = run(&sidecar_pod("1.28", DELETE_WHEN_READY, "Always", 0)).log;
    let app_exit = exited(&log, "app");
    // The proxy's 1 s preStop (50 ms here) comes first, then its SIGTERM,
    // while the app still drains for 2 s (100 ms).
    for sidecar in ["logs", "proxy"] {
        assert!(
            sigterm(&log, sidecar) < app_exit,
            "{sidecar} stopped before the app finished"
        );
    }
    assert!(
        !log.iter()
            .any(|e| matches!(e.action, Action::TurnReached { .. })),
        "no ordering in 1.28"
    );
}

const DELETE_DURING_INIT: &str = "  - waitStarted: {pod: sidecars-1, container: migrate}\n  - delete: {pods: sidecars-1}\n  - waitGone: sidecars-1";

#[test]
fn kubelet_1_29_holds_a_running_sidecar_for_one_that_never_started() {
    let _serial = serial();
    let report = run(&sidecar_pod("1.29", DELETE_DURING_INIT, "Always", 600));
    let log = &report.log;
    let grace = 6_000_000_000;
    let turn = at(log, "logs", |a| matches!(a, Action::TurnReached { .. }));
    assert!(
        matches!(
            turn.action,
            Action::TurnReached {
                deadline_hit: true,
                ..
            }
        ),
        "{turn:?}"
    );
    assert!(
        sigterm(log, "logs") >= t0(log) + grace,
        "SIGTERM only at the deadline"
    );
    assert!(
        !log.iter().any(|e| e.container.as_deref() == Some("proxy")),
        "the proxy never started"
    );
}

#[test]
fn kubelet_1_31_stops_the_running_sidecar_at_once() {
    let _serial = serial();
    let log = run(&sidecar_pod("1.31", DELETE_DURING_INIT, "Always", 600)).log;
    let turn = at(&log, "logs", |a| matches!(a, Action::TurnReached { .. }));
    assert!(
        matches!(
            turn.action,
            Action::TurnReached {
                deadline_hit: false,
                ..
            }
        ),
        "{turn:?}"
    );
    assert!(sigterm(&log, "logs") - t0(&log) < 300_000_000);
}

#[test]
fn job_completion_stops_sidecars_in_reverse_and_the_pod_succeeds() {
    let _serial = serial();
    let steps = "  - waitPhase: {pod: sidecars-1, phase: Succeeded}\n  - delete: {pods: sidecars-1}\n  - waitGone: sidecars-1";
    let log = run(&sidecar_pod("1.33", steps, "Never", 0)).log;
    let stop = log
        .iter()
        .find(|e| matches!(e.action, Action::TerminationStarted { .. }))
        .expect("termination");
    assert!(matches!(
        stop.action,
        Action::TerminationStarted {
            cause: StopCause::JobCompletion,
            ..
        }
    ));
    let app_exit = exited(&log, "app");
    assert!(app_exit < stop.at.boot_ns, "the app finished first");
    assert!(!log.iter().any(|e| e.container.as_deref() == Some("app")
        && matches!(e.action, Action::StopRequested { .. })));
    assert!(
        exited(&log, "proxy") < sigterm(&log, "logs"),
        "reverse order"
    );
    assert!(
        log.iter()
            .any(|e| matches!(&e.action, Action::PhaseChanged { phase } if phase == "Succeeded"))
    );
}
