use super::*;
use crate::event::{Process, ProcessExit, SignalDeliver, SignalGenerate};

fn thread(pid: u32, tid: u32) -> Process {
    Process {
        pid,
        tid,
        start_ns: 7_000,
        comm: "orders".into(),
        ..Process::default()
    }
}

fn record(boot: u64, event: Event) -> Record {
    Record {
        seq: 0,
        time: String::new(),
        time_ns: boot as i64,
        boot_ns: Some(boot),
        cpu: Some(0),
        event,
    }
}

fn generate(boot: u64, sender: Process, target: Process, signal: i32, group: bool) -> Record {
    record(
        boot,
        Event::SignalGenerate(SignalGenerate {
            sender,
            sender_parent_pid: 1,
            sender_parent_comm: "containerd-shim".into(),
            target,
            signal,
            signal_name: crate::event::names::signal_name(signal),
            code: -6,
            code_name: "SI_TKILL".into(),
            errno: 0,
            group,
            result: "delivered".into(),
            target_action: Some("handler".into()),
            target_ns_init: Some(false),
        }),
    )
}

fn deliver(boot: u64, process: Process, signal: i32) -> Record {
    record(
        boot,
        Event::SignalDeliver(SignalDeliver {
            process,
            signal,
            signal_name: crate::event::names::signal_name(signal),
            code: -6,
            handler: "handler".into(),
            sa_flags: 0,
        }),
    )
}

#[test]
fn a_go_runtimes_preemption_storm_becomes_one_summary() {
    let mut h = Housekeeping::default();
    for i in 0..500 {
        let boot = 1_000 + i * 2_000_000;
        assert!(h.absorb(&generate(boot, thread(40, 41), thread(40, 42), 23, false)));
        assert!(h.absorb(&deliver(boot + 1_000, thread(40, 42), 23)));
    }
    let summaries = h.take_summaries();
    assert_eq!(summaries.len(), 1);
    let Event::SignalSummary(s) = &summaries[0].event else {
        panic!("{:?}", summaries[0]);
    };
    assert_eq!(
        (
            s.process.pid,
            s.signal_name.as_str(),
            s.generated,
            s.delivered
        ),
        (40, "SIGURG", 500, 500)
    );
    assert_eq!(
        (s.first_boot_ns, s.last_boot_ns),
        (1_000, 1_000 + 499 * 2_000_000)
    );
    assert_eq!(summaries[0].boot_ns, Some(1_000 + 499 * 2_000_000));
    assert!(
        h.take_summaries().is_empty(),
        "each summary is written once"
    );
    assert_eq!(h.totals().get("SIGURG"), Some(&500));
}

#[test]
fn lifecycle_signals_and_signals_between_processes_pass() {
    let mut h = Housekeeping::default();
    // runc's SIGTERM to the app, and a SIGURG from another process.
    assert!(!h.absorb(&generate(1, thread(9, 9), thread(40, 40), 15, true)));
    assert!(!h.absorb(&generate(2, thread(9, 9), thread(40, 42), 23, false)));
    assert!(!h.absorb(&deliver(3, thread(40, 42), 23)));
    // A thread's SIGTERM to its own process, and SIGURG to the whole group.
    assert!(!h.absorb(&generate(4, thread(40, 41), thread(40, 40), 15, false)));
    assert!(!h.absorb(&generate(5, thread(40, 41), thread(40, 40), 23, true)));
    // The same pid, but a new process (pid reused): not the sender's own.
    let mut reused = thread(40, 42);
    reused.start_ns = 9_000;
    assert!(!h.absorb(&generate(6, thread(40, 41), reused, 23, false)));
    assert!(h.take_summaries().is_empty());
    assert!(h.totals().is_empty());
}

#[test]
fn an_exit_forgets_the_deliveries_it_will_never_make() {
    let mut h = Housekeeping::default();
    assert!(h.absorb(&generate(1, thread(40, 41), thread(40, 42), 23, false)));
    assert!(!h.absorb(&record(
        2,
        Event::ProcessExit(ProcessExit {
            process: thread(40, 40),
            exit_code_raw: 9,
            exit_status: None,
            killed_by_signal: Some(9),
            container_exit_code: 137,
        })
    )));
    assert!(h.undelivered.is_empty());
    // A later process's own SIGURG delivery is not taken for the old one's.
    assert!(!h.absorb(&deliver(3, thread(40, 42), 23)));
}
