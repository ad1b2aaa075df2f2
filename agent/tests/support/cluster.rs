//! Shared pieces of the audit tests: a test API server driven like a
//! kubelet, a fake container runtime whose kills look like containerd's
//! (`runc` under `containerd-shim`), pod processes in kubelet-style cgroups,
//! and recordings turned back into records.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use kube_api_server::{StatusEditor, TestApiServer, clock::now_s};
use lifecycle_agent::{
    audit::{AuditConfig, PodAudit, audit_records},
    event::Record,
};
use lifecycle_testkit::{spawn_in, workload_path};
use serde_json::Value;

/// A test API server and a kubeconfig for it.
pub struct Cluster {
    pub server: TestApiServer,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Self {
        let server = TestApiServer::start().await.expect("test API server");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        Self {
            server,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Creates the pod; returns its uid.
    pub fn create(&self, manifest: Value) -> String {
        let pod = self.server.create_pod(manifest).expect("create pod");
        pod["metadata"]["uid"].as_str().unwrap().to_owned()
    }

    /// One kubelet status write, now.
    pub fn status(
        &self,
        name: &str,
        edit: impl FnOnce(&mut StatusEditor<'_>) -> Result<(), kube_api_server::DriverError>,
    ) {
        self.server
            .update_status("shop", name, now_s(), edit)
            .expect("status update");
    }

    /// `record --node-name node-a` against this server.
    pub fn record_args(&self) -> Vec<String> {
        vec![
            "--node-name".into(),
            "node-a".into(),
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--pending-max-age".into(),
            "60s".into(),
        ]
    }
}

/// Sends signals the way containerd does: a short-lived `runc` whose parent
/// is `containerd-shim` (both names are symlinks, so the kernel's `comm`
/// carries them).
pub struct FakeRuntime {
    shim: PathBuf,
    runc: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeRuntime {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("containerd-shim");
        let runc = dir.path().join("runc");
        symlink("/bin/sh", &shim).unwrap();
        symlink(workload_path(), &runc).unwrap();
        Self {
            shim,
            runc,
            _dir: dir,
        }
    }

    /// `runc kill <pid> <sig>` run by the shim.
    pub fn kill(&self, pid: u32, signal: i32) {
        let script = format!(
            "'{}' kill {pid} {signal} >/dev/null; true",
            self.runc.display()
        );
        let status = Command::new(&self.shim)
            .arg("-c")
            .arg(script)
            .status()
            .expect("run the fake shim");
        assert!(status.success());
    }
}

/// Starts `cmd` as a container's PID 1 and waits for its `ready` line.
pub fn start_pid1(dir: &Path, cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = spawn_in(dir, cmd);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("ready"),
        "no ready line from {cmd:?}: {line:?}"
    );
    // Keep reading so the process never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    child
}

/// A proxy: accepts connections on `addr` until signalled.
pub fn proxy_command(addr: &str) -> Command {
    let mut cmd = Command::new(workload_path());
    cmd.args(["listen", addr, "100000"]);
    cmd
}

/// A proxy whose listener comes up only after `delay_s` (PID 1 is a shell
/// that then execs the listener).
pub fn slow_proxy_command(addr: &str, delay_s: f64) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(format!(
        "sleep {delay_s}; exec '{}' listen {addr} 100000",
        workload_path().display()
    ));
    cmd
}

/// An app: a shell (PID 1) connecting to `addr` every 100 ms from child
/// processes; on SIGTERM it makes `drain_rounds` more attempts, then exits 0.
pub fn app_command(addr: &str, drain_rounds: u32) -> Command {
    let script = format!(
        "stop=0; n=0; trap 'stop=1' TERM; echo ready; \
         while :; do '{w}' connect {addr} >/dev/null 2>&1; \
         if [ \"$stop\" = 1 ]; then n=$((n+1)); [ \"$n\" -gt {drain_rounds} ] && exit 0; fi; \
         sleep 0.1; done",
        w = workload_path().display()
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    cmd
}

/// Waits for a child in a blocking section of an async test.
pub fn wait(child: &mut Child) -> std::process::ExitStatus {
    tokio::task::block_in_place(|| child.wait().unwrap())
}

/// Parses recording lines back into records.
pub fn records(values: &[Value]) -> Vec<Record> {
    values
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}")))
        .collect()
}

/// Keeps a recording under the target dir (`target/tmp/audit-e2e`).
pub fn save(name: &str, values: &[Value]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("audit-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.ndjson"));
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The audit of pod `uid` in a recording.
pub fn audit_of(values: &[Value], uid: &str) -> PodAudit {
    audit_records(records(values), &AuditConfig::default())
        .into_iter()
        .find(|a| a.pod.uid == uid)
        .unwrap_or_else(|| panic!("pod {uid} not audited"))
}
