//! The workload binary and its copies named like the container runtime.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

/// What failed while preparing the binaries.
#[derive(Debug, thiserror::Error)]
pub enum BinariesError {
    #[error(
        "node-sim-workload not found (looked at $NODE_SIM_WORKLOAD, next to {0} and in the cargo target dir): build it with `cargo build -p node-sim`"
    )]
    WorkloadNotFound(PathBuf),
    #[error("cannot place {path}: {source}")]
    PlaceFailed {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `bin/` of a node: the workload binary and the same program as
/// `containerd-shim-runc-v2` and `runc`, so the kernel reports the comm
/// names a real node has (`containerd-shim` is the 15-character cut).
#[derive(Clone, Debug)]
pub struct Binaries {
    pub workload: PathBuf,
    pub shim: PathBuf,
    pub runc: PathBuf,
}

impl Binaries {
    /// Links (or copies) the workload binary into `dir` under the three names.
    pub fn install(dir: &Path) -> Result<Self, BinariesError> {
        let source = locate_workload()?;
        let place = |name: &str| -> Result<PathBuf, BinariesError> {
            let path = dir.join(name);
            let failed = |source| BinariesError::PlaceFailed {
                path: path.clone(),
                source,
            };
            fs::create_dir_all(dir).map_err(failed)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(failed)?;
            let _ = fs::remove_file(&path);
            if fs::hard_link(&source, &path).is_err() {
                fs::copy(&source, &path).map_err(failed)?;
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(failed)?;
            Ok(path)
        };
        Ok(Self {
            workload: place("node-sim-workload")?,
            shim: place("containerd-shim-runc-v2")?,
            runc: place("runc")?,
        })
    }
}

/// `$NODE_SIM_WORKLOAD`, or `node-sim-workload` next to the running
/// program, or in the cargo target directory above it (test executables
/// live in `target/<profile>/deps`).
pub fn locate_workload() -> Result<PathBuf, BinariesError> {
    if let Some(path) = std::env::var_os("NODE_SIM_WORKLOAD").map(PathBuf::from)
        && path.exists()
    {
        return Ok(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent();
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let candidate = d.join("node-sim-workload");
        if candidate.exists() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(BinariesError::WorkloadNotFound(exe))
}
