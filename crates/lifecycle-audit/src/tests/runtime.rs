//! Pods started by a real container runtime: runc's bootstrap stages and
//! crun's extra fork are in the container's cgroup before its PID 1, and
//! must not be taken for the container.

use std::path::Path;

use lifecycle_recording::reader::read_recording;
use serde_json::json;

use super::{one, outcome};
use crate::{
    AuditConfig, Completion, FindingKind, Outcome, RuleId, audit_records,
    testing::{BASE_NS, Proc, Script, istio_legacy, manifest, runc_legacy_pod},
    timeline::{PodTimeline, ProcRole, SenderClass},
};

const MS: i64 = 1_000_000;

#[test]
fn runc_init_is_pid1_from_its_entrypoint_exec() {
    let (s, [app_init, _, proxy_init, _]) = runc_legacy_pod();
    let records = s.records();
    let tl = PodTimeline::build(s.uid(), &records, 0);
    for (name, init, exec_ms) in [("app", &app_init, 39), ("istio-proxy", &proxy_init, 99)] {
        let c = tl.container(name).unwrap();
        assert_eq!(c.instances.len(), 1, "{name}: {:#?}", c.instances);
        let run = &c.instances[0];
        assert_eq!((run.pid, run.start_ns), (init.pid, init.start_ns), "{name}");
        assert_eq!(
            run.exec.map(|e| e.ns),
            Some(BASE_NS + exec_ms * MS),
            "{name}"
        );
        assert!(
            run.alive_at(BASE_NS + 500 * MS),
            "{name} runs after start-up"
        );
        assert!(c.hooks.is_empty(), "{name}: {:#?}", c.hooks);
        assert_eq!(c.runtime_setup, 2, "{name}: [0:PARENT] and [1:CHILD]");
        assert_eq!(tl.places[&(init.pid, init.start_ns)].role, ProcRole::Pid1);
    }
    assert_eq!(
        tl.places.len(),
        2,
        "runc's bootstrap has no place: {:#?}",
        tl.places
    );
}

#[test]
fn a_runc_pod_terminates_with_a_complete_audit() {
    let (s, [_, app, _, _]) = runc_legacy_pod();
    let audit = s.audit();
    assert!(!audit.partial);
    assert_eq!(audit.completed_by, Completion::Terminated);
    let t = audit.termination.as_ref().expect("a termination");
    assert_eq!(t.t0.map(|t0| t0.ns), Some(BASE_NS + 1010 * MS), "t0");
    for name in ["app", "istio-proxy"] {
        let c = t.container(name).unwrap();
        let stop = c.stop_signal.as_ref().unwrap_or_else(|| panic!("{name}"));
        assert_eq!(stop.sender, SenderClass::Runtime, "{name}");
        assert!(c.exit.is_some(), "{name} exited during the termination");
    }
    let app_t = t.container("app").unwrap();
    assert_eq!(app_t.stop_signal.as_ref().unwrap().result, "ignored");
    assert_eq!(app_t.exit.as_ref().map(|x| x.code), Some(137));
    let killed = one(&audit, FindingKind::Sigkilled);
    assert!(
        killed.message.contains("PID 1 ignored SIGTERM"),
        "{}",
        killed.message
    );
    let app_lane = audit.lanes.iter().find(|l| l.container == "app").unwrap();
    assert_eq!(app_lane.runs.len(), 1);
    assert_eq!(app_lane.runs[0].pid, app.pid);
    for v in &audit.verdicts {
        assert_ne!(v.outcome, Outcome::Unknown, "{v:?}");
    }
    assert_eq!(outcome(&audit, RuleId::X1), Outcome::Held);
    assert_eq!(outcome(&audit, RuleId::T3), Outcome::Held);

    // The only windows are real ones: the app ran before the proxy
    // listened, and after the proxy exited. None reaches back before the
    // recording.
    let bypass = audit.bypass.as_ref().unwrap();
    assert!(
        bypass.windows.iter().all(|w| w.start.seq.is_some()),
        "{:#?}",
        bypass.windows
    );
    assert_eq!(
        bypass.windows.first().map(|w| w.start.ns),
        Some(BASE_NS + 39 * MS),
        "the first window opens at the app's entrypoint"
    );

    let startup = audit.startup.as_ref().expect("a startup audit");
    let first = startup.containers.iter().find(|c| c.container == "app");
    assert_eq!(
        first.and_then(|c| c.first_exec).map(|e| e.ns),
        Some(BASE_NS + 39 * MS)
    );
}

/// A pod whose app has an exec preStop, run by runc; the preStop's `runc
/// exec` is runc 1.1.5's (only `[2:INIT]` enters the cgroup) or, with
/// `in_cgroup`, runc 1.5's (the whole bootstrap runs in it).
fn runc_prestop(in_cgroup: bool) -> (Script, Proc, Proc, Proc) {
    let spec = manifest(
        json!([]),
        json!([{"name": "app", "image": "shop/app:1",
                "lifecycle": {"preStop": {"exec": {"command": ["/bin/drain", "--wait"]}}}}]),
        json!({"terminationGracePeriodSeconds": 30}),
    );
    let mut s = Script::new(spec);
    s.at(0.0);
    let app_init = s.runc_create("app");
    s.at(39.0);
    let app = s.runc_init_execs(&app_init, "/app");
    s.api_running("app");
    s.at(1000.0).delete(30);
    s.at(1005.0);
    let hook_init = if in_cgroup {
        s.runc_exec_in_cgroup("app")
    } else {
        s.runc_exec("app")
    };
    s.at(1040.0);
    let hook = s.runc_init_execs(&hook_init, "/bin/drain");
    s.at(1500.0).exit(&hook, 0);
    s.at(1510.0).term(&app);
    s.at(1600.0).exit(&app, 0);
    s.at(2000.0).api_terminated("app", 0).deleted();
    (s, app, hook_init, hook)
}

#[test]
fn a_runc_exec_prestop_is_a_runtime_exec_not_a_new_run() {
    for (in_cgroup, setup) in [(false, 2), (true, 4)] {
        let (s, app, hook_init, hook) = runc_prestop(in_cgroup);
        let records = s.records();
        let tl = PodTimeline::build(s.uid(), &records, 0);
        let c = tl.container("app").unwrap();
        assert_eq!(c.instances.len(), 1, "{in_cgroup}: {:#?}", c.instances);
        assert_eq!(c.instances[0].pid, app.pid, "{in_cgroup}");
        assert_eq!(c.hooks.len(), 1, "{in_cgroup}: {:#?}", c.hooks);
        let h = &c.hooks[0];
        assert_eq!(h.pid, hook_init.pid, "{in_cgroup}");
        assert_eq!(
            (h.filename.as_str(), h.exec.ns),
            ("/bin/drain", BASE_NS + 1040 * MS),
            "{in_cgroup}"
        );
        assert_eq!(
            tl.places[&(hook.pid, hook.start_ns)].role,
            ProcRole::RuntimeExec,
            "{in_cgroup}"
        );
        assert_eq!(c.runtime_setup, setup, "{in_cgroup}");

        let audit = s.audit();
        let t = audit.termination.as_ref().unwrap();
        assert_eq!(
            t.t0.map(|t0| t0.ns),
            Some(BASE_NS + 1040 * MS),
            "{in_cgroup}"
        );
        match &t.container("app").unwrap().prestop {
            crate::termination::PreStop::Exec {
                filename,
                exit_code,
                ..
            } => assert_eq!((filename.as_str(), *exit_code), ("/bin/drain", Some(0))),
            other => panic!("{in_cgroup}: preStop not seen: {other:?}"),
        }
    }
}

#[test]
fn crun_s_intermediate_fork_is_not_pid1() {
    let mut s = Script::new(istio_legacy(30));
    s.at(0.0);
    let child = s.crun_create_forking("app");
    s.at(30.0);
    let app = s.crun_child_execs(&child, "/app");
    s.at(500.0);
    let worker = s.child(&app, "/usr/bin/worker");
    let records = s.records();
    let tl = PodTimeline::build(s.uid(), &records, 0);
    let c = tl.container("app").unwrap();
    assert_eq!(c.instances.len(), 1, "{:#?}", c.instances);
    let run = &c.instances[0];
    assert_eq!(
        (run.pid, run.exec.map(|e| e.ns)),
        (app.pid, Some(BASE_NS + 30 * MS))
    );
    assert!(run.exit.is_none(), "crun's exit 0 is not the container's");
    assert_eq!(c.runtime_setup, 1);
    assert_eq!(
        tl.places[&(worker.pid, worker.start_ns)].role,
        ProcRole::Child
    );
}

#[test]
fn a_kernel_recording_of_runc_1_1_5_has_init_as_pid1() {
    // Recorded on a machine of this project's kind with the agent's
    // `record`: `runc create` and `runc start` of `/bin/sleep 30` (no
    // SIGTERM handler), `runc exec /bin/true`, `runc kill 15`, `runc kill
    // 9`, `runc delete`, run from a shell; the container's records only.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/recordings/runc-1.1.5-create-exec-kill.jsonl"
    );
    let (records, _) = read_recording(Path::new(path)).expect("the recording");
    let audits = audit_records(records, &AuditConfig::default());
    let lane = audits
        .iter()
        .flat_map(|a| &a.lanes)
        .find(|l| l.container == "container-abababababab")
        .expect("the container's lane");
    assert_eq!(lane.runs.len(), 1, "{:#?}", lane.runs);
    let run = &lane.runs[0];
    // 21917 is `runc:[0:PARENT]` (the pid the cgroup attach moved), 21918
    // `[1:CHILD]`, 21919 `[2:INIT]`, which exec'd /bin/sleep.
    assert_eq!(run.pid, 21919);
    assert_eq!(run.start.map(|s| s.ns), Some(1_796_236_144_539_659_413));
    assert_eq!(run.exit_code, Some(137));
    let hooks: Vec<&str> = lane.hooks.iter().map(|h| h.filename.as_str()).collect();
    assert_eq!(hooks, vec!["/bin/true"]);
}
