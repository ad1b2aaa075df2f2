//! The alert rules of `deploy/prometheus` against the real `promtool`
//! (Debian's prometheus package, installed by `cargo xtask setup`): the
//! file checks, its unit tests pass, the Prometheus Operator overlay holds
//! the same groups, every metric it queries is one the agent exports, and
//! every alert has its runbook in docs/operations.md.

use std::{collections::BTreeSet, path::Path, process::Command};

use serde_json::Value;

use crate::support::deploy::{deploy_dir, documents, read};

const PROMTOOL: &str = "/usr/bin/promtool";

fn promtool(args: &[&str], dir: &Path) -> String {
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: run `cargo xtask setup` (installs Debian's prometheus)"
    );
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

fn rules() -> Value {
    documents(&deploy_dir().join("prometheus/rules.yaml")).remove(0)
}

fn alerts(rules: &Value) -> Vec<&Value> {
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .collect()
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let dir = deploy_dir().join("prometheus");
    let checked = promtool(&["check", "rules", "rules.yaml"], &dir);
    let count = alerts(&rules()).len();
    assert!(
        checked.contains(&format!("SUCCESS: {count} rules found")),
        "{checked}"
    );
    let tested = promtool(&["test", "rules", "rules_test.yaml"], &dir.join("tests"));
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert is exercised by a unit test.
    let tests = read(&dir.join("tests/rules_test.yaml"));
    for alert in alerts(&rules()) {
        let name = alert["alert"].as_str().unwrap();
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "{name} has no unit test"
        );
    }
}

#[test]
fn the_prometheus_operator_overlay_holds_the_same_rules() {
    let overlay =
        documents(&deploy_dir().join("overlays/prometheus-operator/prometheusrule.yaml")).remove(0);
    assert_eq!(overlay["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(overlay["kind"], "PrometheusRule");
    assert_eq!(overlay["metadata"]["namespace"], "lifecycle-agent");
    assert_eq!(overlay["spec"]["groups"], rules()["groups"]);
}

#[test]
fn every_queried_metric_is_exported_and_every_alert_has_a_runbook() {
    let readme = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"));
    let operations = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"));
    let anchors: BTreeSet<String> = operations
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.trim().to_lowercase())
        .collect();
    let rules = rules();
    for alert in alerts(&rules) {
        let name = alert["alert"].as_str().unwrap();
        let expr = alert["expr"].as_str().unwrap();
        let metrics: BTreeSet<&str> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| {
                w.starts_with("lifecycle_")
                    && (w.ends_with("_total") || w.ends_with("_seconds") || w.ends_with("_ready"))
            })
            .collect();
        assert!(!metrics.is_empty(), "{name}: no metric in {expr}");
        for metric in metrics {
            assert!(
                readme.contains(&format!("`{metric}`")),
                "{name}: {metric} is not in the README's metric table"
            );
        }
        let runbook = alert["annotations"]["runbook"].as_str().expect("runbook");
        let anchor = runbook
            .strip_prefix("docs/operations.md#")
            .expect("a docs/operations.md anchor");
        assert_eq!(anchor, name.to_lowercase(), "{name}");
        assert!(
            anchors.contains(anchor),
            "{name}: no `### {name}` in docs/operations.md"
        );
        for key in ["summary", "description"] {
            assert!(
                alert["annotations"][key]
                    .as_str()
                    .is_some_and(|t| !t.is_empty()),
                "{name}: {key}"
            );
        }
        assert!(alert["labels"]["severity"].is_string(), "{name}: severity");
    }
}
