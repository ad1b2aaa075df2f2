//! What every pod on the node shares: the kubelet version, the runtime
//! (containerd and the CRI client), the node network with the peers, the
//! API server and the log.

use std::{collections::BTreeMap, net::SocketAddrV4, path::PathBuf, sync::Arc};

use kube_api_server::TestApiServer;

use crate::{
    kubelet::version::KubeletVersion,
    log::SimLog,
    net::ClusterNetwork,
    runtime::{Cri, containerd::Containerd},
};

/// The node-wide context of every pod worker. Fields drop in order: the
/// client, then the runtime (which kills what is left and cleans up), then
/// the node namespace it lived in.
pub struct NodeEnv {
    pub node_name: String,
    pub version: KubeletVersion,
    /// The cgroup2 mount.
    pub cgroup_root: PathBuf,
    pub cri: Arc<Cri>,
    pub containerd: Containerd,
    pub cluster: ClusterNetwork,
    pub peers: BTreeMap<String, SocketAddrV4>,
    /// Pod logs and capture rules live here.
    pub workdir: PathBuf,
    pub api: Arc<TestApiServer>,
    pub log: SimLog,
    /// The kubelet's life: its generation goes up when it dies (in-flight
    /// stops are abandoned); see `Node::restart_kubelet`.
    pub kubelet: tokio::sync::watch::Sender<u64>,
}
