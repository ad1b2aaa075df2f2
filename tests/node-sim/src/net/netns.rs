//! Named network namespaces (`ip netns`), removed on drop.

use std::{
    fs::File,
    os::fd::AsRawFd,
    path::PathBuf,
    process::{Command, Output},
};

/// What failed with a network namespace or a network command.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot run {command}: {source}")]
    CommandNotRun {
        command: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot open network namespace {path}: {source}")]
    OpenFailed {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot enter a network namespace: {0}")]
    EnterFailed(std::io::Error),
    #[error("the thread working inside a network namespace panicked")]
    ThreadPanicked,
}

/// The path of a system tool (`ip`, `iptables-restore`, `sysctl`): found in
/// the sbin directories even when they are not on `PATH`.
pub fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs a command to completion; a non-zero exit is an error.
pub fn run(cmd: &mut Command) -> Result<Output, NetError> {
    let command = format!("{cmd:?}");
    let output = cmd.output().map_err(|source| NetError::CommandNotRun {
        command: command.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(NetError::CommandFailed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}

/// A network namespace made with `ip netns add`, deleted on drop (which
/// also deletes the veth ends inside it).
pub struct NetNs {
    name: String,
    file: File,
}

impl NetNs {
    pub fn create(name: &str) -> Result<Self, NetError> {
        run(Command::new(tool("ip")).args(["netns", "add", name]))?;
        let path = PathBuf::from("/run/netns").join(name);
        let file = File::open(&path).map_err(|source| NetError::OpenFailed { path, source });
        let file = match file {
            Ok(file) => file,
            Err(e) => {
                let _ = run(Command::new(tool("ip")).args(["netns", "del", name]));
                return Err(e);
            }
        };
        let ns = Self {
            name: name.to_owned(),
            file,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file, for `setns`.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// A second handle on the namespace file (for a child process).
    pub fn open(&self) -> Result<File, NetError> {
        self.file
            .try_clone()
            .map_err(|source| NetError::OpenFailed {
                path: PathBuf::from("/run/netns").join(&self.name),
                source,
            })
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<(), NetError> {
        run(Command::new(tool("ip"))
            .arg("-n")
            .arg(&self.name)
            .args(args))
        .map(drop)
    }

    /// `ip netns exec NAME PROGRAM ARGS...`, returning its stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, NetError> {
        let output = run(Command::new(tool("ip"))
            .args(["netns", "exec", &self.name])
            .arg(tool(program))
            .args(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `work` on a thread that has joined this namespace (sockets it
    /// opens live here), and returns its result.
    pub fn run_in<T: Send>(&self, work: impl FnOnce() -> T + Send) -> Result<T, NetError> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter(&self.file)?;
                    Ok(work())
                })
                .join()
                .map_err(|_| NetError::ThreadPanicked)?
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(error) = run(Command::new(tool("ip")).args(["netns", "del", &self.name])) {
            tracing::warn!(%error, ns = self.name, "cannot delete network namespace");
        }
    }
}

/// Moves the calling thread into the namespace of `file`.
pub fn enter(file: &File) -> Result<(), NetError> {
    // SAFETY: setns on a namespace descriptor we own; only this thread moves.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(NetError::EnterFailed(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Starts `cmd` inside the namespace of `file` (joined between fork and
/// exec), its output to `log`.
pub fn spawn_in(
    cmd: &mut Command,
    file: &File,
    log: Option<File>,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let fd = file.as_raw_fd();
    cmd.stdin(std::process::Stdio::null());
    if let Some(log) = log {
        cmd.stderr(log.try_clone()?);
        cmd.stdout(log);
    }
    // SAFETY: between fork and exec the closure only calls setns(2) on a
    // descriptor opened before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// `iptables-restore RULES` inside the network namespace file `netns` (a
/// sandbox's, which `ip netns` does not list), via `nsenter`.
pub fn restore_rules(netns: &std::path::Path, rules: &std::path::Path) -> Result<(), NetError> {
    run(Command::new(tool("nsenter"))
        .arg(format!("--net={}", netns.display()))
        .arg(tool("iptables-restore"))
        .arg(rules))
    .map(drop)
}
