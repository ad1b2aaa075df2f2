//! A container's behaviour as `node-sim-workload` arguments.

use std::{collections::BTreeMap, net::SocketAddrV4};

use super::model::{ContainerSim, Role};
use crate::{kubelet::plan::PlanError, net::Mesh};

/// What the arguments depend on besides the container's own parameters.
pub struct RoleContext<'a> {
    pub peers: &'a BTreeMap<String, SocketAddrV4>,
    pub mesh: Option<Mesh>,
    /// How many times the container restarted before this run.
    pub restart: u32,
}

fn resolve(
    target: &str,
    container: &str,
    peers: &BTreeMap<String, SocketAddrV4>,
) -> Result<String, PlanError> {
    if let Some(addr) = peers.get(target) {
        return Ok(addr.to_string());
    }
    target
        .parse::<std::net::SocketAddr>()
        .map(|a| a.to_string())
        .map_err(|_| PlanError::UnknownTarget {
            container: container.to_owned(),
            target: target.to_owned(),
        })
}

/// The arguments after the binary's name.
pub fn workload_args(
    container: &str,
    role: Role,
    sim: &ContainerSim,
    ctx: &RoleContext<'_>,
) -> Result<Vec<String>, PlanError> {
    let mut argv: Vec<String> = Vec::new();
    let mut push = |k: &str, v: String| {
        argv.push(format!("--{k}"));
        argv.push(v);
    };
    let ms = |s: f64| crate::clock::millis(s).max(1).to_string();
    let needs = |parameter: &'static str| PlanError::RoleNeedsParameter {
        container: container.to_owned(),
        role,
        parameter,
    };
    let role_name = match role {
        Role::MeshProxy => {
            let mesh = ctx.mesh.ok_or_else(|| needs("a meshed pod"))?;
            push(
                "mesh",
                if mesh == Mesh::Istio {
                    "istio"
                } else {
                    "linkerd"
                }
                .into(),
            );
            if let Some(d) = sim.listen_delay {
                push("listen-delay-ms", ms(d));
            }
            if let Some(d) = sim.drain {
                push("drain-ms", ms(d));
            }
            if let Some(peer) = &sim.linger {
                push("linger", resolve(peer, container, ctx.peers)?);
            }
            if let Some(c) = sim.crash_after
                && ctx.restart < sim.crash_times.unwrap_or(1)
            {
                push("crash-after-ms", ms(c));
            }
            match sim.pilot_agent {
                true if mesh != Mesh::Istio => return Err(needs("an Istio pod (pilotAgent)")),
                true => "pilot-agent",
                false => "mesh-proxy",
            }
        }
        Role::MeshInit => {
            // The images carry no iptables: the driver installs the
            // capture at this container's step (see `install_capture`);
            // the container itself does a short piece of work and exits 0.
            ctx.mesh.ok_or_else(|| needs("a meshed pod"))?;
            push("work-ms", "50".into());
            push("exit", "0".into());
            "init-task"
        }
        Role::AppServer | Role::AppClient => {
            if let Some(port) = sim.serve {
                push("serve", port.to_string());
            }
            for target in &sim.call {
                push("call", resolve(target, container, ctx.peers)?);
            }
            if role == Role::AppClient && sim.call.is_empty() {
                return Err(needs("call"));
            }
            if let Some(i) = sim.interval {
                push("interval-ms", ms(i));
            }
            if let Some(d) = sim.drain {
                push("drain-ms", ms(d));
            }
            if let Some(r) = sim.ready_after {
                push("ready-after-ms", ms(r));
            }
            if let Some(l) = sim.listen_delay {
                push("listen-delay-ms", ms(l));
            }
            if let Some(n) = sim.preempt_per_s {
                push("preempt-per-s", n.to_string());
            }
            if sim.ignore_term {
                argv.push("--ignore-term".into());
            }
            if sim.default_term {
                argv.push("--default-term".into());
            }
            "app"
        }
        Role::LogShipper => {
            let sink = sim.sink.as_deref().ok_or_else(|| needs("sink"))?;
            push("sink", resolve(sink, container, ctx.peers)?);
            if let Some(i) = sim.interval {
                push("interval-ms", ms(i));
            }
            if let Some(p) = sim.health_port {
                push("health-port", p.to_string());
            }
            if let Some(p) = sim.forward_port {
                push("forward-port", p.to_string());
            }
            if let Some(d) = sim.drain {
                push("drain-ms", ms(d));
            }
            "log-shipper"
        }
        Role::JobWorker => {
            for target in &sim.call {
                push("call", resolve(target, container, ctx.peers)?);
            }
            push("work-ms", ms(sim.work.ok_or_else(|| needs("work"))?));
            push("exit", sim.exit_code.unwrap_or(0).to_string());
            if let Some(i) = sim.interval {
                push("interval-ms", ms(i));
            }
            if let Some(quit) = &sim.quit {
                let (target, path) = match quit.split_once('/') {
                    Some((target, path)) => (target, format!("/{path}")),
                    None => (quit.as_str(), "/quitquitquit".to_owned()),
                };
                push("quit", resolve(target, container, ctx.peers)?);
                push("quit-path", path);
            }
            "job-worker"
        }
        Role::SecretsAgent => {
            let vault = sim.vault.as_deref().ok_or_else(|| needs("vault"))?;
            push("vault", resolve(vault, container, ctx.peers)?);
            if let Some(i) = sim.interval {
                push("interval-ms", ms(i));
            }
            if let Some(p) = sim.health_port {
                push("health-port", p.to_string());
            }
            if sim.once {
                argv.push("--once".into());
            }
            "secrets-agent"
        }
        Role::DbProxy => {
            push(
                "listen",
                resolve(
                    sim.listen.as_deref().ok_or_else(|| needs("listen"))?,
                    container,
                    ctx.peers,
                )?,
            );
            let upstream = sim.upstream.as_deref().ok_or_else(|| needs("upstream"))?;
            push("upstream", resolve(upstream, container, ctx.peers)?);
            if let Some(p) = sim.health_port {
                push("health-port", p.to_string());
            }
            if let Some(r) = sim.ready_after {
                push("ready-after-ms", ms(r));
            }
            if let Some(d) = sim.listen_delay {
                push("listen-delay-ms", ms(d));
            }
            if let Some(d) = sim.drain {
                push("drain-ms", ms(d));
            }
            if let Some(code) = sim.exit_code {
                push("term-exit", code.to_string());
            }
            if let Some(after) = sim.crash_after {
                push("crash-after-ms", ms(after));
            }
            "db-proxy"
        }
        Role::InitTask => {
            push("work-ms", ms(sim.work.unwrap_or(0.0)));
            push("exit", sim.exit_code.unwrap_or(0).to_string());
            "init-task"
        }
    };
    argv.insert(0, role_name.to_owned());
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_arguments_are_in_milliseconds_and_resolved() {
        let peers = BTreeMap::from([("backend".to_string(), "10.96.0.10:80".parse().unwrap())]);
        let ctx = RoleContext {
            peers: &peers,
            mesh: None,
            restart: 0,
        };
        let sim = ContainerSim {
            call: vec!["backend".into(), "10.96.0.20:5432".into()],
            interval: Some(1.0),
            drain: Some(10.0),
            serve: Some(9080),
            ..ContainerSim::default()
        };
        let argv = workload_args("app", Role::AppClient, &sim, &ctx).unwrap();
        assert_eq!(
            argv.join(" "),
            "app --serve 9080 --call 10.96.0.10:80 --call 10.96.0.20:5432 --interval-ms 1000 --drain-ms 10000"
        );
        let bad = ContainerSim {
            call: vec!["nowhere".into()],
            ..ContainerSim::default()
        };
        assert!(matches!(
            workload_args("app", Role::AppClient, &bad, &ctx),
            Err(PlanError::UnknownTarget { .. })
        ));
    }

    #[test]
    fn proxy_crashes_only_in_its_first_runs() {
        let peers = BTreeMap::new();
        let sim = ContainerSim {
            crash_after: Some(2.0),
            ..ContainerSim::default()
        };
        let ctx = |restart| RoleContext {
            peers: &peers,
            mesh: Some(Mesh::Istio),
            restart,
        };
        let first = workload_args("istio-proxy", Role::MeshProxy, &sim, &ctx(0)).unwrap();
        assert!(first.join(" ").contains("--crash-after-ms 2000"));
        let second = workload_args("istio-proxy", Role::MeshProxy, &sim, &ctx(1)).unwrap();
        assert!(!second.join(" ").contains("crash"));
    }
}
