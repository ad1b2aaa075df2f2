//! The driver's own tests, without the agent: kubelet cgroup names, the pod
//! network, the capture rules and a redirected connection, the runtime's
//! signal path, and termination ordering per kubelet version. Everything
//! observable is read from the machine (/proc, cgroupfs, `ip`,
//! `iptables-save`), the workloads' own logs, or the driver's log.

use std::{collections::BTreeMap, time::Duration};

use lifecycle_testkit::require_root;
use node_sim::{
    Action, Node, NodeOptions, PodPlan, Scenario, ScenarioReport, SimApi, StopCause, TimeScale,
    log::Entry,
    net::netns::tool,
    runtime::{CgroupDriver, cgroups::cgroup2_mount},
    scenario::{PodNames, RunOptions, Step, run::play},
};

const WAIT: Duration = Duration::from_secs(30);

/// One driver test at a time: they share the machine's two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scenario(yaml: &str) -> Scenario {
    Scenario::parse(yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// A node with one pod of `scenario` running and Ready.
struct Live {
    node: Node,
    _api: SimApi,
    name: String,
}

impl Live {
    fn start(scenario: &Scenario, driver: CgroupDriver) -> Self {
        require_root();
        let api = SimApi::start(scenario.kubelet).expect("API server");
        let peers = scenario
            .peers
            .iter()
            .map(|(n, a)| (n.clone(), a.parse().expect("peer")))
            .collect();
        let node = Node::start(
            NodeOptions {
                driver,
                peers,
                scale: TimeScale::new(0.05),
                ..NodeOptions::default()
            },
            api.server(),
        )
        .expect("node");
        let plan = PodPlan::build(&scenario.pods[0], "node-a", node.scale()).expect("plan");
        let name = plan.name.clone();
        node.run_pod(plan).expect("pod");
        play(&node, &Step::WaitReady(PodNames::One(name.clone())), WAIT).expect("ready");
        Self {
            node,
            _api: api,
            name,
        }
    }

    fn entries(&self) -> Vec<Entry> {
        self.node.log().entries()
    }

    /// (container, pid, container id) of every started container.
    fn containers(&self) -> Vec<(String, u32, String)> {
        self.entries()
            .into_iter()
            .filter_map(|e| match e.action {
                Action::ContainerStarted {
                    pid, container_id, ..
                } => Some((e.container?, pid, container_id)),
                _ => None,
            })
            .collect()
    }

    fn netns(&self) -> String {
        self.entries()
            .into_iter()
            .find_map(|e| match e.action {
                Action::SandboxStarted { netns, .. } => Some(netns),
                _ => None,
            })
            .expect("sandbox")
    }

    fn ip_netns(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(tool("ip"))
            .args(["netns", "exec", &self.netns()])
            .args(args)
            .output()
            .expect("ip netns exec");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Deletes the pod, waits until it is gone, and returns the log.
    fn delete(self) -> Vec<Entry> {
        self.delete_then(|_| ()).0
    }

    /// Like [`Self::delete`], running `after` before the node (and its pod
    /// logs) goes away.
    fn delete_then<T>(self, after: impl FnOnce(&Live) -> T) -> (Vec<Entry>, T) {
        self.node
            .delete(std::slice::from_ref(&self.name), None)
            .expect("delete");
        play(
            &self.node,
            &Step::WaitGone(PodNames::One(self.name.clone())),
            WAIT,
        )
        .expect("gone");
        self.node.finish().expect("clean finish");
        let result = after(&self);
        (self.entries(), result)
    }
}

/// Plays a whole scenario (driver only).
fn run(yaml: &str) -> ScenarioReport {
    require_root();
    let scenario = scenario(yaml);
    let api = SimApi::start(scenario.kubelet).expect("API server");
    node_sim::scenario::run(&scenario, api.server(), RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

const PLAIN: &str = r#"
name: plain
description: two containers
pods:
  - manifest:
      metadata: {name: plain-1, namespace: default}
      spec:
        terminationGracePeriodSeconds: 10
        containers:
          - {name: web, image: nginx:1.27, readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}
          - {name: worker, image: busybox:1.36}
    containers:
      web: {role: app-server, serve: 8080}
      worker: {role: app-server}
"#;

fn cgroup_v2_path(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .expect("cgroup file")
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("v2 line")
        .to_owned()
}

fn check_cgroup_names(driver: CgroupDriver, expected: impl Fn(&str, &str) -> String) {
    let _serial = serial();
    let live = Live::start(&scenario(PLAIN), driver);
    let uid = live.node.pod(&live.name).expect("pod").uid;
    let containers = live.containers();
    assert_eq!(containers.len(), 2);
    let pod_dir = cgroup2_mount().expect("cgroup2").join(
        expected(&uid, "")
            .trim_start_matches('/')
            .trim_end_matches('/'),
    );
    for (name, pid, id) in &containers {
        assert_eq!(cgroup_v2_path(*pid), expected(&uid, id), "{name}");
    }
    assert!(pod_dir.is_dir(), "{}", pod_dir.display());
    live.delete();
    assert!(
        !pod_dir.exists(),
        "the pod cgroup is removed: {}",
        pod_dir.display()
    );
}

#[test]
fn systemd_driver_names_pod_and_container_cgroups_like_the_kubelet() {
    check_cgroup_names(CgroupDriver::Systemd, |uid, id| {
        let slice = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice",
            uid.replace('-', "_")
        );
        if id.is_empty() {
            slice
        } else {
            format!("{slice}/cri-containerd-{id}.scope")
        }
    });
}

#[test]
fn cgroupfs_driver_names_pod_and_container_cgroups_like_the_kubelet() {
    check_cgroup_names(CgroupDriver::Cgroupfs, |uid, id| {
        let pod = format!("/kubepods/besteffort/pod{uid}");
        if id.is_empty() {
            pod
        } else {
            format!("{pod}/{id}")
        }
    });
}

const MESHED: &str = r#"
name: meshed
description: legacy Istio pod calling a peer
peers:
  backend: 10.96.0.10:80
  db: 10.96.0.20:5432
pods:
  - manifest:
      metadata:
        name: meshed-1
        namespace: default
        annotations: {sidecar.istio.io/status: "{}"}
      spec:
        terminationGracePeriodSeconds: 10
        initContainers:
          - {name: istio-init, image: docker.io/istio/proxyv2:1.28.0, args: [istio-iptables, -p, "15001", -z, "15006", -u, "1337", -o, "5432"]}
        containers:
          - name: istio-proxy
            image: docker.io/istio/proxyv2:1.28.0
            lifecycle: {postStart: {exec: {command: [pilot-agent, wait]}}}
            securityContext: {runAsUser: 1337, runAsGroup: 1337}
          - {name: app, image: app:1}
    containers:
      istio-init: {role: mesh-init}
      istio-proxy: {role: mesh-proxy}
      app: {role: app-client, call: [backend, db], interval: 1}
"#;

fn events(live: &Live, container: &str, ev: &str) -> Vec<serde_json::Value> {
    let dir = live.node.pod(&live.name).expect("pod").log_dir;
    std::fs::read_dir(&dir)
        .expect("log dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{container}-")))
        })
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter(|e| e["ev"] == ev)
        .collect()
}

fn peer_events(live: &Live) -> Vec<serde_json::Value> {
    std::fs::read_to_string(live.node.workdir().join("peers.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until `probe` returns Some (the workloads act on their own time).
fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pod_namespace_is_wired_to_the_cluster_namespace_and_removed() {
    let _serial = serial();
    let live = Live::start(&scenario(MESHED), CgroupDriver::Systemd);
    let netns = live.netns();
    let addr = live.ip_netns(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    let route = live.ip_netns(&["ip", "route", "show", "default"]);
    let ip = addr
        .split_whitespace()
        .nth(3)
        .expect("address")
        .split('/')
        .next()
        .expect("ip")
        .to_owned();
    assert!(ip.starts_with("10.244.") && ip.ends_with(".2"), "{addr}");
    let gateway = format!("{}.1", ip.rsplit_once('.').expect("dotted").0);
    assert!(
        route.contains(&format!("default via {gateway} dev eth0")),
        "{route}"
    );
    // The app reaches the database peer in the cluster namespace directly
    // (port 5432 is excluded from capture), from its pod address.
    let seen = eventually("the database peer to see the pod", || {
        peer_events(&live).into_iter().find(|e| {
            e["service"] == "10.96.0.20:5432"
                && e["peer"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&format!("{ip}:")))
        })
    });
    assert_eq!(seen["ev"], "served");
    let namespaces = || {
        String::from_utf8_lossy(
            &std::process::Command::new(tool("ip"))
                .args(["netns", "list"])
                .output()
                .expect("ip")
                .stdout,
        )
        .into_owned()
    };
    assert!(namespaces().contains(&netns));
    let cluster = netns.replace("-pod1", "-cluster");
    let (_, while_node_lives) = live.delete_then(|_| namespaces());
    assert!(
        !while_node_lives.contains(&netns),
        "the pod's namespace goes with the pod: {while_node_lives}"
    );
    assert!(
        while_node_lives.contains(&cluster),
        "the cluster namespace lives with the node"
    );
    let left = namespaces();
    assert!(
        !left.contains(&cluster),
        "the cluster namespace goes with the node: {left}"
    );
}

#[test]
fn capture_rules_redirect_the_app_to_the_proxy_with_its_original_destination() {
    let _serial = serial();
    let live = Live::start(&scenario(MESHED), CgroupDriver::Systemd);
    let rules = live.ip_netns(&[tool("iptables-save").to_str().expect("path"), "-t", "nat"]);
    for line in [
        "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
        "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN",
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
    ] {
        assert!(rules.contains(line), "missing {line:?} in\n{rules}");
    }
    let proxied = eventually("a proxied call", || {
        events(&live, "istio-proxy", "proxied").into_iter().next()
    });
    assert_eq!(proxied["direction"], "outbound");
    assert_eq!(
        proxied["original_dst"], "10.96.0.10:80",
        "SO_ORIGINAL_DST recovered the app's destination"
    );
    // The proxy's own upstream connection (UID 1337) was not captured: the
    // backend saw it from the proxy's port.
    let upstream = format!(":{}", proxied["upstream_local_port"]);
    let served = eventually("the backend to see the proxy", || {
        peer_events(&live).into_iter().find(|e| {
            e["service"] == "10.96.0.10:80"
                && e["peer"].as_str().is_some_and(|p| p.ends_with(&upstream))
        })
    });
    assert_eq!(served["ev"], "served");
    let uid = std::fs::read_to_string(format!(
        "/proc/{}/status",
        live.containers()
            .iter()
            .find(|c| c.0 == "istio-proxy")
            .expect("proxy")
            .1
    ))
    .expect("status");
    assert!(
        uid.lines().any(|l| l.starts_with("Uid:\t1337\t")),
        "the proxy runs as 1337"
    );
    live.delete();
}

#[test]
fn stop_signals_are_sent_by_runc_children_of_the_pods_shim() {
    let _serial = serial();
    let live = Live::start(&scenario(PLAIN), CgroupDriver::Systemd);
    let shim = live
        .entries()
        .into_iter()
        .find_map(|e| match e.action {
            Action::SandboxStarted { shim_pid, .. } => Some(shim_pid),
            _ => None,
        })
        .expect("sandbox");
    let comm = std::fs::read_to_string(format!("/proc/{shim}/comm")).expect("shim comm");
    assert_eq!(
        comm.trim(),
        "containerd-shim",
        "15-character cut of containerd-shim-runc-v2"
    );
    let ppid = std::fs::read_to_string(format!("/proc/{shim}/stat")).expect("stat");
    let ppid: u32 = ppid
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    assert_eq!(ppid, std::process::id(), "the driver started the shim");
    let web = live
        .containers()
        .into_iter()
        .find(|c| c.0 == "web")
        .expect("web")
        .1;
    let (log, seen) = live.delete_then(|live| events(live, "web", "sigterm"));
    let (runc, shim_pid) = log
        .iter()
        .find_map(|e| match e.action {
            Action::SignalSent {
                signal: 15,
                target_pid,
                runc_pid,
                shim_pid,
                ..
            } if target_pid == web => Some((runc_pid, shim_pid)),
            _ => None,
        })
        .expect("web got SIGTERM");
    assert_eq!(shim_pid, shim, "through the pod's shim");
    assert!(
        runc != shim && runc != std::process::id(),
        "a process of its own"
    );
    let seen = seen.first().cloned().expect("the app logged its SIGTERM");
    assert_eq!(
        seen["sender_pid"], runc,
        "the app got SIGTERM from runc: {seen}"
    );
    assert_eq!(seen["si_code"], 0, "SI_USER: {seen}");
}

/// Log entries of a container with this action.
fn at<'a>(log: &'a [Entry], container: &str, matches: impl Fn(&Action) -> bool) -> &'a Entry {
    log.iter()
        .find(|e| e.container.as_deref() == Some(container) && matches(&e.action))
        .unwrap_or_else(|| panic!("{container}: no such entry in {log:#?}"))
}

fn sigterm(log: &[Entry], container: &str) -> u64 {
    match at(log, container, |a| {
        matches!(a, Action::SignalSent { signal: 15, .. })
    })
    .action
    {
        Action::SignalSent { before_boot_ns, .. } => before_boot_ns,
        _ => unreachable!(),
    }
}

fn exited(log: &[Entry], container: &str) -> u64 {
    at(log, container, |a| {
        matches!(a, Action::ContainerExited { .. })
    })
    .at
    .boot_ns
}

fn t0(log: &[Entry]) -> u64 {
    log.iter()
        .find(|e| matches!(e.action, Action::TerminationStarted { .. }))
        .expect("termination")
        .at
        .boot_ns
}

/// Two native sidecars around an init container and one app; `kubelet`
/// and the steps vary.
fn sidecar_pod(kubelet: &str, steps: &str, restart_policy: &str, migrate_work: u32) -> String {
    format!(
        r#"
name: sidecars
description: two native sidecars and an app
kubelet: "{kubelet}"
pods:
  - manifest:
      metadata: {{name: sidecars-1, namespace: default}}
      spec:
        restartPolicy: {restart_policy}
        terminationGracePeriodSeconds: 20
        initContainers:
          - {{name: logs, image: fluent-bit:3, restartPolicy: Always}}
          - {{name: migrate, image: migrate:1}}
          - {{name: proxy, image: envoy:1, restartPolicy: Always, lifecycle: {{preStop: {{sleep: {{seconds: 1}}}}}}}}
        containers:
          - {{name: app, image: app:1}}
    containers:
      logs: {{role: app-server}}
      migrate: {{role: init-task, work: {migrate_work}}}
      proxy: {{role: app-server}}
      app: {{role: {app_role}}}
steps:
{steps}
"#,
        app_role = if restart_policy == "Never" {
            "job-worker, work: 2"
        } else {
            "app-server, drain: 2"
        },
    )
}

const DELETE_WHEN_READY: &str =
    "  - waitReady: sidecars-1\n  - delete: {pods: sidecars-1}\n  - waitGone: sidecars-1";

#[test]
fn native_sidecars_stop_after_the_app_in_reverse_order() {
    let _serial = serial();
    let log = run(&sidecar_pod("1.33", DELETE_WHEN_READY, "Always", 0)).log;
    let app_exit = exited(&log, "app");
    assert!(sigterm(&log, "app") < app_exit);
    assert!(app_exit < sigterm(&log, "proxy"), "proxy after the app");
    assert!(
        exited(&log, "proxy") < sigterm(&log, "logs"),
        "logs after the proxy"
    );
    let hook = at(&log, "proxy", |a| matches!(a, Action::HookStarted { .. }))
        .at
        .boot_ns;
    assert!(
        hook - t0(&log) < 300_000_000,
        "the sidecar's preStop starts at t0"
    );
}

#[test]
fn kubelet_1_28_stops_sidecars_and_app_together() {
    let _serial = serial();
    let log = run(&sidecar_pod("1.28", DELETE_WHEN_READY, "Always", 0)).log;
    let app_exit = exited(&log, "app");
    // The proxy's 1 s preStop (50 ms here) comes first, then its SIGTERM,
    // while the app still drains for 2 s (100 ms).
    for sidecar in ["logs", "proxy"] {
        assert!(
            sigterm(&log, sidecar) < app_exit,
            "{sidecar} stopped before the app finished"
        );
    }
    assert!(
        !log.iter()
            .any(|e| matches!(e.action, Action::TurnReached { .. })),
        "no ordering in 1.28"
    );
}

const DELETE_DURING_INIT: &str = "  - waitStarted: {pod: sidecars-1, container: migrate}\n  - delete: {pods: sidecars-1}\n  - waitGone: sidecars-1";

#[test]
fn kubelet_1_29_holds_a_running_sidecar_for_one_that_never_started() {
    let _serial = serial();
    let report = run(&sidecar_pod("1.29", DELETE_DURING_INIT, "Always", 600));
    let log = &report.log;
    let grace = (20.0 * report.scale * 1e9) as u64;
    let turn = at(log, "logs", |a| matches!(a, Action::TurnReached { .. }));
    assert!(
        matches!(
            turn.action,
            Action::TurnReached {
                deadline_hit: true,
                ..
            }
        ),
        "{turn:?}"
    );
    assert!(
        sigterm(log, "logs") >= t0(log) + grace,
        "SIGTERM only at the deadline"
    );
    assert!(
        !log.iter().any(|e| e.container.as_deref() == Some("proxy")),
        "the proxy never started"
    );
}

#[test]
fn kubelet_1_31_stops_the_running_sidecar_at_once() {
    let _serial = serial();
    let log = run(&sidecar_pod("1.31", DELETE_DURING_INIT, "Always", 600)).log;
    let turn = at(&log, "logs", |a| matches!(a, Action::TurnReached { .. }));
    assert!(
        matches!(
            turn.action,
            Action::TurnReached {
                deadline_hit: false,
                ..
            }
        ),
        "{turn:?}"
    );
    assert!(sigterm(&log, "logs") - t0(&log) < 300_000_000);
}

#[test]
fn job_completion_stops_sidecars_in_reverse_and_the_pod_succeeds() {
    let _serial = serial();
    let steps = "  - waitPhase: {pod: sidecars-1, phase: Succeeded}\n  - delete: {pods: sidecars-1}\n  - waitGone: sidecars-1";
    let log = run(&sidecar_pod("1.33", steps, "Never", 0)).log;
    let stop = log
        .iter()
        .find(|e| matches!(e.action, Action::TerminationStarted { .. }))
        .expect("termination");
    assert!(matches!(
        stop.action,
        Action::TerminationStarted {
            cause: StopCause::JobCompletion,
            ..
        }
    ));
    let app_exit = exited(&log, "app");
    assert!(app_exit < stop.at.boot_ns, "the app finished first");
    assert!(
        !log.iter().any(|e| e.container.as_deref() == Some("app")
            && matches!(e.action, Action::SignalSent { .. }))
    );
    assert!(
        exited(&log, "proxy") < sigterm(&log, "logs"),
        "reverse order"
    );
    assert!(
        log.iter()
            .any(|e| matches!(&e.action, Action::PhaseChanged { phase } if phase == "Succeeded"))
    );
}

#[test]
fn sigkill_follows_the_remaining_grace_with_a_two_second_floor() {
    let _serial = serial();
    let report = run(r#"
name: floor
description: preStop eats most of the grace
pods:
  - manifest:
      metadata: {name: floor-1, namespace: default}
      spec:
        terminationGracePeriodSeconds: 4
        containers:
          - {name: app, image: app:1, lifecycle: {preStop: {sleep: {seconds: 3}}}}
    containers:
      app: {role: app-server, ignoreTerm: true}
"#);
    let log = &report.log;
    let second = (report.scale * 1e9) as u64;
    let kill = match at(log, "app", |a| {
        matches!(a, Action::SignalSent { signal: 9, .. })
    })
    .action
    {
        Action::SignalSent { before_boot_ns, .. } => before_boot_ns,
        _ => unreachable!(),
    };
    let term = sigterm(log, "app");
    assert!(
        term >= t0(log) + 3 * second,
        "SIGTERM after the 3 s preStop"
    );
    // 4 s grace - 3 s preStop = 1 s left, raised to the 2 s minimum.
    let gap = kill - term;
    assert!(
        gap >= 2 * second && gap < 2 * second + 300_000_000,
        "SIGKILL {} ms after SIGTERM",
        gap / 1_000_000
    );
    let exit = at(log, "app", |a| matches!(a, Action::ContainerExited { .. }));
    assert!(matches!(
        exit.action,
        Action::ContainerExited {
            exit_code: 137,
            signal: Some(9),
            ..
        }
    ));
}

#[test]
fn restart_backoff_and_container_ids_per_run() {
    let _serial = serial();
    let report = run(r#"
name: crashloop
description: a proxy that crashes once
pods:
  - manifest:
      metadata: {name: crash-1, namespace: default, annotations: {linkerd.io/inject: enabled}}
      spec:
        terminationGracePeriodSeconds: 5
        containers:
          - {name: linkerd-proxy, image: proxy:1, securityContext: {runAsUser: 2102}}
    containers:
      linkerd-proxy: {role: mesh-proxy, crashAfter: 1}
steps:
  - waitRestarts: {pod: crash-1, container: linkerd-proxy, count: 1}
  - delete: {pods: crash-1}
  - waitGone: crash-1
"#);
    let runs: BTreeMap<u32, (String, u64)> = report
        .log
        .iter()
        .filter_map(|e| match &e.action {
            Action::ContainerStarted {
                restart,
                container_id,
                ..
            } => Some((*restart, (container_id.clone(), e.at.boot_ns))),
            _ => None,
        })
        .collect();
    assert_eq!(runs.len(), 2);
    assert_ne!(runs[&0].0, runs[&1].0, "each run is a new container");
    let crash = at(&report.log, "linkerd-proxy", |a| {
        matches!(a, Action::ContainerExited { .. })
    });
    assert!(matches!(
        crash.action,
        Action::ContainerExited {
            exit_code: 134,
            signal: Some(6),
            ..
        }
    ));
    let backoff = runs[&1].1 - crash.at.boot_ns;
    let ten_seconds = (10.0 * report.scale * 1e9) as u64;
    assert!(
        backoff >= ten_seconds,
        "CrashLoopBackOff starts at 10 s: waited {} ms",
        backoff / 1_000_000
    );
}
