//! Assertions on audits, shared by the audit's tests and its users' tests.

use crate::{Finding, FindingKind, Outcome, PodAudit, RuleId, Severity};

/// The outcome of `rule` in `audit`; panics when the audit has no verdict for it.
pub fn outcome(audit: &PodAudit, rule: RuleId) -> Outcome {
    audit
        .verdict(rule)
        .unwrap_or_else(|| panic!("no verdict for {rule}: {:#?}", audit.verdicts))
        .outcome
}

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
