//! The scenario catalogue: every file parses and plans (no root needed),
//! its expectations name real rules, finding kinds and severities of the
//! audits, and every file is played by a test in `scenarios/`.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

use std::path::PathBuf;

use lifecycle_audit::{FindingKind, RuleId, Severity};
use node_sim::{PodPlan, Scenario, scenario::ExpectedFinding};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn every_scenario_parses_and_plans() {
    let scenarios = Scenario::load_dir(&dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        scenarios.len() >= 22,
        "the catalogue has {} scenarios",
        scenarios.len()
    );
    for (path, scenario) in &scenarios {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert_eq!(
            scenario.name,
            stem,
            "{}: name and file name differ",
            path.display()
        );
        assert!(
            !scenario.description.trim().is_empty(),
            "{stem}: no description"
        );
        // `node-sim list` groups by it: no catalogue file leaves it to the default.
        let text = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            text.lines().any(|l| l.starts_with("system: ")),
            "{stem}: no `system:` line"
        );
        let problems = scenario.expect.problems();
        assert!(problems.is_empty(), "{stem}: expect: {problems:?}");
        let pods: Vec<&str> = scenario
            .pods
            .iter()
            .filter_map(|p| p.manifest.pointer("/metadata/name")?.as_str())
            .collect();
        let expected = scenario
            .expect
            .other_kubelets
            .iter()
            .flat_map(|k| &k.findings);
        for finding in scenario.expect.findings.iter().chain(expected) {
            check_vocabulary(stem, finding, &pods);
        }
        for entry in &scenario.pods {
            PodPlan::build(entry, "node-a").unwrap_or_else(|e| panic!("{stem}: {e}"));
        }
    }
}

/// Rule, kind and severity as the audits spell them; the pod is one of
/// the scenario's.
fn check_vocabulary(stem: &str, finding: &ExpectedFinding, pods: &[&str]) {
    let word = |w: &str| serde_json::Value::String(w.to_owned());
    let what = format!("{stem}: {finding:?}");
    serde_json::from_value::<RuleId>(word(&finding.rule))
        .unwrap_or_else(|e| panic!("{what}: rule: {e}"));
    serde_json::from_value::<FindingKind>(word(&finding.kind))
        .unwrap_or_else(|e| panic!("{what}: kind: {e}"));
    serde_json::from_value::<Severity>(word(&finding.severity))
        .unwrap_or_else(|e| panic!("{what}: severity: {e}"));
    assert!(pods.contains(&finding.pod.as_str()), "{what}: no such pod");
}

#[test]
fn every_scenario_is_played_end_to_end() {
    let dir_of_tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let tests: String = std::fs::read_dir(&dir_of_tests)
        .expect("tests/scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| std::fs::read_to_string(p).expect("test source"))
        .collect();
    for (path, _) in Scenario::load_dir(&dir()).expect("catalogue") {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert!(
            tests.contains(&format!("\"{stem}\"")),
            "no end-to-end test plays {stem}"
        );
    }
}

#[test]
fn malformed_scenarios_are_refused_with_the_reason() {
    let unknown = Scenario::parse("name: x\ndescription: y\npods: []\nbogus: 1\n").unwrap_err();
    assert!(unknown.contains("bogus"), "{unknown}");
    let version =
        Scenario::parse("name: x\ndescription: y\nkubelet: 1.30\npods: []\n").unwrap_err();
    assert!(version.contains("quoted"), "{version}");
    let scenario = Scenario::parse(
        "name: x\ndescription: y\npods:\n  - manifest: {metadata: {name: p}, spec: {containers: [{name: a}]}}\n    containers: {}\n",
    )
    .expect("valid file");
    let error = PodPlan::build(&scenario.pods[0], "n").unwrap_err();
    assert!(
        error.to_string().contains("container a has no behaviour"),
        "{error}"
    );
}

/// `node-sim list` prints each scenario once, under its system's heading,
/// the groups in `System` order.
#[test]
fn list_groups_the_catalogue_by_system() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_node-sim"))
        .arg("list")
        .arg(dir())
        .output()
        .expect("node-sim runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let scenarios = Scenario::load_dir(&dir()).unwrap_or_else(|e| panic!("{e}"));
    let mut heading = None;
    let mut headings = Vec::new();
    let mut listed = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        match line.strip_prefix("  ") {
            None => {
                heading = Some(line.to_owned());
                headings.push(line.to_owned());
            }
            Some(entry) => {
                let file = entry.split_whitespace().next().unwrap_or_default();
                let (_, scenario) = scenarios
                    .iter()
                    .find(|(p, _)| p.file_name().is_some_and(|f| f == file))
                    .unwrap_or_else(|| panic!("{file} listed but not in the catalogue"));
                let title = scenario.system.title();
                assert!(
                    heading.as_deref().is_some_and(|h| h.starts_with(title)),
                    "{file} under {heading:?}, not {title}"
                );
                listed += 1;
            }
        }
    }
    assert_eq!(listed, scenarios.len(), "{text}");
    let mut systems: Vec<_> = scenarios.iter().map(|(_, s)| s.system).collect();
    systems.sort();
    systems.dedup();
    let want: Vec<String> = systems
        .iter()
        .map(|s| {
            let n = scenarios.iter().filter(|(_, x)| x.system == *s).count();
            format!("{} ({n})", s.title())
        })
        .collect();
    assert_eq!(headings, want);
}
