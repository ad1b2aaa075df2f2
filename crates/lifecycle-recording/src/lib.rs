//! The lifecycle-agent recording format and the facts it carries.
//!
//! A recording is NDJSON: one [`event::Record`] per line (docs/recording.md).
//! Journals, test fixtures, node-sim and the offline reports all read and
//! write these types, so this crate is the one home of the format: field
//! names here are the file format (add fields, never rename them).
//!
//! * [`event`]: the line and its events (signals, processes, sockets,
//!   cgroups, pods, self-telemetry), [`event::names`] for signal and
//!   `si_code` names;
//! * [`reader`]: reads a recording back, tolerating line types from newer
//!   format revisions;
//! * [`join`]: the Kubernetes names a kernel event carries, and the join's
//!   counters;
//! * [`pods`]: what the API said about a pod, as data: spec facts, status
//!   snapshots and changes, annotations, container kinds, sidecar roles and
//!   the mesh mode;
//! * [`cgroup`]: what a cgroup is (container, pod, QoS parent) and the
//!   parser of kubelet cgroup paths;
//! * [`time`]: RFC 3339 timestamps and the time constants.
//!
//! The conversions from the Kubernetes API types sit behind the `k8s`
//! feature, so readers of recordings do not compile k8s-openapi.

#![warn(missing_docs)]

pub mod cgroup;
pub mod event;
pub mod fuzzing;
pub mod join;

pub mod pods;
pub mod reader;
pub mod time;

pub use event::{Event, FORMAT_VERSION, Record};
pub use reader::{DamagedLine, ReadError, RecordingInfo, read_lines, read_recording};
