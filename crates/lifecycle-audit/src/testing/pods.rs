//! Ready-made pods for audit tests: manifests and whole scripts that more
//! than one test suite plays.

use serde_json::{Value, json};

use super::{By, Proc, Script, manifest};

/// Native Istio: istio-proxy is a native sidecar (preStop httpGet drain),
/// optionally with a startupProbe on 15021.
pub fn istio_native(probe: bool, grace: i64) -> Value {
    let mut proxy = json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0",
        "restartPolicy": "Always",
        "lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": 15020}}}});
    if probe {
        proxy["startupProbe"] = json!({"httpGet": {"path": "/healthz/ready", "port": 15021}});
    }
    manifest(
        json!([proxy]),
        json!([{"name": "app", "image": "shop/app:1"}]),
        json!({"terminationGracePeriodSeconds": grace}),
    )
}

/// Legacy Istio: app, then istio-proxy as a regular container.
pub fn istio_legacy(grace: i64) -> Value {
    manifest(
        json!([]),
        json!([{"name": "app", "image": "shop/app:1"},
               {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}]),
        json!({"terminationGracePeriodSeconds": grace}),
    )
}

/// A legacy-Istio pod (grace 5 s) as containerd 1.6 and runc 1.1.5 run it:
/// each container's `runc:[2:INIT]` execs the entrypoint 35 ms after the
/// bootstrap is done. The app has no SIGTERM handler, so as PID 1 it
/// ignores the runtime's SIGTERM and dies of the SIGKILL at the deadline.
/// Returns the script and `[2:INIT]` of app and proxy, before and after
/// their exec.
pub fn runc_legacy_pod() -> (Script, [Proc; 4]) {
    let mut s = Script::new(istio_legacy(5));
    s.at(0.0);
    let app_init = s.runc_create("app");
    s.at(39.0);
    let app = s.runc_init_execs(&app_init, "/app");
    s.api_running("app");
    s.at(60.0);
    let proxy_init = s.runc_create("istio-proxy");
    s.at(99.0);
    let proxy = s.runc_init_execs(&proxy_init, "/usr/local/bin/pilot-agent");
    s.api_running("istio-proxy");
    s.at(150.0);
    for port in [15001, 15006] {
        s.listen(&proxy, "0.0.0.0", port, 1337);
    }
    s.at(900.0).condition("ContainersReady", true);
    s.at(1000.0).delete(5);
    s.at(1010.0)
        .signal(By::Runtime, &app, 15, "ignore")
        .term(&proxy);
    s.at(1100.0).exit(&proxy, 0);
    s.at(6010.0).kill(&app);
    s.at(6200.0)
        .api_terminated("istio-proxy", 0)
        .api_terminated("app", 137);
    s.at(7000.0).deleted();
    (s, [app_init, app, proxy_init, proxy])
}

/// A legacy-Istio pod (grace 30 s) with pod uid `uid`: app and proxy start
/// at `start_ms`, the pod is deleted at 1 s, both exit at 1.02 s after a
/// SIGTERM each, and the object is gone at 2 s.
pub fn deleted_legacy_pod(uid: &str, start_ms: f64) -> Script {
    let mut s = Script::with_uid(istio_legacy(30), uid);
    s.at(0.0);
    s.at(start_ms);
    let app = s.start("app", "/app");
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.at(100.0).condition("ContainersReady", true);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&proxy);
    s.at(1020.0).exit(&app, 0).exit(&proxy, 0);
    s.at(2000.0).deleted();
    s
}
