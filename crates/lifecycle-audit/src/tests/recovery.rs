//! An agent restarted in the middle of a termination: the processes it
//! found in `/proc` have coarse start times, the probes' later records the
//! exact ones; the engine must see one process, and say the audit is partial.

use lifecycle_recording::event::{Event, Process, ProcessExec, Record, Recovered};

use super::istio_legacy;
use crate::{
    AuditConfig, AuditEngine, Completion, audit_records,
    termination::StateAtStart,
    testing::{Script, deleted_legacy_pod},
};

const TICK_NS: u64 = 10_000_000;

/// App and proxy start at 3 ms (not on a tick), delete at 1 s, exits at
/// 1.02 s, object gone at 2 s.
fn terminating_pod() -> Script {
    deleted_legacy_pod("u-r", 3.0)
}

/// What a restarted agent records: at `restart_ns`, the pod (re-listed)
/// and its processes as `/proc` shows them; then what the probes see.
fn seen_after_restart(restart_ns: i64) -> Vec<Record> {
    let all = terminating_pod().records();
    let mut out = Vec::new();
    for record in all {
        match &record.event {
            // The re-list reports the pod as it is now.
            Event::Pod(_) if record.time_ns < restart_ns => {
                let mut r = record.clone();
                r.time_ns = restart_ns;
                out.push(r);
            }
            Event::ProcessExec(e) if record.time_ns < restart_ns => {
                let mut r = record.clone();
                r.time_ns = restart_ns;
                if let Event::ProcessExec(found) = &mut r.event {
                    found.process.start_ns = e.process.start_ns / TICK_NS * TICK_NS;
                    found.recovered = Some(Recovered {
                        source: "proc".into(),
                        start_resolution_ns: TICK_NS,
                    });
                }
                out.push(r);
            }
            _ if record.time_ns < restart_ns => {}
            _ => out.push(record),
        }
    }
    out
}

#[test]
fn a_restart_mid_termination_yields_one_partial_audit_with_whole_runs() {
    let records = seen_after_restart(crate::testing::BASE_NS + 1_005_000_000);
    let coarse: Vec<u64> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::ProcessExec(e) if e.recovered.is_some() => Some(e.process.start_ns),
            _ => None,
        })
        .collect();
    assert_eq!(coarse.len(), 2, "both PID 1s recovered");
    assert!(coarse.iter().all(|s| s % TICK_NS == 0));
    let audits = audit_records(records, &AuditConfig::default());
    assert_eq!(audits.len(), 1);
    let audit = &audits[0];
    assert!(audit.partial, "recovered processes make the audit partial");
    assert_eq!(audit.completed_by, Completion::Terminated);
    assert!(audit.termination.is_some());
    for lane in &audit.lanes {
        assert_eq!(
            lane.runs.len(),
            1,
            "{}: the recovered process and the probes' exit are one run",
            lane.container
        );
        let run = &lane.runs[0];
        assert!(run.end.is_some(), "{}: its exit was seen", lane.container);
        assert_eq!(run.exit_code, Some(0));
    }
}

#[test]
fn an_audit_without_recovered_processes_is_whole() {
    let audits = audit_records(terminating_pod().records(), &AuditConfig::default());
    assert!(!audits[0].partial);
}

#[test]
fn a_pid_reused_outside_the_tick_is_another_process() {
    // Same pid, exact start one tick later: not the recovered process.
    let restart = crate::testing::BASE_NS + 1_005_000_000;
    let mut records = seen_after_restart(restart);
    for r in records.iter_mut() {
        if let Event::ProcessExit(e) = &mut r.event {
            e.process.start_ns += TICK_NS;
        }
    }
    let audits = audit_records(records, &AuditConfig::default());
    let app = audits[0]
        .lanes
        .iter()
        .find(|l| l.container == "app")
        .expect("app lane");
    assert!(
        app.runs.iter().any(|r| r.end.is_none()),
        "the recovered process was not seen to exit: {:?}",
        app.runs
    );
}

#[test]
fn a_quiet_stream_still_completes_audits_on_the_timer() {
    let mut engine = AuditEngine::new(AuditConfig::default());
    let records = terminating_pod().records();
    let last = records.last().map(|r| r.time_ns).unwrap_or_default();
    for r in records {
        assert!(engine.push(r).is_empty());
    }
    assert!(engine.advance_to(last + 4_000_000_000).is_empty());
    let done = engine.advance_to(last + 5_000_000_001);
    assert_eq!(done.len(), 1, "deleted + 5 s settle, no record needed");
    assert!(engine.advance_to(last).is_empty(), "time does not go back");
}

#[test]
fn compaction_drops_old_sockets_not_the_termination() {
    let config = AuditConfig {
        max_records_per_pod: 12,
        compact_sockets: true,
        ..AuditConfig::default()
    };
    let mut s = Script::with_uid(istio_legacy(30), "u-c");
    s.at(3.0);
    let app = s.start("app", "/app");
    for i in 0..20 {
        s.at(10.0 + f64::from(i)).refused(&app, ("10.0.0.9", 9000));
    }
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app);
    s.at(1020.0).exit(&app, 0);
    s.at(2000.0).deleted();
    let audits = audit_records(s.records(), &config);
    let audit = &audits[0];
    assert!(audit.dropped_records > 0);
    assert!(audit.records <= 12);
    let lane = &audit.lanes[0];
    assert!(
        lane.runs[0].end.is_some(),
        "the exit survived compaction: {audit:#?}"
    );
}

/// A record as `run/recover.rs` writes it for a process `/proc` shows at
/// `now_ns`: its comm then, its executable, its start rounded to a tick.
fn from_proc(now_ns: i64, process: &Process, comm: &str, exe: &str) -> Record {
    let mut process = process.clone();
    process.comm = comm.into();
    process.start_ns = process.start_ns / TICK_NS * TICK_NS;
    Record {
        seq: 0,
        time: lifecycle_recording::time::format_rfc3339_nanos(i128::from(now_ns)),
        time_ns: now_ns,
        boot_ns: None,
        cpu: None,
        event: Event::ProcessExec(ProcessExec {
            process,
            parent_pid: 1,
            filename: exe.into(),
            filename_truncated: false,
            recovered: Some(Recovered {
                source: "proc".into(),
                start_resolution_ns: TICK_NS,
            }),
        }),
    }
}

#[test]
fn runc_s_bootstrap_found_in_proc_is_not_the_container() {
    // The agent comes back 2.5 ms into runc's start of the app: /proc
    // shows the proxy's PID 1 and all three runc stages in the app's
    // cgroup; [2:INIT] execs the entrypoint 35 ms later.
    let mut s = Script::with_uid(istio_legacy(30), "u-runc");
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.at(100.0);
    let init = s.runc_create("app");
    s.at(139.0);
    let app = s.runc_init_execs(&init, "/app");
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&proxy);
    s.at(1020.0).exit(&app, 0).exit(&proxy, 0);
    s.at(2000.0).deleted();

    let restart = crate::testing::BASE_NS + 102_500_000;
    let all = s.records();
    let bootstrap = |comm: &str| {
        all.iter()
            .find_map(|r| match &r.event {
                Event::ProcessExit(e) if e.process.comm == comm => Some(e.process.clone()),
                _ => None,
            })
            .expect("a runc stage")
    };
    let mut records = vec![
        from_proc(restart, proxy.process(), "pilot-agent", "/pilot-agent"),
        from_proc(
            restart,
            &bootstrap("runc:[0:PARENT]"),
            "runc:[0:PARENT]",
            "/usr/bin/runc",
        ),
        from_proc(
            restart,
            &bootstrap("runc:[1:CHILD]"),
            "runc:[1:CHILD]",
            "/usr/bin/runc",
        ),
        from_proc(restart, init.process(), "runc:[2:INIT]", "/usr/bin/runc"),
    ];
    for r in all {
        match &r.event {
            Event::Pod(_) if r.time_ns < restart => records.push(Record {
                time_ns: restart,
                ..r
            }),
            _ if r.time_ns < restart => {}
            _ => records.push(r),
        }
    }
    let audits = audit_records(records, &AuditConfig::default());
    let audit = &audits[0];
    assert!(audit.partial);
    let lane = audit.lanes.iter().find(|l| l.container == "app").unwrap();
    assert_eq!(lane.runs.len(), 1, "{:#?}", lane.runs);
    let run = &lane.runs[0];
    assert_eq!(run.pid, init.pid, "[2:INIT] is PID 1 once it exec'd");
    assert_eq!(
        run.start.map(|a| a.ns),
        Some(crate::testing::BASE_NS + 139_000_000),
        "the run starts at the entrypoint's exec"
    );
    assert!(run.end.is_some());
    let t = audit.termination.as_ref().unwrap();
    let app_t = t.container("app").unwrap();
    assert_eq!(app_t.state_at_start, StateAtStart::Running);
    assert!(app_t.stop_signal.is_some(), "the SIGTERM went to PID 1");
    assert_eq!(app_t.exit.map(|x| x.code), Some(0));
}
