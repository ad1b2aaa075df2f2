//! The roles' HTTP pieces: a server on a thread (readiness-gated or
//! always 200), one logged request, and address flags.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    args::Args,
    common::{self, event, json_str},
};

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// An HTTP server on a thread: `answer(path, ready)` gives the status.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(
        port: u16,
        ready_after: Duration,
        answer: fn(&str, bool) -> u16,
        quit: Option<Arc<AtomicBool>>,
    ) -> Result<Self, String> {
        let listener = common::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))?;
        event("listening", &[("port", port.to_string())]);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            while !stop_flag.load(Ordering::SeqCst) {
                for (_, mut stream) in common::accept_any(&[&listener], 5) {
                    let ready = start.elapsed() >= ready_after;
                    let quit = quit.clone();
                    std::thread::spawn(move || {
                        let Some((_, path)) = common::read_request(&mut stream) else {
                            return;
                        };
                        if path == "/quitquitquit"
                            && let Some(quit) = quit
                        {
                            quit.store(true, Ordering::SeqCst);
                        }
                        common::respond(&mut stream, answer(&path, ready), "ok");
                    });
                }
            }
            drop(listener);
            event("listener_closed", &[("port", port.to_string())]);
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    pub fn close(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn ready_gated(_: &str, ready: bool) -> u16 {
    if ready { 200 } else { 503 }
}

pub fn always_ok(_: &str, _: bool) -> u16 {
    200
}

pub fn request(target: SocketAddr, method: &str, path: &str, what: &str) -> bool {
    match common::http(target, method, path, REQUEST_TIMEOUT) {
        Ok(reply) => {
            event(
                what,
                &[
                    ("target", json_str(&target.to_string())),
                    ("ok", (reply.status < 300).to_string()),
                    ("status", reply.status.to_string()),
                    ("local_port", reply.local_port.to_string()),
                ],
            );
            reply.status < 300
        }
        Err(e) => {
            event(
                what,
                &[
                    ("target", json_str(&target.to_string())),
                    ("ok", "false".into()),
                    ("errno", common::errno_of(&e).to_string()),
                ],
            );
            false
        }
    }
}

pub fn targets(args: &Args, key: &str) -> Result<Vec<SocketAddr>, String> {
    args.all(key).iter().map(|t| common::addr(t)).collect()
}

pub fn optional_server(
    args: &Args,
    key: &str,
    answer: fn(&str, bool) -> u16,
) -> Result<Option<Server>, String> {
    let ready_after = Duration::from_millis(args.ms("ready-after-ms", 0)?);
    args.get(key)
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("--{key} {p} is not a port"))
        })
        .transpose()?
        .map(|port| Server::start(port, ready_after, answer, None))
        .transpose()
}
