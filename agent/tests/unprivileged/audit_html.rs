//! The HTML report opened in headless Chromium (Debian's `chromium`,
//! installed by `cargo xtask setup`): the page loads without errors and
//! shows one lane per container, with the bypass window shaded.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use lifecycle_testkit::recording_fixture;
use serde_json::Value;

use crate::support::agent::command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's DOM of `page` and its stderr.
fn dump_dom(page: &Path) -> (String, String) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `cargo xtask setup` (installs Debian's chromium)"
    );
    let profile = tempfile::tempdir().unwrap();
    let out_file = profile.path().join("dom.html");
    let err_file = profile.path().join("stderr.log");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = std::fs::read_to_string(&out_file).unwrap();
    let stderr = std::fs::read_to_string(&err_file).unwrap();
    assert!(status.success(), "chromium failed: {stderr}");
    (dom, stderr)
}

fn render(recording: &str, format: &str, out: &Path) {
    let status = command(&["report", "--format", format, "--output"])
        .arg(out)
        .arg(recording_fixture(recording))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn html_report_loads_in_chromium_with_a_lane_per_container() {
    let dir = tempfile::tempdir().unwrap();
    for (recording, shaded) in [
        ("legacy-proxy-exits-first.jsonl", 1),
        ("native-ordered.jsonl", 0),
        ("native-startup-race.jsonl", 1),
    ] {
        let page = dir.path().join(recording.replace(".jsonl", ".html"));
        render(recording, "html", &page);
        let source = std::fs::read_to_string(&page).unwrap();
        assert!(!source.contains("<script"), "the page carries no script");
        let json_path = dir.path().join("report.json");
        render(recording, "json", &json_path);
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        let lanes: Vec<String> = report["pods"][0]["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["container"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(lanes.len(), 2, "{recording}: app and istio-proxy");

        let (dom, stderr) = dump_dom(&page);
        assert!(
            dom.contains("</html>"),
            "{recording}: page not loaded: {dom}"
        );
        assert!(dom.contains("<h1>Lifecycle audit</h1>"), "{recording}");
        assert_eq!(
            dom.matches("<g class=\"lane\"").count(),
            lanes.len(),
            "{recording}: one lane per container"
        );
        for lane in &lanes {
            assert!(
                dom.contains(&format!("data-container=\"{lane}\"")),
                "{recording}: lane {lane}"
            );
        }
        assert_eq!(
            dom.matches("<rect class=\"bypass\"").count(),
            shaded,
            "{recording}: bypass windows"
        );
        for bad in ["Uncaught", "CONSOLE", "Not allowed to load"] {
            assert!(
                !stderr.contains(bad),
                "{recording}: {bad} in chromium's log: {stderr}"
            );
        }
    }
}
