//! The "cluster" network namespace and the pods wired to it.
//!
//! Every address here is the simulator's own and lives only in namespaces
//! it created: pods get `10.244.<k>.2/24` on `eth0`, the cluster side of
//! their veth `10.244.<k>.1/24` (the pod's default route), and the pod's
//! peers (services) are `/32` addresses in `10.96.0.0/16` on the cluster
//! namespace's loopback, served by one `peer-server` process there.

use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddrV4},
    path::Path,
    process::{Child, Command},
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

use super::netns::{NetError, NetNs};
use crate::runtime::spawn::{Placement, spawn};

/// The cluster namespace, its peer services and the pods attached to it.
pub struct ClusterNetwork {
    ns: NetNs,
    prefix: String,
    next_pod: AtomicU32,
    peers: Mutex<Option<Child>>,
}

/// A pod's network: its namespace (deleted on drop, taking the veth pair
/// with it) and address.
pub struct PodNetwork {
    pub ns: NetNs,
    pub ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
    /// The cluster-side veth name.
    pub host_veth: String,
}

/// Why the peers could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Spawn(#[from] crate::runtime::spawn::SpawnError),
    #[error("peer address {0} is outside 10.96.0.0/16, the simulator's service range")]
    OutsideServiceRange(SocketAddrV4),
}

impl ClusterNetwork {
    /// Creates `<prefix>-cluster` with forwarding on (pod to pod).
    pub fn create(prefix: &str) -> Result<Self, NetError> {
        let ns = NetNs::create(&format!("{prefix}-cluster"))?;
        // Pod to pod goes through the cluster namespace. /proc/sys/net is
        // the namespace of the thread that opens it.
        ns.run_in(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))?
            .map_err(NetError::EnterFailed)?;
        Ok(Self {
            ns,
            prefix: prefix.to_owned(),
            next_pod: AtomicU32::new(1),
            peers: Mutex::new(None),
        })
    }

    pub fn netns(&self) -> &NetNs {
        &self.ns
    }

    /// A new pod namespace joined to the cluster by a veth pair.
    pub fn add_pod(&self) -> Result<PodNetwork, NetError> {
        let k = self.next_pod.fetch_add(1, Ordering::Relaxed);
        let ns = NetNs::create(&format!("{}-pod{k}", self.prefix))?;
        let ip = Ipv4Addr::new(10, 244, (k % 250) as u8, 2);
        let gateway = Ipv4Addr::new(10, 244, (k % 250) as u8, 1);
        let host_veth = format!("veth{k}");
        self.ns.ip(&[
            "link",
            "add",
            &host_veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ])?;
        self.ns
            .ip(&["addr", "add", &format!("{gateway}/24"), "dev", &host_veth])?;
        self.ns.ip(&["link", "set", &host_veth, "up"])?;
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        ns.ip(&["link", "set", "eth0", "up"])?;
        ns.ip(&["route", "add", "default", "via", &gateway.to_string()])?;
        Ok(PodNetwork {
            ns,
            ip,
            gateway,
            host_veth,
        })
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
        let child = spawn(
            cmd,
            Placement {
                cgroup: None,
                netns: Some(self.ns.file()),
                user: None,
                log,
            },
        )?;
        *self.peers.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }
}

impl Drop for ClusterNetwork {
    fn drop(&mut self) {
        if let Some(mut child) = self.peers.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
