//! Runs the real kubectl (installed on the machine) against a test server
//! through a kubeconfig in a temporary directory.

use std::path::PathBuf;

use kube_api_server::TestApiServer;

/// A kubeconfig for one server, kept while the value lives.
pub struct Kubectl {
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn for_server(server: &TestApiServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        Self {
            _dir: dir,
            kubeconfig,
        }
    }

    /// kubectl's stdout; panics with its stderr when it fails.
    pub async fn run(&self, args: &[&str]) -> String {
        let kubeconfig = self.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(&args)
                .output()
                .expect("run kubectl (installed by the machine)")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "kubectl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
