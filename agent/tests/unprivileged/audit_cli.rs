//! `lifecycle-agent report` and `compare` on recordings of real runs
//! (tests/fixtures/recordings, cut from the end-to-end tests' recordings).

use lifecycle_testkit::recording_fixture;
use serde_json::Value;

use crate::support::agent::agent;

fn ok_stdout(args: &[&str]) -> String {
    let out = agent(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn path(name: &str) -> String {
    recording_fixture(name).display().to_string()
}

#[test]
fn text_report_tells_the_legacy_story() {
    let text = ok_stdout(&["report", &path("legacy-proxy-exits-first.jsonl")]);
    assert!(text.contains("kubelet semantics assumed: 1.33"), "{text}");
    assert!(
        text.contains("══ shop/web-5d8f9c7b4-legacy  (Deployment web"),
        "{text}"
    );
    assert!(
        text.contains("istio-proxy  PID 1 exited, code 143"),
        "{text}"
    );
    assert!(
        text.contains("bypass window opens (AfterProxyExit)"),
        "{text}"
    );
    assert!(text.contains("exit order: istio-proxy, app"), "{text}");
    assert!(
        !text.contains("SIGCHLD"),
        "housekeeping signals stay out of the timeline"
    );
    let m4 = text
        .lines()
        .find(|l| l.contains("WARNING M4"))
        .expect("M4 line");
    assert!(m4.contains("refused by the capture"), "{m4}");
}

#[test]
fn json_report_judges_every_rule() {
    let json: Value = serde_json::from_str(&ok_stdout(&[
        "report",
        "--format",
        "json",
        &path("native-ordered.jsonl"),
    ]))
    .unwrap();
    assert_eq!(json["schema"], "lifecycle-agent.audit-report/v1");
    let pod = &json["pods"][0];
    let rules: Vec<&str> = pod["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 19, "{rules:?}");
    assert!(rules.contains(&"D1"), "{rules:?}");
    assert_eq!(pod["findings"].as_array().unwrap().len(), 0);
    assert_eq!(pod["termination"]["order"], "native_ordered");
    assert_eq!(pod["completed_by"], "terminated");
}

#[test]
fn the_assumed_kubelet_version_changes_the_judgement() {
    let old: Value = serde_json::from_str(&ok_stdout(&[
        "report",
        "--format",
        "json",
        "--kubelet-version",
        "1.28",
        &path("native-ordered.jsonl"),
    ]))
    .unwrap();
    assert_eq!(old["kubelet_assumed"], "1.28");
    let t2 = old["pods"][0]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "T2")
        .unwrap()
        .clone();
    assert_eq!(t2["outcome"], "not_applicable");
    assert!(t2["note"].as_str().unwrap().contains("in parallel"), "{t2}");

    let bad = agent(&[
        "report",
        "--kubelet-version",
        "2.0",
        &path("native-ordered.jsonl"),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1.x"));
}

#[test]
fn compare_shows_the_native_sidecar_migration() {
    let before = path("legacy-proxy-exits-first.jsonl");
    let after = path("native-ordered.jsonl");
    let text = ok_stdout(&["compare", &before, &after]);
    assert!(text.contains("shop/Deployment web"), "{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .split_whitespace()
            .rev()
            .take(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("sidecar exited before main"),
        vec!["0", "1"],
        "after, before"
    );
    assert_eq!(row("refused by capture"), vec!["0", "5"]);

    let json: Value = serde_json::from_str(&ok_stdout(&[
        "compare", "--format", "json", &before, &after,
    ]))
    .unwrap();
    let w = &json["workloads"][0];
    assert_eq!(w["workload"]["name"], "web");
    assert!(w["before"]["bypass_window_s"].as_f64().unwrap() > 0.3);
    assert_eq!(w["after"]["bypass_window_s"], 0.0);
    assert_eq!(w["before"]["pods"], 1);

    let html = agent(&["compare", "--format", "html", &before, &after]);
    assert!(!html.status.success(), "no HTML comparison");
}

#[test]
fn a_missing_recording_is_an_error() {
    let out = agent(&["report", "/nonexistent/recording.ndjson"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open recording"));
}

/// The journal of an agent SIGKILLed mid-write ends in a cut line: the
/// report still comes, exits 0, and says what it skipped. `compare` reads
/// it the same way.
#[test]
fn a_recording_cut_mid_line_is_still_audited() {
    let text =
        std::fs::read_to_string(recording_fixture("legacy-proxy-exits-first.jsonl")).unwrap();
    let lines = text.lines().count();
    let last = text.lines().last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, format!("{text}{}", &last[..last.len() / 3])).unwrap();
    let cut = cut.display().to_string();
    let report = ok_stdout(&["report", &cut]);
    assert!(
        report.contains(&format!(
            "1 damaged line(s) skipped (line {}); the last line was cut short",
            lines + 1
        )),
        "{report}"
    );
    assert!(report.contains("exit order: istio-proxy, app"), "{report}");
    let json: Value =
        serde_json::from_str(&ok_stdout(&["report", "--format", "json", &cut])).unwrap();
    assert_eq!(json["recording"]["damaged_lines"], 1);
    assert_eq!(json["recording"]["cut_last_line"], true);
    ok_stdout(&["compare", &path("legacy-proxy-exits-first.jsonl"), &cut]);
}
