//! The node's network namespace and the pods' peers in it.
//!
//! The node's containerd runs inside this namespace, so the CNI bridge
//! plugin's `cni0`, the pods' veths and every address stay off the host's
//! network: pods get an address in `10.244.0.0/16` from host-local IPAM
//! with `10.244.0.1` (the bridge) as their default route, and the pods'
//! peers (services) are `/32` addresses in `10.96.0.0/16` on this
//! namespace's loopback, served by one `peer-server` process here.

use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddrV4},
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::Mutex,
};

use super::netns::{NetError, NetNs};

/// The node namespace and its peer services.
pub struct ClusterNetwork {
    ns: NetNs,
    peers: Mutex<Option<Child>>,
    /// Inbound callers of pods (clients in this namespace).
    callers: Mutex<Vec<Child>>,
}

/// A pod's network as CNI set it up in its sandbox.
#[derive(Clone, Debug)]
pub struct PodNetwork {
    /// The network namespace file of the sandbox (containerd's).
    pub netns: PathBuf,
    pub ip: Ipv4Addr,
    /// The bridge's address: the node as the pod sees it.
    pub gateway: Ipv4Addr,
}

/// The bridge's address in the node namespace (the CNI config's gateway).
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);

/// Why the peers could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot start the peer server {program}: {source}")]
    SpawnFailed {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("peer address {0} is outside 10.96.0.0/16, the simulator's service range")]
    OutsideServiceRange(SocketAddrV4),
}

impl ClusterNetwork {
    /// Creates `<prefix>-node` with loopback up and forwarding on.
    pub fn create(prefix: &str) -> Result<Self, NetError> {
        let ns = NetNs::create(&format!("{prefix}-node"))?;
        // Pod to pod goes through the cluster namespace. /proc/sys/net is
        // the namespace of the thread that opens it.
        ns.run_in(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))?
            .map_err(NetError::EnterFailed)?;
        Ok(Self {
            ns,
            peers: Mutex::new(None),
            callers: Mutex::new(Vec::new()),
        })
    }

    pub fn netns(&self) -> &NetNs {
        &self.ns
    }

    /// Puts each peer address on the cluster namespace's loopback and starts
    /// one `peer-server` answering on all of them.
    pub fn start_peers(
        &self,
        workload: &Path,
        peers: &[SocketAddrV4],
        log: Option<File>,
    ) -> Result<(), PeerError> {
        if peers.is_empty() {
            return Ok(());
        }
        let mut ips: Vec<Ipv4Addr> = peers.iter().map(|p| *p.ip()).collect();
        ips.sort();
        ips.dedup();
        for ip in &ips {
            let o = ip.octets();
            if (o[0], o[1]) != (10, 96) {
                let addr = peers
                    .iter()
                    .find(|p| p.ip() == ip)
                    .copied()
                    .unwrap_or(SocketAddrV4::new(*ip, 0));
                return Err(PeerError::OutsideServiceRange(addr));
            }
            self.ns
                .ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"])?;
        }
        let mut cmd = Command::new(workload);
        cmd.arg("peer-server");
        for peer in peers {
            cmd.args(["--listen", &peer.to_string()]);
        }
        let child = super::netns::spawn_in(&mut cmd, self.ns.file(), log).map_err(|source| {
            PeerError::SpawnFailed {
                program: workload.display().to_string(),
                source,
            }
        })?;
        *self.peers.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }

    /// Starts a `caller` in this namespace: a client elsewhere in the
    /// cluster (another pod, an ingress) calling `target` every `every`
    /// for `duration`, in the background. Returns its pid.
    pub fn start_caller(
        &self,
        workload: &Path,
        target: SocketAddrV4,
        every: std::time::Duration,
        duration: std::time::Duration,
        log: Option<File>,
    ) -> std::io::Result<u32> {
        let mut cmd = Command::new(workload);
        cmd.arg("caller")
            .args(["--to", &target.to_string()])
            .args(["--interval-ms", &every.as_millis().max(1).to_string()])
            .args(["--duration-ms", &duration.as_millis().to_string()]);
        let child = super::netns::spawn_in(&mut cmd, self.ns.file(), log)?;
        let pid = child.id();
        self.callers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
        Ok(pid)
    }
}

impl Drop for ClusterNetwork {
    fn drop(&mut self) {
        for mut child in self
            .callers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut child) = self.peers.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
