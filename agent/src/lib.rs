//! lifecycle-agent: records what really happens when pods start and stop.
//!
//! Data flow (see ARCHITECTURE.md): eBPF probes -> ring buffer -> [`kernel`]
//! (load, read, decode) -> [`pipeline`] ([`attribution`]: cgroup id ->
//! container; [`clock`]: boot time -> wall time) -> [`event`] records ->
//! [`record`] (NDJSON) / pod model ([`pods`]) / audits / exporters.

pub mod attribution;
pub mod clock;
pub mod config;
pub mod config_file;
pub mod error_chain;
pub mod event;
pub mod event_loop;
pub mod export;
pub mod join;
pub mod kernel;
pub mod pipeline;
pub mod pods;
pub mod preflight;
pub mod recorder;
pub mod run;

pub use lifecycle_audit as audit;
pub use lifecycle_audit::report;
