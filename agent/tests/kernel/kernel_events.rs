//! Real kernel, real cgroups: two kubelet-style pods (systemd and cgroupfs
//! drivers), processes inside them, and `lifecycle-agent record` attached.
//! Every assertion is on what the recording says about what the test did.

use std::{
    io::{BufRead, BufReader},
    process::{Child, ChildStdout, Command, Stdio},
};

use lifecycle_testkit::{Driver, FakeContainer, FakePod, Recording, spawn_in, workload_path};
use serde_json::Value;

use crate::support::agent::AGENT;
use crate::support::kernel::exclusive_blocking;

/// Starts a workload role in a container and waits for its `ready` line.
fn start(container: &FakeContainer, args: &[&str]) -> (Child, BufReader<ChildStdout>, String) {
    let mut cmd = Command::new(workload_path());
    cmd.args(args).stdout(Stdio::piped());
    let mut child = spawn_in(&container.dir, &mut cmd);
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read ready line");
    assert!(line.starts_with("ready"), "{args:?} said {line:?}");
    (child, out, line.trim().to_string())
}

/// Runs a workload role in a container to completion; returns stdout and exit code.
fn run(container: &FakeContainer, args: &[&str]) -> (String, i32) {
    let mut cmd = Command::new(workload_path());
    cmd.args(args).stdout(Stdio::piped());
    let child = spawn_in(&container.dir, &mut cmd);
    let output = child.wait_with_output().expect("wait");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        output.status.code().unwrap_or(-1),
    )
}

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

/// Asserts a process/socket cgroup attribution names this container and pod.
fn assert_in(cgroup: &Value, container: &FakeContainer, pod: &FakePod, what: &str) {
    assert_eq!(cgroup["kind"], "container", "{what}: {cgroup}");
    assert_eq!(
        cgroup["container_id"],
        container.id.as_str(),
        "{what}: {cgroup}"
    );
    assert_eq!(cgroup["pod_uid"], pod.uid.as_str(), "{what}: {cgroup}");
}

#[test]
fn signals_processes_and_sockets_are_attributed_on_both_sides() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let mut pod_a = FakePod::create(Driver::Systemd);
    let mut pod_b = FakePod::create(Driver::Cgroupfs);
    let (a, b) = (pod_a.add_container(), pod_b.add_container());
    let recording = Recording::start(AGENT.as_ref(), &[]);

    // Signals: A sends SIGTERM to a handler in B and to a process in B that ignores it.
    let (mut handler, _h_out, _) = start(&b, &["handle-term"]);
    let (mut ignorer, _i_out, _) = start(&b, &["ignore-term", "30"]);
    let (killer_out, _) = run(&a, &["kill", &handler.id().to_string(), "15"]);
    assert!(killer_out.contains("rc=0"), "{killer_out}");
    run(&a, &["kill", &ignorer.id().to_string(), "15"]);
    assert!(handler.wait().expect("handler").success());
    // The ignorer is still alive: SIGKILL it (from the test, a host process).
    ignorer.kill().expect("kill ignorer");
    ignorer.wait().expect("ignorer");
    let (_, code) = run(&a, &["exit", "7"]);
    assert_eq!(code, 7);

    // Sockets: B listens, A connects (accepted), then A connects to a closed port.
    let (mut listener, _l_out, ready) = start(&b, &["listen", "127.0.0.1:0", "1"]);
    let port: u16 = ready.trim_start_matches("ready ").parse().expect("port");
    let (connected, code) = run(&a, &["connect", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, 0, "{connected}");
    let client_port: u16 = connected
        .trim()
        .trim_start_matches("connected ")
        .parse()
        .expect("client port");
    assert!(listener.wait().expect("listener").success());
    let (refused, code) = run(&a, &["connect", &format!("127.0.0.1:{port}")]);
    assert_eq!((refused.trim(), code), ("failed 111", 1));

    let records = recording.stop();
    let handler_pid = handler.id() as u64;
    let ignorer_pid = ignorer.id() as u64;

    // SIGTERM from A to B: both ends attributed, delivered, SI_USER.
    let sigterms: Vec<&Value> = of_type(&records, "signal_generate")
        .into_iter()
        .filter(|r| r["signal"] == 15 && r["sender"]["cgroup"]["kind"] == "container")
        .collect();
    let to_handler = sigterms
        .iter()
        .find(|r| r["target"]["pid"] == handler_pid)
        .expect("SIGTERM to handler");
    assert_in(&to_handler["sender"]["cgroup"], &a, &pod_a, "sender");
    assert_in(&to_handler["target"]["cgroup"], &b, &pod_b, "target");
    assert_eq!(to_handler["sender"]["comm"], "lifecycle-workl");
    assert_eq!(to_handler["signal_name"], "SIGTERM");
    assert_eq!(to_handler["code_name"], "SI_USER");
    assert_eq!(to_handler["result"], "delivered");
    assert_eq!(to_handler["target"]["cgroup_id"], b.cgroup_id());
    assert_eq!(to_handler["sender"]["cgroup_id"], a.cgroup_id());
    let to_ignorer = sigterms
        .iter()
        .find(|r| r["target"]["pid"] == ignorer_pid)
        .expect("SIGTERM to ignorer");
    assert_eq!(to_ignorer["result"], "ignored");
    assert_in(
        &to_ignorer["target"]["cgroup"],
        &b,
        &pod_b,
        "ignoring target",
    );

    // The handler's delivery shows a user handler; the SIGKILL from the host
    // (sender not in any pod) is still recorded because its target is.
    let delivered = of_type(&records, "signal_deliver")
        .into_iter()
        .find(|r| r["process"]["pid"] == handler_pid && r["signal"] == 15)
        .expect("SIGTERM delivery to handler");
    assert_eq!(delivered["handler"], "handler");
    let sigkill = of_type(&records, "signal_generate")
        .into_iter()
        .find(|r| r["target"]["pid"] == ignorer_pid && r["signal"] == 9)
        .expect("SIGKILL to ignorer");
    assert_eq!(sigkill["sender"]["cgroup"]["kind"], "not_kubernetes");

    // Exit codes as a runtime would report them.
    let exits = of_type(&records, "process_exit");
    let exit_of = |pid: u64| exits.iter().find(|r| r["process"]["pid"] == pid).copied();
    assert_eq!(
        exit_of(handler_pid).expect("handler exit")["container_exit_code"],
        0
    );
    let ignorer_exit = exit_of(ignorer_pid).expect("ignorer exit");
    assert_eq!(
        (
            ignorer_exit["killed_by_signal"].as_i64(),
            ignorer_exit["container_exit_code"].as_i64()
        ),
        (Some(9), Some(137))
    );
    assert!(
        exits
            .iter()
            .any(|r| r["exit_status"] == 7
                && r["process"]["cgroup"]["container_id"] == a.id.as_str()),
        "no exit 7 in container A"
    );
    // Every process is keyed by (pid, start time): exec and exit agree on it.
    let exec = of_type(&records, "process_exec")
        .into_iter()
        .find(|r| r["process"]["pid"] == handler_pid)
        .expect("handler exec");
    assert_eq!(
        exec["process"]["start_ns"],
        exit_of(handler_pid).unwrap()["process"]["start_ns"]
    );
    assert!(
        exec["filename"]
            .as_str()
            .unwrap()
            .ends_with("lifecycle-workload")
    );
    assert_in(&exec["process"]["cgroup"], &b, &pod_b, "exec");

    // Sockets: the right 4-tuples and owners on both ends.
    let sockets = of_type(&records, "socket");
    let find = |op: &str, pred: &dyn Fn(&Value) -> bool| {
        sockets
            .iter()
            .find(|r| r["op"] == op && pred(r))
            .copied()
            .unwrap_or_else(|| panic!("no {op} event"))
    };
    let listen = find("listen_start", &|r| r["local_port"] == port);
    assert_eq!(listen["owner"]["pid"], listener.id() as u64);
    assert_in(&listen["socket_cgroup"], &b, &pod_b, "listener");
    let connect = find("connect_established", &|r| {
        r["remote_port"] == port && r["local_port"] == client_port
    });
    assert_in(&connect["owner"]["cgroup"], &a, &pod_a, "connector");
    assert_in(&connect["socket_cgroup"], &a, &pod_a, "connector socket");
    assert_eq!(connect["local_addr"], "127.0.0.1");
    let accept = find("accept", &|r| {
        r["local_port"] == port && r["remote_port"] == client_port
    });
    assert_eq!(
        accept["owner"]["pid"],
        listener.id() as u64,
        "accept owned by the listener"
    );
    assert_in(&accept["socket_cgroup"], &b, &pod_b, "accepted socket");
    for (side, local, remote) in [("client", client_port, port), ("server", port, client_port)] {
        let close = find("close", &|r| {
            r["local_port"] == local && r["remote_port"] == remote
        });
        assert!(
            close["owner"].is_object(),
            "{side} close has an owner: {close}"
        );
    }
    let refused = find("connect_failed", &|r| r["remote_port"] == port);
    assert_eq!(refused["error"], "ECONNREFUSED");
    assert_in(&refused["owner"]["cgroup"], &a, &pod_a, "refused connector");

    // The recording closes with a stats line and nothing dropped.
    let last = records.last().expect("records");
    assert_eq!(
        (last["type"].as_str(), last["last"].as_bool()),
        (Some("stats"), Some(true))
    );
    assert_eq!(last["kernel_drops_total"], 0);
}

#[test]
fn container_cgroups_created_and_removed_during_recording_are_attributed() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let mut pod = FakePod::create(Driver::Systemd);
    let recording = Recording::start(AGENT.as_ref(), &[]);
    let container = pod.add_container();
    let id = container.cgroup_id();
    let (_, code) = run(&container, &["exit", "3"]);
    assert_eq!(code, 3);
    std::fs::remove_dir(&container.dir).expect("rmdir container cgroup");
    let records = recording.stop();

    let cgroup_ops: Vec<&Value> = of_type(&records, "cgroup")
        .into_iter()
        .filter(|r| r["cgroup_id"] == id)
        .collect();
    let ops: Vec<&str> = cgroup_ops
        .iter()
        .map(|r| r["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["mkdir", "attach", "rmdir"], "{cgroup_ops:?}");
    assert_in(&cgroup_ops[0]["class"], &container, &pod, "mkdir class");
    assert_eq!(cgroup_ops[0]["class"]["runtime"], "containerd");
    assert_eq!(cgroup_ops[0]["class"]["qos"], "burstable");
    let exit = of_type(&records, "process_exit")
        .into_iter()
        .find(|r| r["process"]["cgroup_id"] == id)
        .expect("exit in the removed container");
    assert_eq!(exit["exit_status"], 3);
    assert_in(
        &exit["process"]["cgroup"],
        &container,
        &pod,
        "exit after rmdir",
    );
    assert_eq!(cgroup_ops[1]["moved_pid"], exit["process"]["pid"]);
    // Wall-clock gaps equal boot-clock gaps; the offset is re-sampled each
    // second, and a re-sample may move it by its measurement error (< 10 us).
    let (mkdir_ns, exit_ns) = (
        cgroup_ops[0]["time_ns"].as_i64().unwrap(),
        exit["time_ns"].as_i64().unwrap(),
    );
    assert!(mkdir_ns < exit_ns);
    let boot_gap =
        (exit["boot_ns"].as_u64().unwrap() - cgroup_ops[0]["boot_ns"].as_u64().unwrap()) as i64;
    assert!(
        ((exit_ns - mkdir_ns) - boot_gap).abs() < 10_000,
        "wall gap {} vs boot gap {boot_gap}",
        exit_ns - mkdir_ns
    );
}

#[test]
fn ipv6_listen_connect_and_refusal_are_recorded() {
    lifecycle_testkit::needs_root!();
    let _kernel = exclusive_blocking();
    let mut pod = FakePod::create(Driver::Systemd);
    let (server, client) = (pod.add_container(), pod.add_container());
    let recording = Recording::start(AGENT.as_ref(), &[]);
    let (mut listener, _out, ready) = start(&server, &["listen", "[::1]:0", "1"]);
    let port: u16 = ready.trim_start_matches("ready ").parse().expect("port");
    let (said, code) = run(&client, &["connect", &format!("[::1]:{port}")]);
    assert_eq!(code, 0, "{said}");
    assert!(listener.wait().expect("listener").success());
    let (refused, code) = run(&client, &["connect", &format!("[::1]:{port}")]);
    assert_eq!((refused.trim(), code), ("failed 111", 1));
    let records = recording.stop();

    let sockets = of_type(&records, "socket");
    let on_port = |op: &str| {
        sockets
            .iter()
            .find(|r| r["op"] == op && (r["local_port"] == port || r["remote_port"] == port))
            .copied()
            .unwrap_or_else(|| panic!("no IPv6 {op} on port {port}"))
    };
    for op in [
        "listen_start",
        "connect_established",
        "accept",
        "listen_stop",
        "connect_failed",
    ] {
        let event = on_port(op);
        assert_eq!(event["family"], "ipv6", "{op}: {event}");
        assert_eq!(event["local_addr"], "::1", "{op}: {event}");
    }
    assert_in(
        &on_port("accept")["socket_cgroup"],
        &server,
        &pod,
        "IPv6 accept",
    );
    assert_in(
        &on_port("connect_established")["owner"]["cgroup"],
        &client,
        &pod,
        "IPv6 connect",
    );
    assert_eq!(on_port("connect_failed")["error"], "ECONNREFUSED");
}
