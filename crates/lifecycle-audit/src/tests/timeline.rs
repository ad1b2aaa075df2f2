//! Process roles and signal senders as the timeline derives them.

use lifecycle_recording::event::{Event, Record};

use super::{istio_legacy, outcome};
use crate::{
    AuditConfig, Outcome, RuleId,
    testing::{By, Script},
    timeline::{PodTimeline, ProcRole, SenderClass},
};

#[test]
fn pid1_children_and_runtime_execs_are_told_apart() {
    let mut s = Script::new(istio_legacy(30));
    s.at(0.0);
    let app = s.start("app", "/bin/sh");
    s.at(10.0);
    let child = s.child(&app, "/usr/bin/curl");
    s.at(20.0);
    let hook = s.hook("app", "/bin/health-check");
    s.at(30.0).exit(&hook, 0).exit(&child, 0);
    let records = s.records();
    let tl = PodTimeline::build(s.uid(), &records, 0);

    let role = |pid: u32, start: u64| tl.places[&(pid, start)].role;
    assert_eq!(role(app.pid, app.start_ns), ProcRole::Pid1);
    assert_eq!(role(child.pid, child.start_ns), ProcRole::Child);
    assert_eq!(role(hook.pid, hook.start_ns), ProcRole::RuntimeExec);
    let c = tl.container("app").unwrap();
    assert_eq!(c.instances.len(), 1);
    assert_eq!(c.hooks.len(), 1);
    assert_eq!(c.hooks[0].filename, "/bin/health-check");
    assert!(c.hooks[0].exit.is_some());
}

#[test]
fn a_kill_from_inside_the_container_is_not_an_x1_violation() {
    let mut s = Script::new(istio_legacy(30));
    s.at(0.0);
    let app = s.start("app", "/app");
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.at(1000.0).delete(30);
    s.at(1005.0);
    let prestop = s.hook("app", "/bin/kill");
    s.at(1010.0)
        .signal(By::Proc(&prestop), &app, 15, "default")
        .term(&proxy);
    s.at(1015.0)
        .killed(&app, 15)
        .exit(&prestop, 0)
        .exit(&proxy, 0);
    let audit = s.audit_with(&AuditConfig::default());
    let t = audit.termination.as_ref().unwrap();
    let stop = t.container("app").unwrap().stop_signal.as_ref().unwrap();
    assert_eq!(stop.sender, SenderClass::SameContainer);
    assert_eq!(outcome(&audit, RuleId::X1), Outcome::Held);
}

#[test]
fn a_pid1_seen_only_forking_is_still_pid1() {
    // The recording began after the app's exec: its PID 1 shows up only
    // as the parent of a fork.
    let mut s = Script::new(istio_legacy(30));
    s.at(0.0);
    let app = s.start("app", "/bin/sh");
    s.at(10.0);
    let child = s.child(&app, "/usr/bin/curl");
    s.at(20.0).exit(&child, 0);
    let records: Vec<Record> = s
        .records()
        .into_iter()
        .filter(|r| !matches!(&r.event, Event::ProcessExec(e) if e.process.pid == app.pid))
        .collect();
    let tl = PodTimeline::build(s.uid(), &records, 0);

    let c = tl.container("app").unwrap();
    assert_eq!(c.instances.len(), 1);
    assert_eq!((c.instances[0].pid, c.instances[0].exec), (app.pid, None));
    assert_eq!(
        tl.places[&(child.pid, child.start_ns)].role,
        ProcRole::Child
    );
}
