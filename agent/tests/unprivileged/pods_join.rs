//! The join without a kernel: records naming a container the API has not
//! reported yet wait, and are attributed once it is (a restart's new id), or
//! written with the pod only when they expire (the sandbox).

use std::time::{Duration, Instant};

use kube_api_server::{TestApiServer, containerd_id};
use lifecycle_agent::{
    attribution::{CgroupClass, CgroupDriver, ContainerCgroup, QosClass, Runtime},
    event::{Event, Process, ProcessExit, Record},
    join::Joiner,
    pods::{PendingLimits, PodStore, RawPod, StoreConfig},
};
use serde_json::json;

fn exit_in(pod_uid: &str, container_id: &str) -> Record {
    let cgroup = CgroupClass::Container(ContainerCgroup {
        runtime: Runtime::Containerd,
        container_id: container_id.to_string(),
        pod_uid: pod_uid.to_string(),
        qos: QosClass::BestEffort,
        driver: CgroupDriver::Systemd,
        sub_path: None,
    });
    Record {
        seq: 0,
        time: String::new(),
        time_ns: 0,
        boot_ns: Some(1),
        cpu: Some(0),
        event: Event::ProcessExit(ProcessExit {
            process: Process {
                pid: 42,
                cgroup: Some(cgroup),
                ..Process::default()
            },
            exit_code_raw: 0,
            exit_status: Some(0),
            killed_by_signal: None,
            container_exit_code: 0,
        }),
    }
}

fn container_of(record: &Record) -> Option<String> {
    match &record.event {
        Event::ProcessExit(e) => e
            .process
            .k8s
            .as_ref()
            .map(|k| k.container.clone().unwrap_or_default()),
        _ => None,
    }
}

fn bare(id: &str) -> String {
    id.trim_start_matches("containerd://").to_string()
}

#[tokio::test]
async fn restarted_container_waits_for_its_new_id_and_sandbox_expires_to_the_pod() {
    let server = TestApiServer::start().await.unwrap();
    let created = server
        .create_pod(json!({"metadata": {"name": "web", "namespace": "shop"},
                           "spec": {"nodeName": "n", "containers": [{"name": "app", "image": "shop/app:1"}]}}))
        .unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let (first, second) = (containerd_id("run-1"), containerd_id("run-2"));
    let store = PodStore::new(StoreConfig::default());
    let feed =
        |object: serde_json::Value| store.apply(&RawPod::from_value(object).decode().unwrap(), 0);
    feed(
        server
            .update_status("shop", "web", 100, |s| s.running("app", &first).map(|_| ()))
            .unwrap(),
    );

    let mut joiner = Joiner::new(
        store.clone(),
        PendingLimits {
            max_items: 16,
            max_age: Duration::from_secs(10),
        },
    );
    let now = Instant::now();
    // The first run is reported: written at once with its name.
    let out = joiner.join(exit_in(&uid, &bare(&first)), now);
    assert_eq!(
        out.iter().map(container_of).collect::<Vec<_>>(),
        [Some("app".to_string())]
    );
    // The restart's id is not reported yet, although every container has one.
    assert!(
        joiner.join(exit_in(&uid, &bare(&second)), now).is_empty(),
        "held"
    );
    // An id that will never be reported: the sandbox.
    assert!(
        joiner.join(exit_in(&uid, &"5".repeat(64)), now).is_empty(),
        "held"
    );
    assert!(
        joiner.release(now + Duration::from_secs(1)).is_empty(),
        "nothing resolved yet"
    );

    feed(
        server
            .update_status("shop", "web", 101, |s| {
                s.running("app", &second).map(|_| ())
            })
            .unwrap(),
    );
    let released = joiner.release(now + Duration::from_secs(2));
    assert_eq!(
        released.iter().map(container_of).collect::<Vec<_>>(),
        [Some("app".to_string())]
    );

    let expired = joiner.release(now + Duration::from_secs(11));
    assert_eq!(expired.len(), 1);
    match &expired[0].event {
        Event::ProcessExit(e) => {
            let k8s = e.process.k8s.as_ref().expect("pod-level attribution");
            assert_eq!((k8s.pod.as_str(), k8s.container.as_deref()), ("web", None));
        }
        other => panic!("{other:?}"),
    }
    let counters = joiner.counters();
    assert_eq!(
        (
            counters.held,
            counters.attributed_late,
            counters.expired_unattributed
        ),
        (2, 1, 1)
    );
    assert_eq!(counters.expired_likely_sandbox, 1);
}

#[tokio::test]
async fn pods_the_api_never_shows_stop_being_held_after_one_expiry() {
    let store = PodStore::new(StoreConfig::default());
    let mut joiner = Joiner::new(
        store,
        PendingLimits {
            max_items: 16,
            max_age: Duration::from_secs(10),
        },
    );
    let static_pod = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"; // a manifest hash, as static pods have
    let container = "7".repeat(64);
    let now = Instant::now();
    assert!(
        joiner.join(exit_in(static_pod, &container), now).is_empty(),
        "first events wait"
    );
    let expired = joiner.release(now + Duration::from_secs(10));
    assert_eq!(expired.len(), 1);
    assert!(container_of(&expired[0]).is_none(), "no Kubernetes names");
    // Later events of that pod are written at once.
    let later = joiner.join(
        exit_in(static_pod, &container),
        now + Duration::from_secs(11),
    );
    assert_eq!(later.len(), 1);
    let counters = joiner.counters();
    assert_eq!(
        (
            counters.held,
            counters.expired_unattributed,
            counters.unknown_pod_not_held
        ),
        (1, 1, 1)
    );
}
