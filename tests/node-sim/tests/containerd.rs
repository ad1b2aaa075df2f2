//! The node's real containerd: it answers in the node's netns with the
//! images imported, and neither its drop, nor a dead owner's leftovers
//! cleared by the next start, leave anything behind. Needs root.

#![allow(clippy::unwrap_used)] // a test may unwrap: a panic is its failure

use std::{
    io::{BufRead, BufReader},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use k8s_cri::v1::{LinuxPodSandboxConfig, PodSandboxConfig, PodSandboxMetadata};
use lifecycle_testkit::{random_hex, random_uid, require_root};
use node_sim::{
    net::NetNs,
    runtime::{
        Cri,
        containerd::{Containerd, ContainerdError, StartOptions},
        hierarchy::{self, hierarchies},
        images::WORKLOAD_PATH,
        stale::clear_stale,
    },
};

/// One containerd at a time: the stale test must see its own leftovers
/// before another test's start clears them.
static SERIAL: Mutex<()> = Mutex::new(());
const CHILD_ENV: &str = "NODE_SIM_STALE_CHILD";
const CHILD_MARK: &str = "STALE-INSTANCE";

fn ctr(address: &Path, args: &[&str]) -> Output {
    Command::new("ctr")
        .arg("--address")
        .arg(address)
        .args(["-n", "k8s.io"])
        .args(args)
        .output()
        .expect("run ctr")
}

/// What one instance has running and mounted, to check before and after.
#[derive(Debug)]
struct Footprint {
    dirs: [PathBuf; 2],
    pod_cgroup: PathBuf,
    shim_socket: PathBuf,
}

impl Footprint {
    fn markers(&self) -> Vec<String> {
        self.dirs
            .iter()
            .map(|d| format!("{}/", d.display()))
            .collect()
    }

    /// Live processes whose command line names the instance's dirs.
    fn processes(&self) -> Vec<String> {
        let markers = self.markers();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter_map(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                markers.iter().any(|m| text.contains(m)).then_some(text)
            })
            .collect()
    }

    fn mounts(&self) -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
            .filter(|p| self.dirs.iter().any(|d| Path::new(p).starts_with(d)))
            .collect()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        hierarchies()
            .unwrap()
            .iter()
            .map(|h| h.dir(&self.pod_cgroup))
            .filter(|d| d.exists())
            .collect()
    }

    fn assert_present(&self) {
        assert!(
            self.dirs.iter().all(|d| d.is_dir()),
            "instance dirs missing: {self:?}"
        );
        let processes = self.processes();
        assert!(
            processes.iter().any(|p| p.contains("containerd --config")),
            "{processes:?}"
        );
        assert!(
            processes
                .iter()
                .any(|p| p.contains("containerd-shim-runc-v2")),
            "{processes:?}"
        );
        assert!(!self.mounts().is_empty(), "no rootfs mount");
        assert_eq!(self.cgroup_dirs().len(), hierarchies().unwrap().len());
        assert!(self.shim_socket.exists(), "{}", self.shim_socket.display());
    }

    fn assert_gone(&self) {
        assert_eq!(self.processes(), Vec::<String>::new(), "processes left");
        assert_eq!(self.mounts(), Vec::<String>::new(), "mounts left");
        assert_eq!(self.cgroup_dirs(), Vec::<PathBuf>::new(), "pod cgroup left");
        for dir in &self.dirs {
            assert!(!dir.exists(), "{} left", dir.display());
        }
        assert!(
            !self.shim_socket.exists(),
            "shim socket {} left",
            self.shim_socket.display()
        );
    }
}

/// A pod cgroup (tracked) with one container running the workload's
/// `pause` role in it, started through containerd with `ctr`.
fn run_container(containerd: &Containerd) -> Footprint {
    let pod_cgroup = PathBuf::from(format!("kubepods/besteffort/pod{}", random_uid()));
    hierarchy::create_pod_cgroup(&pod_cgroup).expect("create pod cgroup");
    containerd.track_cgroup(&pod_cgroup);
    let id = format!("c{}", random_hex(12));
    let cgroup = format!("/{}/{id}", pod_cgroup.display());
    let runc_root = containerd.runc_root();
    let address = containerd.address();
    let image = &containerd.images().workload;
    let args = [
        "run",
        "-d",
        "--null-io",
        "--runc-root",
        runc_root.to_str().unwrap(),
        "--cgroup",
        &cgroup,
    ];
    let out = ctr(
        address,
        &[&args[..], &[image, &id, WORKLOAD_PATH, "pause"]].concat(),
    );
    assert!(
        out.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let procs = hierarchies()
        .unwrap()
        .into_iter()
        .find(|h| h.unified)
        .unwrap()
        .dir(&pod_cgroup)
        .join(&id)
        .join("cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&procs)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "no process in {}",
            procs.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The shim wrote where its socket is: containerd's own account.
    let bundle = containerd
        .run_dir()
        .join("state/io.containerd.runtime.v2.task/k8s.io")
        .join(&id);
    let address_file = std::fs::read_to_string(bundle.join("address")).expect("shim address file");
    Footprint {
        dirs: [
            containerd.instance_dir().to_owned(),
            containerd.run_dir().to_owned(),
        ],
        pod_cgroup,
        shim_socket: PathBuf::from(address_file.trim().trim_start_matches("unix://")),
    }
}

/// containerd's and the cleanup's own account, on the test's output.
fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("node_sim=info")
        .with_test_writer()
        .try_init();
}

fn netns() -> NetNs {
    init_log();
    NetNs::create(&format!("nsct{}", random_hex(6))).expect("create netns")
}

#[test]
fn containerd_answers_with_the_images_and_its_drop_leaves_nothing() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let ns = netns();
    let began = Instant::now();
    let containerd = Containerd::start(&ns).expect("start containerd");
    eprintln!("start (images imported): {:?}", began.elapsed());
    assert!(UnixStream::connect(containerd.address()).is_ok());

    let listed = ctr(containerd.address(), &["images", "ls", "-q"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    let images = containerd.images();
    assert!(
        images.workload.starts_with("node-sim.local/workload:"),
        "{}",
        images.workload
    );
    for image in [&images.workload, &images.pause] {
        assert!(
            listed.lines().any(|l| l == image),
            "{image} not in {listed}"
        );
    }
    assert_eq!(
        images.import(containerd.address()).expect("import again"),
        Vec::<String>::new()
    );

    let log = std::fs::read_to_string(containerd.log_path()).unwrap();
    assert!(
        log.contains("Start cni network conf syncer"),
        "{}",
        containerd.log_tail(20)
    );
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("failed to load cni"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let footprint = run_container(&containerd);
    footprint.assert_present();
    let began = Instant::now();
    drop(containerd);
    eprintln!("drop: {:?}", began.elapsed());
    footprint.assert_gone();
    assert_eq!(
        hierarchy::remove_pod_cgroup(&footprint.pod_cgroup).ok(),
        Some(())
    );
}

#[test]
fn a_running_pod_sandbox_goes_with_the_drop_network_and_mounts_too() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let ns = netns();
    let containerd = Containerd::start(&ns).expect("start containerd");
    let cri = Cri::connect(containerd.address()).expect("connect over CRI");
    let uid = random_uid();
    let pod_cgroup = PathBuf::from(format!("kubepods/besteffort/pod{uid}"));
    hierarchy::create_pod_cgroup(&pod_cgroup).expect("create pod cgroup");
    containerd.track_cgroup(&pod_cgroup);
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "left-running".into(),
            uid,
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "left-running".into(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/{}", pod_cgroup.display()),
            ..LinuxPodSandboxConfig::default()
        }),
        ..PodSandboxConfig::default()
    };
    let began = Instant::now();
    let id = cri
        .run_pod_sandbox("default/left-running", config)
        .expect("RunPodSandbox");
    eprintln!("RunPodSandbox: {:?}", began.elapsed());
    let sandbox = cri
        .sandbox_status("default/left-running", &id)
        .expect("PodSandboxStatus");
    assert!(
        sandbox.ip.starts_with("10.244."),
        "pod address {}",
        sandbox.ip
    );
    // netns_mounts_under_state_dir: the pod's netns is a mount of ours.
    assert!(
        Path::new(&sandbox.netns).starts_with(containerd.run_dir()),
        "{}",
        sandbox.netns
    );

    let instance = containerd
        .instance_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let results = [
        format!("node-sim-{instance}-{id}-eth0"),
        format!("cni-loopback-{id}-lo"),
    ]
    .map(|name| Path::new("/var/lib/cni/results").join(name));
    for result in &results {
        assert!(result.is_file(), "{} missing", result.display());
    }
    let bundle = containerd
        .run_dir()
        .join("state/io.containerd.runtime.v2.task/k8s.io")
        .join(&id);
    let address_file = std::fs::read_to_string(bundle.join("address")).expect("shim address file");
    let footprint = Footprint {
        dirs: [
            containerd.instance_dir().to_owned(),
            containerd.run_dir().to_owned(),
        ],
        pod_cgroup,
        shim_socket: PathBuf::from(address_file.trim().trim_start_matches("unix://")),
    };
    footprint.assert_present();
    let mounts = footprint.mounts();
    assert!(mounts.iter().any(|m| m.ends_with("/shm")), "{mounts:#?}");
    assert!(mounts.contains(&sandbox.netns), "{mounts:#?}");

    drop(cri);
    drop(containerd);
    footprint.assert_gone();
    for result in &results {
        assert!(!result.exists(), "{} left", result.display());
    }
    assert!(
        !Path::new(&format!("/proc/{}", sandbox.pid))
            .join("exe")
            .exists(),
        "pause runs"
    );
}

/// Run by the stale test in a child process, which it SIGKILLs.
#[test]
#[ignore = "helper of stale_instance_of_a_killed_owner_is_cleared"]
fn stale_owner_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let ns = netns();
    let containerd = Containerd::start(&ns).expect("start containerd");
    let f = run_container(&containerd);
    println!(
        "{CHILD_MARK} {} {} {} {} {}",
        f.dirs[0].display(),
        f.dirs[1].display(),
        f.pod_cgroup.display(),
        f.shim_socket.display(),
        ns.name()
    );
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn stale_instance_of_a_killed_owner_is_cleared() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "stale_owner_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|l| Some(l[l.find(CHILD_MARK)?..].to_owned()));
    child.kill().expect("SIGKILL the child");
    child.wait().unwrap();
    let line = line.expect("the child did not start its containerd");
    let parts: Vec<&str> = line.split(' ').skip(1).collect();
    let footprint = Footprint {
        dirs: [PathBuf::from(parts[0]), PathBuf::from(parts[1])],
        pod_cgroup: PathBuf::from(parts[2]),
        shim_socket: PathBuf::from(parts[3]),
    };
    let stale_netns = Path::new("/run/netns").join(parts[4]);
    footprint.assert_present();
    assert!(stale_netns.exists());

    let ns = netns();
    let containerd = Containerd::start(&ns).expect("start after the stale one");
    footprint.assert_gone();
    assert!(
        !stale_netns.exists(),
        "stale netns {} left",
        stale_netns.display()
    );

    // The live instance is left alone.
    let report = clear_stale().expect("clear again");
    let live = containerd
        .instance_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(!report.cleared.contains(&live), "{report:?}");
    assert!(containerd.instance_dir().join("owner.json").is_file());
    assert!(report.live >= 1);
    assert!(UnixStream::connect(containerd.address()).is_ok());
}

#[test]
fn an_owner_pid_with_another_start_time_is_dead() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let ns = netns();
    let containerd = Containerd::start(&ns).expect("start containerd");
    let footprint = run_container(&containerd);
    let record = containerd.instance_dir().join("owner.json");
    let mut owner: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    owner["start_time"] = (owner["start_time"].as_u64().unwrap() + 1).into();
    std::fs::write(&record, owner.to_string()).unwrap();

    let report = clear_stale().expect("clear");
    let name = containerd
        .instance_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(report.cleared.contains(&name), "{report:?}");
    assert!(
        report.processes >= 2 && report.mounts >= 1 && report.shim_sockets == 1,
        "{report:?}"
    );
    footprint.assert_gone();
    drop(containerd);
    footprint.assert_gone();
}

#[test]
fn containerd_that_cannot_start_says_why_in_its_own_words() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let ns = netns();
    let options = StartOptions {
        extra_config: "\n[debug]\n  level = \"chatty\"\n".into(),
        ..StartOptions::default()
    };
    let error = Containerd::start_with(&ns, options)
        .err()
        .expect("containerd started");
    eprintln!("{error}");
    let ContainerdError::ExitedAtStart { tail, log, .. } = &error else {
        panic!("{error}");
    };
    assert!(tail.contains("chatty"), "{error}");
    assert!(
        !log.parent().unwrap().exists(),
        "instance dir left after the failed start"
    );
}

#[test]
fn containerd_not_answering_in_time_is_an_error_and_leaves_nothing() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let ns = netns();
    let options = StartOptions {
        answer_timeout: Some(Duration::ZERO),
        ..StartOptions::default()
    };
    let error = Containerd::start_with(&ns, options)
        .err()
        .expect("answered in no time");
    eprintln!("{error}");
    let ContainerdError::NoAnswer { log, address, .. } = &error else {
        panic!("{error}");
    };
    let footprint = Footprint {
        dirs: [
            log.parent().unwrap().to_owned(),
            address.parent().unwrap().to_owned(),
        ],
        pod_cgroup: PathBuf::from("kubepods/none"),
        shim_socket: PathBuf::from("/nonexistent"),
    };
    footprint.assert_gone();
}

#[test]
fn pod_cgroups_are_made_and_removed_in_every_hierarchy() {
    require_root();
    let pod = PathBuf::from(format!("/kubepods/burstable/pod{}", random_uid()));
    hierarchy::create_pod_cgroup(&pod).expect("create");
    let all = hierarchies().unwrap();
    let relative = pod.strip_prefix("/").unwrap();
    for h in &all {
        let dir = h.dir(relative);
        assert!(dir.is_dir(), "{}", dir.display());
        if let Ok(cpus) = std::fs::read_to_string(dir.join("cpuset.cpus")) {
            assert!(!cpus.trim().is_empty(), "empty cpuset in {}", dir.display());
        }
    }
    let unified = all
        .iter()
        .find(|h| h.unified)
        .expect("a cgroup v2 hierarchy");
    let inner = unified.dir(relative).join("c1");
    std::fs::create_dir(&inner).unwrap();
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(inner.join("cgroup.procs"), sleeper.id().to_string()).unwrap();

    hierarchy::remove_pod_cgroup(&pod).expect("remove");
    let status = sleeper.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    for h in &all {
        assert!(
            !h.dir(relative).exists(),
            "{} left",
            h.dir(relative).display()
        );
    }
    assert!(hierarchy::remove_pod_cgroup(Path::new("../..")).is_err());
}
