//! One pod's audit: the timeline lanes, the startup, termination and bypass
//! audits, every rule's verdict, and the findings.

use lifecycle_recording::{
    event::Record,
    pods::{ContainerKind, MeshMode, SidecarRole},
};
use serde::{Deserialize, Serialize};

use super::{
    bypass::{self, BypassAudit},
    config::AuditConfig,
    finding::{Finding, Judgement, Outcome, RuleId, Verdict},
    startup::{self, StartupAudit},
    termination::{self, ApiOrder, TerminationAudit},
    timeline::{At, PodRef, PodTimeline, SenderClass},
};

/// The controller a pod belongs to, as compared across recordings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Workload {
    /// The pod's namespace.
    pub namespace: String,
    /// `Deployment` for a ReplicaSet named `<deployment>-<pod-template-hash>`,
    /// else the owner kind; `Pod` for pods without an owner.
    pub kind: String,
    /// The owner's name: the Deployment's, the CronJob's, or the pod's own
    /// when it has no owner.
    pub name: String,
}

/// Why the audit was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completion {
    /// The pod was deleted (or a run-to-completion pod finished).
    Terminated,
    /// Its containers were ready (startup audit only).
    StartupComplete,
    /// A Job's main containers completed and a legacy sidecar, which the
    /// kubelet never stops, still ran: the pod stays Running, and its
    /// audit comes now rather than at a delete that may never come.
    JobStuck,
    /// The input ended first.
    EndOfInput,
}

/// A run of a container (PID 1 alive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpan {
    /// Host pid of the run's PID 1.
    pub pid: u32,
    /// `None`: before the recording.
    pub start: Option<At>,
    /// `None`: still running at the end.
    pub end: Option<At>,
    /// As a runtime reports it (the status, or 128 + signal); `None` while
    /// running or when the exit was not seen.
    pub exit_code: Option<i32>,
    /// The runtime's container id of this run (`None` when only the cgroup
    /// id is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// A runtime exec into the container (hook or probe).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSpan {
    /// When the runtime's exec ran.
    pub start: At,
    /// When the exec'd process exited; `None` if not seen.
    pub end: Option<At>,
    /// Path of the program exec'd.
    pub filename: String,
    /// This exec is the container's preStop hook.
    pub prestop: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// A signal to one of the container's processes.
pub struct SignalPoint {
    /// When it was generated.
    pub at: At,
    /// Signal name, e.g. `SIGTERM`.
    pub name: String,
    /// Who sent it.
    pub sender: SenderClass,
    /// The target was the run's PID 1, not another process of the container.
    pub to_pid1: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// A period the container listened on a TCP port.
pub struct ListenSpan {
    /// The local port.
    pub port: u16,
    /// `None`: already listening when the recording started.
    pub start: Option<At>,
    /// `None`: still listening when the recording ended.
    pub end: Option<At>,
}

/// What one container did, for timelines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    /// The container's name.
    pub container: String,
    /// Init, native sidecar, legacy sidecar or app, from the spec, the API or the
    /// join; `None` when none of them said.
    pub kind: Option<ContainerKind>,
    /// What the container is for (mesh proxy, log shipper, …); `None` when
    /// unknown.
    pub role: Option<SidecarRole>,
    /// Its runs, in the order their PID 1 started.
    pub runs: Vec<RunSpan>,
    /// Runtime execs into it (hooks, exec probes, `kubectl exec`).
    pub hooks: Vec<HookSpan>,
    /// Signals to its processes, housekeeping ones ([`HOUSEKEEPING_SIGNALS`])
    /// left out.
    pub signals: Vec<SignalPoint>,
    /// Its listening periods.
    pub listens: Vec<ListenSpan>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// The audit of one pod.
pub struct PodAudit {
    /// Namespace, name and uid.
    pub pod: PodRef,
    /// The controller it belongs to, for grouping across recordings.
    pub workload: Workload,
    /// The kubelet version whose semantics were assumed.
    pub kubelet_assumed: String,
    /// The mesh and its mode from the spec; `none` without spec facts.
    pub mesh_mode: MeshMode,
    /// Whether any container is a native sidecar.
    pub native_sidecars: bool,
    /// One per container: spec order, then containers the spec does not list.
    pub lanes: Vec<Lane>,
    /// `None` when no container started in the recording.
    pub startup: Option<StartupAudit>,
    /// `None` when the recording holds no termination.
    pub termination: Option<TerminationAudit>,
    /// mTLS-bypass windows and flows; `None` when the pod has no known mesh proxy.
    pub bypass: Option<BypassAudit>,
    /// One per rule, in rule order.
    pub verdicts: Vec<Verdict>,
    /// Errors first, then warnings and infos, each by their first evidence.
    pub findings: Vec<Finding>,
    /// Time of the pod's first record, Unix ns (0 without records).
    pub first_ns: i64,
    /// Time of the pod's last record, Unix ns (0 without records).
    pub last_ns: i64,
    /// Records audited (those kept under the per-pod cap).
    pub records: usize,
    /// Records not kept because of the per-pod cap.
    pub dropped_records: u64,
    /// What completed the audit.
    pub completed_by: Completion,
    /// The agent started while the pod was running (processes recovered
    /// from `/proc`): what happened before it started is missing.
    #[serde(default)]
    pub partial: bool,
    /// Damaged recording lines (skipped, their records lost) that may have
    /// belonged to this pod: between readable records inside its span. Any
    /// makes the audit partial.
    #[serde(default)]
    pub damaged_lines: usize,
}

impl PodAudit {
    /// Counts the recording's damaged lines that may have held this pod's
    /// records (see [`PodAudit::damaged_lines`]) and marks it partial.
    pub fn note_damage(&mut self, damaged: &[lifecycle_recording::DamagedLine]) {
        let (first, last) = (self.first_ns, self.last_ns);
        self.damaged_lines = damaged
            .iter()
            .filter(|d| d.may_fall_in(first, last))
            .count();
        self.partial |= self.damaged_lines > 0;
    }

    /// The verdict of `rule`; `None` if it was not judged.
    pub fn verdict(&self, rule: RuleId) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.rule == rule)
    }

    /// The findings about `rule`.
    pub fn findings_of(&self, rule: RuleId) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.rule == rule)
    }
}

fn is_template_hash(suffix: &str) -> bool {
    (5..=10).contains(&suffix.len())
        && suffix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The CronJob of a Job it created: the CronJob controller names each Job
/// `<cronjob>-<scheduled time in minutes since the epoch>` (8 digits or more).
pub fn cronjob_of(job: &str) -> Option<&str> {
    let (base, minutes) = job.rsplit_once('-')?;
    (minutes.len() >= 8 && minutes.bytes().all(|b| b.is_ascii_digit()) && !base.is_empty())
        .then_some(base)
}

/// The workload of a pod: its owner, with a ReplicaSet's template hash
/// dropped so pods of successive rollouts group together, and a CronJob's
/// Jobs grouped under the CronJob.
pub fn workload(tl: &PodTimeline) -> Workload {
    let namespace = tl.pod.namespace.clone();
    let owner = tl.spec.as_ref().and_then(|s| s.owner.as_ref());
    match owner {
        Some(o) if &*o.kind == "ReplicaSet" => match o.name.rsplit_once('-') {
            Some((base, hash)) if is_template_hash(hash) => Workload {
                namespace,
                kind: "Deployment".into(),
                name: base.into(),
            },
            _ => Workload {
                namespace,
                kind: "ReplicaSet".into(),
                name: o.name.to_string(),
            },
        },
        Some(o) if &*o.kind == "Job" && cronjob_of(&o.name).is_some() => Workload {
            namespace,
            kind: "CronJob".into(),
            name: cronjob_of(&o.name).unwrap_or_default().into(),
        },
        Some(o) => Workload {
            namespace,
            kind: o.kind.to_string(),
            name: o.name.to_string(),
        },
        None => Workload {
            namespace,
            kind: "Pod".into(),
            name: tl.pod.name.clone(),
        },
    }
}

/// Signals that say nothing about a lifecycle (child exits, broken pipes,
/// timers, terminal and I/O notifications): left out of the lanes.
pub const HOUSEKEEPING_SIGNALS: &[&str] = &[
    "SIGCHLD",
    "SIGPIPE",
    "SIGWINCH",
    "SIGURG",
    "SIGALRM",
    "SIGVTALRM",
    "SIGPROF",
    "SIGIO",
];

fn lanes(tl: &PodTimeline, termination: Option<&TerminationAudit>) -> Vec<Lane> {
    tl.containers
        .iter()
        .map(|c| {
            let prestop_start =
                termination
                    .and_then(|t| t.container(&c.name))
                    .and_then(|t| match &t.prestop {
                        termination::PreStop::Exec { start, .. } => Some(*start),
                        _ => None,
                    });
            Lane {
                container: c.name.clone(),
                kind: c.kind,
                role: c.role,
                runs: c
                    .instances
                    .iter()
                    .map(|i| RunSpan {
                        pid: i.pid,
                        start: i.exec,
                        end: i.exit.map(|x| x.at),
                        exit_code: i.exit.map(|x| x.code),
                        container_id: (!i.key.starts_with("cgroup:")).then(|| i.key.clone()),
                    })
                    .collect(),
                hooks: c
                    .hooks
                    .iter()
                    .map(|h| HookSpan {
                        start: h.exec,
                        end: h.exit.map(|x| x.at),
                        filename: h.filename.clone(),
                        prestop: Some(h.exec) == prestop_start,
                    })
                    .collect(),
                signals: tl
                    .signals
                    .iter()
                    .filter(|s| {
                        s.container == c.name && !HOUSEKEEPING_SIGNALS.contains(&s.name.as_str())
                    })
                    .map(|s| SignalPoint {
                        at: s.at,
                        name: s.name.clone(),
                        sender: s.sender,
                        to_pid1: tl.is_pid1(s.target_pid, s.target_start_ns),
                    })
                    .collect(),
                listens: c
                    .sockets
                    .listens
                    .iter()
                    .map(|l| ListenSpan {
                        port: l.port,
                        start: l.start,
                        end: l.end,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// A1: where the kernel ordered what the API's whole seconds cannot.
fn a1(termination: Option<&TerminationAudit>, j: &mut Judgement) {
    let pairs = termination
        .map(|t| t.exit_pairs.as_slice())
        .unwrap_or_default();
    let same: Vec<_> = pairs
        .iter()
        .filter(|p| p.api == ApiOrder::SameSecond)
        .collect();
    let api_only = same.iter().filter(|p| p.kernel_gap_s.is_none()).count();
    let note = format!(
        "{} sidecar/main exit pair(s) in the same API second; {} of them ordered by the kernel, {api_only} unknown",
        same.len(),
        same.len() - api_only
    );
    let outcome = if api_only > 0 {
        Outcome::Unknown
    } else {
        Outcome::Held
    };
    j.verdict(RuleId::A1, outcome, note);
}

/// Audits one pod from its records (time order).
pub fn analyze(
    uid: &str,
    records: &[Record],
    horizon_ns: i64,
    config: &AuditConfig,
    dropped_records: u64,
    completed_by: Completion,
) -> PodAudit {
    let tl = PodTimeline::build(uid, records, horizon_ns);
    let mut j = Judgement::default();
    let startup = startup::measure(&tl);
    match &startup {
        Some(s) => j.extend(startup::rules::judge(&tl, s, config)),
        None => {
            for rule in [RuleId::S1, RuleId::S2, RuleId::S3, RuleId::S4] {
                j.verdict(
                    rule,
                    Outcome::Unknown,
                    "no container start in the recording",
                );
            }
        }
    }
    let termination = termination::measure(&tl, config);
    match &termination {
        Some(t) => {
            j.extend(termination::order::judge(&tl, t, config));
            j.extend(termination::held::judge(t));
            j.extend(termination::squeeze::judge(t));
            j.extend(termination::job_phase::judge(&tl, t));
            j.extend(termination::kill::judge(&tl, t, config));
            j.extend(termination::mesh::judge(&tl, t, config));
        }
        None => {
            use RuleId::*;
            for rule in [T1, T2, T3, T4, T5, T6, T7, X2, M1, M2] {
                j.verdict(
                    rule,
                    Outcome::NotApplicable,
                    "no termination in the recording",
                );
            }
        }
    }
    j.extend(termination::senders::judge(&tl, termination.as_ref()));
    j.extend(crate::deps::judge(&tl, termination.as_ref(), config));
    a1(termination.as_ref(), &mut j);
    let bypass = bypass::audit(&tl).map(|(audit, judgement)| {
        j.extend(judgement);
        audit
    });
    j.verdicts.sort_by_key(|v| v.rule);
    let mut findings: Vec<Finding> = j
        .findings
        .into_iter()
        .map(|d| d.into_finding(&tl.pod.namespace, &tl.pod.name))
        .collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.evidence.first().cmp(&b.evidence.first()))
    });
    PodAudit {
        workload: workload(&tl),
        kubelet_assumed: config.kubelet.to_string(),
        mesh_mode: tl.spec.as_ref().map(|s| s.mesh.mode).unwrap_or_default(),
        native_sidecars: tl.containers.iter().any(|c| c.is_native_sidecar()),
        lanes: lanes(&tl, termination.as_ref()),
        startup,
        termination,
        bypass,
        verdicts: j.verdicts,
        findings,
        first_ns: tl.first_ns,
        last_ns: tl.last_ns,
        records: records.len(),
        dropped_records,
        completed_by,
        partial: records.iter().any(
            |r| matches!(&r.event, lifecycle_recording::event::Event::ProcessExec(e) if e.recovered.is_some()),
        ),
        damaged_lines: 0,
        pod: tl.pod,
    }
}

#[cfg(test)]
mod workload_tests {
    use super::cronjob_of;

    #[test]
    fn jobs_of_a_cronjob_group_under_it() {
        assert_eq!(
            cronjob_of("nightly-report-29384720"),
            Some("nightly-report")
        );
        assert_eq!(
            cronjob_of("nightly-report-29384721"),
            Some("nightly-report")
        );
        assert_eq!(cronjob_of("migrate-db"), None);
        assert_eq!(
            cronjob_of("batch-1234"),
            None,
            "too short for a scheduled time"
        );
        assert_eq!(cronjob_of("-29384720"), None);
    }
}
