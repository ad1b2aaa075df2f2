//! The pod network: the pod namespace wired to the cluster namespace, the
//! mesh capture rules and a redirected connection.

use std::time::Duration;

use node_sim::net::netns::tool;

use crate::{Live, WAIT, events, scenario, serial};

const MESHED: &str = r#"
name: meshed
description: legacy Istio pod calling a peer
peers:
  backend: 10.96.0.10:80
  db: 10.96.0.20:5432
pods:
  - manifest:
      metadata:
        name: meshed-1
        namespace: default
        annotations: {sidecar.istio.io/status: "{}"}
      spec:
        terminationGracePeriodSeconds: 10
        initContainers:
          - {name: istio-init, image: docker.io/istio/proxyv2:1.28.0, args: [istio-iptables, -p, "15001", -z, "15006", -u, "1337", -o, "5432"]}
        containers:
          - name: istio-proxy
            image: docker.io/istio/proxyv2:1.28.0
            lifecycle: {postStart: {exec: {command: [pilot-agent, wait]}}}
            securityContext: {runAsUser: 1337, runAsGroup: 1337}
          - {name: app, image: app:1}
    containers:
      istio-init: {role: mesh-init}
      istio-proxy: {role: mesh-proxy}
      app: {role: app-client, call: [backend, db], interval: 1}
"#;

fn peer_events(live: &Live) -> Vec<serde_json::Value> {
    std::fs::read_to_string(live.node.workdir().join("peers.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until `probe` returns Some (the workloads act on their own time).
fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pod_network_comes_from_cni_and_goes_with_the_sandbox() {
    let _serial = serial();
    let live = Live::start(&scenario(MESHED));
    let netns = live.netns();
    let addr = live.ip_netns(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    let route = live.ip_netns(&["ip", "route", "show", "default"]);
    let ip = addr
        .split_whitespace()
        .nth(3)
        .expect("address")
        .split('/')
        .next()
        .expect("ip")
        .to_owned();
    assert!(ip.starts_with("10.244."), "CNI host-local's range: {addr}");
    let gateway = "10.244.0.1";
    assert!(
        route.contains(&format!("default via {gateway} dev eth0")),
        "{route}"
    );
    // The app reaches the database peer in the cluster namespace directly
    // (port 5432 is excluded from capture), from its pod address.
    let seen = eventually("the database peer to see the pod", || {
        peer_events(&live).into_iter().find(|e| {
            e["service"] == "10.96.0.20:5432"
                && e["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&format!("{ip}:")))
        })
    });
    assert_eq!(seen["ev"], "served");
    // containerd's CNI namespace file, bind-mounted while the sandbox lives.
    assert!(std::path::Path::new(&netns).exists(), "{netns}");
    let (_, while_node_lives) = live.delete_then(|_| std::path::Path::new(&netns).exists());
    assert!(
        !while_node_lives,
        "the pod's namespace goes with its sandbox: {netns}"
    );
}

#[test]
fn capture_rules_redirect_the_app_to_the_proxy_with_its_original_destination() {
    let _serial = serial();
    let live = Live::start(&scenario(MESHED));
    let rules = live.ip_netns(&[tool("iptables-save").to_str().expect("path"), "-t", "nat"]);
    for line in [
        "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
        "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN",
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
    ] {
        assert!(rules.contains(line), "missing {line:?} in\n{rules}");
    }
    let proxied = eventually("a proxied call", || {
        events(&live, "istio-proxy", "proxied").into_iter().next()
    });
    assert_eq!(proxied["direction"], "outbound");
    assert_eq!(
        proxied["original_dst"], "10.96.0.10:80",
        "SO_ORIGINAL_DST recovered the app's destination"
    );
    // The proxy's own upstream connection (UID 1337) was not captured: the
    // backend saw it from the proxy's port.
    let upstream = format!(":{}", proxied["upstream_local_port"]);
    let served = eventually("the backend to see the proxy", || {
        peer_events(&live).into_iter().find(|e| {
            e["service"] == "10.96.0.10:80"
                && e["peer"].as_str().is_some_and(|p| p.ends_with(&upstream))
        })
    });
    assert_eq!(served["ev"], "served");
    let uid = std::fs::read_to_string(format!(
        "/proc/{}/status",
        live.containers()
            .iter()
            .find(|c| c.0 == "istio-proxy")
            .expect("proxy")
            .1
    ))
    .expect("status");
    assert!(
        uid.lines().any(|l| l.starts_with("Uid:\t1337\t")),
        "the proxy runs as 1337"
    );
    live.delete();
}
