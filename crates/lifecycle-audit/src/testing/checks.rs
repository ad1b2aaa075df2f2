//! Assertions on audits, shared by the audit's tests and its users' tests.

use crate::{Finding, FindingKind, Outcome, PodAudit, RuleId, Severity};

/// The outcome of `rule` in `audit`; panics when the audit has no verdict for it.
pub fn outcome(audit: &PodAudit, rule: RuleId) -> Outcome {
    audit
        .verdict(rule)
        .unwrap_or_else(|| panic!("no verdict for {rule}: {:#?}", audit.verdicts))
        .outcome
}

/// Panics unless every rule of `rules` is held in `audit`, naming those
/// that are not with their outcome.
pub fn assert_held(audit: &PodAudit, rules: &[RuleId]) {
    let not_held: Vec<(RuleId, Outcome)> = rules
        .iter()
        .map(|&rule| (rule, outcome(audit, rule)))
        .filter(|&(_, outcome)| outcome != Outcome::Held)
        .collect();
    assert!(not_held.is_empty(), "not held: {not_held:?}");
}

/// The rules a native-sidecar pod stopped in order (app first, then its
/// sidecars, each by the runtime, within the grace) holds.
pub const ORDERED_STOP_HOLDS: &[RuleId] = &[
    RuleId::T2,
    RuleId::T3,
    RuleId::X1,
    RuleId::X2,
    RuleId::M1,
    RuleId::M3,
];

/// The kinds of the audit's findings, in order.
pub fn kinds(audit: &PodAudit) -> Vec<FindingKind> {
    audit.findings.iter().map(|f| f.kind).collect()
}

/// The one finding of `kind`; panics unless there is exactly one.
pub fn one(audit: &PodAudit, kind: FindingKind) -> &Finding {
    let found: Vec<&Finding> = audit.findings.iter().filter(|f| f.kind == kind).collect();
    assert_eq!(found.len(), 1, "{kind:?} in {:#?}", audit.findings);
    found[0]
}

/// Findings above info.
pub fn problems(audit: &PodAudit) -> Vec<&Finding> {
    audit
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .collect()
}
