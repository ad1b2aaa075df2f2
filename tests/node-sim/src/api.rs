//! The test API server with a runtime of its own, for callers without one
//! (the CLI, synchronous tests).

use std::{net::SocketAddr, path::Path, sync::Arc};

use kube_api_server::{ServerOptions, TestApiServer};

use crate::kubelet::KubeletVersion;

/// A running test API server that reports `version` in `/version`.
pub struct SimApi {
    server: Option<Arc<TestApiServer>>,
    runtime: tokio::runtime::Runtime,
}

impl SimApi {
    /// On an ephemeral port of 127.0.0.1.
    pub fn start(version: KubeletVersion) -> std::io::Result<Self> {
        Self::bind("127.0.0.1:0".parse().expect("literal address"), version)
    }

    pub fn bind(addr: SocketAddr, version: KubeletVersion) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sim-api")
            .enable_all()
            .build()?;
        let options = ServerOptions {
            git_version: version.git_version(),
            ..ServerOptions::default()
        };
        let server = runtime.block_on(TestApiServer::bind(addr, options))?;
        Ok(Self {
            server: Some(Arc::new(server)),
            runtime,
        })
    }

    pub fn server(&self) -> Arc<TestApiServer> {
        self.server.clone().expect("present until drop")
    }

    pub fn url(&self) -> String {
        self.server().url()
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        self.server().write_kubeconfig(path)
    }
}

impl Drop for SimApi {
    fn drop(&mut self) {
        let _guard = self.runtime.enter();
        self.server.take();
    }
}
