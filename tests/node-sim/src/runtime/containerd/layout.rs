//! Where one containerd instance keeps its files, the config and CNI
//! network it is started with, and the owner record that tells a later run
//! whether the instance is still somebody's.

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Persistent per-instance directories: `<LIB_BASE>/<instance>`.
pub(crate) const LIB_BASE: &str = "/var/lib/node-sim";
/// Runtime per-instance directories (sockets, state): `<RUN_BASE>/<instance>`.
pub(crate) const RUN_BASE: &str = "/run/node-sim";
/// Where containerd 1.6 puts every shim's socket, whatever its config says.
pub(crate) const SHIM_SOCKET_DIR: &str = "/run/containerd/s";
/// libcni's cache of ADD results, likewise fixed.
pub(crate) const CNI_RESULTS_DIR: &str = "/var/lib/cni/results";
/// The CNI plugins (Debian's containernetworking-plugins).
pub(crate) const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The plugins the config names, and `loopback`, which the CRI plugin adds
/// to every sandbox by itself (go-cni's `WithLoNetwork`).
pub(crate) const CNI_PLUGINS: [&str; 3] = ["bridge", "host-local", "loopback"];
/// The pod address range of every node (each node has its own netns).
const POD_SUBNET: &str = "10.244.0.0/16";

/// The paths of one instance, all derived from its name (`<pid>-<seq>`).
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub name: String,
    /// `/var/lib/node-sim/<name>`: config, log, records, containerd's root.
    pub dir: PathBuf,
    /// `/run/node-sim/<name>`: sockets, containerd's state, runc's root.
    pub run_dir: PathBuf,
}

impl Layout {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            dir: Path::new(LIB_BASE).join(name),
            run_dir: Path::new(RUN_BASE).join(name),
        }
    }

    /// Whether `name` has the shape of an instance name (other entries of
    /// the base directories, such as the image cache, are not instances).
    pub fn is_instance_name(name: &str) -> bool {
        let mut parts = name.split('-');
        let digits = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    pub fn state(&self) -> PathBuf {
        self.run_dir.join("state")
    }
    pub fn address(&self) -> PathBuf {
        self.run_dir.join("containerd.sock")
    }
    pub fn ttrpc_address(&self) -> PathBuf {
        self.run_dir.join("containerd.sock.ttrpc")
    }
    pub fn runc_root(&self) -> PathBuf {
        self.run_dir.join("runc")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("cni")
    }
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }
    pub fn owner_file(&self) -> PathBuf {
        self.dir.join("owner.json")
    }
    /// The pod cgroups the kubelet made, one relative path a line.
    pub fn cgroups_file(&self) -> PathBuf {
        self.dir.join("cgroups")
    }
    /// The CNI network name, unique to the instance (its results in
    /// /var/lib/cni/results start with it).
    pub fn network(&self) -> String {
        format!("node-sim-{}", self.name)
    }

    /// What a process started for this instance has in its command line
    /// (containerd: its config; shims: the address; runc: its root).
    pub fn markers(&self) -> [String; 2] {
        [
            format!("{}/", self.dir.display()),
            format!("{}/", self.run_dir.display()),
        ]
    }

    /// The tracked pod cgroups recorded in the instance dir.
    pub fn recorded_cgroups(&self) -> Vec<PathBuf> {
        fs::read_to_string(self.cgroups_file())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(PathBuf::from)
            .collect()
    }

    /// containerd's config (version 2): everything under the instance
    /// dirs, the CRI plugin set up for this machine.
    pub fn config_text(&self, sandbox_image: &str, runc: &Path) -> String {
        let q = |p: &Path| toml_string(&p.to_string_lossy());
        format!(
            r#"version = 2
root = {root}
state = {state}
# Snapshotters that cannot work here; they only add warnings to the log.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = {address}

[ttrpc]
  address = {ttrpc}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox}
  # The sandbox's oom_score_adj -998 cannot be set on this VM.
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted under the state dir, not /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {cni_bin}
    conf_dir = {cni_conf}
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroupfs: there is no systemd here.
        SystemdCgroup = false
        BinaryName = {runc}
        Root = {runc_root}
"#,
            root = q(&self.root()),
            state = q(&self.state()),
            address = q(&self.address()),
            ttrpc = q(&self.ttrpc_address()),
            opt = q(&self.root().join("opt")),
            sandbox = toml_string(sandbox_image),
            cni_bin = toml_string(CNI_BIN_DIR),
            cni_conf = q(&self.cni_conf_dir()),
            runc = q(runc),
            runc_root = q(&self.runc_root()),
        )
    }

    /// The one CNI network: a `cni0` bridge with host-local addresses.
    pub fn conflist(&self) -> serde_json::Value {
        serde_json::json!({
            "cniVersion": "0.4.0",
            "name": self.network(),
            "plugins": [{
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": self.ipam_dir(),
                },
            }],
        })
    }
}

/// A TOML basic string (JSON's string escapes are valid TOML).
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Who runs an instance: the test process (pid and its start time, so a
/// recycled pid is not taken for the owner) and the node's netns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Owner {
    pub pid: u32,
    /// Field 22 of /proc/<pid>/stat (clock ticks since boot).
    pub start_time: u64,
    pub netns: String,
    /// The netns file's device and inode when the instance started: the
    /// stale cleanup deletes the netns only while the name still means it.
    pub netns_dev: u64,
    pub netns_ino: u64,
}

impl Owner {
    /// This process as owner, with the netns `/run/netns/<netns>`.
    pub fn this_process(netns: &str) -> io::Result<Self> {
        let pid = std::process::id();
        let start_time = super::procfs::start_time(pid)
            .ok_or_else(|| io::Error::other("cannot read this process's start time"))?;
        let meta = fs::metadata(Path::new("/run/netns").join(netns))?;
        Ok(Self {
            pid,
            start_time,
            netns: netns.to_owned(),
            netns_dev: meta.dev(),
            netns_ino: meta.ino(),
        })
    }

    /// Whether the owner still runs: same pid, same start time, not a zombie.
    pub fn is_alive(&self) -> bool {
        super::procfs::start_time(self.pid) == Some(self.start_time)
    }

    pub fn read(path: &Path) -> Option<Self> {
        serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
    }

    /// Written whole or not at all (a temporary file renamed).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, serde_json::to_vec(self).map_err(io::Error::other)?)?;
        fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_pid_dash_sequence() {
        assert!(Layout::is_instance_name("4711-0"));
        assert!(Layout::is_instance_name("12-345"));
        for other in ["images", "4711", "4711-", "-1", "1-2-3", "a-1", "1-0.tmp"] {
            assert!(
                !Layout::is_instance_name(other),
                "{other} taken for an instance"
            );
        }
    }

    #[test]
    fn config_keeps_every_path_under_the_instance() {
        let layout = Layout::new("1-2");
        let text = layout.config_text(
            "node-sim.local/pause:0123456789ab",
            Path::new("/usr/sbin/runc"),
        );
        for key in [
            "root = ",
            "state = ",
            "address = ",
            "path = ",
            "Root = ",
            "conf_dir = ",
        ] {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(key))
                .expect(key);
            assert!(line.contains("/node-sim/1-2/"), "{line}");
        }
        assert!(text.contains("sandbox_image = \"node-sim.local/pause:0123456789ab\""));
        assert_eq!(layout.conflist()["name"], "node-sim-1-2");
    }
}
