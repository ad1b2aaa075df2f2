//! What an audit concludes: a verdict per rule, and findings a person acts on.
//!
//! Rule ids are those of the lifecycle rules (S1–S4 startup, T1–T7
//! termination, X1–X2 signal senders, A1 API precision, M1–M4 meshes). A
//! [`Verdict`] says whether a rule held for a pod; a [`Finding`] is one
//! observation worth reporting (a violation, a lost request, a measured
//! legacy hazard), with the `seq` numbers of the records that show it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A lifecycle rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RuleId {
    S1,
    S2,
    S3,
    S4,
    T1,
    T2,
    T3,
    T4,
    T5,
    T6,
    T7,
    X1,
    X2,
    A1,
    M1,
    M2,
    M3,
    M4,
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A measurement worth seeing; nothing was broken.
    Info,
    /// A hazard or lost work (refused requests, SIGKILL, a startup race).
    Warning,
    /// A rule the kubelet or runtime should have kept was broken, or
    /// traffic left the pod unprotected.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// What kind of observation a finding is (stable, machine-readable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// S1: an init container started before the previous one completed.
    InitOutOfOrder,
    /// S2: a container started before the sidecar ahead of it had started.
    StartedBeforeSidecar,
    /// S2/S4: the app connected before the sidecar listened.
    StartupRace,
    /// S3: a main container started before the init containers completed.
    MainBeforeInitialized,
    /// S4: with hold/await, the app started before the proxy was ready.
    StartedBeforeProxyReady,
    /// T1: a preStop hook started well after t0.
    PreStopLate,
    /// T1: a main container's stop signal came after t0 + G + 1 s.
    StopSignalLate,
    /// T1: a stop signal arrived before the container's own preStop ended.
    StopBeforePreStopEnded,
    /// T2: a sidecar was stopped while a main or later sidecar still ran.
    SidecarStoppedEarly,
    /// T3: SIGKILL before the container's timeout.
    EarlySigkill,
    /// T3: the container did not stop within its grace and was SIGKILLed.
    Sigkilled,
    /// T3: the grace period ran out; ordering collapsed.
    GraceExhausted,
    /// T3: a process was still alive at t0 + G + 3 s.
    AliveAfterDeadline,
    /// T4: in a legacy pod a sidecar exited while a main container ran.
    LegacySidecarExitedFirst,
    /// T5: a sidecar restarted after the Job's main containers completed.
    JobSidecarRestarted,
    /// T5: sidecars kept a completed Job pod running.
    JobSidecarsKeptRunning,
    /// T6: a sidecar restarted after termination began.
    RestartDuringTermination,
    /// T7: a never-started sidecar held back the others' stop signals.
    BlockedByNeverStartedSidecar,
    /// X1: the stop signal did not come from the container runtime.
    UnexpectedSender,
    /// X2: the runtime sent the stop signal more than once.
    RepeatedStopSignal,
    /// M1: the proxy exited before the app (native) or the app kept
    /// sending after the proxy exited (legacy).
    ProxyGoneBeforeApp,
    /// M2: the Linkerd proxy was stopped before its wait-before-exit.
    ProxyStoppedBeforeWait,
    /// M3: the proxy was not listening while the app was alive.
    BypassWindow,
    /// M3: app traffic left the pod without the proxy.
    PlaintextBypass,
    /// M4: app connections refused by the capture while the proxy was down.
    RefusedWhileProxyDown,
}

/// Whether a rule held for a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Checked against the recording and kept.
    Held,
    /// Checked and broken (see the findings).
    Violated,
    /// Measured and reported but not judged (e.g. order in legacy pods).
    NotJudged,
    /// Does not apply to this pod, mode or kubelet version.
    NotApplicable,
    /// Applies, but the recording cannot tell (missing events, API only).
    Unknown,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Held => "held",
            Self::Violated => "violated",
            Self::NotJudged => "not judged",
            Self::NotApplicable => "n/a",
            Self::Unknown => "unknown",
        })
    }
}

/// The verdict of one rule for one pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: RuleId,
    pub outcome: Outcome,
    /// Why, in a few words.
    pub note: String,
}

impl Verdict {
    pub fn new(rule: RuleId, outcome: Outcome, note: impl Into<String>) -> Self {
        Self {
            rule,
            outcome,
            note: note.into(),
        }
    }
}

/// One reported observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: RuleId,
    pub kind: FindingKind,
    pub severity: Severity,
    pub namespace: String,
    pub pod: String,
    /// The container the finding is about, when there is one.
    pub container: Option<String>,
    /// One line for a person.
    pub message: String,
    /// `seq` numbers of the records that show it, ascending.
    pub evidence: Vec<u64>,
}

/// A finding before the pod's identity is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub rule: RuleId,
    pub kind: FindingKind,
    pub severity: Severity,
    pub container: Option<String>,
    pub message: String,
    pub evidence: Vec<u64>,
}

impl Draft {
    pub fn new(
        rule: RuleId,
        kind: FindingKind,
        severity: Severity,
        container: Option<&str>,
        message: String,
    ) -> Self {
        Self {
            rule,
            kind,
            severity,
            container: container.map(str::to_owned),
            message,
            evidence: Vec::new(),
        }
    }

    /// Adds evidence; `None`s are skipped.
    pub fn with_evidence(mut self, seqs: impl IntoIterator<Item = Option<u64>>) -> Self {
        self.evidence.extend(seqs.into_iter().flatten());
        self
    }

    pub fn into_finding(mut self, namespace: &str, pod: &str) -> Finding {
        self.evidence.sort_unstable();
        self.evidence.dedup();
        Finding {
            rule: self.rule,
            kind: self.kind,
            severity: self.severity,
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            container: self.container,
            message: self.message,
            evidence: self.evidence,
        }
    }
}

/// Verdicts and findings produced by one group of rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judgement {
    pub verdicts: Vec<Verdict>,
    pub findings: Vec<Draft>,
}

impl Judgement {
    pub fn verdict(&mut self, rule: RuleId, outcome: Outcome, note: impl Into<String>) {
        self.verdicts.push(Verdict::new(rule, outcome, note));
    }

    pub fn finding(&mut self, draft: Draft) {
        self.findings.push(draft);
    }

    pub fn extend(&mut self, other: Judgement) {
        self.verdicts.extend(other.verdicts);
        self.findings.extend(other.findings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_serialise_as_documented() {
        assert_eq!(serde_json::to_value(RuleId::T2).unwrap(), "T2");
        assert_eq!(
            serde_json::to_value(FindingKind::RefusedWhileProxyDown).unwrap(),
            "refused_while_proxy_down"
        );
        assert_eq!(
            serde_json::to_value(Outcome::NotApplicable).unwrap(),
            "not_applicable"
        );
        assert!(Severity::Error > Severity::Warning && Severity::Warning > Severity::Info);
    }

    #[test]
    fn evidence_is_sorted_and_unique() {
        let f = Draft::new(
            RuleId::T2,
            FindingKind::SidecarStoppedEarly,
            Severity::Error,
            Some("proxy"),
            "m".into(),
        )
        .with_evidence([Some(9), None, Some(3), Some(9)])
        .into_finding("ns", "p");
        assert_eq!(f.evidence, vec![3, 9]);
        assert_eq!(f.container.as_deref(), Some("proxy"));
    }
}
