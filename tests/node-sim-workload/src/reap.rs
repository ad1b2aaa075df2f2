//! Reaping children as PID 1.
//!
//! In a container with its own pid namespace the workload is PID 1: every
//! orphan of the namespace is handed to it and stays a zombie until it
//! waits for it, which `pause` and any other init process must do. So when
//! the process is PID 1 a thread reaps every child that exits; a child the
//! role started itself ([`status`]) gets its exit status handed back
//! instead of thrown away. As any other pid nothing here runs and children
//! are waited for as usual.
//!
//! Only SIGCHLD is involved (blocked in every thread, taken by `sigwait`):
//! the roles' SIGTERM dispositions stay what their flags make them, so a
//! PID 1 role without a handler still has SIGTERM ignored by the kernel,
//! as a real container's main process does.

use std::{
    collections::HashMap,
    io,
    os::unix::process::ExitStatusExt,
    process::{Command, ExitStatus},
    sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError},
};

use crate::common::event;

struct Reaper {
    /// Children started through [`status`], with their wait status once
    /// reaped.
    owned: Mutex<HashMap<u32, Option<i32>>>,
    reaped: Condvar,
}

static REAPER: OnceLock<Reaper> = OnceLock::new();

/// Starts reaping when this process is PID 1. Must run first in `main`,
/// while it is the only thread: threads started later inherit its blocked
/// SIGCHLD, so the signal only ever wakes the reaper.
pub fn start_if_init() {
    if std::process::id() != 1 {
        return;
    }
    let set = sigchld();
    // SAFETY: changes the signal mask of the calling thread only.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let reaper = REAPER.get_or_init(|| Reaper {
        owned: Mutex::new(HashMap::new()),
        reaped: Condvar::new(),
    });
    let started = std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || {
            loop {
                let mut signal = 0;
                // SAFETY: waits on a signal set we own; SIGCHLD is blocked.
                unsafe { libc::sigwait(&set, &mut signal) };
                reaper.reap_exited();
            }
        });
    if let Err(e) = started {
        event(
            "reaper_failed",
            &[("message", crate::common::json_str(&e.to_string()))],
        );
    }
}

fn sigchld() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        set
    }
}

impl Reaper {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Option<i32>>> {
        self.owned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for every child that has exited; keeps the status of owned
    /// ones. Runs under the lock, so it never races [`status`]'s spawn.
    fn reap_exited(&self) {
        let mut owned = self.lock();
        loop {
            let mut wait_status = 0;
            // SAFETY: waitpid writes into a local.
            let pid = unsafe { libc::waitpid(-1, &mut wait_status, libc::WNOHANG) };
            let Ok(pid) = u32::try_from(pid) else { break };
            if pid == 0 {
                break;
            }
            if let Some(slot) = owned.get_mut(&pid) {
                *slot = Some(wait_status);
            }
        }
        drop(owned);
        self.reaped.notify_all();
    }
}

/// Runs `cmd` to its end, like [`Command::status`]; as PID 1 the status
/// comes from the reaper, which would otherwise take it first.
pub fn status(cmd: &mut Command) -> io::Result<ExitStatus> {
    let pid = spawn(cmd)?;
    wait(pid)
}

/// Starts `cmd` and returns its pid; [`wait`] collects it. As PID 1 the
/// reaper keeps its status for [`wait`].
pub fn spawn(cmd: &mut Command) -> io::Result<u32> {
    let Some(reaper) = REAPER.get() else {
        return Ok(cmd.spawn()?.id());
    };
    let mut owned = reaper.lock();
    // Spawned under the lock: the reaper cannot collect the child (nor the
    // one std waits for itself when exec fails) before it is known here.
    let pid = cmd.spawn()?.id();
    owned.insert(pid, None);
    Ok(pid)
}

/// Waits for a child [`spawn`] started.
pub fn wait(pid: u32) -> io::Result<ExitStatus> {
    let Some(reaper) = REAPER.get() else {
        let mut wait_status = 0;
        // SAFETY: waits for our own child.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut wait_status, 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(ExitStatus::from_raw(wait_status));
    };
    let mut owned = reaper.lock();
    loop {
        if let Some(&Some(wait_status)) = owned.get(&pid) {
            owned.remove(&pid);
            return Ok(ExitStatus::from_raw(wait_status));
        }
        owned = reaper
            .reaped
            .wait(owned)
            .unwrap_or_else(PoisonError::into_inner);
    }
}
