//! Spans of a pod run by a real runtime: a container's span carries the
//! pid of the process that exec'd its entrypoint, not runc's bootstrap.

use lifecycle_audit::testing::runc_legacy_pod;

use super::{TraceKind, traces};

#[test]
fn a_runc_pod_exports_both_traces_with_pid1_on_its_container_spans() {
    let (s, [app_init, _, proxy_init, _]) = runc_legacy_pod();
    let audit = s.audit();
    let out = traces(&audit, true);
    let kinds: Vec<TraceKind> = out.iter().map(|t| t.kind).collect();
    assert!(kinds.contains(&TraceKind::Startup), "{kinds:?}");
    let termination = out
        .iter()
        .find(|t| t.kind == TraceKind::Termination)
        .expect("a termination trace");
    for (name, init) in [("app", &app_init), ("istio-proxy", &proxy_init)] {
        let span = termination
            .spans
            .iter()
            .filter(|sp| sp.name == "container.termination")
            .find(|sp| {
                sp.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "k8s.container.name" && kv.value.as_str() == name)
            })
            .unwrap_or_else(|| panic!("a container.termination span for {name}"));
        let pid = span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "process.pid")
            .map(|kv| kv.value.as_str().into_owned());
        assert_eq!(pid, Some(init.pid.to_string()), "{name}");
    }
}
