//! What an audit concludes: a verdict per rule, and findings a person acts on.
//!
//! Rule ids are those of the lifecycle rules (S1–S4 startup, T1–T7
//! termination, X1–X2 signal senders, A1 API precision, M1–M4 meshes, D1
//! local dependencies). A
//! [`Verdict`] says whether a rule held for a pod; a [`Finding`] is one
//! observation worth reporting (a violation, a lost request, a measured
//! legacy hazard), with the `seq` numbers of the records that show it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A lifecycle rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RuleId {
    /// Init containers run one at a time in spec order: each later
    /// init-section container execs only after every earlier init container exited 0.
    S1,
    /// Native sidecars (kubelet ≥ 1.29): every container declared after a sidecar
    /// execs after the sidecar's PID 1 and, with a startupProbe on a numeric port,
    /// after the sidecar listened on that port.
    S2,
    /// Main containers exec only after every init container completed.
    S3,
    /// Legacy Istio `holdApplicationUntilProxyStarts` / Linkerd `proxy-await`: app
    /// containers exec only after the proxy listened on its outbound capture port.
    S4,
    /// Exec preStop hooks start within 1 s of t0; each main container's stop signal
    /// comes after its own preStop ended and by the grace deadline + 1 s.
    T1,
    /// Ordered termination: a native sidecar gets its stop signal only after every
    /// main container and every later-declared native sidecar exited (before the deadline).
    T2,
    /// SIGKILL no earlier than max(deadline, stop signal + 2 s) − 1 s, and every
    /// container running at t0 gone by the deadline + 3 s.
    T3,
    /// Parallel termination (legacy or no native sidecars, kubelet 1.28): the stop
    /// order is measured and reported, never judged.
    T4,
    /// Job completion: no native sidecar restarts after the main containers
    /// completed, and every sidecar is gone by completion + G + 3 s.
    T5,
    /// Kubelet < 1.37: no sidecar run begins once termination started (after t0).
    T6,
    /// A never-started native sidecar must not hold back the stop signal of earlier
    /// running sidecars until the deadline (kubelet bug #125880, fixed in 1.31 and
    /// in later 1.29/1.30 patches).
    T7,
    /// Stop signals and SIGKILLs to a container's PID 1 come from the runtime
    /// (runc/crun/runsc under containerd-shim or crio), the container itself or the kernel.
    X1,
    /// The runtime sends a container's stop signal once per stop, unless the grace
    /// period changed in between.
    X2,
    /// API times are whole seconds and trail the kernel, so no sub-second claim rests on
    /// them: held when the kernel orders every sidecar/main exit pair of one API second.
    A1,
    /// Istio: a native proxy exits after every main container; with a legacy proxy,
    /// no app connection starts after the proxy exited.
    M1,
    /// Linkerd legacy with `proxy-wait-before-exit-seconds` N: the proxy's stop
    /// signal comes no earlier than t0 + N − 0.5 s.
    M2,
    /// No app traffic leaves the pod in plaintext past the mesh proxy, apart from
    /// ports and CIDRs excluded by annotation.
    M3,
    /// Connects refused by the capture while the proxy is down are fail-closed
    /// (lost requests), never counted as bypass.
    M4,
    /// A container's local dependency (a port another container of the pod
    /// listened on, reached over loopback) is there while it runs: each
    /// connection refused after that listener closed is blamed on the
    /// container whose listener was missing.
    D1,
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
    /// S2/S4: an app connected, or accepted a connection, before its sidecar
    /// listened (the startup race).
    StartupRace,
    /// S3: a main container started before the init containers completed.
    MainBeforeInitialized,
    /// S4: with hold/await, the app started before the proxy was ready.
    StartedBeforeProxyReady,
    /// S4: the proxy's postStart hold hook (`pilot-agent wait`,
    /// `linkerd-await`) failed: FailedPostStartHook, the proxy killed, the
    /// app started without it.
    PostStartHookFailed,
    /// T1: an exec preStop hook started more than 1 s after t0.
    PreStopLate,
    /// T1: a main container's stop signal came after t0 + G + 1 s.
    StopSignalLate,
    /// T1: a stop signal arrived before the container's own preStop ended.
    StopBeforePreStopEnded,
    /// T2: a sidecar was stopped while a main or later sidecar still ran.
    SidecarStoppedEarly,
    /// T3: SIGKILL before max(deadline, stop signal + 2 s), less 1 s of slack.
    EarlySigkill,
    /// T3: the container did not stop within its grace and was SIGKILLed on time
    /// (the rule working as designed; the message says why it did not stop).
    Sigkilled,
    /// T3: a native sidecar was stopped at the deadline while containers it waits
    /// for still ran: the grace ran out and the order collapsed (not a T2 violation).
    GraceExhausted,
    /// T3: a container running at t0 exited only after the deadline + 3 s, or was
    /// still running when the recording ended past it.
    AliveAfterDeadline,
    /// T2 (info): a native sidecar's own preStop (a leftover `sleep N`) kept it
    /// running well after the main containers exited.
    SidecarHeldByPreStop,
    /// T3 (info): native sidecars got their stop signal with less than 2 s
    /// of the grace left (the app used nearly all of it).
    SidecarsShortOfTime,
    /// T4: in a legacy pod a sidecar exited while a main container ran.
    LegacySidecarExitedFirst,
    /// T5: a sidecar restarted after the Job's main containers completed.
    JobSidecarRestarted,
    /// T5: a sidecar still ran past completion + G + 3 s of a Job pod (error for
    /// native sidecars, warning for legacy ones, which T5 does not cover).
    JobSidecarsKeptRunning,
    /// T5 (advisory): a legacy sidecar's non-zero exit failed a Job pod whose
    /// main containers all exited 0.
    JobFailedBySidecar,
    /// T6: a sidecar restarted after termination began.
    RestartDuringTermination,
    /// T7: a never-started sidecar held back the others' stop signals.
    BlockedByNeverStartedSidecar,
    /// X1: a stop signal or SIGKILL to PID 1 came from a host process or another
    /// container, not from the container runtime.
    UnexpectedSender,
    /// X2: the runtime sent the same stop signal again without a grace change.
    RepeatedStopSignal,
    /// M1: the proxy exited before the app (native) or the app kept
    /// sending after the proxy exited (legacy).
    ProxyGoneBeforeApp,
    /// M2: the Linkerd proxy was stopped before its wait-before-exit.
    ProxyStoppedBeforeWait,
    /// M3: a window in which workloads were alive but the proxy was not listening
    /// (info: its length, cause and flow count).
    BypassWindow,
    /// M3: app traffic left the pod without the proxy.
    PlaintextBypass,
    /// M4: app connections refused by the capture while the proxy was down.
    RefusedWhileProxyDown,
    /// D1: during termination a sidecar stopped listening, on its stop signal,
    /// while an app that connects to it still ran (a log shipper: final logs
    /// lost; a database proxy: the app's cleanup queries refused).
    SidecarGoneBeforeApp,
    /// D1: a native sidecar stopped listening during termination without its
    /// stop signal (it crashed, or its preStop ended it) while an app that
    /// connects to it still ran; kubelets before 1.37 do not restart it.
    SidecarLostDuringTermination,
    /// D1: a sidecar's connections to an app's port were refused because the
    /// app no longer listened: the app was gone, not the sidecar or the mesh.
    AppGoneBeforeSidecar,
    /// D1: a sidecar's connections to an app's port were refused before the
    /// app first listened there (or on a declared port it never opened):
    /// the app not accepting, not the sidecar or the mesh.
    AppNotAccepting,
    /// D1: connections to another container's port refused while it did not
    /// listen, outside the cases above (a crash while the pod ran).
    LocalListenerGone,
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
    /// The rule judged.
    pub rule: RuleId,
    /// What the judgement came to.
    pub outcome: Outcome,
    /// Why, in a few words.
    pub note: String,
}

impl Verdict {
    /// A verdict of `rule` with `outcome` and its note.
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
    /// The rule the finding is about; it need not be broken (`sigkilled`,
    /// `refused_while_proxy_down` report a rule that held).
    pub rule: RuleId,
    /// What was observed.
    pub kind: FindingKind,
    /// How much it matters.
    pub severity: Severity,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
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
    /// The rule the finding is about.
    pub rule: RuleId,
    /// What was observed.
    pub kind: FindingKind,
    /// How much it matters.
    pub severity: Severity,
    /// The container the finding is about, when there is one.
    pub container: Option<String>,
    /// One line for a person.
    pub message: String,
    /// `seq` numbers of the records that show it, in any order, maybe repeated.
    pub evidence: Vec<u64>,
}

impl Draft {
    /// A draft about `container` (if any), without evidence yet.
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

    /// The finding for the pod `namespace`/`pod`, its evidence sorted and
    /// deduplicated.
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
    /// One per rule the group judged.
    pub verdicts: Vec<Verdict>,
    /// Findings, not yet tied to a pod.
    pub findings: Vec<Draft>,
}

impl Judgement {
    /// Records the verdict of `rule`.
    pub fn verdict(&mut self, rule: RuleId, outcome: Outcome, note: impl Into<String>) {
        self.verdicts.push(Verdict::new(rule, outcome, note));
    }

    /// Records a finding.
    pub fn finding(&mut self, draft: Draft) {
        self.findings.push(draft);
    }

    /// Appends another group's verdicts and findings.
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
