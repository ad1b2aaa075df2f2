//! Holding kernel events until the API reports their container: late
//! attribution, and expiry of the sandbox (pause) container's events.

use std::time::{Duration, Instant};

use kube_api_server::{TestApiServer, containerd_id, hex_id};
use lifecycle_agent::pods::{PendingBuffer, PendingLimits, PodStore, Released, Resolution};
use lifecycle_testkit::pod_fixture;

use crate::support::pods::{T0, feed, uid_of};

#[tokio::test]
async fn pending_buffer_attributes_late_and_expires_the_sandbox() {
    let server = TestApiServer::start().await.unwrap();
    let store = PodStore::default();
    let (ns, name) = ("default", "nginx-7c5b8d9f6a-w1x2y");
    let mut pending = PendingBuffer::new(PendingLimits {
        max_items: 16,
        max_age: Duration::from_secs(5),
    });
    let t0 = Instant::now();
    // Kernel events arrive before the API has even shown the pod.
    let created = server.create_pod(pod_fixture("plain.json")).unwrap();
    let uid = uid_of(&created);
    pending.hold(&store, &uid, &hex_id("sandbox"), "sandbox exec", t0);
    pending.hold(&store, &uid, &hex_id("nginx"), "nginx exec", t0);
    assert!(
        pending
            .release(&store, t0 + Duration::from_secs(1))
            .is_empty()
    );
    feed(&store, created, 1);
    assert!(
        pending
            .release(&store, t0 + Duration::from_secs(2))
            .is_empty()
    );
    let running = server
        .update_status(ns, name, T0, |s| {
            s.running("nginx", &containerd_id("nginx"))?;
            Ok(())
        })
        .unwrap();
    feed(&store, running, 2);
    let out = pending.release(&store, t0 + Duration::from_secs(3));
    assert!(
        matches!(&out[..], [Released::Attributed { item: "nginx exec", container }] if container.container == "nginx")
    );
    let out = pending.release(&store, t0 + Duration::from_secs(5));
    assert!(matches!(
        &out[..],
        [Released::Expired {
            item: "sandbox exec",
            last: Resolution::UnlistedContainer {
                likely_sandbox: true,
                ..
            }
        }]
    ));
    let counters = pending.counters();
    assert_eq!(
        (
            counters.attributed_late,
            counters.expired_unattributed,
            counters.expired_likely_sandbox
        ),
        (1, 1, 1)
    );
    assert!(pending.is_empty());
}
