//! One run of a container: its cgroup and its main process, watched by a
//! thread that reports the exit as the runtime would (exit code, or 128 +
//! the killing signal).

use std::{
    fs::File, os::unix::process::ExitStatusExt, process::Command, sync::Mutex, thread::JoinHandle,
};

use crate::clock::Stamp;

use super::{
    cgroups::CgroupDir,
    spawn::{Placement, SpawnError, spawn},
};

/// How a container's main process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// What the runtime reports: the exit status, or 128 + signal.
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// When the driver reaped it.
    pub at: Stamp,
}

/// A started container (one restart of it).
pub struct Instance {
    pub name: String,
    /// 64 hex digits, as containerd names containers.
    pub id: String,
    pub pid: u32,
    pub started: Stamp,
    pub cgroup: CgroupDir,
    waiter: Mutex<Option<JoinHandle<()>>>,
}

/// How to run a container's process.
pub struct Launch {
    pub command: Command,
    pub netns: Option<File>,
    pub user: Option<(u32, u32)>,
    pub log: Option<File>,
}

impl Instance {
    /// Starts the process in `cgroup`; `on_exit` runs on the waiter thread
    /// once it has been reaped.
    pub fn start(
        name: &str,
        id: String,
        cgroup: CgroupDir,
        launch: Launch,
        on_exit: impl FnOnce(ExitInfo) + Send + 'static,
    ) -> Result<Self, SpawnError> {
        let placement = Placement {
            cgroup: Some(&cgroup.path),
            netns: launch.netns.as_ref(),
            user: launch.user,
            log: launch.log,
        };
        let mut child = spawn(launch.command, placement)?;
        let started = Stamp::now();
        let pid = child.id();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let at = Stamp::now();
            let (exit_code, signal) = match status {
                Ok(s) => match (s.code(), s.signal()) {
                    (Some(code), _) => (code, None),
                    (None, Some(sig)) => (128 + sig, Some(sig)),
                    (None, None) => (255, None),
                },
                Err(_) => (255, None),
            };
            on_exit(ExitInfo {
                exit_code,
                signal,
                at,
            });
        });
        Ok(Self {
            name: name.to_owned(),
            id,
            pid,
            started,
            cgroup,
            waiter: Mutex::new(Some(waiter)),
        })
    }

    /// Waits for the waiter thread (after the exit was reported).
    pub fn join(&self) {
        let waiter = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(waiter) = waiter {
            let _ = waiter.join();
        }
    }
}

/// 64 random lowercase hex digits.
pub fn new_container_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut file) = File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut file, &mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
