use std::path::Path;

use lifecycle_audit::{AuditConfig, Completion, FindingKind, PodAudit, Severity, audit_records};
use lifecycle_recording::read_recording;

use super::*;

fn audit(name: &str) -> PodAudit {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/recordings")
        .join(name);
    let records = read_recording(&path).expect("fixture").0;
    let mut audits = audit_records(records, &AuditConfig::default());
    assert_eq!(audits.len(), 1);
    audits.remove(0)
}

#[test]
fn reasons_are_the_kinds_in_camel_case() {
    assert_eq!(
        reason(FindingKind::SidecarStoppedEarly),
        "SidecarStoppedEarly"
    );
    assert_eq!(
        reason(FindingKind::ProxyGoneBeforeApp),
        "ProxyGoneBeforeApp"
    );
    assert_eq!(
        reason(FindingKind::RefusedWhileProxyDown),
        "RefusedWhileProxyDown"
    );
}

#[test]
fn a_long_note_is_cut_on_a_character_boundary() {
    let text = "é".repeat(700); // 1400 bytes
    let note = truncate_note(&text, NOTE_LIMIT);
    assert!(note.len() <= NOTE_LIMIT, "{} bytes", note.len());
    assert!(note.ends_with('…'));
    assert!(note.trim_end_matches('…').chars().all(|c| c == 'é'));
    assert_eq!(truncate_note("short\nline", NOTE_LIMIT), "short line");
}

#[test]
fn warnings_and_errors_become_warning_events_and_info_is_off_by_default() {
    let a = audit("legacy-proxy-exits-first.jsonl");
    let warned = a
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .count();
    let info = a.findings.len() - warned;
    assert!(warned > 0, "the fixture has warnings or errors");
    let (posted, skipped) = drafts(&a, false, false);
    assert_eq!(posted.len(), warned);
    assert_eq!(skipped.len(), info);
    assert!(skipped.iter().all(|s| *s == Skipped::Info));
    for d in &posted {
        assert_eq!(d.event_type, EventType::Warning);
        assert_eq!(d.action, action(d.rule));
        assert_ne!(d.action, "Starting", "no startup rule in a legacy exit");
        assert_eq!(d.namespace, a.pod.namespace);
        assert_eq!(d.pod_uid, a.pod.uid);
        assert!(
            d.reason
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase())
        );
    }
    let (all, none) = drafts(&a, true, false);
    assert_eq!(all.len(), a.findings.len());
    assert!(none.is_empty());
    assert_eq!(
        all.iter()
            .filter(|d| d.event_type == EventType::Normal)
            .count(),
        info
    );
}

#[test]
fn containers_are_named_by_their_place_in_the_spec() {
    let a = audit("legacy-proxy-exits-first.jsonl");
    let (posted, _) = drafts(&a, true, false);
    let paths: Vec<&str> = posted
        .iter()
        .filter_map(|d| d.field_path.as_deref())
        .collect();
    assert!(!paths.is_empty());
    // A legacy pod's containers are all regular containers.
    assert!(
        paths.iter().all(|p| p.starts_with("spec.containers{")),
        "{paths:?}"
    );
}

#[test]
fn startup_findings_go_out_once() {
    let final_audit = audit("native-startup-race.jsonl");
    let startup_rules = final_audit
        .findings
        .iter()
        .filter(|f| is_startup_rule(f.rule) && f.severity >= Severity::Warning)
        .count();
    assert!(startup_rules > 0, "the fixture has a startup race");
    let mut startup = final_audit.clone();
    startup.completed_by = Completion::StartupComplete;
    let (first, _) = drafts(&startup, false, false);
    assert_eq!(first.len(), startup_rules);
    assert!(first.iter().all(|d| d.action == "Starting"));
    let (after, _) = drafts(&final_audit, false, true);
    assert!(
        after.iter().all(|d| !is_startup_rule(d.rule)),
        "the final audit does not repeat them"
    );
    let (alone, _) = drafts(&final_audit, false, false);
    assert_eq!(
        alone.iter().filter(|d| is_startup_rule(d.rule)).count(),
        startup_rules,
        "without a startup audit the final one posts them"
    );
}

#[test]
fn an_audit_without_a_pod_name_posts_nothing() {
    let mut a = audit("legacy-proxy-exits-first.jsonl");
    a.pod.namespace.clear();
    let (posted, skipped) = drafts(&a, true, false);
    assert!(posted.is_empty());
    assert_eq!(skipped.len(), a.findings.len());
    assert!(skipped.iter().all(|s| *s == Skipped::NoPod));
}
