//! Starting one instance: stale instances cleared, the instance's dirs,
//! config and CNI network written, containerd spawned inside the node's
//! netns, its answer awaited, the images imported.

use std::{
    fs,
    os::{fd::AsRawFd, unix::net::UnixStream, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use super::{
    Containerd, ContainerdError,
    layout::{self, CNI_BIN_DIR, CNI_PLUGINS, Layout, Owner},
};
use crate::{
    net::NetNs,
    runtime::{images::Images, stale},
};

/// How long containerd may take to answer on its socket.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The sequence number of this process's next instance.
static NEXT_INSTANCE: AtomicU32 = AtomicU32::new(0);

/// How to start a containerd; [`Containerd::start`] uses the defaults.
#[derive(Debug, Default)]
pub struct StartOptions {
    /// The images to import (`None`: [`Images::build`] of the static
    /// workload in [`crate::runtime::images::CACHE_DIR`]).
    pub images: Option<Images>,
    /// TOML appended to the generated config.
    pub extra_config: String,
    /// How long to wait for an answer (`None`: 10 s).
    pub answer_timeout: Option<Duration>,
}

impl Containerd {
    /// Starts containerd in `netns` (the node's namespace) with the
    /// node-sim images imported.
    pub fn start(netns: &NetNs) -> Result<Self, ContainerdError> {
        Self::start_with(netns, StartOptions::default())
    }

    /// Clears stale instances, writes this one's config and CNI network,
    /// starts containerd inside `netns`, waits until it answers, imports
    /// the images. Whatever fails, nothing is left behind.
    pub fn start_with(netns: &NetNs, options: StartOptions) -> Result<Self, ContainerdError> {
        let started = Instant::now();
        stale::clear_stale().map_err(ContainerdError::Stale)?;
        let stale_done = started.elapsed();
        let containerd = require_program("containerd")?;
        let runc = require_program("runc")?;
        require_program("containerd-shim-runc-v2")?;
        for plugin in CNI_PLUGINS {
            let path = Path::new(CNI_BIN_DIR).join(plugin);
            if !path.exists() {
                return Err(ContainerdError::CniPluginMissing(path));
            }
        }
        let images = match options.images {
            Some(images) => images,
            None => Images::build(Path::new(crate::runtime::images::CACHE_DIR))
                .map_err(ContainerdError::Images)?,
        };
        let images_done = started.elapsed();
        let sequence = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let layout = Layout::new(&format!("{}-{sequence}", std::process::id()));
        let mut this = Self {
            address: layout.address(),
            layout,
            images,
            daemon: None,
            tracked: Mutex::new(Vec::new()),
        };
        // From here on an early return drops `this`, which cleans up.
        this.prepare(netns, &runc, &options.extra_config)?;
        this.daemon = Some(this.spawn(&containerd, netns)?);
        this.wait_for_answer(options.answer_timeout.unwrap_or(ANSWER_TIMEOUT))?;
        let answered = started.elapsed();
        let imported = this
            .images
            .import(&this.address)
            .map_err(ContainerdError::Import)?;
        let ms = |d: Duration| d.as_millis() as u64;
        tracing::info!(
            instance = this.layout.name,
            netns = netns.name(),
            address = %this.address.display(),
            stale_ms = ms(stale_done),
            images_ms = ms(images_done - stale_done),
            answer_ms = ms(answered - images_done),
            import_ms = ms(started.elapsed() - answered),
            imported = imported.len(),
            "containerd is up"
        );
        Ok(this)
    }

    /// The instance dirs, the owner record, config and CNI network.
    fn prepare(&self, netns: &NetNs, runc: &Path, extra: &str) -> Result<(), ContainerdError> {
        let layout = &self.layout;
        let failed = |path: &Path| {
            let path = path.to_owned();
            move |source| ContainerdError::Prepare { path, source }
        };
        let base = Path::new(layout::LIB_BASE);
        fs::create_dir_all(base).map_err(failed(base))?;
        fs::create_dir(&layout.dir).map_err(failed(&layout.dir))?;
        let owner_file = layout.owner_file();
        Owner::this_process(netns.name())
            .and_then(|owner| owner.write(&owner_file))
            .map_err(failed(&owner_file))?;
        for dir in [
            layout.run_dir.clone(),
            layout.state(),
            layout.root(),
            layout.cni_conf_dir(),
            layout.ipam_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(failed(&dir))?;
        }
        let config = layout.config_text(&self.images.pause, runc) + extra;
        fs::write(layout.config(), config).map_err(failed(&layout.config()))?;
        let conflist = layout.cni_conf_dir().join("10-node-sim.conflist");
        fs::write(&conflist, layout.conflist().to_string()).map_err(failed(&conflist))?;
        Ok(())
    }

    /// `containerd --config <file>` in `netns`, its output to its log.
    fn spawn(&self, containerd: &Path, netns: &NetNs) -> Result<Child, ContainerdError> {
        let log = self.layout.log();
        let failed = |source| ContainerdError::Prepare {
            path: log.clone(),
            source,
        };
        let log_file = fs::File::create(&log).map_err(failed)?;
        let log_copy = log_file.try_clone().map_err(failed)?;
        let mut command = Command::new(containerd);
        command
            .arg("--config")
            .arg(self.layout.config())
            .env("PATH", search_path())
            .stdin(Stdio::null())
            .stdout(log_copy)
            .stderr(log_file);
        let netns_fd = netns.file().as_raw_fd();
        // SAFETY: between fork and exec only setns(2) runs, on a descriptor
        // the parent keeps open. Only the network namespace is joined:
        // `ip netns exec` would also give containerd a mount namespace with
        // a fresh /sys and no cgroup mounts, where runc fails ("no cgroup
        // mount found in mountinfo").
        unsafe {
            command.pre_exec(move || {
                if libc::setns(netns_fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
            .spawn()
            .map_err(|source| ContainerdError::SpawnFailed {
                program: containerd.to_owned(),
                source,
            })
    }

    /// Until the gRPC socket accepts a connection, containerd exits, or
    /// `timeout` passes.
    fn wait_for_answer(&mut self, timeout: Duration) -> Result<(), ContainerdError> {
        let started = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.daemon.as_mut().map(Child::try_wait) {
                return Err(ContainerdError::ExitedAtStart {
                    status,
                    log: self.layout.log(),
                    tail: self.log_tail(20),
                });
            }
            if self.address.exists() && UnixStream::connect(&self.address).is_ok() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(ContainerdError::NoAnswer {
                    address: self.address.clone(),
                    waited: started.elapsed(),
                    log: self.layout.log(),
                    tail: self.log_tail(20),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The PATH containerd and its shims search: this process's, and the sbin
/// dirs (where runc is) that a test's PATH may lack.
fn search_path() -> String {
    let mut dirs: Vec<String> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_owned());
        }
    }
    dirs.join(":")
}

/// `name` on [`search_path`], if there.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    search_path()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn require_program(program: &'static str) -> Result<PathBuf, ContainerdError> {
    find_program(program).ok_or_else(|| ContainerdError::ProgramMissing {
        program,
        looked: search_path().replace(':', ", "),
    })
}
