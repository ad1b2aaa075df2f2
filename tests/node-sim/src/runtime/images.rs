//! The node's two OCI images, packed from the static workload binary with
//! umoci (no registry, no docker) and imported into containerd with `ctr`:
//! the workload at [`WORKLOAD_PATH`], and the pause image (the same binary
//! at [`PAUSE_PATH`], which makes it act as pause). Tags follow the
//! binary's content, so an unchanged binary is neither packed nor imported
//! twice.

use std::{
    collections::BTreeSet,
    fs, io,
    path::{Path, PathBuf},
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use sha2::{Digest, Sha256};

use super::{binaries::BinariesError, containerd::find_program};

/// Where the workload image has the binary (the containers' command).
pub const WORKLOAD_PATH: &str = "/node-sim-workload";
/// Where the pause image has it (its name makes it pause).
pub const PAUSE_PATH: &str = "/pause";
/// The packed archives of [`super::containerd::Containerd::start`].
pub const CACHE_DIR: &str = "/var/lib/node-sim/images";
/// containerd namespace of the CRI plugin.
const CRI_NAMESPACE: &str = "k8s.io";
/// Fixed times keep the image ids a function of the binary alone.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// What failed while packing or importing an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot locate the static workload binary")]
    Workload(#[source] BinariesError),
    #[error("cannot read {path}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write image files under {path}")]
    WriteFailed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0} not found: run `cargo xtask setup`")]
    ToolMissing(&'static str),
    #[error("cannot run {command}")]
    ToolNotRun {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("packing image {image}: {command} failed ({status}): {stderr}")]
    PackFailed {
        image: String,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot list the images of containerd at {address}: {message}")]
    ListFailed { address: PathBuf, message: String },
    #[error("importing image {image} into containerd at {address} failed: {message}")]
    ImportFailed {
        image: String,
        address: PathBuf,
        message: String,
    },
}

/// The image refs the CRI calls use, and the archives they come from.
#[derive(Clone, Debug)]
pub struct Images {
    /// `node-sim.local/workload:<12 hex of the binary's sha256>`
    pub workload: String,
    /// `node-sim.local/pause:<same>`, the config's `sandbox_image`.
    pub pause: String,
    archives: Vec<Archive>,
}

#[derive(Clone, Debug)]
struct Archive {
    repository: String,
    reference: String,
    path: PathBuf,
    /// Where the binary is in the image, and the entrypoint.
    target: &'static str,
}

impl Images {
    /// The images of the static workload ([`super::binaries::locate_static_workload`]).
    pub fn build(work_dir: &Path) -> Result<Self, ImageError> {
        let binary = super::binaries::locate_static_workload().map_err(ImageError::Workload)?;
        Self::build_from(&binary, work_dir)
    }

    /// The images of `binary` (statically linked: the images have nothing
    /// else), packed once into `work_dir/<tag>/`.
    pub fn build_from(binary: &Path, work_dir: &Path) -> Result<Self, ImageError> {
        let tag = content_tag(binary)?;
        let dir = work_dir.join(&tag);
        let archive = |name: &str, target: &'static str| Archive {
            repository: format!("node-sim.local/{name}"),
            reference: format!("node-sim.local/{name}:{tag}"),
            path: dir.join(format!("{name}.tar")),
            target,
        };
        let archives = vec![
            archive("workload", WORKLOAD_PATH),
            archive("pause", PAUSE_PATH),
        ];
        if !archives.iter().all(|a| a.path.is_file()) {
            pack_into(binary, &tag, &archives, work_dir, &dir)?;
        }
        Ok(Self {
            workload: archives[0].reference.clone(),
            pause: archives[1].reference.clone(),
            archives,
        })
    }

    /// Imports each image containerd at `address` does not have yet;
    /// returns the refs imported.
    pub fn import(&self, address: &Path) -> Result<Vec<String>, ImageError> {
        let before = listed(address)?;
        let mut imported = Vec::new();
        // One after the other: side by side, both imports want containerd's
        // `tar-index.json` ingest lock, and one logs an error waiting.
        for archive in self
            .archives
            .iter()
            .filter(|a| !before.contains(&a.reference))
        {
            let args = ["images", "import", "--base-name", &archive.repository];
            let output = ctr(address, &args, Some(&archive.path))?;
            if !output.status.success() {
                return Err(ImageError::ImportFailed {
                    image: archive.reference.clone(),
                    address: address.to_owned(),
                    message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                });
            }
            imported.push(archive.reference.clone());
        }
        // `--base-name` imports nothing, and says nothing, when the tag does
        // not match: check the refs are there.
        let after = if imported.is_empty() {
            before
        } else {
            listed(address)?
        };
        if let Some(missing) = self.archives.iter().find(|a| !after.contains(&a.reference)) {
            return Err(ImageError::ImportFailed {
                image: missing.reference.clone(),
                address: address.to_owned(),
                message: format!("ctr succeeded but containerd does not list it (has {after:?})"),
            });
        }
        Ok(imported)
    }
}

/// The first 12 hex digits of the binary's sha256.
fn content_tag(binary: &Path) -> Result<String, ImageError> {
    let unreadable = |source| ImageError::Unreadable {
        path: binary.to_owned(),
        source,
    };
    let mut file = fs::File::open(binary).map_err(unreadable)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(unreadable)?;
    Ok(hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Packs every archive in a scratch dir, then renamed to `dir`: parallel
/// builders never see half an archive (the loser of a race drops its copy).
fn pack_into(
    binary: &Path,
    tag: &str,
    archives: &[Archive],
    work_dir: &Path,
    dir: &Path,
) -> Result<(), ImageError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let scratch = work_dir.join(format!(".{tag}.{}.{nanos}", std::process::id()));
    let written = |path: &Path| {
        let path = path.to_owned();
        move |source| ImageError::WriteFailed { path, source }
    };
    let result = fs::create_dir_all(&scratch)
        .map_err(written(&scratch))
        .and_then(|()| {
            archives.iter().try_for_each(|a| {
                let out = scratch.join(a.path.file_stem().unwrap_or_default());
                pack(binary, a.target, tag, &out, &a.reference)
            })
        })
        .and_then(|()| match fs::rename(&scratch, dir) {
            Err(_) if dir.is_dir() => Ok(()),
            renamed => renamed.map_err(written(dir)),
        });
    let _ = fs::remove_dir_all(&scratch);
    result
}

/// One image: a layer holding `binary` at `target`, entrypoint
/// `[target]`, saved as the OCI archive `<out>.tar`.
fn pack(binary: &Path, target: &str, tag: &str, out: &Path, image: &str) -> Result<(), ImageError> {
    let layout = out.with_extension("oci");
    let dir = layout.to_string_lossy().into_owned();
    let at = format!("{dir}:{tag}");
    let bin = binary.to_string_lossy().into_owned();
    let archive = out.with_extension("tar").to_string_lossy().into_owned();
    #[rustfmt::skip]
    let steps: [(&'static str, &[&str]); 6] = [
        ("umoci", &["init", "--layout", &dir]),
        ("umoci", &["new", "--image", &at]),
        ("umoci", &["insert", "--image", &at, "--history.created", EPOCH, &bin, target]),
        ("umoci", &["config", "--image", &at, "--config.entrypoint", target,
                    "--created", EPOCH, "--history.created", EPOCH]),
        ("umoci", &["gc", "--layout", &dir]),
        ("tar", &["-C", &dir, "-cf", &archive, "oci-layout", "index.json", "blobs"]),
    ];
    for (tool, args) in steps {
        let path = find_program(tool).ok_or(ImageError::ToolMissing(tool))?;
        let mut command = Command::new(&path);
        command.args(args);
        let output = command.output().map_err(|source| ImageError::ToolNotRun {
            command: format!("{command:?}"),
            source,
        })?;
        if !output.status.success() {
            return Err(ImageError::PackFailed {
                image: image.to_owned(),
                command: format!("{command:?}"),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
    }
    fs::remove_dir_all(&layout).map_err(|source| ImageError::WriteFailed {
        path: layout,
        source,
    })
}

/// The refs containerd lists in the CRI namespace.
fn listed(address: &Path) -> Result<BTreeSet<String>, ImageError> {
    let output = ctr(address, &["images", "ls", "-q"], None)?;
    if !output.status.success() {
        return Err(ImageError::ListFailed {
            address: address.to_owned(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// `ctr --address <address> -n k8s.io ARGS [FILE]`.
fn ctr(
    address: &Path,
    args: &[&str],
    file: Option<&Path>,
) -> Result<std::process::Output, ImageError> {
    let path = find_program("ctr").ok_or(ImageError::ToolMissing("ctr"))?;
    let mut command = Command::new(path);
    command
        .arg("--address")
        .arg(address)
        .args(["-n", CRI_NAMESPACE])
        .args(args);
    if let Some(file) = file {
        command.arg(file);
    }
    command.output().map_err(|source| ImageError::ToolNotRun {
        command: format!("{command:?}"),
        source,
    })
}
