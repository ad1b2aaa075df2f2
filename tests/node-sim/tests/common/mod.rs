//! Shared by the end-to-end tests: play a scenario with the real agent
//! recording, compare the recording with the driver's own log, and the
//! agent's audit findings with the scenario's `expect` list.
#![allow(dead_code)]

pub mod audit;
pub mod checks;
pub mod recording;

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use lifecycle_audit::PodAudit;
use lifecycle_testkit::{Recording, require_root};
use node_sim::{KubeletVersion, RunOptions, Scenario, ScenarioReport, SimApi};

pub use recording::Rec;

/// One scenario at a time per test binary: each run has its own agent, and
/// timing assertions need the machine's two cores.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `tests/scenarios/<name>.yaml`
pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.yaml"))
}

pub fn load(name: &str) -> Scenario {
    Scenario::load(&scenario_path(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// The agent binary: `$LIFECYCLE_AGENT_BIN`, or `lifecycle-agent` in the
/// cargo target directory (`cargo test --workspace` builds it).
/// `lifecycle-agent record` on this machine, watching [`NODE`]'s pods
/// through `kubeconfig`.
pub fn record_node(kubeconfig: &Path) -> Recording {
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    Recording::start(
        &agent_path(),
        &["--node-name", NODE, "--kubeconfig", kubeconfig],
    )
}

pub fn agent_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LIFECYCLE_AGENT_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("lifecycle-agent");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p lifecycle-agent` (cargo test --workspace does)",
        path.display()
    );
    path
}

impl Played {
    /// Writes the recording as NDJSON, as `lifecycle-agent report
    /// --kubelet-version <played>` reads it.
    pub fn save_recording(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut text = String::new();
        for record in &self.rec.0 {
            text.push_str(&record.to_string());
            text.push('\n');
        }
        std::fs::write(path, text)
    }

    /// The findings the scenario file says its recording must produce
    /// with the kubelet version played.
    pub fn expected_findings(&self) -> &[node_sim::scenario::ExpectedFinding] {
        self.scenario
            .expect
            .for_kubelet(self.scenario.kubelet, self.kubelet)
            .unwrap_or_default()
    }

    /// The audit of one pod (by name).
    pub fn audit_of(&self, pod: &str) -> &PodAudit {
        self.audits
            .iter()
            .find(|a| a.pod.name == pod)
            .unwrap_or_else(|| panic!("no audit of {pod}"))
    }

    /// The pod's first finding of `kind`; panics when it has none.
    pub fn finding(
        &self,
        pod: &str,
        kind: lifecycle_audit::FindingKind,
    ) -> &lifecycle_audit::Finding {
        let audit = self.audit_of(pod);
        audit
            .findings
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} finding for {pod}: {:#?}", audit.findings))
    }
}

/// A scenario played with the agent attached.
pub struct Played {
    pub scenario: Scenario,
    /// The kubelet behaviour played (and assumed by the audits).
    pub kubelet: KubeletVersion,
    pub report: ScenarioReport,
    pub rec: Rec,
    /// The agent's audits of the scenario's pods.
    pub audits: Vec<PodAudit>,
}

pub const NODE: &str = "node-sim-e2e";

/// Plays `name` with the agent recording; checks every run has in common
/// (see [`checks::common`]) and that the agent's audits find exactly what
/// the scenario's `expect` lists ([`audit::assert_expected_findings`])
/// before returning.
pub fn play(name: &str) -> Played {
    play_with(load(name), RunOptions::default())
}

pub fn play_with(scenario: Scenario, options: RunOptions) -> Played {
    require_root();
    let _serial = serial();
    let version = options.kubelet.unwrap_or(scenario.kubelet);
    let api = SimApi::start(version).expect("test API server");
    let dir = std::env::temp_dir().join(format!(
        "node-sim-e2e-{}-{}",
        std::process::id(),
        scenario.name
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let recording = record_node(&kubeconfig);
    let options = RunOptions {
        node_name: Some(NODE.into()),
        ..options
    };
    let report = node_sim::scenario::run(&scenario, api.server(), options);
    // The watch delivers the last status writes within milliseconds; give
    // it time on a loaded machine before stopping the agent.
    std::thread::sleep(Duration::from_millis(600));
    let records = recording.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let report = report.unwrap_or_else(|e| panic!("scenario {} failed: {e}", scenario.name));
    let mut played = Played {
        scenario,
        kubelet: version,
        report,
        rec: Rec(records),
        audits: Vec::new(),
    };
    checks::common(&played);
    played.audits = audit::audit(&played, version);
    audit::assert_expected_findings(&played);
    played
}
