//! Which pods a record concerns.

use lifecycle_recording::event::{Event, Process, Record};

use crate::timeline::locate::pod_uid_of;

fn of_process(p: &Process) -> Option<&str> {
    pod_uid_of(p.cgroup.as_ref(), p.k8s.as_ref())
}

/// The pod uids a record is about (at most two: a signal or a connection
/// between two pods), without repeats.
pub fn pod_uids(record: &Record) -> Vec<&str> {
    let mut uids: Vec<&str> = match &record.event {
        Event::Pod(p) => vec![p.pod_uid.as_str()],
        Event::Socket(e) => [
            pod_uid_of(e.socket_cgroup.as_ref(), e.socket_k8s.as_ref()),
            e.owner.as_ref().and_then(of_process),
        ]
        .into_iter()
        .flatten()
        .collect(),
        _ => record
            .processes()
            .into_iter()
            .filter_map(of_process)
            .collect(),
    };
    uids.dedup();
    uids
}
