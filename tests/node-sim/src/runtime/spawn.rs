//! Starting a process the way runc starts a container's: moved into its
//! cgroup, joined to the pod's network namespace, switched to its user,
//! all between fork and exec.

use std::{
    ffi::CString,
    fs::File,
    os::{
        fd::{AsRawFd, RawFd},
        unix::process::CommandExt,
    },
    path::Path,
    process::{Child, Command, Stdio},
};

/// What failed while starting a process.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cgroup path {0} contains a NUL byte")]
    PathWithNul(String),
    #[error("cannot start {program} in {cgroup}: {source}")]
    SpawnFailed {
        program: String,
        cgroup: String,
        source: std::io::Error,
    },
}

/// Where and as whom a process runs.
pub struct Placement<'a> {
    /// The cgroup directory to join (`None`: stay where the driver is).
    pub cgroup: Option<&'a Path>,
    /// The network namespace to join.
    pub netns: Option<&'a File>,
    /// (uid, gid) to switch to after joining.
    pub user: Option<(u32, u32)>,
    /// Where stdout and stderr go.
    pub log: Option<File>,
}

/// Starts `cmd` placed as asked.
pub fn spawn(mut cmd: Command, placement: Placement<'_>) -> Result<Child, SpawnError> {
    let procs = match placement.cgroup {
        Some(dir) => {
            let path = dir.join("cgroup.procs");
            Some(
                CString::new(path.into_os_string().into_encoded_bytes()).map_err(|e| {
                    SpawnError::PathWithNul(String::from_utf8_lossy(&e.into_vec()).into())
                })?,
            )
        }
        None => None,
    };
    let netns: Option<RawFd> = placement.netns.map(AsRawFd::as_raw_fd);
    let user = placement.user;
    cmd.stdin(Stdio::null());
    if let Some(log) = placement.log {
        if let Ok(copy) = log.try_clone() {
            cmd.stderr(copy);
        }
        cmd.stdout(log);
    }
    // SAFETY: between fork and exec the closure only makes system calls
    // (joining the cgroup: open, write, close; setns, setgroups, setgid,
    // setuid) on data built before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(procs) = &procs {
                lifecycle_testkit::join_cgroup(procs)?;
            }
            if let Some(fd) = netns
                && libc::setns(fd, libc::CLONE_NEWNET) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some((uid, gid)) = user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.spawn().map_err(|source| SpawnError::SpawnFailed {
        program,
        cgroup: placement
            .cgroup
            .map(|c| c.display().to_string())
            .unwrap_or_else(|| "(driver's cgroup)".into()),
        source,
    })
}
