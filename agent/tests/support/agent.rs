//! The agent binary under test.

use std::process::{Command, Output};

/// The `lifecycle-agent` binary cargo built for these tests.
pub const AGENT: &str = env!("CARGO_BIN_EXE_lifecycle-agent");

/// `lifecycle-agent <args>`, not started, with the environment a test needs
/// to be reproducible: warnings-only logs, and none of the pod's
/// `LIFECYCLE_AGENT_*` settings leaking in from the caller.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(AGENT);
    command
        .args(args)
        .env("LIFECYCLE_AGENT_LOG", "warn")
        .env_remove("LIFECYCLE_AGENT_PROC_ROOT")
        .env_remove("LIFECYCLE_AGENT_NO_MOUNT_TRACEFS")
        .env_remove("LIFECYCLE_AGENT_BTF_PATH")
        .env_remove("LIFECYCLE_AGENT_TRACEFS_PATH");
    command
}

/// Runs `lifecycle-agent <args>` to its exit.
pub fn agent(args: &[&str]) -> Output {
    command(args).output().expect("run lifecycle-agent")
}
