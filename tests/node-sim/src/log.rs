//! The driver's own log: what it did, to which container, and when. It is
//! the ground truth the end-to-end tests compare the agent's recording with.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use serde::Serialize;

use crate::clock::Stamp;

/// Which hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPhase {
    PostStart,
    PreStop,
}

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

/// Why containers are being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// A graceful delete of the pod.
    Deletion,
    /// A Job pod's main containers all exited: the sidecars are stopped.
    JobCompletion,
}

/// One thing the driver did or saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    PodCreated {
        uid: String,
    },
    /// RunPodSandbox returned: the pause process and the pod's network.
    SandboxStarted {
        container_id: String,
        pid: u32,
        /// The pod's `containerd-shim-runc-v2` (the pause process's parent).
        shim_pid: u32,
        netns: String,
        pod_ip: String,
    },
    /// The mesh's capture rules are in the pod's network namespace (at the
    /// init container's step, or at sandbox creation for a CNI plugin).
    CaptureInstalled {
        by_init: bool,
    },
    /// StartContainer returned (`at` is the runtime's `startedAt`).
    ContainerStarted {
        container_id: String,
        /// Host pid of the init, from the runtime's verbose status.
        pid: u32,
        /// Its pid in its own pid namespace (`NSpid`), when it still ran.
        ns_pid: Option<u32>,
        restart: u32,
        /// runc's cgroup directory (cgroup v2) and its inode, the id the
        /// kernel reports for it.
        cgroup: String,
        cgroup_id: u64,
        uid: u32,
    },
    /// The runtime reported the exit (`ContainerStatus`; `at` is its
    /// finish time).
    ContainerExited {
        container_id: String,
        pid: u32,
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
    },
    /// A liveness probe failed `failures` times in a row: the kubelet kills
    /// the container, which restarts by the restart policy.
    LivenessFailed {
        failures: u32,
    },
    HookStarted {
        hook: HookPhase,
        /// The command run through `ExecSync` (exec hooks only).
        exec: Option<Vec<String>>,
    },
    HookFinished {
        hook: HookPhase,
        ok: bool,
    },
    ProbeSucceeded {
        probe: ProbeKind,
    },
    /// The kubelet's `Killing`: this container's stop began (preStop first).
    KillingStarted {
        cause: StopCause,
        grace_s: f64,
    },
    /// The container's turn came (sidecar ordering), or it had none to wait for.
    TurnReached {
        waited_ms: u64,
        deadline_hit: bool,
    },
    /// `StopContainer(timeout)` was called: the runtime sends the stop
    /// signal now and SIGKILL once `timeout_s` passed.
    StopRequested {
        timeout_s: i64,
    },
    /// `StopContainer` returned (the container stopped).
    StopReturned,
    DeletionRequested {
        grace_s: i64,
    },
    /// The container's postStart hook failed (the kubelet's
    /// FailedPostStartHook event); the kubelet kills the container.
    PostStartFailed,
    /// A host shell (`sender_pid`, a child of node-sim) ran `kill -s
    /// <signal>` on the container's PID 1 (`target_pid`), outside the runtime.
    HostSignalSent {
        signal: String,
        sender_pid: u32,
        target_pid: u32,
    },
    /// A client outside the pod (`caller_pid`, in the node namespace) began
    /// calling the pod's address on `port`.
    InboundCallsStarted {
        port: u16,
        caller_pid: u32,
    },
    /// A native sidecar that exited before its turn to stop was started
    /// again (KEP-4438, kubelet 1.37+).
    RestartedDuringTermination,
    /// The node's kubelet died (in-flight stops abandoned).
    KubeletStopped,
    /// The node's kubelet started again and posted its `Starting` Event.
    KubeletStarted,
    /// After a kubelet restart the termination starts over, full grace.
    TerminationRetried,
    /// The pod's termination began (t0).
    TerminationStarted {
        cause: StopCause,
        grace_s: f64,
    },
    PhaseChanged {
        phase: String,
    },
    /// StopPodSandbox returned (the pause process is gone).
    SandboxStopped,
    /// RemovePodSandbox returned and the pod cgroup was removed.
    SandboxRemoved,
    PodDeleted,
}

/// One log line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub at: Stamp,
    /// `namespace/name`
    pub pod: String,
    pub container: Option<String>,
    #[serde(flatten)]
    pub action: Action,
}

/// Shared, append-only log.
#[derive(Clone, Default)]
pub struct SimLog {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl SimLog {
    pub fn record(&self, pod: &str, container: Option<&str>, action: Action) -> Stamp {
        self.record_at(Stamp::now(), pod, container, action)
    }

    pub fn record_at(
        &self,
        at: Stamp,
        pod: &str,
        container: Option<&str>,
        action: Action,
    ) -> Stamp {
        tracing::debug!(pod, container, ?action, "node-sim");
        self.lock().push(Entry {
            at,
            pod: pod.to_owned(),
            container: container.map(str::to_owned),
            action,
        });
        at
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every entry so far, in order.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    /// Entries of one pod (`namespace/name`) and, if given, one container.
    pub fn of(&self, pod: &str, container: Option<&str>) -> Vec<Entry> {
        self.lock()
            .iter()
            .filter(|e| {
                e.pod == pod && (container.is_none() || e.container.as_deref() == container)
            })
            .cloned()
            .collect()
    }

    /// Writes the log as NDJSON.
    pub fn write_ndjson(&self, out: &mut impl Write) -> std::io::Result<()> {
        for entry in self.lock().iter() {
            serde_json::to_writer(&mut *out, entry)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}
