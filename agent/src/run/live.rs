//! The live audit: records in as the daemon produces them, audits out to
//! the metrics, the exporter and the log as soon as a pod's story is
//! complete.

use tracing::{info, warn};

use crate::{
    audit::{AuditConfig, AuditEngine, Completion, PodAudit, Severity},
    event::Record,
};

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
}

impl LiveAudit {
    pub fn new(mut config: AuditConfig) -> Self {
        config.emit_startup = true;
        config.compact_sockets = true;
        Self {
            engine: AuditEngine::new(config),
            counters: LiveCounters::default(),
        }
    }

    pub fn pods_in_progress(&self) -> usize {
        self.engine.pods_in_progress()
    }

    pub fn push(&mut self, record: Record) -> Vec<PodAudit> {
        let audits = self.engine.push(record);
        note(&mut self.counters, audits)
    }

    /// Moves the audit clock to `now_ns` (wall-clock ns, the records' clock).
    pub fn tick(&mut self, now_ns: i64) -> Vec<PodAudit> {
        let audits = self.engine.advance_to(now_ns);
        note(&mut self.counters, audits)
    }

    /// At stop: the audits of pods whose termination was under way (partial
    /// if it had not finished), and the final counters; pods simply running
    /// are left to the next agent.
    pub fn finish(self) -> (Vec<PodAudit>, LiveCounters) {
        let Self {
            engine,
            mut counters,
        } = self;
        let (terminating, running): (Vec<PodAudit>, Vec<PodAudit>) = engine
            .finish()
            .into_iter()
            .partition(|a| a.completed_by == Completion::Terminated || a.termination.is_some());
        counters.unfinished_at_stop += running.len() as u64;
        let out = note(&mut counters, terminating);
        (out, counters)
    }
}

/// Counts and logs audits on their way out.
fn note(counters: &mut LiveCounters, audits: Vec<PodAudit>) -> Vec<PodAudit> {
    for audit in &audits {
        match audit.completed_by {
            Completion::StartupComplete => counters.startup_audits += 1,
            _ => counters.termination_audits += 1,
        }
        counters.partial_audits += u64::from(audit.partial);
        counters.findings += audit.findings.len() as u64;
        log_audit(audit);
    }
    audits
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
