//! A blocking CRI v1 client: the calls the kubelet makes to containerd's
//! runtime service, over its gRPC unix socket.
//!
//! The driver's pod workers are threads; each call runs on a small tokio
//! runtime owned by the client (`block_on` from any thread). A failed call
//! names the call, the object it was about and the runtime's own message.

use std::{path::Path, time::Duration};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    self as cri, ContainerConfig, ContainerState, PodSandboxConfig,
    runtime_service_client::RuntimeServiceClient,
};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint, Uri};

/// What failed talking to the runtime.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("cannot start the CRI client's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot connect to the runtime at {socket}: {source}")]
    Connect {
        socket: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("CRI {call} for {target} failed: {}", .source.message())]
    Call {
        call: &'static str,
        target: String,
        #[source]
        source: tonic::Status,
    },
    #[error("CRI {call} for {target}: the answer lacks {what}")]
    Incomplete {
        call: &'static str,
        target: String,
        what: &'static str,
    },
}

/// A sandbox as the runtime reports it.
#[derive(Clone, Debug)]
pub struct SandboxInfo {
    pub id: String,
    pub ip: String,
    /// The pause process (host pid).
    pub pid: u32,
    /// The network namespace file runc joined the sandbox to.
    pub netns: String,
}

/// One `ContainerStatus` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInfo {
    pub state: ContainerState,
    /// Host pid of the container's init (0 once it exited).
    pub pid: u32,
    pub started_at_ns: i64,
    pub finished_at_ns: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
}

/// What an `ExecSync` returned.
#[derive(Clone, Debug)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A connected client; cheap to share between threads.
pub struct Cri {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
}

impl Cri {
    /// Connects to the runtime's gRPC socket.
    pub fn connect(socket: &Path) -> Result<Self, CriError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cri-client")
            .enable_all()
            .build()
            .map_err(CriError::Runtime)?;
        let path = socket.to_path_buf();
        let channel = runtime
            .block_on(async {
                // The URI is required by the builder and ignored by the connector.
                Endpoint::from_static("http://[::]:50051")
                    .connect_timeout(Duration::from_secs(5))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    }))
                    .await
            })
            .map_err(|source| CriError::Connect {
                socket: socket.display().to_string(),
                source,
            })?;
        Ok(Self { runtime, channel })
    }

    fn call<T, F, Fut>(&self, call: &'static str, target: &str, f: F) -> Result<T, CriError>
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = RuntimeServiceClient::new(self.channel.clone());
        self.runtime
            .block_on(f(client))
            .map(tonic::Response::into_inner)
            .map_err(|source| CriError::Call {
                call,
                target: target.to_owned(),
                source,
            })
    }

    /// `RunPodSandbox`; returns the sandbox id.
    pub fn run_pod_sandbox(&self, pod: &str, config: PodSandboxConfig) -> Result<String, CriError> {
        let request = cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        let reply = self.call("RunPodSandbox", pod, |mut c| async move {
            c.run_pod_sandbox(request).await
        })?;
        Ok(reply.pod_sandbox_id)
    }

    /// `PodSandboxStatus` (verbose): address, pause pid, netns file.
    pub fn sandbox_status(&self, pod: &str, id: &str) -> Result<SandboxInfo, CriError> {
        let request = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: true,
        };
        let reply = self.call("PodSandboxStatus", pod, |mut c| async move {
            c.pod_sandbox_status(request).await
        })?;
        let incomplete = |what| CriError::Incomplete {
            call: "PodSandboxStatus",
            target: pod.to_owned(),
            what,
        };
        let status = reply.status.ok_or_else(|| incomplete("status"))?;
        let ip = status
            .network
            .map(|n| n.ip)
            .filter(|ip| !ip.is_empty())
            .ok_or_else(|| incomplete("a pod IP"))?;
        let info: Value = reply
            .info
            .get("info")
            .and_then(|i| serde_json::from_str(i).ok())
            .ok_or_else(|| incomplete("verbose info"))?;
        let pid = info["pid"].as_u64().ok_or_else(|| incomplete("the pid"))? as u32;
        let netns = info
            .pointer("/runtimeSpec/linux/namespaces")
            .and_then(Value::as_array)
            .and_then(|ns| ns.iter().find(|n| n["type"] == "network"))
            .and_then(|n| n["path"].as_str())
            .ok_or_else(|| incomplete("the network namespace path"))?
            .to_owned();
        Ok(SandboxInfo {
            id: id.to_owned(),
            ip,
            pid,
            netns,
        })
    }

    /// `CreateContainer` in a sandbox; returns the container id.
    pub fn create_container(
        &self,
        target: &str,
        sandbox_id: &str,
        config: ContainerConfig,
        sandbox_config: PodSandboxConfig,
    ) -> Result<String, CriError> {
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_owned(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let reply = self.call("CreateContainer", target, |mut c| async move {
            c.create_container(request).await
        })?;
        Ok(reply.container_id)
    }

    pub fn start_container(&self, target: &str, id: &str) -> Result<(), CriError> {
        let request = cri::StartContainerRequest {
            container_id: id.to_owned(),
        };
        self.call("StartContainer", target, |mut c| async move {
            c.start_container(request).await
        })
        .map(drop)
    }

    /// `StopContainer(timeout)`: the runtime sends the stop signal, and
    /// SIGKILL once `timeout_s` passed; returns when the container stopped.
    pub fn stop_container(&self, target: &str, id: &str, timeout_s: i64) -> Result<(), CriError> {
        let request = cri::StopContainerRequest {
            container_id: id.to_owned(),
            timeout: timeout_s,
        };
        self.call("StopContainer", target, |mut c| async move {
            c.stop_container(request).await
        })
        .map(drop)
    }

    /// [`Self::stop_container`], abandoned when `cancel` changes (the
    /// kubelet died): the request is reset, so containerd stops waiting and
    /// sends no SIGKILL. `Ok(false)` when abandoned.
    pub fn stop_container_until(
        &self,
        target: &str,
        id: &str,
        timeout_s: i64,
        mut cancel: tokio::sync::watch::Receiver<u64>,
    ) -> Result<bool, CriError> {
        let request = cri::StopContainerRequest {
            container_id: id.to_owned(),
            timeout: timeout_s,
        };
        let mut client = RuntimeServiceClient::new(self.channel.clone());
        let outcome = self.runtime.block_on(async move {
            tokio::select! {
                reply = client.stop_container(request) => Some(reply),
                _ = cancel.changed() => None,
            }
        });
        match outcome {
            None => Ok(false),
            Some(reply) => reply.map(|_| true).map_err(|source| CriError::Call {
                call: "StopContainer",
                target: target.to_owned(),
                source,
            }),
        }
    }

    /// `ContainerStatus` (verbose, for the init's pid).
    pub fn container_status(&self, target: &str, id: &str) -> Result<ContainerInfo, CriError> {
        let request = cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: true,
        };
        let reply = self.call("ContainerStatus", target, |mut c| async move {
            c.container_status(request).await
        })?;
        let status = reply.status.ok_or(CriError::Incomplete {
            call: "ContainerStatus",
            target: target.to_owned(),
            what: "status",
        })?;
        let pid = reply
            .info
            .get("info")
            .and_then(|i| serde_json::from_str::<Value>(i).ok())
            .and_then(|i| i["pid"].as_u64())
            .unwrap_or(0) as u32;
        Ok(ContainerInfo {
            state: status.state(),
            pid,
            started_at_ns: status.started_at,
            finished_at_ns: status.finished_at,
            exit_code: status.exit_code,
            reason: status.reason,
            message: status.message,
        })
    }

    pub fn remove_container(&self, target: &str, id: &str) -> Result<(), CriError> {
        let request = cri::RemoveContainerRequest {
            container_id: id.to_owned(),
        };
        self.call("RemoveContainer", target, |mut c| async move {
            c.remove_container(request).await
        })
        .map(drop)
    }

    pub fn stop_pod_sandbox(&self, pod: &str, id: &str) -> Result<(), CriError> {
        let request = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        self.call("StopPodSandbox", pod, |mut c| async move {
            c.stop_pod_sandbox(request).await
        })
        .map(drop)
    }

    pub fn remove_pod_sandbox(&self, pod: &str, id: &str) -> Result<(), CriError> {
        let request = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        self.call("RemovePodSandbox", pod, |mut c| async move {
            c.remove_pod_sandbox(request).await
        })
        .map(drop)
    }

    /// `ExecSync`: runs `cmd` in the container, at most `timeout_s` (0: no
    /// limit), and returns its exit code and output.
    pub fn exec_sync(
        &self,
        target: &str,
        id: &str,
        cmd: Vec<String>,
        timeout_s: i64,
    ) -> Result<ExecResult, CriError> {
        let request = cri::ExecSyncRequest {
            container_id: id.to_owned(),
            cmd,
            timeout: timeout_s,
        };
        let reply = self.call("ExecSync", target, |mut c| async move {
            c.exec_sync(request).await
        })?;
        Ok(ExecResult {
            exit_code: reply.exit_code,
            stdout: String::from_utf8_lossy(&reply.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&reply.stderr).into_owned(),
        })
    }

    /// Every sandbox the runtime knows (for the node's cleanup).
    pub fn list_sandboxes(&self) -> Result<Vec<String>, CriError> {
        let request = cri::ListPodSandboxRequest { filter: None };
        let reply = self.call("ListPodSandbox", "the node", |mut c| async move {
            c.list_pod_sandbox(request).await
        })?;
        Ok(reply.items.into_iter().map(|s| s.id).collect())
    }
}
