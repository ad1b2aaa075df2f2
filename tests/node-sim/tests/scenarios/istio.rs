//! Istio: legacy sidecars (refused calls at shutdown, held startup),
//! native sidecars with and without a startupProbe, a proxy crash, and an
//! excluded port, and a host shell's kill of Envoy.

use lifecycle_audit::{Outcome, RuleId, bypass::traffic::FlowClass};

use crate::{
    SLACK_NS, assert_before, assert_near, assert_no_refusals, capture_listen,
    common::{
        play,
        recording::{boot, ms},
    },
};

#[test]
fn istio_legacy_proxy_exits_first_and_app_calls_are_refused() {
    let p = play("istio-legacy-refused");
    let pod = "reviews-v1-6f7c9d5b8-kx2qp";
    let app_term = p.kernel_signal(pod, "reviews", 15);
    let proxy_term = p.kernel_signal(pod, "istio-proxy", 15);
    // Legacy: both at t0, in parallel (no order asserted).
    assert!(
        app_term.abs_diff(proxy_term) < SLACK_NS,
        "SIGTERMs {} / {} ms apart",
        ms(app_term),
        ms(proxy_term)
    );
    let proxy_exit = boot(p.kernel_exit(pod, "istio-proxy", 0));
    let app_exit = boot(p.kernel_exit(pod, "reviews", 0));
    assert_before(
        proxy_exit,
        app_exit,
        "the proxy exits before the app drained",
    );
    // Envoy drains 5 s, the app 10 s: the app's calls after the proxy left are refused.
    // (The app is declared first, so its first calls may also race the
    // proxy's start: those come before the capture port listens.)
    let listening = capture_listen(&p, pod, "istio-proxy", 15001, 0);
    let refused = p.rec.refused(pod, "reviews");
    let at_shutdown = refused.iter().filter(|r| boot(r) > proxy_exit).count();
    assert!(
        at_shutdown > 0,
        "no refused connects after the proxy exited"
    );
    for r in &refused {
        let (at, t) = (boot(r), ms(boot(r)));
        assert!(
            at < listening || (at > proxy_exit && at < app_exit),
            "refused at {t} ms while the proxy listened: {r}"
        );
        assert_eq!(
            r["remote_addr"], "10.96.0.10",
            "the socket keeps its original destination: {r}"
        );
        assert_eq!(r["remote_port"], 80, "{r}");
    }
    let failed_calls = p
        .events(pod, "reviews", "request")
        .into_iter()
        .filter(|e| e["errno"] == 111)
        .count();
    assert_eq!(
        refused.len(),
        failed_calls,
        "recorded refusals vs the app's own count"
    );
}

#[test]
fn istio_legacy_hold_starts_the_app_once_the_proxy_is_ready() {
    let p = play("istio-legacy-hold");
    let pod = "checkout-5b9d7c6f4-q8w2e";
    let hook_done = p
        .entries(pod, Some("istio-proxy"))
        .into_iter()
        .find(|e| matches!(e.action, node_sim::Action::HookFinished { ok: true, .. }))
        .expect("pilot-agent wait ran in istio-proxy and succeeded");
    let listening = capture_listen(&p, pod, "istio-proxy", 15001, 0);
    let app_exec = boot(p.kernel_exec(pod, "checkout", 0));
    assert_before(
        hook_done.at.boot_ns,
        app_exec,
        "the app starts once the postStart hook returned",
    );
    assert_before(
        listening,
        app_exec,
        "the app starts after the proxy listens",
    );
    assert_no_refusals(&p, pod, "checkout");
    let (app_term, proxy_term) = (
        p.kernel_signal(pod, "checkout", 15),
        p.kernel_signal(pod, "istio-proxy", 15),
    );
    assert!(
        app_term.abs_diff(proxy_term) < SLACK_NS,
        "legacy: SIGTERMs together at t0"
    );
}

#[test]
fn istio_native_gates_the_app_on_the_startup_probe_and_stops_the_proxy_last() {
    let p = play("istio-native-startup-probe");
    let pod = "ratings-v1-7d8f9b6c5-m4n7p";
    let listening = capture_listen(&p, pod, "istio-proxy", 15001, 0);
    assert_before(
        listening,
        boot(p.kernel_exec(pod, "ratings", 0)),
        "startupProbe gates the app",
    );
    let t0 = p.t0(pod);
    let drain_hook = p
        .entries(pod, Some("istio-proxy"))
        .into_iter()
        .find(|e| {
            matches!(
                e.action,
                node_sim::Action::HookStarted {
                    hook: node_sim::HookPhase::PreStop,
                    ..
                }
            )
        })
        .expect("the proxy's preStop (drain) ran");
    assert_near(
        drain_hook.at.boot_ns,
        t0,
        SLACK_NS,
        "the sidecar's preStop starts at t0",
    );
    assert_near(
        p.kernel_signal(pod, "ratings", 15),
        t0,
        SLACK_NS,
        "the app's SIGTERM at t0",
    );
    let app_exit = boot(p.kernel_exit(pod, "ratings", 0));
    assert_before(
        app_exit,
        p.kernel_signal(pod, "istio-proxy", 15),
        "ordered: proxy SIGTERM after the app exited",
    );
    assert_no_refusals(&p, pod, "ratings");
}

#[test]
fn native_sidecar_without_startup_probe_lets_the_app_race_the_proxy() {
    let p = play("native-sidecar-no-startup-probe");
    let pod = "details-v1-65cb7f8d9c-2rkwq";
    let listening = capture_listen(&p, pod, "istio-proxy", 15001, 0);
    assert_before(
        boot(p.kernel_exec(pod, "details", 0)),
        listening,
        "the app starts before Envoy listens",
    );
    let refused = p.rec.refused(pod, "details");
    assert!(!refused.is_empty(), "the app's first calls are refused");
    for r in &refused {
        assert!(boot(r) < listening, "refused after the proxy listened: {r}");
    }
    let established = p
        .rec
        .sockets(pod, "details", "connect_established")
        .filter(|r| r["remote_port"] == 80)
        .count();
    assert!(established > 0, "calls succeed once Envoy listens");
    let app_exit = boot(p.kernel_exit(pod, "details", 0));
    assert_before(
        app_exit,
        p.kernel_signal(pod, "istio-proxy", 15),
        "termination is still ordered",
    );
}

#[test]
fn proxy_crash_refuses_the_apps_calls_until_the_restart_listens() {
    let p = play("proxy-crash-restart");
    let pod = "productpage-v1-5d9f7c6b8a-k2l3m";
    let crash = p.kernel_exit(pod, "istio-proxy", 0);
    assert_eq!(
        (
            crash["killed_by_signal"].as_u64(),
            crash["container_exit_code"].as_u64()
        ),
        // abort() as PID 1 of its pid namespace: the kernel drops the
        // SIGABRT, glibc ends the process by a fault.
        (Some(11), Some(139))
    );
    let restart = p.kernel_exec(pod, "istio-proxy", 1);
    let first = p.kernel_exec(pod, "istio-proxy", 0);
    assert_ne!(
        restart["process"]["cgroup"]["container_id"], first["process"]["cgroup"]["container_id"],
        "a new container"
    );
    // The restarted run's events wait until the kubelet reports its new
    // container id, then carry the container name like the first run's.
    let relisten = p
        .rec
        .of_type("socket")
        .filter(|r| {
            r["op"] == "listen_start"
                && r["local_port"] == 15001
                && r["owner"]["pid"] == restart["process"]["pid"]
        })
        .inspect(|r| assert_eq!(r["owner"]["k8s"]["container"], "istio-proxy", "{r}"))
        .map(boot)
        .next()
        .expect("the restarted proxy listens on 15001");
    let refused = p.rec.refused(pod, "productpage");
    assert!(
        !refused.is_empty(),
        "calls refused while the proxy was down"
    );
    for r in &refused {
        assert!(
            boot(r) > boot(crash) && boot(r) < relisten,
            "refused outside the outage: {r}"
        );
    }
    let after = p
        .rec
        .sockets(pod, "productpage", "connect_established")
        .any(|r| boot(r) > relisten && r["remote_port"] == 80);
    assert!(after, "calls succeed again after the restart");
    let restarted = p.rec.pod_changes(pod, "container_transition").any(|r| {
        r["change"]["container"] == "istio-proxy"
            && r["change"]["transition"]["type"] == "running"
            && r["change"]["transition"]["restart_count"] == 1
    });
    assert!(restarted, "the API reported the restart");
}

#[test]
fn excluded_port_leaves_the_pod_without_the_proxy() {
    let p = play("excluded-port-plaintext");
    let pod = "inventory-6b8d0f2a4c-n7p8q";
    let ip = p
        .report
        .log
        .iter()
        .find_map(|e| match &e.action {
            node_sim::Action::SandboxStarted { pod_ip, .. } => Some(pod_ip.clone()),
            _ => None,
        })
        .expect("pod ip");
    let accepts: Vec<&serde_json::Value> = p
        .rec
        .sockets(pod, "istio-proxy", "accept")
        .filter(|r| r["local_port"] == 15001)
        .collect();
    let proxied_by = |port: &serde_json::Value| accepts.iter().any(|a| &a["remote_port"] == port);
    let app = |remote: u16| -> Vec<&serde_json::Value> {
        p.rec
            .sockets(pod, "inventory", "connect_established")
            .filter(|r| r["remote_port"] == remote)
            .collect()
    };
    let (http, db) = (app(80), app(5432));
    assert!(!http.is_empty() && !db.is_empty(), "the app called both");
    for r in &http {
        assert!(
            proxied_by(&r["local_port"]),
            "an HTTP call not through Envoy: {r}"
        );
        assert_eq!(r["uid"], 0);
    }
    let upstream = p
        .rec
        .sockets(pod, "istio-proxy", "connect_established")
        .find(|r| r["remote_addr"] == "10.96.0.18" && r["remote_port"] == 80)
        .expect("Envoy's upstream connection");
    assert_eq!(
        upstream["uid"], 1337,
        "Envoy's own traffic is not captured: {upstream}"
    );
    let served = p.events("cluster", "peers", "served");
    for r in &db {
        assert!(
            !proxied_by(&r["local_port"]),
            "a database call went through Envoy: {r}"
        );
        let peer = format!("{ip}:{}", r["local_port"]);
        assert!(
            served
                .iter()
                .any(|s| s["service"] == "10.96.0.22:5432" && s["peer"] == peer.as_str()),
            "the database saw the app's own socket {peer}"
        );
    }
    // The audit tells them apart: every HTTP call proxied, every database
    // call excluded (plaintext as configured), so M3 holds.
    let audit = p.audit_of(pod);
    let bypass = audit.bypass.as_ref().expect("a meshed pod");
    let classes = |port: &str| -> Vec<FlowClass> {
        bypass
            .flows
            .iter()
            .filter(|f| f.container == "inventory" && f.remote.ends_with(port))
            .map(|f| f.class)
            .collect()
    };
    let (http_classes, db_classes) = (classes(":80"), classes(":5432"));
    assert_eq!(http_classes.len(), http.len(), "{http_classes:?}");
    assert!(http_classes.iter().all(|c| *c == FlowClass::Proxied));
    assert_eq!(db_classes.len(), db.len(), "{db_classes:?}");
    assert!(db_classes.iter().all(|c| *c == FlowClass::Excluded));
    let m3 = audit.verdict(RuleId::M3).expect("M3 judged");
    assert_eq!(m3.outcome, Outcome::Held, "{}", m3.note);
}

#[test]
fn a_host_kill_of_envoy_names_the_shell_that_sent_it() {
    let p = play("host-kill-envoy");
    let pod = "checkout-5b9d7c6f4-h7k2m";
    let (sender_pid, target_pid) = p
        .entries(pod, Some("istio-proxy"))
        .iter()
        .find_map(|e| match e.action {
            node_sim::Action::HostSignalSent {
                sender_pid,
                target_pid,
                ..
            } => Some((sender_pid, target_pid)),
            _ => None,
        })
        .expect("the host kill was sent");
    assert_eq!(target_pid, p.pid(pod, "istio-proxy"), "Envoy's first run");
    let term = p
        .rec
        .signals_to(target_pid)
        .into_iter()
        .find(|r| r["signal"] == 15)
        .cloned()
        .expect("the SIGTERM in the recording");
    assert_eq!(
        (
            term["sender"]["comm"].as_str(),
            term["sender"]["pid"].as_u64(),
            term["sender_parent_pid"].as_u64()
        ),
        (
            Some("sh"),
            Some(sender_pid.into()),
            Some(std::process::id().into())
        ),
        "{term}"
    );
    let audit = p.audit_of(pod);
    let x1 = audit
        .findings
        .iter()
        .find(|f| f.rule == RuleId::X1)
        .expect("the X1 finding");
    for part in [
        format!("host process \"sh\" (pid {sender_pid}, parent "),
        format!(" pid {})", std::process::id()),
        "no pod termination was under way".to_owned(),
    ] {
        assert!(x1.message.contains(&part), "{part}: {}", x1.message);
    }
    // The kill started no termination: the one audited is the delete's,
    // after Envoy's restart.
    let t0 = audit.termination.as_ref().and_then(|t| t.t0).expect("t0");
    let restart = boot(p.kernel_exec(pod, "istio-proxy", 1));
    assert!(t0.ns as u64 > restart, "t0 after the restart");
    assert!(
        !p.rec.refused(pod, "checkout").is_empty(),
        "refusals while Envoy was down"
    );
}

#[test]
fn a_leftover_prestop_sleep_holds_the_native_proxy_after_the_app() {
    let p = play("native-sidecar-leftover-prestop-sleep");
    let pod = "ratings-v1-7d8f9b6c5-w5x6y";
    let t0 = p.t0(pod);
    let app_exit = boot(p.kernel_exit(pod, "ratings", 0));
    // Its drain loop wakes every 0.5 s call interval.
    assert_near(
        app_exit,
        t0 + 2 * p.second_ns(),
        SLACK_NS + p.second_ns() / 2,
        "the app drains 2 s",
    );
    let term = p.kernel_signal(pod, "istio-proxy", 15);
    assert_near(
        term,
        t0 + 10 * p.second_ns(),
        SLACK_NS,
        "SIGTERM when the sleep ends",
    );
    let f = p.finding(pod, lifecycle_audit::FindingKind::SidecarHeldByPreStop);
    assert!(f.message.contains("held by its preStop"), "{}", f.message);
}

/// pilot-agent's SIGKILL of its child Envoy: (the record, Envoy's pid).
pub(crate) fn agent_kills_envoy<'p>(
    p: &'p crate::Played,
    pod: &str,
) -> (&'p serde_json::Value, u64) {
    let agent = u64::from(p.pid(pod, "istio-proxy"));
    let kill = p
        .rec
        .of_type("signal_generate")
        .find(|r| r["signal"] == 9 && r["sender"]["pid"] == agent && r["target"]["pid"] != agent)
        .expect("pilot-agent's SIGKILL of Envoy");
    assert_eq!(kill["sender"]["comm"], "pilot-agent", "{kill}");
    assert_eq!(kill["target"]["comm"], "envoy", "{kill}");
    assert_eq!(kill["target"]["k8s"]["container"], "istio-proxy", "{kill}");
    let envoy = kill["target"]["pid"].as_u64().unwrap();
    // Envoy, not the agent, held the capture port.
    let capture = p
        .rec
        .listen_start(pod, "istio-proxy", 15001, 0)
        .expect("the capture listener");
    assert_eq!(capture["owner"]["pid"].as_u64(), Some(envoy), "{capture}");
    (kill, envoy)
}

#[test]
fn legacy_pilot_agent_drains_then_sigkills_envoy() {
    let p = play("istio-pilot-agent-legacy");
    let pod = "reviews-v1-6f7c9d5b8-pa1lg";
    let t0 = p.t0(pod);
    let (kill, _) = agent_kills_envoy(&p, pod);
    assert_near(
        boot(kill),
        t0 + 5 * p.second_ns(),
        SLACK_NS,
        "SIGKILL after terminationDrainDuration",
    );
    let agent_exit = boot(p.kernel_exit(pod, "istio-proxy", 0));
    assert_before(boot(kill), agent_exit, "Envoy dies before its agent");
    let refused = p.rec.refused(pod, "reviews");
    assert!(
        refused.iter().any(|r| boot(r) > boot(kill)),
        "the draining app is refused once Envoy is gone"
    );
}

#[test]
fn native_pilot_agent_finds_envoy_drained_and_kills_it_at_once() {
    let p = play("istio-pilot-agent-native");
    let pod = "ratings-v1-7d8f9b6c5-pa2nt";
    let (kill, _) = agent_kills_envoy(&p, pod);
    let term = p.kernel_signal(pod, "istio-proxy", 15);
    assert_before(
        boot(p.kernel_exit(pod, "ratings", 0)),
        term,
        "the agent's SIGTERM after the app exited",
    );
    assert!(
        boot(kill) - term < 500_000_000,
        "SIGKILL {} ms after the SIGTERM: already drained",
        ms(boot(kill) - term)
    );
    assert!(!p.events(pod, "istio-proxy", "already_drained").is_empty());
}

#[test]
fn a_hold_that_times_out_starts_the_app_without_its_proxy() {
    let p = play("istio-legacy-hold-timeout");
    let pod = "batch-orders-import";
    assert!(
        p.entries(pod, Some("istio-proxy"))
            .iter()
            .any(|e| matches!(e.action, node_sim::Action::PostStartFailed)),
        "the kubelet's FailedPostStartHook"
    );
    let agent = u64::from(p.pid(pod, "istio-proxy"));
    let hook_exit = p
        .rec
        .of_type("process_exit")
        .find(|r| {
            r["process"]["k8s"]["container"] == "istio-proxy"
                && r["process"]["pid"] != agent
                && r["container_exit_code"] == 255
        })
        .expect("the hook's exit 255");
    let app_start = boot(p.kernel_exec(pod, "importer", 0));
    assert_before(
        boot(hook_exit),
        app_start,
        "the app starts once the hook failed",
    );
    let killed = p.kernel_signal(pod, "istio-proxy", 15);
    assert_before(
        killed,
        app_start + p.second_ns(),
        "the kubelet kills the proxy at once",
    );
    assert_eq!(
        p.pids(pod, "istio-proxy").len(),
        1,
        "restartPolicy Never: no restart"
    );
    assert!(
        p.rec.listen_start(pod, "istio-proxy", 15001, 0).is_none(),
        "never listened"
    );
    assert!(
        !p.rec.refused(pod, "importer").is_empty(),
        "the app's calls refused at 15001"
    );
    let f = p.finding(pod, lifecycle_audit::FindingKind::PostStartHookFailed);
    assert!(f.message.contains("exited 255"), "{}", f.message);
    assert!(f.message.contains("not restarted"), "{}", f.message);
}
