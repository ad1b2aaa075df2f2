//! The scenario catalogue: every file parses and plans (no root needed),
//! and every file is played by a test in `scenarios.rs`.

use std::path::PathBuf;

use node_sim::{PodPlan, Scenario, TimeScale};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn every_scenario_parses_and_plans() {
    let scenarios = Scenario::load_dir(&dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        scenarios.len() >= 16,
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
        assert!(
            scenario.expect.clean || !scenario.expect.findings.is_empty(),
            "{stem}: say what it shows"
        );
        for entry in &scenario.pods {
            PodPlan::build(entry, "node-a", TimeScale::default())
                .unwrap_or_else(|e| panic!("{stem}: {e}"));
        }
    }
}

#[test]
fn every_scenario_is_played_end_to_end() {
    let tests = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios.rs"),
    )
    .expect("scenarios.rs");
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
    let error = PodPlan::build(&scenario.pods[0], "n", TimeScale::default()).unwrap_err();
    assert!(
        error.to_string().contains("container a has no behaviour"),
        "{error}"
    );
}
