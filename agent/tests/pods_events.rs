//! Pod events as NDJSON lines for the recording: stable field names and a
//! lossless round trip.

use std::path::PathBuf;

use kube_api_server::{TestApiServer, containerd_id};
use lifecycle_agent::pods::{PodEvent, PodStore, RawPod};
use serde_json::Value;

const T0: i64 = 1_795_305_400;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pods")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn feed(store: &PodStore, object: Value, observed_ns: i64) -> Vec<PodEvent> {
    let pod = RawPod::from_value(object)
        .decode()
        .expect("driver objects decode");
    store.apply(&pod, observed_ns)
}

#[tokio::test]
async fn events_serialise_to_ndjson_lines() {
    let server = TestApiServer::start().await.unwrap();
    let store = PodStore::default();
    let mut events = feed(
        &store,
        server
            .create_pod_at(fixture("linkerd-legacy.json"), T0)
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
