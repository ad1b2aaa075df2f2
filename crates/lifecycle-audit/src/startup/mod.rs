//! Startup audit: per container its first exec, first listen per port and
//! the API's running/started/ready; per (app, sidecar) pair the gaps from
//! the sidecar listening to the app's first exec, first outbound connect
//! and first accepted connection. A negative gap is the race: the app ran
//! before its sidecar could serve it. [`rules`] judges S1–S4.

pub mod hold;
pub mod rules;

use lifecycle_recording::pods::{ContainerKind, SidecarRole, spec::HookFacts, spec::PortRef};
use serde::{Deserialize, Serialize};

use super::{
    fmt::to_s,
    mesh::{MeshContext, context},
    termination::ExitMark,
    timeline::{At, Connection, ContainerApi, ContainerTimeline, PodTimeline, socket::is_loopback},
};

/// An API fact with the agent's observation and the API's whole second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMark {
    /// When the agent saw the API report it.
    pub at: At,
    /// The API's own time, whole Unix seconds (`startedAt`, or the status
    /// write for `started`/`ready`); `None` when the API gave none.
    pub api_s: Option<i64>,
}

/// First listen on one port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstListen {
    /// The local TCP port.
    pub port: u16,
    /// The local address listened on (e.g. `0.0.0.0`).
    pub addr: String,
    /// `None`: already listening when the recording started.
    pub at: Option<At>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// How one container started.
pub struct ContainerStartup {
    /// The container's name.
    pub container: String,
    /// Init, native sidecar, legacy sidecar or app, from the spec, the API or the
    /// join; `None` when none of them said.
    pub kind: Option<ContainerKind>,
    /// What the container is for (mesh proxy, log shipper, …); `None` when
    /// unknown.
    pub role: Option<SidecarRole>,
    /// PID 1's first exec (the entrypoint); `None` when no run started in
    /// the recording.
    pub first_exec: Option<At>,
    /// End of the first run (what S1 needs of init containers).
    pub first_exit: Option<ExitMark>,
    /// The first listen on each port.
    pub listens: Vec<FirstListen>,
    /// The API's first report of a run.
    pub running: Option<ApiMark>,
    /// When the API's `started` flag first turned true.
    pub started: Option<ApiMark>,
    /// When the API's `ready` flag first turned true.
    pub ready: Option<ApiMark>,
    /// The container's first outbound connect, to any destination.
    pub first_connect: Option<At>,
    /// The first connection accepted on one of its listeners.
    pub first_accept: Option<At>,
    /// The spec declares a startupProbe.
    pub startup_probe: bool,
}

impl ContainerStartup {
    /// The first listen on `port`, if any.
    pub fn listen_on(&self, port: u16) -> Option<&FirstListen> {
        self.listens.iter().find(|l| l.port == port)
    }
}

/// How the app's exec second compares with the sidecar's `ready` second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiCompare {
    /// The app exec'd in an earlier second than the sidecar became ready.
    Before,
    /// Same whole second: the API cannot tell (A1).
    SameSecond,
    /// The app exec'd in a later second than the sidecar became ready.
    After,
    /// The app's exec or the sidecar's `ready` second is not known.
    Missing,
}

/// The gaps between one sidecar serving and one app container acting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartupGap {
    /// The app container.
    pub app: String,
    /// The sidecar container.
    pub sidecar: String,
    /// The sidecar ports the gap is measured against.
    pub ports: Vec<u16>,
    /// When the sidecar was listening on all of them.
    pub sidecar_listening: Option<At>,
    /// app first exec − sidecar listening.
    pub exec_gap_s: Option<f64>,
    /// app first connect through the sidecar − its outbound listener.
    pub connect_gap_s: Option<f64>,
    /// app first accepted connection − the sidecar's inbound listener.
    pub accept_gap_s: Option<f64>,
    /// The app's first connect through the sidecar (what `connect_gap_s`
    /// measures).
    pub app_first_connect: Option<At>,
    /// The app's first accepted connection; `None` unless the sidecar is the
    /// mesh proxy.
    pub app_first_accept: Option<At>,
    /// The app's exec second against the sidecar's `ready` second (API).
    pub exec_vs_ready: ApiCompare,
    /// The sidecar is native: a race falls under S2, else under S4.
    pub native: bool,
    /// The sidecar has a startupProbe.
    pub startup_probe: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// The startup of one pod.
pub struct StartupAudit {
    /// First exec of any container of the pod.
    pub first_exec: Option<At>,
    /// One per container, in the timeline's order.
    pub containers: Vec<ContainerStartup>,
    /// One per (app, sidecar) pair whose sidecar serves ports (always for the
    /// mesh proxy).
    pub gaps: Vec<StartupGap>,
}

impl StartupAudit {
    /// The startup of the container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerStartup> {
        self.containers.iter().find(|c| c.container == name)
    }
}

fn first_flag(api: &ContainerApi, ready: bool) -> Option<ApiMark> {
    let flags = if ready { &api.ready } else { &api.started };
    ContainerApi::first_true(flags).map(|f| ApiMark {
        at: f.at,
        api_s: f.api_s,
    })
}

fn first_listens(c: &ContainerTimeline) -> Vec<FirstListen> {
    let mut out: Vec<FirstListen> = Vec::new();
    for l in &c.sockets.listens {
        match out.iter_mut().find(|f| f.port == l.port) {
            Some(f) if f.at.is_some() && l.start.is_none_or(|s| Some(s) < f.at) => {
                f.at = l.start;
                f.addr.clone_from(&l.addr);
            }
            Some(_) => {}
            None => out.push(FirstListen {
                port: l.port,
                addr: l.addr.clone(),
                at: l.start,
            }),
        }
    }
    out
}

fn measure_container(c: &ContainerTimeline) -> ContainerStartup {
    ContainerStartup {
        container: c.name.clone(),
        kind: c.kind,
        role: c.role,
        first_exec: c.first_exec(),
        first_exit: c.instances.first().and_then(|i| i.exit).map(|x| ExitMark {
            at: x.at,
            code: x.code,
            killed_by: x.killed_by,
        }),
        listens: first_listens(c),
        running: c.api.runs.first().map(|r| ApiMark {
            at: r.at,
            api_s: r.api_s,
        }),
        started: first_flag(&c.api, false),
        ready: first_flag(&c.api, true),
        first_connect: c
            .sockets
            .connections
            .iter()
            .filter_map(Connection::first)
            .min(),
        first_accept: c.sockets.accepts.iter().map(|a| a.at).min(),
        startup_probe: c.spec.as_ref().is_some_and(|s| s.startup_probe.is_some()),
    }
}

/// The numeric port a startup probe checks, if any.
pub fn startup_probe_port(c: &ContainerTimeline) -> Option<u16> {
    let probe = c.spec.as_ref()?.startup_probe.as_ref()?;
    let port = match &probe.action {
        HookFacts::HttpGet { port, .. } | HookFacts::TcpSocket { port } => match port {
            PortRef::Number(n) => *n,
            PortRef::Name(_) => return None,
        },
        HookFacts::Grpc { port } => *port,
        _ => return None,
    };
    u16::try_from(port).ok()
}

fn gap(later: Option<At>, earlier: Option<At>) -> Option<f64> {
    Some(to_s(later?.ns - earlier?.ns))
}

fn latest(listens: &[Option<&FirstListen>]) -> Option<At> {
    listens
        .iter()
        .map(|l| l.and_then(|l| l.at))
        .collect::<Option<Vec<At>>>()?
        .into_iter()
        .max()
}

fn compare_ready(exec: Option<At>, ready: Option<ApiMark>) -> ApiCompare {
    match (exec, ready.and_then(|r| r.api_s)) {
        (Some(e), Some(r)) => match e.ns.div_euclid(lifecycle_recording::time::NS_PER_S).cmp(&r) {
            std::cmp::Ordering::Less => ApiCompare::Before,
            std::cmp::Ordering::Equal => ApiCompare::SameSecond,
            std::cmp::Ordering::Greater => ApiCompare::After,
        },
        _ => ApiCompare::Missing,
    }
}

/// Gap of one app against one sidecar; `None` when the sidecar serves no
/// port.
fn measure_gap(
    app: &ContainerTimeline,
    a: &ContainerStartup,
    sidecar: &ContainerTimeline,
    s: &ContainerStartup,
    mesh: Option<&MeshContext<'_>>,
) -> Option<StartupGap> {
    let mesh = mesh.filter(|m| m.proxy.name == sidecar.name);
    let (ports, out_port, in_port): (Vec<u16>, Option<u16>, Option<u16>) = match mesh {
        Some(m) => {
            let ports: Vec<u16> = [m.outbound_port(), m.inbound_port()]
                .into_iter()
                .flatten()
                .filter(|p| s.listen_on(*p).is_some())
                .collect();
            (ports, m.outbound_port(), m.inbound_port())
        }
        None => {
            let declared = sidecar
                .spec
                .as_ref()
                .map(|x| x.ports.clone())
                .unwrap_or_default();
            let ports: Vec<u16> = if declared.is_empty() {
                s.listens.iter().map(|l| l.port).collect()
            } else {
                declared
                    .into_iter()
                    .filter(|p| s.listen_on(*p).is_some())
                    .collect()
            };
            (ports, None, None)
        }
    };
    if ports.is_empty() && mesh.is_none() {
        return None;
    }
    let listening = latest(&ports.iter().map(|p| s.listen_on(*p)).collect::<Vec<_>>());
    let excluded = |c: &Connection| {
        mesh.is_some_and(|m| {
            m.info
                .excluded_outbound_ports
                .iter()
                .any(|r| r.contains(c.remote_port))
        })
    };
    let through_sidecar = |c: &&Connection| match mesh {
        Some(_) => {
            (Some(c.remote_port) == out_port || !is_loopback(&c.remote_addr)) && !excluded(c)
        }
        None => ports.contains(&c.remote_port),
    };
    let first_connect = app
        .sockets
        .connections
        .iter()
        .filter(through_sidecar)
        .filter_map(Connection::first)
        .min();
    let out_listen = out_port
        .and_then(|p| s.listen_on(p))
        .and_then(|l| l.at)
        .or(listening);
    let in_listen = in_port
        .and_then(|p| s.listen_on(p))
        .and_then(|l| l.at)
        .or(listening);
    let first_accept = mesh.and(a.first_accept);
    Some(StartupGap {
        app: app.name.clone(),
        sidecar: sidecar.name.clone(),
        ports,
        sidecar_listening: listening,
        exec_gap_s: gap(a.first_exec, listening),
        connect_gap_s: gap(first_connect, out_listen),
        accept_gap_s: gap(first_accept, in_listen),
        app_first_connect: first_connect,
        app_first_accept: first_accept,
        exec_vs_ready: compare_ready(a.first_exec, s.ready),
        native: sidecar.is_native_sidecar(),
        startup_probe: s.startup_probe,
    })
}

/// Measures the startup of the pod, if any container started in the
/// recording.
pub fn measure(tl: &PodTimeline) -> Option<StartupAudit> {
    let containers: Vec<ContainerStartup> = tl.containers.iter().map(measure_container).collect();
    let first_exec = containers.iter().filter_map(|c| c.first_exec).min();
    first_exec?;
    let mesh = context(tl);
    let mut gaps = Vec::new();
    for (ai, app) in tl.containers.iter().enumerate() {
        if app.kind != Some(ContainerKind::App) || containers[ai].first_exec.is_none() {
            continue;
        }
        for (si, sidecar) in tl.containers.iter().enumerate() {
            if !sidecar.is_sidecar() {
                continue;
            }
            gaps.extend(measure_gap(
                app,
                &containers[ai],
                sidecar,
                &containers[si],
                mesh.as_ref(),
            ));
        }
    }
    Some(StartupAudit {
        first_exec,
        containers,
        gaps,
    })
}
