//! The recording's events (the format lives in `lifecycle-recording`) and
//! [`build`]: kernel records -> events, with cgroup attribution.

pub mod build;

pub use lifecycle_recording::event::*;
