//! What every pod on the node shares: time scale and the cluster's clock,
//! kubelet version, cgroup driver, binaries, the cluster network, the API
//! server and the log.

use std::{collections::BTreeMap, net::SocketAddrV4, path::PathBuf, sync::Arc};

use kube_api_server::TestApiServer;

use crate::{
    clock::{ScenarioClock, TimeScale},
    kubelet::version::KubeletVersion,
    log::SimLog,
    net::ClusterNetwork,
    runtime::{Binaries, CgroupDriver},
};

/// The node-wide context of every pod worker.
pub struct NodeEnv {
    pub node_name: String,
    pub scale: TimeScale,
    /// The cluster's clock, for the API's timestamps.
    pub clock: ScenarioClock,
    pub version: KubeletVersion,
    pub driver: CgroupDriver,
    /// The cgroup2 mount.
    pub cgroup_root: PathBuf,
    pub binaries: Binaries,
    pub cluster: ClusterNetwork,
    pub peers: BTreeMap<String, SocketAddrV4>,
    /// Pod logs and capture rules live here.
    pub workdir: PathBuf,
    pub api: Arc<TestApiServer>,
    pub log: SimLog,
}
