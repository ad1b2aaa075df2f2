//! Where the `node-sim-workload` binary is: the normal build, for plain
//! processes such as the peer server, and a static one (glibc with
//! `crt-static`) for the OCI image the containers run, which has no
//! dynamic loader or libc of its own.
//!
//! The static build has its own target directory (`target/static`), so the
//! shared debug and release builds keep their artifacts. `cargo xtask test`
//! and `cargo xtask demo` build it first with the same command as
//! [`static_build`]; keep the two alike, or each rebuilds what the other
//! built.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::{Mutex, PoisonError},
    time::SystemTime,
};

const PACKAGE: &str = "node-sim-workload";
const TARGET: &str = "x86_64-unknown-linux-gnu";
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";
/// ELF program header type naming the dynamic loader.
const PT_INTERP: u32 = 3;

/// Serialises the static build within one process (tests run in threads).
static BUILDING: Mutex<()> = Mutex::new(());

/// What failed while locating or building the workload binary.
#[derive(Debug, thiserror::Error)]
pub enum BinariesError {
    #[error("cannot start {cargo} to build the static {PACKAGE}")]
    CargoNotStarted {
        cargo: String,
        #[source]
        source: std::io::Error,
    },
    #[error("building the static {PACKAGE} failed ({status}): {command}\n{stderr}")]
    BuildFailed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("cannot read {path}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not a 64-bit ELF executable")]
    NotElf(PathBuf),
    #[error(
        "{0} is dynamically linked (it names a program interpreter): the container image has no loader; build it with RUSTFLAGS=\"{STATIC_RUSTFLAGS}\" --target {TARGET}"
    )]
    NotStatic(PathBuf),
}

/// The workload for plain processes: `$NODE_SIM_WORKLOAD`, or the normal
/// build next to the running program or one directory up (test
/// executables live in `target/<profile>/deps`), unless older than the
/// workload's sources; else the static build, which also runs anywhere.
pub fn locate_workload() -> Result<PathBuf, BinariesError> {
    if let Some(path) = std::env::var_os("NODE_SIM_WORKLOAD").map(PathBuf::from)
        && path.exists()
    {
        return Ok(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut nearby = exe.ancestors().skip(1).take(2).map(|d| d.join(PACKAGE));
    match nearby.find(|p| is_current(p)) {
        Some(path) => Ok(path),
        None => locate_static_workload(),
    }
}

/// The static workload: `$NODE_SIM_WORKLOAD_STATIC`, else
/// `<target dir>/static/x86_64-unknown-linux-gnu/release/node-sim-workload`,
/// built there with cargo first when missing, older than the workload's
/// sources or not static. Either way it is refused unless statically
/// linked.
pub fn locate_static_workload() -> Result<PathBuf, BinariesError> {
    if let Some(path) = std::env::var_os("NODE_SIM_WORKLOAD_STATIC") {
        return checked_static(PathBuf::from(path));
    }
    let _one_build = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
    let static_dir = target_dir().join("static");
    let path = static_dir.join(TARGET).join("release").join(PACKAGE);
    // A dynamic binary there (built with other flags) is rebuilt too.
    if !is_current(&path) || !matches!(has_interpreter(&path), Ok(false)) {
        static_build(&static_dir)?;
    }
    checked_static(path)
}

/// Runs `cargo build` for the static workload into `static_dir`.
fn static_build(static_dir: &Path) -> Result<(), BinariesError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "--release", "-p", PACKAGE, "--target", TARGET])
        .arg("--target-dir")
        .arg(static_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .stdin(Stdio::null());
    let output = command
        .output()
        .map_err(|source| BinariesError::CargoNotStarted { cargo, source })?;
    if !output.status.success() {
        return Err(BinariesError::BuildFailed {
            command: format!("{command:?}"),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}

fn checked_static(path: PathBuf) -> Result<PathBuf, BinariesError> {
    if has_interpreter(&path)? {
        return Err(BinariesError::NotStatic(path));
    }
    Ok(path)
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program
/// header, i.e. needs a dynamic loader to run.
fn has_interpreter(path: &Path) -> Result<bool, BinariesError> {
    let elf = std::fs::read(path).map_err(|source| BinariesError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let bytes = |at: usize, n: usize| elf.get(at..at.checked_add(n)?);
    let number = |at: usize, n: usize| {
        bytes(at, n).map(|b| b.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x)))
    };
    if bytes(0, 5) != Some(b"\x7fELF\x02") || bytes(5, 1) != Some(&[1]) {
        return Err(BinariesError::NotElf(path.to_owned()));
    }
    // e_phoff, e_phentsize and e_phnum of the ELF64 header.
    let (Some(table), Some(entry), Some(count)) =
        (number(0x20, 8), number(0x36, 2), number(0x38, 2))
    else {
        return Err(BinariesError::NotElf(path.to_owned()));
    };
    Ok((0..count).any(|i| {
        let at = table.saturating_add(i.saturating_mul(entry));
        usize::try_from(at).is_ok_and(|at| number(at, 4) == Some(u64::from(PT_INTERP)))
    }))
}

/// Whether `binary` exists and is not older than the workload's sources
/// (when those are at hand: a checkout of the repository).
fn is_current(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let sources = workspace_root().join("tests").join(PACKAGE);
    newest(&sources).is_none_or(|changed| changed <= built)
}

/// The newest modification time of the files under `path`.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = path.metadata().ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| newest(&e.ok()?.path()))
        .max()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cargo target directory this program was built in: the first
/// directory above it holding cargo's `CACHEDIR.TAG`, else
/// `$CARGO_TARGET_DIR`, else the workspace's `target`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    if let Some(dir) = exe.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file()) {
        return dir.to_owned();
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::{has_interpreter, locate_static_workload};

    #[test]
    fn the_interpreter_check_tells_a_dynamic_binary_from_the_static_workload() {
        let workload = locate_static_workload().expect("the static workload");
        assert!(
            !has_interpreter(&workload).unwrap(),
            "{}",
            workload.display()
        );
        let this_test = std::env::current_exe().unwrap();
        assert!(
            has_interpreter(&this_test).unwrap(),
            "a normal (dynamic) test executable names its loader"
        );
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        assert!(has_interpreter(manifest.as_ref()).is_err(), "not ELF");
    }

    #[test]
    fn the_static_workload_runs_in_an_empty_root() {
        lifecycle_testkit::require_root();
        let workload = locate_static_workload().expect("the static workload");
        let root = tempfile::tempdir().unwrap();
        std::fs::copy(&workload, root.path().join("workload")).unwrap();
        let out = Command::new("chroot")
            .arg(root.path())
            .args(["/workload", "init-task", "--exit", "7"])
            .output()
            .expect("run chroot");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "no libc, no loader: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("\"ev\":\"exit\""), "{stdout}");
    }
}
