//! The streaming audit: records in (time order), pod audits out as soon as
//! a pod's story is complete, so the same engine runs live in a daemon and
//! offline on a recording.
//!
//! Per pod the engine keeps its records (capped) and a few markers: when
//! the pod was deleted, when a run-to-completion pod reached
//! Succeeded/Failed with no process left, when its containers became ready.
//! Once the stream has moved `settle_ns` past such a marker, the pod is
//! analysed; a terminated pod is then forgotten. A Job pod that a legacy
//! sidecar keeps running has no such marker: 12 s after a process exit
//! the engine audits it, and if T5 says the sidecar was kept running the
//! audit (`JobStuck`) goes out then, while the pod still runs.

use std::collections::{HashMap, HashSet, VecDeque};

use lifecycle_recording::{
    event::{Event, Record},
    pods::PodChange,
};

use super::{
    config::AuditConfig,
    pod::{Completion, PodAudit, analyze},
    route::pod_uids,
};

/// Check completions at most this often (stream time).
const CHECK_EVERY_NS: i64 = 100_000_000;
/// After a process exit in a pod that is not being deleted, how long until
/// the engine checks whether it is a Job kept running by a legacy sidecar:
/// 2 s past the wait after which T5 says so (12 s).
const STUCK_JOB_CHECK_NS: i64 =
    crate::termination::kill::LEGACY_JOB_WAIT_NS + 2 * lifecycle_recording::time::NS_PER_S;
/// Terminated pods remembered, so late records do not start a new audit.
const FINISHED_KEPT: usize = 4096;

#[derive(Default)]
struct PodState {
    records: Vec<Record>,
    dropped: u64,
    deleted_ns: Option<i64>,
    finished_ns: Option<i64>,
    ready_ns: Option<i64>,
    live: HashSet<(u32, u64)>,
    startup_emitted: bool,
    /// The last process exit, and whether the stuck-Job check ran for it.
    last_exit_ns: Option<i64>,
    stuck_checked_ns: Option<i64>,
    /// Processes found running at agent start, by pid: their coarse start,
    /// its resolution, and the index of their record.
    recovered: HashMap<u32, (u64, u64, usize)>,
}

impl PodState {
    fn note(&mut self, record: &Record) {
        match &record.event {
            Event::Pod(p) => match &p.change {
                PodChange::Deleted { .. } => {
                    self.deleted_ns.get_or_insert(record.time_ns);
                }
                PodChange::PhaseChanged { phase } if phase == "Succeeded" || phase == "Failed" => {
                    self.finished_ns.get_or_insert(record.time_ns);
                }
                PodChange::ConditionTransition { condition }
                    if &*condition.kind == "ContainersReady" && &*condition.status == "True" =>
                {
                    self.ready_ns.get_or_insert(record.time_ns);
                }
                _ => {}
            },
            Event::ProcessExec(e) => {
                self.live.insert((e.process.pid, e.process.start_ns));
            }
            Event::ProcessExit(e) => {
                self.live.remove(&(e.process.pid, e.process.start_ns));
                // Records can come late (held until their container was
                // known): the latest exit counts, not the last to arrive.
                self.last_exit_ns = self.last_exit_ns.max(Some(record.time_ns));
            }
            _ => {}
        }
    }

    /// Keeps a record. A process recovered from `/proc` has a coarse start
    /// time; the first probe record of the same pid whose exact start falls
    /// in its range gives it the exact one, so both name one process.
    fn keep(&mut self, record: Record) {
        if let Event::ProcessExec(e) = &record.event
            && let Some(r) = &e.recovered
        {
            let p = &e.process;
            self.recovered.insert(
                p.pid,
                (p.start_ns, r.start_resolution_ns, self.records.len()),
            );
        } else if !self.recovered.is_empty() {
            for p in record.processes() {
                let Some(&(coarse, resolution, index)) = self.recovered.get(&p.pid) else {
                    continue;
                };
                if p.start_ns >= coarse && p.start_ns < coarse.saturating_add(resolution.max(1)) {
                    self.recovered.remove(&p.pid);
                    if let Some(Event::ProcessExec(e)) =
                        self.records.get_mut(index).map(|r| &mut r.event)
                    {
                        e.process.start_ns = p.start_ns;
                    }
                    if self.live.remove(&(p.pid, coarse)) {
                        self.live.insert((p.pid, p.start_ns));
                    }
                }
            }
        }
        self.records.push(record);
    }

    /// Drops the older half of the socket records (counted as dropped).
    fn compact_sockets(&mut self) {
        let sockets = self
            .records
            .iter()
            .filter(|r| matches!(r.event, Event::Socket(_)))
            .count();
        let mut to_drop = sockets.div_ceil(2);
        let before = self.records.len();
        self.records.retain(|r| {
            let drop = to_drop > 0 && matches!(r.event, Event::Socket(_));
            to_drop -= usize::from(drop);
            !drop
        });
        self.dropped += (before - self.records.len()) as u64;
        // Indices moved: find the recovered records again.
        for (index, record) in self.records.iter().enumerate() {
            if let Event::ProcessExec(e) = &record.event
                && e.recovered.is_some()
                && let Some(entry) = self.recovered.get_mut(&e.process.pid)
            {
                entry.2 = index;
            }
        }
    }

    fn terminated_by(&self, settle_ns: i64) -> Option<i64> {
        let deleted = self.deleted_ns.map(|d| d + settle_ns);
        let finished = self
            .finished_ns
            .filter(|_| self.live.is_empty())
            .map(|f| f + settle_ns);
        match (deleted, finished) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Pod audits from a stream of records.
pub struct AuditEngine {
    config: AuditConfig,
    pods: HashMap<String, PodState>,
    now_ns: i64,
    next_check_ns: i64,
    late_records: u64,
    /// Pods already audited as terminated (the most recent ones).
    finished: HashSet<String>,
    finished_order: VecDeque<String>,
    after_audit: u64,
}

impl AuditEngine {
    /// An engine with no pods in progress that audits with `config`.
    pub fn new(config: AuditConfig) -> Self {
        Self {
            config,
            pods: HashMap::new(),
            now_ns: i64::MIN,
            next_check_ns: i64::MIN,
            late_records: 0,
            finished: HashSet::new(),
            finished_order: VecDeque::new(),
            after_audit: 0,
        }
    }

    /// The settings the engine audits with.
    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// Pods with an audit in progress.
    pub fn pods_in_progress(&self) -> usize {
        self.pods.len()
    }

    /// Records that arrived older than the newest one seen (accepted, and
    /// sorted into place when the pod is analysed).
    pub fn late_records(&self) -> u64 {
        self.late_records
    }

    /// Takes one record; returns the audits completed by the time it
    /// carries (each made of the records before it).
    pub fn push(&mut self, record: Record) -> Vec<PodAudit> {
        if record.time_ns < self.now_ns {
            self.late_records += 1;
        }
        self.now_ns = self.now_ns.max(record.time_ns);
        let out = if self.now_ns >= self.next_check_ns {
            self.next_check_ns = self.now_ns.saturating_add(CHECK_EVERY_NS);
            self.collect_ready()
        } else {
            Vec::new()
        };
        let cap = self.config.max_records_per_pod;
        for uid in pod_uids(&record) {
            if self.finished.contains(uid) {
                self.after_audit += 1;
                continue;
            }
            let state = self.pods.entry(uid.to_owned()).or_default();
            state.note(&record);
            if state.records.len() >= cap && self.config.compact_sockets {
                state.compact_sockets();
            }
            if state.records.len() < cap {
                state.keep(record.clone());
            } else {
                state.dropped += 1;
            }
        }
        out
    }

    /// Moves stream time to `now_ns` without a record (a live daemon calls
    /// it on a timer, so a quiet node still completes its audits); returns
    /// the audits completed by then.
    pub fn advance_to(&mut self, now_ns: i64) -> Vec<PodAudit> {
        if now_ns <= self.now_ns {
            return Vec::new();
        }
        self.now_ns = now_ns;
        self.next_check_ns = now_ns.saturating_add(CHECK_EVERY_NS);
        self.collect_ready()
    }

    /// Records of pods whose audit was already produced (not used).
    pub fn records_after_audit(&self) -> u64 {
        self.after_audit
    }

    fn remember_finished(&mut self, uid: String) {
        if self.finished_order.len() >= FINISHED_KEPT
            && let Some(old) = self.finished_order.pop_front()
        {
            self.finished.remove(&old);
        }
        self.finished.insert(uid.clone());
        self.finished_order.push_back(uid);
    }

    fn collect_ready(&mut self) -> Vec<PodAudit> {
        let settle = self.config.settle_ns;
        let now = self.now_ns;
        let done: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, s)| s.terminated_by(settle).is_some_and(|t| now >= t))
            .map(|(uid, _)| uid.clone())
            .collect();
        let mut out = Vec::new();
        if self.config.emit_startup {
            for (uid, state) in &mut self.pods {
                let ready = state.ready_ns.is_some_and(|r| now >= r + settle);
                if ready && !state.startup_emitted && !done.contains(uid) {
                    state.startup_emitted = true;
                    out.push(Self::analyse(
                        uid,
                        state,
                        now,
                        &self.config,
                        Completion::StartupComplete,
                    ));
                }
            }
        }
        out.extend(self.stuck_jobs(&done));
        for uid in done {
            if let Some(mut state) = self.pods.remove(&uid) {
                out.push(Self::analyse(
                    &uid,
                    &mut state,
                    now,
                    &self.config,
                    Completion::Terminated,
                ));
                self.remember_finished(uid);
            }
        }
        out
    }

    /// Pods not being deleted whose last exit was [`STUCK_JOB_CHECK_NS`]
    /// ago: if the audit then shows a Job's legacy sidecar kept running
    /// (T5), the pod is audited now, as `JobStuck`, and forgotten.
    fn stuck_jobs(&mut self, done: &[String]) -> Vec<PodAudit> {
        let now = self.now_ns;
        let due: Vec<String> = self
            .pods
            .iter()
            .filter(|(uid, s)| {
                s.deleted_ns.is_none()
                    && !done.contains(uid)
                    && s.last_exit_ns
                        .is_some_and(|x| now >= x + STUCK_JOB_CHECK_NS)
                    && s.stuck_checked_ns != s.last_exit_ns
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        let mut out = Vec::new();
        for uid in due {
            let Some(state) = self.pods.get_mut(&uid) else {
                continue;
            };
            state.stuck_checked_ns = state.last_exit_ns;
            let audit = Self::analyse(&uid, state, now, &self.config, Completion::JobStuck);
            let stuck = audit
                .findings
                .iter()
                .any(|f| f.kind == crate::finding::FindingKind::JobSidecarsKeptRunning);
            if stuck {
                self.pods.remove(&uid);
                self.remember_finished(uid);
                out.push(audit);
            }
        }
        out
    }

    fn analyse(
        uid: &str,
        state: &mut PodState,
        now: i64,
        config: &AuditConfig,
        completion: Completion,
    ) -> PodAudit {
        state.records.sort_by_key(|r| (r.time_ns, r.seq));
        analyze(uid, &state.records, now, config, state.dropped, completion)
    }

    /// The end of the input: audits every pod still in progress.
    pub fn finish(mut self) -> Vec<PodAudit> {
        let mut out = self.collect_ready();
        let now = self.now_ns;
        let mut rest: Vec<(String, PodState)> = self.pods.drain().collect();
        rest.sort_by_key(|(_, s)| s.records.first().map(|r| r.time_ns));
        for (uid, mut state) in rest {
            // Nothing more will come: a deleted pod's story is complete.
            let completion = if state.terminated_by(0).is_some() {
                Completion::Terminated
            } else {
                Completion::EndOfInput
            };
            out.push(Self::analyse(
                &uid,
                &mut state,
                now,
                &self.config,
                completion,
            ));
        }
        out
    }
}

/// Audits a whole recording: sorts it by time, streams it through an
/// engine, and returns every pod's audit (ordered by namespace and name).
pub fn audit_records(mut records: Vec<Record>, config: &AuditConfig) -> Vec<PodAudit> {
    records.sort_by_key(|r| (r.time_ns, r.seq));
    let mut engine = AuditEngine::new(config.clone());
    let mut out = Vec::new();
    for record in records {
        out.extend(engine.push(record));
    }
    out.extend(engine.finish());
    out.retain(|a| a.completed_by != Completion::StartupComplete);
    out.sort_by(|a, b| {
        (&a.pod.namespace, &a.pod.name, a.first_ns, &a.pod.uid).cmp(&(
            &b.pod.namespace,
            &b.pod.name,
            b.first_ns,
            &b.pod.uid,
        ))
    });
    out
}
