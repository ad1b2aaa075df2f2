//! `mesh-proxy`: an Istio- or Linkerd-shaped sidecar proxy.
//!
//! It serves its health/admin port at once (answering 503 until ready), and
//! opens the capture ports (outbound 15001 / 4140, inbound 15006 / 4143)
//! after `--listen-delay-ms`, as Envoy does once it has its configuration.
//! Redirected connections are forwarded to their original destination,
//! recovered with `SO_ORIGINAL_DST`; the proxy's own upstream connections
//! are not captured because it runs under the mesh UID. On SIGTERM it keeps
//! serving for `--drain-ms`, then closes its listeners and exits 0;
//! `/quitquitquit` (Istio) or `/shutdown` (Linkerd) end it at once, unless
//! `--linger` holds a connection the shutdown waits for (then it closes its
//! listeners and hangs until SIGKILL).
//! `--crash-after-ms` aborts it (SIGABRT) to play a proxy crash. As PID 1
//! of its pid namespace the kernel drops that SIGABRT (init has no handler
//! for it), and glibc's `abort` then ends the process by a fault (SIGSEGV,
//! exit status 139), as it would any program aborting as a container's
//! PID 1.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    args::Args,
    common::{self, event, json_str},
};

struct Ports {
    outbound: u16,
    inbound: u16,
    /// (port, readiness path)
    health: (u16, &'static str),
    /// Admin/agent ports that answer the same endpoints.
    admin: &'static [u16],
}

const ISTIO: Ports = Ports {
    outbound: 15001,
    inbound: 15006,
    health: (15021, "/healthz/ready"),
    admin: &[15020, 15000],
};

const LINKERD: Ports = Ports {
    outbound: 4140,
    inbound: 4143,
    health: (4191, "/ready"),
    admin: &[],
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Outbound,
    Inbound,
    Admin,
}

#[derive(Default)]
struct Flags {
    ready: AtomicBool,
    draining: AtomicBool,
    quit: AtomicBool,
}

fn any(port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)
}

pub fn run(args: &Args) -> Result<i32, String> {
    let ports = match args.required("mesh")? {
        "istio" => &ISTIO,
        "linkerd" => &LINKERD,
        other => return Err(format!("unknown mesh {other}")),
    };
    let listen_delay = Duration::from_millis(args.ms("listen-delay-ms", 0)?);
    let drain = Duration::from_millis(args.ms("drain-ms", 0)?);
    let crash_after = args
        .get("crash-after-ms")
        .map(|_| args.ms("crash-after-ms", 0))
        .transpose()?;
    common::handle_term();
    let flags = Arc::new(Flags::default());
    let start = Instant::now();
    // `--linger ADDR`: a control-plane stream held open for the proxy's
    // life. A graceful shutdown waits for open connections to end, and
    // this one never does (linkerd/linkerd2#8033).
    let lingering = match args.get("linger") {
        Some(peer) => {
            let addr = common::addr(peer)?;
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(stream) => Some(stream),
                Err(e) => {
                    event(
                        "linger_failed",
                        &[("errno", common::errno_of(&e).to_string())],
                    );
                    None
                }
            }
        }
        None => None,
    };

    // `--envoy`: Envoy under pilot-agent, which serves 15020/15021 itself;
    // Envoy has the capture ports and its admin port.
    let envoy = args.flag("envoy");
    if envoy {
        crate::pilot_agent::set_comm("envoy");
    }
    let admin_ports: Vec<u16> = if envoy {
        vec![15000]
    } else {
        std::iter::once(ports.health.0)
            .chain(ports.admin.iter().copied())
            .collect()
    };
    let mut listeners: Vec<(TcpListener, Kind)> = Vec::new();
    for port in admin_ports {
        listeners.push((common::bind(any(port))?, Kind::Admin));
    }
    event("admin_listening", &[("port", ports.health.0.to_string())]);

    let mut term_at: Option<Instant> = None;
    loop {
        if !flags.ready.load(Ordering::SeqCst) && start.elapsed() >= listen_delay {
            listeners.push((common::bind(any(ports.outbound))?, Kind::Outbound));
            listeners.push((common::bind(any(ports.inbound))?, Kind::Inbound));
            flags.ready.store(true, Ordering::SeqCst);
            event(
                "capture_listening",
                &[
                    ("outbound", ports.outbound.to_string()),
                    ("inbound", ports.inbound.to_string()),
                ],
            );
        }
        if crash_after.is_some_and(|ms| start.elapsed() >= Duration::from_millis(ms)) {
            event("crash", &[]);
            std::process::abort();
        }
        if term_at.is_none() && common::term_seen() {
            term_at = Some(Instant::now());
            flags.draining.store(true, Ordering::SeqCst);
            common::sigterm_event(&[("drain_ms", drain.as_millis().to_string())]);
        }
        if term_at.is_some_and(|t| t.elapsed() >= drain) || flags.quit.load(Ordering::SeqCst) {
            break;
        }
        let refs: Vec<&TcpListener> = listeners.iter().map(|(l, _)| l).collect();
        for (i, stream) in common::accept_any(&refs, 5) {
            let kind = listeners[i].1;
            let flags = flags.clone();
            std::thread::spawn(move || handle(stream, kind, ports, &flags));
        }
    }
    drop(listeners);
    if lingering.is_some() && flags.quit.load(Ordering::SeqCst) {
        // Every listener (the admin port with its /live too) is closed; the
        // shutdown waits for the lingering stream, which never ends, so
        // only a SIGKILL ends the proxy.
        event("shutdown_waiting", &[("open_connections", "1".into())]);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    event("exit", &[("code", "0".into())]);
    Ok(0)
}

fn handle(mut stream: TcpStream, kind: Kind, ports: &Ports, flags: &Flags) {
    match kind {
        Kind::Admin => admin(&mut stream, ports, flags),
        Kind::Outbound | Kind::Inbound => {
            let Some(original) = original_dst(&stream) else {
                return;
            };
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let upstream_addr = if kind == Kind::Inbound {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), original.port())
            } else {
                original
            };
            let direction = if kind == Kind::Inbound {
                "inbound"
            } else {
                "outbound"
            };
            match TcpStream::connect_timeout(&upstream_addr, Duration::from_secs(2)) {
                Ok(upstream) => {
                    event(
                        "proxied",
                        &[
                            ("direction", json_str(direction)),
                            ("peer", json_str(&peer)),
                            ("original_dst", json_str(&original.to_string())),
                            (
                                "upstream_local_port",
                                upstream
                                    .local_addr()
                                    .map(|a| a.port())
                                    .unwrap_or(0)
                                    .to_string(),
                            ),
                        ],
                    );
                    common::splice(stream, upstream);
                }
                Err(e) => {
                    event(
                        "upstream_failed",
                        &[
                            ("direction", json_str(direction)),
                            ("original_dst", json_str(&original.to_string())),
                            ("errno", common::errno_of(&e).to_string()),
                        ],
                    );
                    let _ = common::read_request(&mut stream);
                    common::respond(&mut stream, 503, "upstream connect error");
                }
            }
        }
    }
}

fn admin(stream: &mut TcpStream, ports: &Ports, flags: &Flags) {
    let Some((_, path)) = common::read_request(stream) else {
        return;
    };
    let ready = flags.ready.load(Ordering::SeqCst) && !flags.draining.load(Ordering::SeqCst);
    let path = path.split('?').next().unwrap_or_default().to_owned();
    let status = match path.as_str() {
        p if p == ports.health.1 || p == "/healthz/ready" || p == "/ready" => {
            if ready {
                200
            } else {
                503
            }
        }
        "/live" | "/healthz" => 200,
        "/drain" | "/drain_listeners" => {
            flags.draining.store(true, Ordering::SeqCst);
            event("drain_requested", &[]);
            200
        }
        "/quitquitquit" | "/shutdown" => {
            event("quit_requested", &[("path", json_str(&path))]);
            flags.quit.store(true, Ordering::SeqCst);
            200
        }
        _ => 404,
    };
    common::respond(stream, status, "");
}

/// The destination the client asked for before the REDIRECT rule rewrote it.
fn original_dst(stream: &TcpStream) -> Option<SocketAddr> {
    const SO_ORIGINAL_DST: libc::c_int = 80;
    // SAFETY: getsockopt into a sockaddr_in we own, with its size.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_IP,
            SO_ORIGINAL_DST,
            (&mut addr as *mut libc::sockaddr_in).cast(),
            &mut len,
        );
        if rc != 0 {
            event(
                "no_original_dst",
                &[(
                    "errno",
                    std::io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(0)
                        .to_string(),
                )],
            );
            return None;
        }
        let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
        Some(SocketAddrV4::new(ip, u16::from_be(addr.sin_port)).into())
    }
}
