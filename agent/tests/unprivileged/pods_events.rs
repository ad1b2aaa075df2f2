//! Pod events as NDJSON lines for the recording: stable field names and a
//! lossless round trip.

use kube_api_server::{TestApiServer, containerd_id};
use lifecycle_agent::pods::{PodEvent, PodStore};
use lifecycle_testkit::pod_fixture;
use serde_json::Value;

use crate::support::pods::{T0, feed};

#[tokio::test]
async fn events_serialise_to_ndjson_lines() {
    let server = TestApiServer::start().await.unwrap();
    let store = PodStore::default();
    let mut events = feed(
        &store,
        server
            .create_pod_at(pod_fixture("linkerd-legacy.json"), T0)
            .unwrap(),
        1,
    );
    let object = server
        .update_status("emojivoto", "web-84c6d9f7b5-z9x8c", T0 + 3, |s| {
            s.running("linkerd-proxy", &containerd_id("lp"))?;
            Ok(())
        })
        .unwrap();
    events.extend(feed(&store, object, 2));
    let mut ndjson = Vec::new();
    for event in &events {
        serde_json::to_writer(&mut ndjson, event).unwrap();
        ndjson.push(b'\n');
    }
    let lines: Vec<Value> = ndjson
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), events.len());
    let added = &lines[0];
    assert_eq!(added["change"]["kind"], "added");
    assert_eq!(
        added["change"]["spec"]["mesh"]["mode"]["mode"],
        "linkerd_legacy"
    );
    assert_eq!(
        added["change"]["spec"]["mesh"]["mode"]["wait_before_exit_s"],
        20
    );
    assert_eq!(
        added["change"]["spec"]["containers"][1]["kind"],
        "legacy_sidecar"
    );
    let running = lines
        .iter()
        .find(|l| l["change"]["kind"] == "container_transition")
        .unwrap();
    assert_eq!(running["change"]["container_role"], "mesh_proxy");
    assert_eq!(running["change"]["transition"]["type"], "running");
    assert_eq!(
        running["change"]["transition"]["container_id"],
        containerd_id("lp")
    );
    assert_eq!(running["api_time_s"], T0 + 3);
    assert_eq!(running["api_time_source"], "started_at");
    for (line, event) in lines.iter().zip(&events) {
        assert_eq!(
            &serde_json::from_value::<PodEvent>(line.clone()).unwrap(),
            event
        );
    }
}
