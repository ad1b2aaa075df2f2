//! Running `lifecycle-agent run` as a child process and talking to its
//! endpoints, for the daemon's end-to-end tests.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

pub use lifecycle_testkit::{free_local_addr as free_addr, http_get as get};

use super::agent::AGENT;

/// Polls `check` every 100 ms until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, check: impl FnMut() -> Option<T>) -> Option<T> {
    lifecycle_testkit::poll(limit, Duration::from_millis(100), check)
}

/// The value of an unlabelled sample in Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (metric, value) = l.rsplit_once(' ')?;
        (metric == name).then(|| value.parse().ok())?
    })
}

/// Sum of every sample of a metric (any labels).
pub fn sum_of(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (metric, value) = l.rsplit_once(' ')?;
            let base = metric.split('{').next()?;
            (base == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// A running daemon.
pub struct Daemon {
    pub child: Child,
    pub health: SocketAddr,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `run` with its endpoints on a free port, logging to a file.
    pub fn start(dir: &Path, name: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let health = free_addr();
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = Command::new(AGENT);
        cmd.arg("run")
            .arg("--health-addr")
            .arg(health.to_string())
            .args(args)
            .env("LIFECYCLE_AGENT_LOG", "info,lifecycle_agent=debug")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn lifecycle-agent run");
        Self {
            child,
            health,
            stderr_path,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        get(self.health, path)
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").map(|(_, b)| b).unwrap_or_default()
    }

    /// Waits for `/readyz` to answer `status`; returns its body.
    pub fn wait_readyz(&self, status: u16, limit: Duration) -> Option<String> {
        wait_for(limit, || {
            self.get("/readyz")
                .filter(|(s, _)| *s == status)
                .map(|(_, b)| b)
        })
    }

    /// SIGTERM, then the exit status (SIGKILL after `limit`).
    pub fn terminate(mut self, limit: Duration) -> (ExitStatus, String) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, self.stderr());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().expect("wait");
                return (status, self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record of the journal files in `dir` (files in no set order).
pub fn journal(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    files
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}
