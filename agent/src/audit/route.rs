//! Which pods a record concerns.

use crate::{
    audit::timeline::locate::pod_uid_of,
    event::{Event, Process, Record},
};

fn of_process(p: &Process) -> Option<&str> {
    pod_uid_of(p.cgroup.as_ref(), p.k8s.as_ref())
}

/// The pod uids a record is about (at most two: a signal or a connection
/// between two pods), without repeats.
pub fn pod_uids(record: &Record) -> Vec<&str> {
    let mut uids: Vec<&str> = match &record.event {
        Event::Pod(p) => vec![p.pod_uid.as_str()],
        Event::SignalGenerate(e) => [of_process(&e.sender), of_process(&e.target)]
            .into_iter()
            .flatten()
            .collect(),
        Event::SignalDeliver(e) => of_process(&e.process).into_iter().collect(),
        Event::ProcessExec(e) => of_process(&e.process).into_iter().collect(),
        Event::ProcessFork(e) => [of_process(&e.parent), of_process(&e.child)]
            .into_iter()
            .flatten()
            .collect(),
        Event::ProcessExit(e) => of_process(&e.process).into_iter().collect(),
        Event::Socket(e) => [
            pod_uid_of(e.socket_cgroup.as_ref(), e.socket_k8s.as_ref()),
            e.owner.as_ref().and_then(of_process),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Event::Cgroup(_) | Event::Stats(_) => Vec::new(),
    };
    uids.dedup();
    uids
}
