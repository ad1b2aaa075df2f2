//! From a pod audit to the Kubernetes Events its findings call for: which
//! findings get one, and what each field says. Pure: no clock, no client.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
};

use lifecycle_audit::{Completion, Finding, FindingKind, PodAudit, RuleId, Severity};
use lifecycle_recording::pods::ContainerKind;

use crate::export::{labels, spans::is_startup_rule};

/// What the API server's validation allows in `note` (bytes).
pub const NOTE_LIMIT: usize = 1024;

/// `type` of an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// One Event to post, before it has a name or a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDraft {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    /// `spec.containers{name}` or `spec.initContainers{name}`.
    pub field_path: Option<String>,
    /// The finding kind in CamelCase (`SidecarStoppedEarly`).
    pub reason: String,
    pub event_type: EventType,
    /// What the pod was doing: see [`action`].
    pub action: &'static str,
    /// The finding's message, at most [`NOTE_LIMIT`] bytes.
    pub note: String,
    /// The finding's rule (for logs).
    pub rule: RuleId,
    /// A hash of pod uid, rule, kind, container and message: the same
    /// finding audited twice has the same identity.
    pub identity: u64,
}

impl EventDraft {
    /// Repeats of the same key aggregate into one Event's `series`.
    pub fn series_key(&self) -> SeriesKey {
        SeriesKey {
            pod_uid: self.pod_uid.clone(),
            field_path: self.field_path.clone(),
            reason: self.reason.clone(),
            action: self.action,
            event_type: self.event_type,
        }
    }
}

/// What makes two Events the same occurrence repeated (client-go's
/// recorder keys on regarding, action, reason and type too; the note of
/// the first one stays).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub pod_uid: String,
    pub field_path: Option<String>,
    pub reason: String,
    pub action: &'static str,
    pub event_type: EventType,
}

/// Why a finding of an audit gets no Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// Info findings post Normal Events only when asked.
    Info,
    /// The audit has no pod name (no pod events were seen for it).
    NoPod,
}

impl Skipped {
    pub fn label(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::NoPod => "no_pod",
        }
    }
}

/// The Events an audit's findings call for, and the findings skipped.
/// Startup rules are posted from the startup audit when there is one; the
/// final audit posts the rest (and the startup rules of a pod that had no
/// startup audit): the same split as the traces and the metrics.
/// `startup_posted`: a startup audit of this pod already went out.
pub fn drafts(
    audit: &PodAudit,
    include_info: bool,
    startup_posted: bool,
) -> (Vec<EventDraft>, Vec<Skipped>) {
    let startup_only = audit.completed_by == Completion::StartupComplete;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for f in &audit.findings {
        let startup = is_startup_rule(f.rule);
        let here = if startup_only {
            startup
        } else {
            !startup || !startup_posted
        };
        if !here {
            continue;
        }
        if f.severity == Severity::Info && !include_info {
            skipped.push(Skipped::Info);
            continue;
        }
        if audit.pod.namespace.is_empty() || f.pod.is_empty() {
            skipped.push(Skipped::NoPod);
            continue;
        }
        out.push(draft(audit, f));
    }
    (out, skipped)
}

fn draft(audit: &PodAudit, f: &Finding) -> EventDraft {
    EventDraft {
        namespace: audit.pod.namespace.clone(),
        pod: audit.pod.name.clone(),
        pod_uid: audit.pod.uid.clone(),
        field_path: f.container.as_deref().map(|c| field_path(audit, c)),
        reason: reason(f.kind),
        event_type: if f.severity == Severity::Info {
            EventType::Normal
        } else {
            EventType::Warning
        },
        action: action(f.rule),
        note: truncate_note(&f.message, NOTE_LIMIT),
        rule: f.rule,
        identity: identity(audit, f),
    }
}

fn identity(audit: &PodAudit, f: &Finding) -> u64 {
    let mut h = DefaultHasher::new();
    (
        &audit.pod.uid,
        f.rule.to_string(),
        labels::name_of(&f.kind),
        &f.container,
        &f.message,
    )
        .hash(&mut h);
    h.finish()
}

/// The Event's `action`, by rule: `Starting` for the startup rules
/// (S1–S4), `Connecting` for the traffic of a bypass window (M3, M4, which
/// can come at either end of the pod's life), `Terminating` for the rest.
pub fn action(rule: RuleId) -> &'static str {
    match rule {
        RuleId::S1 | RuleId::S2 | RuleId::S3 | RuleId::S4 => "Starting",
        RuleId::M3 | RuleId::M4 => "Connecting",
        _ => "Terminating",
    }
}

/// Where the container is in the pod spec, as the kubelet names it in its
/// own Events.
fn field_path(audit: &PodAudit, container: &str) -> String {
    let kind = audit
        .lanes
        .iter()
        .find(|l| l.container == container)
        .and_then(|l| l.kind);
    let list = match kind {
        Some(ContainerKind::NativeSidecar | ContainerKind::Init) => "initContainers",
        _ => "containers",
    };
    format!("spec.{list}{{{container}}}")
}

/// `sidecar_stopped_early` -> `SidecarStoppedEarly`.
pub fn reason(kind: FindingKind) -> String {
    labels::name_of(&kind)
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// `text` cut to at most `limit` bytes on a character boundary, ending in
/// `…` when cut. Control characters other than tab become spaces.
pub fn truncate_note(text: &str, limit: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect();
    if clean.len() <= limit {
        return clean;
    }
    const MORE: &str = "…";
    let mut end = limit.saturating_sub(MORE.len());
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MORE}", &clean[..end])
}

#[cfg(test)]
#[path = "draft_tests.rs"]
mod tests;
