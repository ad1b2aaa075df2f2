//! lifecycle-agent: records what really happens when pods start and stop.
//!
//! Data flow (see ARCHITECTURE.md): eBPF probes -> ring buffer -> [`kernel`]
//! (load, read, decode) -> [`pipeline`] ([`attribution`]: cgroup id ->
//! container; [`clock`]: boot time -> wall time) -> [`event`] records ->
//! [`record`] (NDJSON) / pod model ([`pods`]) / audits / exporters.

pub mod api_events;
pub mod attribution;
// Raw system calls: clock_gettime(2).
#[allow(unsafe_code)]
pub mod clock;
pub mod config;
pub mod config_file;
pub mod error_chain;
pub mod event;
pub mod event_loop;
pub mod export;
// Fuzz target bodies (fuzz/), replayed on their seed corpora by its tests.
pub mod fuzzing;
pub mod join;
// Raw system calls: the BPF ring buffer, unaligned reads of the probes' records, mount(2).
#[allow(unsafe_code)]
pub mod kernel;
pub mod pipeline;
pub mod pods;
// Raw system calls: getrlimit/setrlimit(2), bpf(2), uname(2), capget(2).
#[allow(unsafe_code)]
pub mod preflight;
pub mod recorder;
pub mod run;

pub use lifecycle_audit as audit;
pub use lifecycle_audit::report;
