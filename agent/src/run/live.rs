//! The live audit: records in as the daemon produces them, audits out to
//! the metrics, the exporter and the log as soon as a pod's story is
//! complete.

use std::collections::{HashSet, VecDeque};

use tracing::{info, warn};

use crate::{
    audit::{AuditConfig, AuditEngine, Completion, PodAudit, Severity},
    event::Record,
};

/// Pods whose startup was already exported, remembered at most.
const STARTUPS_KEPT: usize = 8192;

/// Counts of the live audit, for `/metrics` and the exit summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveCounters {
    pub startup_audits: u64,
    pub termination_audits: u64,
    pub partial_audits: u64,
    /// Audits of pods still running when the agent stopped (not exported).
    pub unfinished_at_stop: u64,
    pub findings: u64,
}

pub struct LiveAudit {
    engine: AuditEngine,
    counters: LiveCounters,
    startups: HashSet<String>,
    startup_order: VecDeque<String>,
}

impl LiveAudit {
    pub fn new(mut config: AuditConfig) -> Self {
        config.emit_startup = true;
        config.compact_sockets = true;
        Self {
            engine: AuditEngine::new(config),
            counters: LiveCounters::default(),
            startups: HashSet::new(),
            startup_order: VecDeque::new(),
        }
    }

    pub fn pods_in_progress(&self) -> usize {
        self.engine.pods_in_progress()
    }

    pub fn push(&mut self, record: Record) -> Vec<PodAudit> {
        let audits = self.engine.push(record);
        self.note(audits)
    }

    /// Moves the audit clock to `now_ns` (wall-clock ns, the records' clock).
    pub fn tick(&mut self, now_ns: i64) -> Vec<PodAudit> {
        let audits = self.engine.advance_to(now_ns);
        self.note(audits)
    }

    /// At stop: the audits of pods whose termination was under way (partial
    /// if it had not finished), and the final counters; pods simply running
    /// are left to the next agent.
    pub fn finish(mut self) -> (Vec<PodAudit>, LiveCounters) {
        let engine = std::mem::replace(&mut self.engine, AuditEngine::new(AuditConfig::default()));
        let mut out = Vec::new();
        for audit in engine.finish() {
            let terminating =
                audit.completed_by == Completion::Terminated || audit.termination.is_some();
            if terminating {
                out.push(audit);
            } else {
                self.counters.unfinished_at_stop += 1;
            }
        }
        let out = self.note(out);
        (out, self.counters)
    }

    /// Whether this audit's startup should be exported: once per pod, and
    /// only when this agent saw it (not for a pod it found running).
    pub fn first_startup(&mut self, audit: &PodAudit) -> bool {
        if audit.startup.is_none() || audit.partial || self.startups.contains(&audit.pod.uid) {
            return false;
        }
        if self.startup_order.len() >= STARTUPS_KEPT
            && let Some(old) = self.startup_order.pop_front()
        {
            self.startups.remove(&old);
        }
        self.startups.insert(audit.pod.uid.clone());
        self.startup_order.push_back(audit.pod.uid.clone());
        true
    }

    fn note(&mut self, audits: Vec<PodAudit>) -> Vec<PodAudit> {
        for audit in &audits {
            match audit.completed_by {
                Completion::StartupComplete => self.counters.startup_audits += 1,
                _ => self.counters.termination_audits += 1,
            }
            self.counters.partial_audits += u64::from(audit.partial);
            self.counters.findings += audit.findings.len() as u64;
            log_audit(audit);
        }
        audits
    }
}

fn log_audit(audit: &PodAudit) {
    info!(
        namespace = %audit.pod.namespace,
        pod = %audit.pod.name,
        pod_uid = %audit.pod.uid,
        completed_by = ?audit.completed_by,
        partial = audit.partial,
        findings = audit.findings.len(),
        "pod audit complete"
    );
    for f in &audit.findings {
        let rule = f.rule.to_string();
        let container = f.container.as_deref().unwrap_or("");
        macro_rules! finding {
            ($level:ident) => {
                $level!(
                    rule = %rule,
                    namespace = %f.namespace,
                    pod = %f.pod,
                    container,
                    severity = %f.severity,
                    "{}",
                    f.message
                )
            };
        }
        if f.severity >= Severity::Warning {
            finding!(warn);
        } else {
            finding!(info);
        }
    }
}
