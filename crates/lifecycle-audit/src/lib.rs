//! Lifecycle audits: each pod start and stop in a recording becomes a
//! measured, judged story against the lifecycle rules (S1–S4, T1–T7, X1,
//! X2, A1, M1–M4, D1; see docs/audits.md).
//!
//! The logic is pure: records in, [`PodAudit`]s out.
//!
//! * [`engine::AuditEngine`] takes records in time order and hands back a
//!   pod's audit once its termination is complete (or, optionally, its
//!   startup), or at the end of the input; [`reorder::ReorderBuffer`] puts
//!   a live stream in time order; [`engine::audit_records`] audits a whole
//!   recording (`lifecycle_recording::read_recording` reads one);
//! * [`timeline`] turns a pod's records into facts (runs, hooks, signals,
//!   sockets, API transitions);
//! * [`startup`], [`termination`], [`bypass`] and [`deps`] measure and
//!   judge;
//! * [`finding`] is the vocabulary of verdicts and findings, [`config`]
//!   the assumed kubelet version and tolerances.

#![warn(missing_docs)]

pub mod bypass;
pub mod config;
pub mod deps;
pub mod engine;
pub mod finding;
pub mod fmt;
pub mod mesh;
pub mod pod;
pub mod reorder;
pub mod report;
pub mod route;
pub mod startup;
pub mod termination;
pub mod timeline;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use config::{AuditConfig, KubeletVersion};
pub use engine::{AuditEngine, audit_records};
pub use finding::{Finding, FindingKind, Outcome, RuleId, Severity, Verdict};
pub use pod::{Completion, PodAudit, Workload};
