//! A `lifecycle-agent record` process to read events back from.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// A running recording; `stop` ends it like an operator would (SIGTERM).
pub struct Recording {
    child: Child,
    pub output: PathBuf,
    pub stderr: PathBuf,
    dir: PathBuf,
}

impl Recording {
    /// Starts `agent record` with `extra` arguments and waits until its
    /// probes are attached.
    pub fn start(agent: &Path, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("lifecycle-rec-{}", crate::random_hex(12)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let output = dir.join("events.ndjson");
        let stderr = dir.join("stderr.log");
        let ready = dir.join("ready");
        let child = Command::new(agent)
            .arg("record")
            .arg("--output")
            .arg(&output)
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start lifecycle-agent record");
        let mut recording = Self {
            child,
            output,
            stderr,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            if let Ok(Some(status)) = recording.child.try_wait() {
                panic!("agent exited early ({status}): {}", recording.stderr_text());
            }
            assert!(
                Instant::now() < deadline,
                "agent not ready after 60 s: {}",
                recording.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        recording
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, wait for a clean exit, and parse every line.
    pub fn stop(mut self) -> Vec<Value> {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for agent");
        assert!(
            status.success(),
            "agent exited with {status}: {}",
            self.stderr_text()
        );
        let text = std::fs::read_to_string(&self.output).expect("read recording");
        let records: Vec<Value> = text
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line}: {e}"))
            })
            .collect();
        let _ = std::fs::remove_dir_all(&self.dir);
        records
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
