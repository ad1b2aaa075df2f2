//! Clocks, JSON event lines, the SIGTERM flag, and a minimal HTTP/1.0
//! client and server loop shared by the roles.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::atomic::{AtomicBool, AtomicI32, Ordering},
    time::{Duration, Instant},
};

static TERM: AtomicBool = AtomicBool::new(false);
static TERM_SENDER: AtomicI32 = AtomicI32::new(0);
static TERM_CODE: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_term(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    if !info.is_null() {
        // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
        let (pid, code) = unsafe { ((*info).si_pid(), (*info).si_code) };
        TERM_SENDER.store(pid, Ordering::SeqCst);
        TERM_CODE.store(code, Ordering::SeqCst);
    }
    TERM.store(true, Ordering::SeqCst);
}

/// Remembers SIGTERM (and who sent it) instead of dying.
pub fn handle_term() {
    // SAFETY: the handler only stores to atomics.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_term as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}

/// The `sigterm` event: when it was noticed and who sent it (`si_pid`,
/// `si_code`), plus `extra` fields.
pub fn sigterm_event(extra: &[(&str, String)]) {
    let mut fields = vec![
        ("sender_pid", TERM_SENDER.load(Ordering::SeqCst).to_string()),
        ("si_code", TERM_CODE.load(Ordering::SeqCst).to_string()),
    ];
    fields.extend(extra.iter().cloned());
    event("sigterm", &fields);
}

/// Ignores SIGTERM (an app that never handles it).
pub fn ignore_term() {
    // SAFETY: setting a disposition.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
}

extern "C" fn on_urg(_: libc::c_int) {}

/// What Go's runtime does to preempt goroutines: a SIGURG handler, and a
/// thread (sysmon's role) that sends SIGURG to another thread of this
/// process with `tgkill`, `per_s` times a second, for as long as the
/// process lives.
pub fn preempt_like_go(per_s: u32) {
    if per_s == 0 {
        return;
    }
    // SAFETY: installing a handler that does nothing.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_urg as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGURG, &action, std::ptr::null_mut());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let _ = tx.send(unsafe { libc::gettid() });
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    });
    let Ok(worker) = rx.recv() else {
        return;
    };
    let period = Duration::from_nanos(1_000_000_000 / u64::from(per_s));
    std::thread::spawn(move || {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        loop {
            // SAFETY: a signal to a thread of this process.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, worker, libc::SIGURG) };
            std::thread::sleep(period);
        }
    });
}

pub fn term_seen() -> bool {
    TERM.load(Ordering::SeqCst)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn boot_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

pub fn wall_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

pub fn json_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes one event line: `{"ev":..,"boot_ns":..,"wall_ns":..,"pid":..,<fields>}`.
/// Field values are raw JSON.
pub fn event(name: &str, fields: &[(&str, String)]) {
    let mut line = format!(
        "{{\"ev\":{},\"boot_ns\":{},\"wall_ns\":{},\"pid\":{}",
        json_str(name),
        boot_ns(),
        wall_ns(),
        std::process::id()
    );
    for (key, value) in fields {
        line.push_str(&format!(",{}:{}", json_str(key), value));
    }
    line.push('}');
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Sleeps up to `ms`, returning early (true) once SIGTERM arrived.
pub fn sleep_unless_term(ms: u64) -> bool {
    let end = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < end {
        if term_seen() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2).min(end - Instant::now()));
    }
    term_seen()
}

pub fn addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("{text} is not ip:port"))
}

/// The outcome of one HTTP request.
pub struct Reply {
    pub status: u16,
    pub local_port: u16,
}

/// One HTTP/1.0 request; the connection closes after the response.
pub fn http(
    target: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    let local_port = stream.local_addr()?.port();
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: {target}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status"))?;
    Ok(Reply { status, local_port })
}

/// Reads a request head; returns (method, path).
pub fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.split_whitespace();
    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
}

pub fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = if status < 300 { "OK" } else { "Unavailable" };
    let _ = write!(
        stream,
        "HTTP/1.0 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

pub fn errno_of(error: &std::io::Error) -> i32 {
    error.raw_os_error().unwrap_or(0)
}

pub fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("nonblocking {addr}: {e}"))?;
    Ok(listener)
}

/// Waits up to `timeout_ms` for connections on `listeners`; returns each
/// accepted stream (blocking mode) with the index of its listener.
pub fn accept_any(listeners: &[&TcpListener], timeout_ms: i32) -> Vec<(usize, TcpStream)> {
    let mut fds: Vec<libc::pollfd> = listeners
        .iter()
        .map(|l| libc::pollfd {
            fd: l.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: poll on descriptors we own, with a correctly sized array.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    let mut accepted = Vec::new();
    if ready <= 0 {
        return accepted;
    }
    for (i, fd) in fds.iter().enumerate() {
        if fd.revents & libc::POLLIN == 0 {
            continue;
        }
        while let Ok((stream, _)) = listeners[i].accept() {
            let _ = stream.set_nonblocking(false);
            accepted.push((i, stream));
        }
    }
    accepted
}

/// Copies bytes both ways between two connections until both sides are done.
pub fn splice(client: TcpStream, upstream: TcpStream) {
    let (Ok(mut client_read), Ok(mut upstream_write)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = std::io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(std::net::Shutdown::Write);
    let _ = forward.join();
}
