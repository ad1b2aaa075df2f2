//! The pod model without the network: API objects produced by the test
//! server's kubelet-shaped driver are fed straight into the store, to check
//! transitions, timestamps, resolution, deletion and eviction.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kube_api_server::{TestApiServer, containerd_id, hex_id};
use lifecycle_agent::pods::entry::HistoryLimits;
use lifecycle_agent::pods::status::ContainerChange;
use lifecycle_agent::pods::time::ApiTimeSource;
use lifecycle_agent::pods::{ContainerKind, MeshMode, SidecarRole};
use lifecycle_agent::pods::{
    DeletedReason, PodChange, PodEvent, PodStore, RawPod, Resolution, StoreConfig,
};
use lifecycle_testkit::pod_fixture;

use crate::support::pods::{T0, feed, uid_of};

/// One kubelet status write, as a closure over the driver's editor.
type KubeletStep<'a> =
    dyn Fn(&mut kube_api_server::StatusEditor<'_>) -> Result<(), kube_api_server::DriverError> + 'a;

/// Compact description of container transitions: "container:type".
fn transitions(events: &[PodEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.change {
            PodChange::ContainerTransition {
                container,
                transition,
                ..
            } => {
                let kind = serde_json::to_value(transition).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                Some(format!("{container}:{kind}"))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn native_sidecar_pod_lifecycle_and_resolution() {
    let server = TestApiServer::start().await.unwrap();
    let store = PodStore::default();
    let created = server
        .create_pod_at(pod_fixture("istio-native.json"), T0)
        .unwrap();
    let uid = uid_of(&created);
    let events = feed(&store, created, 1);
    assert!(matches!(events[0].change, PodChange::Added { .. }));
    assert_eq!(events[0].at.api_time_s, Some(T0));
    assert_eq!(
        events[0].at.api_time_source,
        Some(ApiTimeSource::CreationTimestamp)
    );

    let sandbox = hex_id("ratings/sandbox");
    assert_eq!(
        store.resolve(&uid, &sandbox),
        Resolution::UnlistedContainer {
            pod: store.get(&uid).unwrap().identity,
            mesh: MeshMode::IstioNative,
            likely_sandbox: false,
            pod_deleted: false,
        }
    );

    let (init, proxy, app) = (
        containerd_id("init"),
        containerd_id("proxy"),
        containerd_id("app"),
    );
    let steps: Vec<(i64, Box<KubeletStep<'_>>)> = vec![
        (
            T0 + 1,
            Box::new(|s| {
                s.pod_started("10.0.0.1", "10.1.0.9")
                    .condition("PodReadyToStartContainers", true);
                s.running("istio-init", &init)?;
                Ok(())
            }),
        ),
        (
            T0 + 2,
            Box::new(|s| {
                s.terminated("istio-init", 0, "Completed", None)?;
                s.running("istio-proxy", &proxy)?;
                Ok(())
            }),
        ),
        (
            T0 + 4,
            Box::new(|s| {
                s.started("istio-proxy", true)?.ready("istio-proxy", true)?;
                s.condition("Initialized", true);
                Ok(())
            }),
        ),
        (
            T0 + 5,
            Box::new(|s| {
                s.running("ratings", &app)?
                    .started("ratings", true)?
                    .ready("ratings", true)?;
                s.phase("Running").condition("Ready", true);
                Ok(())
            }),
        ),
    ];
    let mut all = Vec::new();
    for (i, (at, step)) in steps.into_iter().enumerate() {
        let object = server
            .update_status("bookinfo", "ratings-v1-7d8f9b6c5-m4n7p", at, |s| step(s))
            .unwrap();
        all.extend(feed(&store, object, 10 + i as i64));
    }
    assert_eq!(
        transitions(&all),
        vec![
            "istio-init:running",
            "istio-init:terminated",
            "istio-proxy:running",
            "istio-proxy:started",
            "istio-proxy:ready",
            "ratings:running",
            "ratings:started",
            "ratings:ready",
        ]
    );
    let terminated = all
        .iter()
        .find(|e| {
            matches!(
                &e.change,
                PodChange::ContainerTransition {
                    transition: ContainerChange::Terminated { .. },
                    ..
                }
            )
        })
        .unwrap();
    assert_eq!(terminated.at.api_time_s, Some(T0 + 2));
    assert_eq!(
        terminated.at.api_time_source,
        Some(ApiTimeSource::FinishedAt)
    );
    let proxy_started = all.iter().find(|e| matches!(&e.change,
        PodChange::ContainerTransition { container, transition: ContainerChange::Started { started: true }, .. }
            if container == "istio-proxy")).unwrap();
    assert_eq!(
        proxy_started.at.api_time_s,
        Some(T0 + 4),
        "status write time"
    );
    assert_eq!(proxy_started.at.observed_ns, 12);
    let conditions: Vec<_> = all
        .iter()
        .filter_map(|e| match &e.change {
            PodChange::ConditionTransition { condition } => {
                Some((condition.kind.to_string(), e.at.api_time_s))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        conditions,
        vec![
            ("PodReadyToStartContainers".to_owned(), Some(T0 + 1)),
            ("Initialized".to_owned(), Some(T0 + 4)),
            ("Ready".to_owned(), Some(T0 + 5)),
        ]
    );

    // The join: cgroup ids (bare hex) and the systemd-style pod uid.
    let cgroup_uid = uid.replace('-', "_");
    let resolved = store.resolve(&cgroup_uid, &hex_id("proxy"));
    let proxy_c = resolved.container().expect("proxy resolves");
    assert_eq!(
        (
            proxy_c.container.as_str(),
            proxy_c.kind,
            proxy_c.role,
            proxy_c.mesh
        ),
        (
            "istio-proxy",
            ContainerKind::NativeSidecar,
            SidecarRole::MeshProxy,
            MeshMode::IstioNative
        )
    );
    assert_eq!(proxy_c.pod.namespace, "bookinfo");
    let scope = format!("cri-containerd-{}.scope", hex_id("app"));
    assert_eq!(
        store.resolve(&uid, &scope).container().unwrap().kind,
        ContainerKind::App
    );
    assert_eq!(
        store
            .resolve(&uid, &containerd_id("init"))
            .container()
            .unwrap()
            .kind,
        ContainerKind::Init
    );
    // Every container reported an id now: an unknown one is the sandbox.
    assert!(matches!(
        store.resolve(&uid, &sandbox),
        Resolution::UnlistedContainer {
            likely_sandbox: true,
            ..
        }
    ));
    assert_eq!(
        store.resolve("0000-unknown", &sandbox),
        Resolution::PodUnknown
    );
}

#[tokio::test]
async fn restart_missed_between_updates_is_recovered() {
    let server = TestApiServer::start().await.unwrap();
    let store = PodStore::default();
    let created = server.create_pod_at(pod_fixture("plain.json"), T0).unwrap();
    let uid = uid_of(&created);
    feed(&store, created, 1);
    let (first, second) = (containerd_id("nginx-1"), containerd_id("nginx-2"));
    let ns = "default";
    let name = "nginx-7c5b8d9f6a-w1x2y";
    feed(
        &store,
        server
            .update_status(ns, name, T0 + 1, |s| {
                s.running("nginx", &first)?;
                Ok(())
            })
            .unwrap(),
        2,
    );
    // The kubelet reported the crash, but the agent only sees the next update.
    server
        .update_status(ns, name, T0 + 9, |s| {
            s.terminated("nginx", 137, "OOMKilled", None)?;
            Ok(())
        })
        .unwrap();
    let after = server
        .update_status(ns, name, T0 + 10, |s| {
            s.running("nginx", &second)?;
            Ok(())
        })
        .unwrap();
    let events = feed(&store, after, 3);
    assert_eq!(
        transitions(&events),
        vec!["nginx:terminated", "nginx:running"]
    );
    match &events[0].change {
        PodChange::ContainerTransition {
            transition:
                ContainerChange::Terminated {
                    facts,
                    restart_count,
                },
            ..
        } => {
            assert_eq!(
                (facts.exit_code, facts.reason.as_deref(), *restart_count),
                (137, Some("OOMKilled"), 0)
            );
            assert_eq!(facts.container_id.as_ref().unwrap().to_string(), first);
        }
        other => panic!("expected the recovered termination, got {other:?}"),
    }
    assert_eq!(events[0].at.api_time_s, Some(T0 + 9));
    // Both runs resolve to the same container.
    for id in [&first, &second] {
        assert_eq!(
            store.resolve(&uid, id).container().unwrap().container,
            "nginx"
        );
    }
    let record = store.get(&uid).unwrap();
    assert_eq!(record.containers[0].ids.len(), 2);
}

#[tokio::test]
async fn graceful_deletion_then_ttl_eviction() {
    let server = TestApiServer::start().await.unwrap();
    let config = StoreConfig {
        deleted_ttl: Duration::from_secs(60),
        ..StoreConfig::default()
    };
    let store = PodStore::new(config);
    let (ns, name) = ("reports", "nightly-report-29384720-7kq2x");
    let created = server
        .create_pod_at(pod_fixture("job-cloud-sql-proxy.json"), T0)
        .unwrap();
    let uid = uid_of(&created);
    feed(&store, created, 1);
    let id = containerd_id("report");
    feed(
        &store,
        server
            .update_status(ns, name, T0 + 2, |s| {
                s.running("report", &id)?;
                Ok(())
            })
            .unwrap(),
        2,
    );

    let events = feed(
        &store,
        server.request_deletion(ns, name, 30, T0 + 20).unwrap(),
        3,
    );
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].change,
        PodChange::DeletionRequested {
            deletion_timestamp_s: T0 + 50,
            grace_period_s: Some(30)
        }
    );
    assert_eq!(
        (events[0].at.api_time_s, events[0].at.api_time_source),
        (Some(T0 + 20), Some(ApiTimeSource::DeletionRequest))
    );
    // A shorter second request moves the deadline.
    let events = feed(
        &store,
        server.request_deletion(ns, name, 5, T0 + 22).unwrap(),
        4,
    );
    assert_eq!(
        events[0].change,
        PodChange::DeletionRequested {
            deletion_timestamp_s: T0 + 27,
            grace_period_s: Some(5)
        }
    );

    let last = server
        .update_status(ns, name, T0 + 25, |s| {
            s.terminated("report", 143, "Error", Some(15))?;
            Ok(())
        })
        .unwrap();
    server.delete_pod(ns, name).unwrap();
    let last = RawPod::from_value(last).decode().unwrap();
    let now = Instant::now();
    let events = store.apply_deleted(&uid, Some(&last), DeletedReason::WatchDeleted, 5, now);
    assert_eq!(transitions(&events), vec!["report:terminated"]);
    assert_eq!(
        events.last().unwrap().change,
        PodChange::Deleted {
            reason: DeletedReason::WatchDeleted
        }
    );
    // Deleted pods stay resolvable until their TTL…
    assert!(store.resolve(&uid, &id).container().unwrap().pod_deleted);
    assert_eq!(store.evict_expired(now + Duration::from_secs(59)), 0);
    assert_eq!(store.stats().deleted_pods, 1);
    assert_eq!(store.evict_expired(now + Duration::from_secs(60)), 1);
    assert_eq!(store.resolve(&uid, &id), Resolution::PodUnknown);
    assert_eq!(store.stats().deleted_expired, 1);
    assert!(store.get(&uid).is_none());
}

#[tokio::test]
async fn deleted_pods_beyond_capacity_are_evicted_oldest_first() {
    let server = TestApiServer::start().await.unwrap();
    let store = PodStore::new(StoreConfig {
        max_deleted: 2,
        ..StoreConfig::default()
    });
    let mut uids = Vec::new();
    for i in 0..3 {
        let mut manifest = pod_fixture("plain.json");
        manifest["metadata"]["name"] = format!("nginx-{i}").into();
        let created = server.create_pod(manifest).unwrap();
        uids.push(uid_of(&created));
        feed(&store, created, i);
    }
    for uid in &uids {
        store.apply_deleted(uid, None, DeletedReason::WatchDeleted, 9, Instant::now());
    }
    let stats = store.stats();
    assert_eq!(
        (stats.deleted_pods, stats.deleted_evicted_over_capacity),
        (2, 1)
    );
    assert!(store.get(&uids[0]).is_none());
    assert!(store.get(&uids[2]).unwrap().is_deleted());
}

#[tokio::test]
async fn relist_reports_pods_that_vanished() {
    let server = TestApiServer::start().await.unwrap();
    let store = PodStore::default();
    let a = server.create_pod(pod_fixture("plain.json")).unwrap();
    let b = server.create_pod(pod_fixture("istio-legacy.json")).unwrap();
    feed(&store, a.clone(), 1);
    feed(&store, b.clone(), 1);
    let seen: HashSet<String> = [uid_of(&a)].into_iter().collect();
    let events = store.finish_relist(&seen, 7, Instant::now());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].pod_uid, uid_of(&b));
    assert_eq!(
        events[0].change,
        PodChange::Deleted {
            reason: DeletedReason::MissingFromRelist
        }
    );
    assert_eq!(store.stats().deleted_by_relist, 1);
    assert_eq!(store.live_uids(), vec![uid_of(&a)]);
}

#[tokio::test]
async fn container_history_is_bounded() {
    let server = TestApiServer::start().await.unwrap();
    let limits = HistoryLimits {
        per_container: 4,
        per_pod: 4,
    };
    let store = PodStore::new(StoreConfig {
        history: limits,
        ..StoreConfig::default()
    });
    let (ns, name) = ("default", "nginx-7c5b8d9f6a-w1x2y");
    let created = server.create_pod(pod_fixture("plain.json")).unwrap();
    let uid = uid_of(&created);
    feed(&store, created, 0);
    feed(
        &store,
        server
            .update_status(ns, name, T0, |s| {
                s.running("nginx", &containerd_id("n"))?;
                Ok(())
            })
            .unwrap(),
        1,
    );
    for i in 0..10 {
        let object = server
            .update_status(ns, name, T0 + i, |s| {
                s.ready("nginx", i % 2 == 0)?;
                Ok(())
            })
            .unwrap();
        feed(&store, object, 2 + i);
    }
    let record = store.get(&uid).unwrap();
    assert_eq!(record.containers[0].history.len(), 4);
    assert_eq!(record.containers[0].history_dropped, 7);
    assert!(matches!(
        record.containers[0].history[3].change,
        ContainerChange::Ready { ready: false }
    ));
}
