//! The driver's handle on a pod's `containerd-shim-runc-v2`: every stop
//! signal goes through it, so the kernel sees a short-lived `runc` whose
//! parent is `containerd-shim` send it, as on a containerd node.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use serde::Deserialize;

use super::binaries::Binaries;

/// What failed talking to the shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("cannot start the shim: {0}")]
    StartFailed(std::io::Error),
    #[error("the shim is gone (writing the request failed: {0})")]
    RequestFailed(std::io::Error),
    #[error("the shim did not answer within 10 s")]
    NoAnswer,
    #[error("the shim's answer is malformed: {0}")]
    MalformedAnswer(String),
}

/// One process runc signalled.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct RuncTarget {
    pub pid: u32,
    pub errno: i32,
}

/// What `runc kill` reported: its kill(2) calls happened between the two
/// boot-clock times.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct RuncReport {
    pub before_boot_ns: u64,
    pub after_boot_ns: u64,
    pub signal: i32,
    pub targets: Vec<RuncTarget>,
}

/// One kill through the shim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillReport {
    pub runc_pid: u32,
    pub runc_exit: i32,
    pub shim_pid: u32,
    pub report: RuncReport,
}

type Pending = Arc<Mutex<HashMap<u64, mpsc::Sender<String>>>>;

/// A running shim; its stdin closes (and it exits) on drop.
pub struct Shim {
    pid: u32,
    stdin: Mutex<Option<ChildStdin>>,
    pending: Pending,
    next_id: AtomicU64,
    child: Mutex<Child>,
    reader: Option<JoinHandle<()>>,
}

impl Shim {
    /// Starts `containerd-shim-runc-v2 -namespace k8s.io -id <sandbox>`.
    pub fn start(binaries: &Binaries, sandbox_id: &str) -> Result<Self, ShimError> {
        let mut child = Command::new(&binaries.shim)
            .args(["-namespace", "k8s.io", "-id", sandbox_id])
            .args(["-address", "/run/containerd/containerd.sock"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(ShimError::StartFailed)?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ShimError::StartFailed(std::io::Error::other("shim stdout missing")))?;
        let pending: Pending = Arc::default();
        let replies = pending.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let id = line
                    .split_whitespace()
                    .next()
                    .and_then(|i| i.parse::<u64>().ok());
                let waiter = id.and_then(|id| {
                    replies
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id)
                });
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(line);
                    }
                    None => tracing::warn!(%line, "unexpected shim output"),
                }
            }
        });
        Ok(Self {
            pid: child.id(),
            stdin: Mutex::new(stdin),
            pending,
            next_id: AtomicU64::new(1),
            child: Mutex::new(child),
            reader: Some(reader),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `runc kill PID SIGNAL`.
    pub fn kill(&self, pid: u32, signal: i32) -> Result<KillReport, ShimError> {
        self.request(&format!("kill {pid} {signal}"))
    }

    /// `runc kill --all`: every process in the container's cgroup (what
    /// containerd does for a container without its own PID namespace).
    pub fn kill_all(&self, cgroup: &Path, signal: i32) -> Result<KillReport, ShimError> {
        self.request(&format!("kill-all {} {signal}", cgroup.display()))
    }

    fn request(&self, body: &str) -> Result<KillReport, ShimError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        {
            let mut stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
            let stdin = stdin
                .as_mut()
                .ok_or_else(|| ShimError::RequestFailed(std::io::Error::other("closed")))?;
            writeln!(stdin, "{id} {body}")
                .and_then(|()| stdin.flush())
                .map_err(ShimError::RequestFailed)?;
        }
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| ShimError::NoAnswer)?;
        let mut fields = line.splitn(4, ' ');
        let (_, runc_pid, runc_exit, report) =
            (fields.next(), fields.next(), fields.next(), fields.next());
        let malformed = || ShimError::MalformedAnswer(line.clone());
        let report: RuncReport =
            serde_json::from_str(report.ok_or_else(malformed)?).map_err(|_| malformed())?;
        Ok(KillReport {
            runc_pid: runc_pid
                .and_then(|p| p.parse().ok())
                .ok_or_else(malformed)?,
            runc_exit: runc_exit
                .and_then(|p| p.parse().ok())
                .ok_or_else(malformed)?,
            shim_pid: self.pid,
            report,
        })
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
