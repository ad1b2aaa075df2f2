//! Running the workload binary and reading its event lines.

#![allow(dead_code)] // each test file uses part of it

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError},
    time::{Duration, Instant},
};

pub const BINARY: &str = env!("CARGO_BIN_EXE_node-sim-workload");

/// A directory of its own for one test under cargo's scratch space,
/// removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("node-sim-workload-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("test directory");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The binary under another file name (a hard link, else a copy), as an
    /// image would carry it.
    pub fn install_as(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        if std::fs::hard_link(BINARY, &path).is_err() {
            std::fs::copy(BINARY, &path).expect("copy the workload binary");
        }
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running workload with its stdout read line by line.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    /// The workload's pid as seen from here (the test's pid namespace).
    pub pid: i32,
}

impl Running {
    /// Starts `cmd` with stdout piped; `pid` is the child's.
    pub fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the workload");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = child.id() as i32;
        Self { child, lines, pid }
    }

    /// Starts `program args` as PID 1 of a new pid namespace (`unshare
    /// --pid --fork`); `pid` is then the workload's, not unshare's (unless
    /// the workload was over before it could be seen).
    pub fn as_pid1(program: &Path, args: &[&str]) -> Self {
        let mut running = Self::start(
            Command::new("unshare")
                .args(["--pid", "--fork", "--"])
                .arg(program)
                .args(args),
        );
        let unshare = running.pid;
        running.pid = poll(Duration::from_secs(5), || {
            let workload = children_of(unshare).first().copied();
            workload.or_else(|| (!running.running()).then_some(unshare))
        })
        .expect("unshare forks the workload");
        running
    }

    /// The next line with event `ev`; panics after `timeout`.
    pub fn event(&self, ev: &str, timeout: Duration) -> String {
        let wanted = format!("\"ev\":\"{ev}\"");
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(&wanted) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no {ev} event within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("stdout closed before a {ev} event"),
            }
        }
    }

    /// The lines still to come until stdout closes (at most `timeout`).
    pub fn rest(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        lines
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the child we started (or its forked workload).
        assert_eq!(unsafe { libc::kill(self.pid, signal) }, 0, "kill {signal}");
    }

    /// Whether the process has not exited yet.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits up to `timeout` for the end; kills it and panics after that.
    pub fn exit(mut self, timeout: Duration) -> ExitStatus {
        let status = poll(timeout, || self.child.try_wait().expect("try_wait"));
        status.unwrap_or_else(|| {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("the workload did not exit within {timeout:?}")
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the workload we started.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `pid` field of an event line.
pub fn pid_of(line: &str) -> Option<u32> {
    let (_, rest) = line.split_once("\"pid\":")?;
    rest.split([',', '}']).next()?.parse().ok()
}

/// Calls `f` every 10 ms until it gives something or `timeout` passes.
pub fn poll<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    lifecycle_testkit::poll(timeout, Duration::from_millis(10), f)
}

/// The pids whose parent is `parent`, zombies included (from /proc).
pub fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so start after ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
                == Some(parent)
        })
        .collect()
}
