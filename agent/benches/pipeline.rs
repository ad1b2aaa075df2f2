//! Userspace throughput: ring-buffer bytes -> decoded -> attributed and
//! timestamped records, and the same plus NDJSON serialisation. Prints
//! events per second on one core (run by `cargo xtask bench`).

use std::{hint::black_box, time::Instant};

use agent_common::{
    EventHeader, EventKind, ProcessExitEvent, SignalGenerateEvent, SocketEvent, SocketOp, TaskId,
};
use lifecycle_agent::{
    attribution::{CacheConfig, CgroupCache, CgroupDir, CgroupError, HierarchyWalker},
    clock::BootClock,
    kernel::decode::{decode, encode},
    pipeline::Pipeline,
};

const CONTAINERS: u64 = 200;
const EVENTS: usize = 1_000_000;

/// A node with `CONTAINERS` containers in 100 pods (systemd driver).
struct SyntheticNode;

impl HierarchyWalker for SyntheticNode {
    fn walk(&mut self) -> Result<Vec<CgroupDir>, CgroupError> {
        let mut dirs = vec![CgroupDir {
            id: 1,
            path: "/".into(),
        }];
        for c in 0..CONTAINERS {
            let pod = format!("{:08x}-0000-4000-8000-{:012x}", c / 2, c / 2);
            dirs.push(CgroupDir {
                id: 1000 + c,
                path: format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{:064x}.scope",
                    pod.replace('-', "_"),
                    c
                ),
            });
        }
        Ok(dirs)
    }
}

fn task(i: u64) -> TaskId {
    let mut comm = [0u8; 16];
    comm[..7].copy_from_slice(b"payment");
    TaskId {
        pid: 1000 + i as u32,
        tgid: 1000 + i as u32,
        start_boottime_ns: i * 7,
        cgroup_id: 1000 + i % CONTAINERS,
        comm,
    }
}

fn header(kind: EventKind, i: u64) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        cpu: (i % 2) as u32,
        boot_ns: 1_000_000_000 + i * 1000,
        task: task(i),
        uid: 1337,
        _pad: 0,
    }
}

/// A realistic mix: sockets dominate, then signals, then exits.
fn sample(i: u64) -> Vec<u8> {
    match i % 10 {
        0..=5 => encode(&SocketEvent {
            header: header(EventKind::Socket, i),
            skaddr: 0xffff_8881_0000_0000 + i,
            sock_cgroup_id: 1000 + i % CONTAINERS,
            op: SocketOp::ConnectEstablished as u32,
            oldstate: 2,
            newstate: 1,
            sk_err: 0,
            family: 2,
            sport: 40000,
            dport: 8080,
            owner_known: 1,
            saddr: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        }),
        6..=8 => encode(&SignalGenerateEvent {
            header: header(EventKind::SignalGenerate, i),
            target: task(i + 1),
            sig: 15,
            ..Default::default()
        }),
        _ => encode(&ProcessExitEvent {
            header: header(EventKind::ProcessExit, i),
            exit_code: 143,
            _pad: 0,
        }),
    }
}

fn main() {
    let inputs: Vec<Vec<u8>> = (0..EVENTS as u64).map(sample).collect();
    let mut cache = CgroupCache::new(CacheConfig::default(), SyntheticNode);
    cache.populate().expect("synthetic walk");
    let mut pipeline = Pipeline::new(cache, BootClock::new().expect("clocks"));

    let start = Instant::now();
    for bytes in &inputs {
        let record = decode(bytes).expect("decode");
        black_box(pipeline.handle(&record));
    }
    let attributed = start.elapsed();

    let mut out = Vec::with_capacity(512 << 20);
    let start = Instant::now();
    for bytes in &inputs {
        let record = decode(bytes).expect("decode");
        serde_json::to_writer(&mut out, &pipeline.handle(&record)).expect("serialize");
        out.push(b'\n');
    }
    let serialized = start.elapsed();

    let rate = |d: std::time::Duration| EVENTS as f64 / d.as_secs_f64();
    println!("userspace pipeline, {EVENTS} events, {CONTAINERS} containers, one thread:");
    println!(
        "  decode + attribute + timestamp: {:>10.0} events/s ({:.0} ns/event)",
        rate(attributed),
        attributed.as_nanos() as f64 / EVENTS as f64
    );
    println!(
        "  ... + NDJSON serialisation:     {:>10.0} events/s ({:.0} ns/event, {:.0} bytes/event)",
        rate(serialized),
        serialized.as_nanos() as f64 / EVENTS as f64,
        out.len() as f64 / EVENTS as f64
    );
    let unattributed = pipeline.cache().counters().unattributed;
    assert_eq!(unattributed, 0, "every synthetic cgroup resolves");
}
