//! The server through kube-rs with typed k8s-openapi pods: proves the objects
//! it serves deserialise like a real cluster's and that kube's list/watch
//! machinery (paging, resume, 410 handling) works against it.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube_api_server::{TestApiServer, containerd_id};
use serde_json::json;

async fn client_for(server: &TestApiServer) -> kube::Client {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn manifest(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": "default"},
           "spec": {"nodeName": "node-a",
                    "initContainers": [{"name": "proxy", "image": "istio/proxyv2:1.28.0",
                                        "restartPolicy": "Always"}],
                    "containers": [{"name": "app", "image": "nginx:1.27"}]}})
}

#[tokio::test]
async fn typed_pods_list_in_pages_and_parse() {
    let server = TestApiServer::start().await.unwrap();
    for i in 0..5 {
        server.create_pod(manifest(&format!("p{i}"))).unwrap();
    }
    server
        .update_status("default", "p0", 1_795_305_424, |s| {
            s.running("proxy", &containerd_id("x"))?
                .started("proxy", true)?;
            s.terminated("app", 143, "Error", Some(15))?;
            Ok(())
        })
        .unwrap();
    let api: Api<Pod> = Api::default_namespaced(client_for(&server).await);
    let page = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.metadata.continue_.is_some());
    let p0 = &page.items[0];
    let init = &p0
        .status
        .as_ref()
        .unwrap()
        .init_container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        init.container_id.as_deref(),
        Some(containerd_id("x").as_str())
    );
    let app = &p0
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let terminated = app.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((terminated.exit_code, terminated.signal), (143, Some(15)));
    assert_eq!(
        terminated.finished_at.as_ref().unwrap().0.as_second(),
        1_795_305_424
    );
}

#[tokio::test]
async fn kube_watcher_relists_after_410() {
    let server = TestApiServer::start().await.unwrap();
    server.create_pod(manifest("a")).unwrap();
    let api: Api<Pod> = Api::all(client_for(&server).await);
    let mut stream = watcher(api, watcher::Config::default().page_size(1)).boxed();
    let mut listed = 0;
    let mut saw_error = false;
    let mut armed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while listed < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no re-list within 20 s"
        );
        let Ok(item) = tokio::time::timeout(Duration::from_millis(100), stream.next()).await else {
            // The watch opens while the stream is polled; expire it once open.
            if armed && server.open_watches() > 0 {
                server.expire_watches();
                armed = false;
            }
            continue;
        };
        match item.unwrap() {
            Ok(watcher::Event::InitDone) => {
                listed += 1;
                armed = listed == 1;
            }
            Err(_) => saw_error = true,
            Ok(_) => {}
        }
    }
    assert!(saw_error, "the 410 surfaces as an error before the re-list");
    let lists = server.requests().iter().filter(|r| r.is_pod_list()).count();
    assert!(lists >= 2);
}
