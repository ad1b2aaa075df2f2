//! Building the Kubernetes client the pod watch uses.
//!
//! With an explicit kubeconfig path the client talks to the cluster (or
//! test server) that file names. Without one, the configuration is inferred:
//! `$KUBECONFIG` / `~/.kube/config` when present, otherwise the in-cluster
//! service-account configuration a DaemonSet pod gets.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file could not be read or parsed.
    #[error("kubeconfig {path} is unreadable: {source}")]
    KubeconfigUnreadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig was read but names no usable cluster/user/context.
    #[error("kubeconfig {path} is not usable: {source}")]
    KubeconfigInvalid {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither a local kubeconfig nor the in-cluster environment was found.
    #[error("no Kubernetes configuration found: {0}")]
    ConfigInferenceFailed(#[source] kube::config::InferConfigError),
    /// The configuration was found but the client could not be built
    /// (e.g. bad certificates).
    #[error("cannot build the Kubernetes client: {0}")]
    ClientBuildFailed(#[source] kube::Error),
}

/// Builds a client from `kubeconfig`, or infers the configuration when `None`.
pub async fn make_client(kubeconfig: Option<PathBuf>) -> Result<kube::Client, ClientError> {
    let config = load_config(kubeconfig).await?;
    kube::Client::try_from(config).map_err(ClientError::ClientBuildFailed)
}

/// The same without the client's own retries of 429/503/504: for a caller
/// that counts each failed attempt and backs off itself (the Events task).
pub async fn make_client_without_retries(
    kubeconfig: Option<PathBuf>,
) -> Result<kube::Client, ClientError> {
    let mut config = load_config(kubeconfig).await?;
    config.default_retry = false;
    kube::Client::try_from(config).map_err(ClientError::ClientBuildFailed)
}

async fn load_config(kubeconfig: Option<PathBuf>) -> Result<kube::Config, ClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(&path).map_err(|source| {
                ClientError::KubeconfigUnreadable {
                    path: path.clone(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|source| ClientError::KubeconfigInvalid { path, source })?
        }
        None => kube::Config::infer()
            .await
            .map_err(ClientError::ConfigInferenceFailed)?,
    };
    tracing::debug!(cluster_url = %config.cluster_url, "kubernetes client configured");
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_kubeconfig_is_unreadable() {
        let Err(err) = make_client(Some(PathBuf::from("/nonexistent/kubeconfig"))).await else {
            panic!("a missing file must not yield a client");
        };
        assert!(
            matches!(err, ClientError::KubeconfigUnreadable { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn kubeconfig_without_context_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "apiVersion: v1\nkind: Config\nclusters: []\n").unwrap();
        let Err(err) = make_client(Some(path)).await else {
            panic!("a kubeconfig without contexts must not yield a client");
        };
        assert!(
            matches!(err, ClientError::KubeconfigInvalid { .. }),
            "{err}"
        );
    }
}
