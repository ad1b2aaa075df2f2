//! Metrics from one pod audit.
//!
//! A pod can be audited twice: once when its startup completed (optional,
//! `Completion::StartupComplete`) and once at its end. Startup facts (the
//! gaps, S1–S4 findings, bypass windows before the proxy started) are
//! counted once per pod uid; everything else only from the final audit.

use lifecycle_recording::time::NS_PER_S;
use opentelemetry::KeyValue;

use super::{Instruments, Telemetry};
use crate::{
    audit::{Completion, PodAudit, bypass::WindowCause, startup::StartupAudit},
    export::{keys, labels, spans::is_startup_rule},
};

impl Telemetry {
    /// Adds one audit to the histograms and counters.
    pub fn record_audit(&self, audit: &PodAudit) {
        self.with(|i| self.record_into(i, audit));
    }

    fn record_into(&self, i: &Instruments, audit: &PodAudit) {
        let base = self.base_labels(audit);
        let startup_only = audit.completed_by == Completion::StartupComplete;
        let startup_new = audit.startup.is_some()
            && self
                .inner
                .startups
                .lock()
                .is_ok_and(|mut seen| seen.insert(&audit.pod.uid));
        // Startup facts count once; an audit without a startup measurement
        // counts them with the rest.
        let count_startup = if audit.startup.is_some() {
            startup_new
        } else {
            !startup_only
        };
        let count_rest = !startup_only;

        let mut labels = base.clone();
        labels.push(KeyValue::new(
            keys::AUDIT_COMPLETED_BY,
            labels::name_of(&audit.completed_by),
        ));
        labels.push(KeyValue::new(keys::AUDIT_PARTIAL, audit.partial));
        i.audits.add(1, &labels);

        if startup_new && let Some(s) = &audit.startup {
            self.record_gaps(i, s, &base);
        }
        for f in &audit.findings {
            let counted = if is_startup_rule(f.rule) {
                count_startup
            } else {
                count_rest
            };
            if counted {
                let mut l = base.clone();
                l.extend([
                    KeyValue::new(keys::FINDING_RULE, f.rule.to_string()),
                    KeyValue::new(keys::FINDING_KIND, labels::name_of(&f.kind)),
                    KeyValue::new(keys::FINDING_SEVERITY, f.severity.to_string()),
                ]);
                i.findings.add(1, &l);
            }
        }
        if count_rest && let Some(t) = &audit.termination {
            for c in &t.containers {
                let l =
                    self.container_labels(&base, &c.container, c.kind.as_ref(), c.role.as_ref());
                if let (Some(s), Some(x)) = (&c.stop_signal, c.exit)
                    && x.at.ns >= s.at.ns
                {
                    i.sigterm_to_exit
                        .record((x.at.ns - s.at.ns) as f64 / NS_PER_S as f64, &l);
                }
                if let Some(g) = c.grace_used {
                    i.grace_used.record(g, &l);
                }
                if c.sigkill.is_some() {
                    i.sigkills.add(1, &l);
                }
            }
        }
        if let Some(b) = &audit.bypass {
            let mode = labels::mesh_mode(&audit.mesh_mode);
            for w in &b.windows {
                let counted = if w.cause == WindowCause::BeforeProxyStart {
                    count_startup
                } else {
                    count_rest
                };
                if !counted {
                    continue;
                }
                let mut l = base.clone();
                l.push(KeyValue::new(keys::MESH_MODE, mode));
                let mut wl = l.clone();
                wl.push(KeyValue::new(keys::BYPASS_CAUSE, labels::name_of(&w.cause)));
                i.bypass_window.record(w.duration_s, &wl);
                let c = &w.counts;
                for (class, n) in [
                    ("refused_by_capture", c.refused_by_capture),
                    ("plaintext_bypass", c.plaintext_bypass),
                    ("proxied", c.proxied),
                    ("excluded", c.excluded),
                    ("local", c.local),
                    ("other", c.other),
                ] {
                    if n > 0 {
                        let mut cl = l.clone();
                        cl.push(KeyValue::new(keys::FLOW_CLASS, class));
                        i.bypass_connections.add(u64::from(n), &cl);
                    }
                }
            }
        }
    }

    fn record_gaps(&self, i: &Instruments, s: &StartupAudit, base: &[KeyValue]) {
        for g in &s.gaps {
            let sidecar = s.container(&g.sidecar);
            let mut l = self.container_labels(
                base,
                &g.app,
                sidecar.and_then(|c| c.kind.as_ref()),
                sidecar.and_then(|c| c.role.as_ref()),
            );
            l.push(KeyValue::new(keys::STARTUP_GAP_KIND, ""));
            let last = l.len() - 1;
            for (kind, value) in [
                ("exec", g.exec_gap_s),
                ("connect", g.connect_gap_s),
                ("accept", g.accept_gap_s),
            ] {
                if let Some(v) = value {
                    l[last] = KeyValue::new(keys::STARTUP_GAP_KIND, kind);
                    i.startup_gap.record(v, &l);
                }
            }
        }
    }

    /// Namespace and owner workload (and the pod with pod labels on).
    fn base_labels(&self, audit: &PodAudit) -> Vec<KeyValue> {
        let w = &audit.workload;
        let pod_labels = self.options().pod_labels;
        // A bare pod (no controller owner) is its own workload, named by the
        // pod: a dashboard templated on workload keeps it. Its series are
        // one per bare pod, which is what a bare pod is.
        let mut out = vec![
            KeyValue::new(keys::K8S_NAMESPACE_NAME, audit.pod.namespace.clone()),
            KeyValue::new(keys::WORKLOAD_KIND, w.kind.clone()),
            KeyValue::new(keys::WORKLOAD_NAME, w.name.clone()),
        ];
        if pod_labels {
            out.push(KeyValue::new(keys::K8S_POD_NAME, audit.pod.name.clone()));
        }
        out
    }

    fn container_labels<K, R>(
        &self,
        base: &[KeyValue],
        container: &str,
        kind: Option<&K>,
        role: Option<&R>,
    ) -> Vec<KeyValue>
    where
        K: serde::Serialize,
        R: serde::Serialize,
    {
        let mut l = base.to_vec();
        l.push(KeyValue::new(keys::CONTAINER_KIND, labels::opt_name(kind)));
        l.push(KeyValue::new(keys::SIDECAR_ROLE, labels::opt_name(role)));
        if self.options().pod_labels {
            l.push(KeyValue::new(
                keys::K8S_CONTAINER_NAME,
                container.to_owned(),
            ));
        }
        l
    }
}
