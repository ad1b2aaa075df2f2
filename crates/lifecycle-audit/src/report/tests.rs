//! Rendering tests on audits of hand-written recordings.

use lifecycle_recording::RecordingInfo;
use serde_json::{Value, json};

use super::{Format, Report, compare};
use crate::{
    AuditConfig, PodAudit, audit_records,
    testing::{Script, manifest},
};

/// A legacy pod whose proxy exits first and whose app is then refused.
fn legacy() -> Vec<PodAudit> {
    legacy_with_api_clock(0.0)
}

/// [`legacy`] with the API server's clock `ahead_s` off the node's.
fn legacy_with_api_clock(ahead_s: f64) -> Vec<PodAudit> {
    let m = manifest(
        json!([]),
        json!([{"name": "app", "image": "shop/app:1"},
               {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}]),
        json!({}),
    );
    let mut s = Script::new(m);
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/pilot-agent");
    let listener = s.listen(&proxy, "0.0.0.0", 15001, 1337);
    s.at(50.0);
    let app = s.start("app", "/app");
    s.api_server_ahead(ahead_s);
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app).term(&proxy);
    s.at(1020.0)
        .listen_stop(&proxy, &listener, "0.0.0.0", 15001);
    s.killed(&proxy, 15);
    s.at(1100.0).refused(&app, ("10.96.0.10", 80));
    s.at(1300.0).exit(&app, 0);
    audit_records(s.records(), &AuditConfig::default())
}

/// The same workload after the migration: native proxy, clean stop.
fn native() -> Vec<PodAudit> {
    let mut m = manifest(
        json!([{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0", "restartPolicy": "Always"}]),
        json!([{"name": "app", "image": "shop/app:1"}]),
        json!({}),
    );
    m["metadata"]["ownerReferences"][0]["name"] = json!("web-7b9c5d8f4");
    let mut s = Script::new(m);
    s.at(0.0);
    let proxy = s.start("istio-proxy", "/pilot-agent");
    s.listen(&proxy, "0.0.0.0", 15001, 1337);
    s.at(50.0);
    let app = s.start("app", "/app");
    s.at(1000.0).delete(30);
    s.at(1010.0).term(&app);
    s.at(1050.0).exit(&app, 0);
    s.at(1060.0).term(&proxy);
    s.at(1070.0).exit(&proxy, 0);
    audit_records(s.records(), &AuditConfig::default())
}

fn info(path: &str) -> RecordingInfo {
    RecordingInfo {
        path: path.into(),
        ..RecordingInfo::default()
    }
}

fn report(pods: Vec<PodAudit>) -> Report {
    Report::new(info("rec.ndjson"), pods, &AuditConfig::default())
}

#[test]
fn text_report_has_a_timeline_and_the_findings() {
    let text = report(legacy()).render(Format::Text).unwrap();
    assert!(text.contains("kubelet semantics assumed: 1.33"), "{text}");
    assert!(
        text.contains("══ shop/web-6d4cf56db6-abcde  (Deployment web"),
        "{text}"
    );
    assert!(text.contains("SIGTERM from container runtime"), "{text}");
    assert!(text.contains("stopped listening on :15001"), "{text}");
    assert!(
        text.contains("bypass window opens (AfterProxyExit)"),
        "{text}"
    );
    assert!(text.contains("WARNING M4"), "{text}");
    let timeline_rows = text
        .lines()
        .filter(|l| l.trim_start().starts_with('+'))
        .count();
    assert!(timeline_rows >= 8, "{text}");
}

#[test]
fn reports_say_how_far_the_api_clock_is_off() {
    let plain = report(legacy()).render(Format::Text).unwrap();
    assert!(!plain.contains("API clock"), "{plain}");
    // Delete seen at 1.0 s on the node, stamped second 4 by the API.
    let text = report(legacy_with_api_clock(3.0))
        .render(Format::Text)
        .unwrap();
    assert!(
        text.contains("; API clock 3.5 s ahead of the node's (kernel times used);"),
        "{text}"
    );
    let behind = report(legacy_with_api_clock(-3.0))
        .render(Format::Text)
        .unwrap();
    assert!(
        behind.contains("; API clock 2.5 s behind the node's (kernel times used);"),
        "{behind}"
    );
    let json: Value = serde_json::from_str(
        &report(legacy_with_api_clock(3.0))
            .render(Format::Json)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        json["pods"][0]["termination"]["api_clock_offset_s"],
        json!(3.5)
    );
}

#[test]
fn json_report_follows_the_documented_schema() {
    let json: Value =
        serde_json::from_str(&report(legacy()).render(Format::Json).unwrap()).unwrap();
    assert_eq!(json["schema"], "lifecycle-agent.audit-report/v1");
    assert_eq!(json["kubelet_assumed"], "1.33");
    let pod = &json["pods"][0];
    assert_eq!(
        pod["workload"],
        json!({"namespace": "shop", "kind": "Deployment", "name": "web"})
    );
    assert_eq!(pod["termination"]["trigger"]["kind"], "deletion");
    assert_eq!(pod["bypass"]["windows"][0]["cause"], "after_proxy_exit");
    assert_eq!(pod["lanes"].as_array().unwrap().len(), 2);
    let m4 = pod["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "M4")
        .expect("M4 finding");
    assert_eq!(m4["kind"], "refused_while_proxy_down");
    assert_eq!(m4["severity"], "warning");
    assert!(m4["evidence"].as_array().unwrap().iter().all(Value::is_u64));
    assert_eq!(json["summary"]["pods"], 1);
}

#[test]
fn html_report_is_self_contained_with_a_lane_per_container() {
    let html = report(legacy()).render(Format::Html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no script in the page");
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert_eq!(html.matches("<g class=\"lane\"").count(), 2);
    assert!(html.contains("data-container=\"istio-proxy\""));
    assert_eq!(html.matches("<rect class=\"bypass\"").count(), 1);
    assert!(html.contains("class=\"t0\""));
    assert_eq!(
        super::html::escape("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
}

#[test]
fn compare_puts_both_rollouts_of_a_deployment_side_by_side() {
    let (before, after) = (legacy(), native());
    let c = compare::compare((&info("before"), &before), (&info("after"), &after), "1.33");
    assert_eq!(
        c.workloads.len(),
        1,
        "both ReplicaSets group under Deployment web"
    );
    let row = &c.workloads[0];
    assert_eq!(row.workload.name, "web");
    let (b, a) = (row.before.as_ref().unwrap(), row.after.as_ref().unwrap());
    assert_eq!((b.pods, a.pods), (1, 1));
    assert_eq!(b.sidecar_exited_before_main, 1);
    assert_eq!(a.sidecar_exited_before_main, 0);
    assert_eq!((b.refused_by_capture, a.refused_by_capture), (1, 0));
    assert!(b.bypass_window_s > 0.25 && a.bypass_window_s == 0.0);
    let text = compare::render_text(&c);
    assert!(text.contains("shop/Deployment web"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("  sidecar exited before main") && l.trim_end().ends_with('0')),
        "{text}"
    );
}
