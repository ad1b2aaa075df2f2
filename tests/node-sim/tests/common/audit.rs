//! The agent's audits of a played scenario, compared with what the
//! scenario file says they must find (`expect`). Scenarios play at real
//! speed, so the recording is audited as it was written.

use std::collections::BTreeSet;

use lifecycle_audit::{AuditConfig, Finding, PodAudit, audit_records};
use lifecycle_recording::Record;
use node_sim::{KubeletVersion, scenario::ExpectedFinding};

use super::Played;

/// What is compared: rule, kind, severity, pod, container.
type Key = (String, String, String, String, Option<String>);

fn text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn key_of(f: &Finding) -> Key {
    (
        f.rule.to_string(),
        text(&f.kind),
        text(&f.severity),
        f.pod.clone(),
        f.container.clone(),
    )
}

fn expected_key(e: &ExpectedFinding) -> Key {
    (
        e.rule.clone(),
        e.kind.clone(),
        e.severity.clone(),
        e.pod.clone(),
        e.container.clone(),
    )
}

/// Audits the recording as `lifecycle-agent report` does, assuming `kubelet`; only the scenario's own pods (another
/// workload on this machine may have used kubepods cgroups meanwhile).
pub fn audit(played: &Played, kubelet: KubeletVersion) -> Vec<PodAudit> {
    let records: Vec<Record> = played
        .rec
        .0
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap_or_else(|e| panic!("{e}: {r}")))
        .collect();
    let config = AuditConfig {
        kubelet: kubelet.to_string().parse().expect("a kubelet version"),
        ..AuditConfig::default()
    };
    let uids: BTreeSet<&str> = played.report.pods.iter().map(|p| p.uid.as_str()).collect();
    audit_records(records, &config)
        .into_iter()
        .filter(|a| uids.contains(a.pod.uid.as_str()))
        .collect()
}

/// Every finding of the scenario's pods equals the scenario file's
/// expectation for the kubelet version played: none missing, none more.
pub fn assert_expected_findings(played: &Played) {
    let scenario = &played.scenario;
    let expected = scenario
        .expect
        .for_kubelet(scenario.kubelet, played.kubelet)
        .unwrap_or_else(|| {
            panic!(
                "{}: the file expects nothing for kubelet {} (add it under expect.otherKubelets)",
                scenario.name, played.kubelet
            )
        });
    let findings: Vec<&Finding> = played.audits.iter().flat_map(|a| &a.findings).collect();
    let mut missing: Vec<Key> = expected.iter().map(expected_key).collect();
    let mut unexpected = Vec::new();
    for f in &findings {
        match missing.iter().position(|k| *k == key_of(f)) {
            Some(i) => {
                missing.remove(i);
            }
            None => unexpected.push(*f),
        }
    }
    if missing.is_empty() && unexpected.is_empty() {
        return;
    }
    let saved = save_for_report(played);
    let drops = &played.rec.last_stats()["kernel_drops_total"];
    let mut message = format!(
        "{} (kubelet {}): the audit's findings differ from the scenario's expect list\n",
        scenario.name, played.kubelet
    );
    for k in &missing {
        message.push_str(&format!("  missing:    {k:?}\n"));
    }
    for f in &unexpected {
        message.push_str(&format!(
            "  unexpected: {:?}\n      {}\n",
            key_of(f),
            f.message
        ));
    }
    message.push_str("all findings:\n");
    for f in &findings {
        message.push_str(&format!("  {:?}: {}\n", key_of(f), f.message));
    }
    message.push_str(&format!(
        "recording: {saved}\n  lifecycle-agent report {saved} --kubelet-version {}\n",
        played.kubelet
    ));
    if drops != 0 {
        message.push_str(&format!(
            "the kernel dropped {drops} events during this run (another workload flooding kubepods cgroups?): rerun\n"
        ));
    }
    panic!("{message}");
}

/// Keeps the recording for `lifecycle-agent report`.
fn save_for_report(played: &Played) -> String {
    let path = std::env::temp_dir().join(format!(
        "node-sim-audit-{}-{}.ndjson",
        played.scenario.name, played.kubelet
    ));
    match played.save_recording(&path) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e})"),
    }
}
