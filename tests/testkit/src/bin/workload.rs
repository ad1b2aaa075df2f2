//! `lifecycle-workload ROLE ARGS...`: small, predictable processes for the
//! real-kernel tests and benchmarks. Each role prints `ready ...` on stdout
//! once it is set up, so a test can act at the right moment.

// Test programs make raw system calls (kill, setns, open/write in pre_exec, geteuid).
#![allow(unsafe_code)]

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

static TERM_SEEN: AtomicBool = AtomicBool::new(false);
static USR1_SEEN: AtomicU64 = AtomicU64::new(0);
/// Deliveries per signal number, for `catch`.
static CAUGHT: [AtomicU64; 65] = [const { AtomicU64::new(0) }; 65];

extern "C" fn on_term(_: libc::c_int) {
    TERM_SEEN.store(true, Ordering::SeqCst);
}

extern "C" fn on_usr1(_: libc::c_int) {
    USR1_SEEN.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn on_counted(sig: libc::c_int) {
    if let Some(n) = CAUGHT.get(sig as usize) {
        n.fetch_add(1, Ordering::Relaxed);
    }
}

fn install(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: installing a handler that only touches atomics.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(sig, &action, std::ptr::null_mut()),
            0,
            "sigaction"
        );
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn arg(args: &[String], i: usize, what: &str) -> String {
    args.get(i).cloned().unwrap_or_else(|| usage(what))
}

fn usage(what: &str) -> ! {
    eprintln!(
        "missing {what}\nusage: lifecycle-workload sleep SECS | ignore-term SECS | handle-term | exit CODE | \
         listen ADDR COUNT | connect ADDR | kill PID SIG | signal-storm N [SIG] | churn CONNECTIONS SIGNALS | \
         catch SIG,SIG.. | send PID SIG N [SIG N]..."
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let role = arg(&args, 0, "role");
    match role.as_str() {
        "sleep" => {
            say("ready");
            std::thread::sleep(Duration::from_secs_f64(
                arg(&args, 1, "SECS").parse().expect("secs"),
            ));
        }
        "ignore-term" => {
            // SAFETY: setting a disposition.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            say("ready");
            std::thread::sleep(Duration::from_secs_f64(
                arg(&args, 1, "SECS").parse().expect("secs"),
            ));
        }
        "handle-term" => {
            install(libc::SIGTERM, on_term);
            say("ready");
            while !TERM_SEEN.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        "exit" => std::process::exit(arg(&args, 1, "CODE").parse().expect("code")),
        "listen" => listen(
            &arg(&args, 1, "ADDR"),
            arg(&args, 2, "COUNT").parse().expect("count"),
        ),
        "connect" => connect(&arg(&args, 1, "ADDR")),
        "kill" => {
            let pid: i32 = arg(&args, 1, "PID").parse().expect("pid");
            let sig: i32 = arg(&args, 2, "SIG").parse().expect("sig");
            // SAFETY: plain kill(2).
            let rc = unsafe { libc::kill(pid, sig) };
            say(&format!("killed {pid} {sig} rc={rc}"));
        }
        "signal-storm" => {
            let n: u64 = arg(&args, 1, "N").parse().expect("n");
            let sig = args
                .get(2)
                .map_or(libc::SIGUSR1, |s| s.parse().expect("sig"));
            say("ready");
            let elapsed = signal_storm_of(n, sig);
            say(&format!(
                "{{\"signals\":{n},\"elapsed_ns\":{}}}",
                elapsed.as_nanos()
            ));
        }
        "churn" => {
            let connections: u64 = arg(&args, 1, "CONNECTIONS").parse().expect("connections");
            let signals: u64 = arg(&args, 2, "SIGNALS").parse().expect("signals");
            let start = Instant::now();
            churn(connections);
            signal_storm(signals);
            say(&format!(
                "{{\"connections\":{connections},\"signals\":{signals},\"elapsed_ns\":{}}}",
                start.elapsed().as_nanos()
            ));
        }
        "catch" => catch(&arg(&args, 1, "SIG,SIG..")),
        "send" => {
            let pid: i32 = arg(&args, 1, "PID").parse().expect("pid");
            for pair in args[2..].chunks(2) {
                let sig: i32 = pair[0].parse().expect("sig");
                let n: u64 = pair.get(1).map_or(1, |n| n.parse().expect("n"));
                for _ in 0..n {
                    // SAFETY: plain kill(2).
                    unsafe { libc::kill(pid, sig) };
                }
            }
            say("sent");
        }
        other => usage(&format!("a known role (got {other})")),
    }
}

/// Accepts `count` connections, reading each to EOF, then exits.
fn listen(addr: &str, count: u32) {
    let listener = TcpListener::bind(addr).expect("bind");
    say(&format!(
        "ready {}",
        listener.local_addr().expect("local addr").port()
    ));
    for _ in 0..count {
        let (mut stream, peer) = listener.accept().expect("accept");
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        say(&format!("accepted {peer}"));
    }
}

fn connect(addr: &str) {
    match TcpStream::connect(addr) {
        Ok(mut stream) => {
            let port = stream.local_addr().expect("local addr").port();
            let _ = stream.write_all(b"hello");
            let _ = stream.shutdown(Shutdown::Write);
            let mut buf = Vec::new();
            let _ = stream.read_to_end(&mut buf);
            say(&format!("connected {port}"));
        }
        Err(e) => {
            say(&format!("failed {}", e.raw_os_error().unwrap_or(0)));
            std::process::exit(1);
        }
    }
}

/// `n` SIGUSR1 to ourselves, each handled.
fn signal_storm(n: u64) -> Duration {
    signal_storm_of(n, libc::SIGUSR1)
}

/// `n` signals `sig` to ourselves, each handled.
fn signal_storm_of(n: u64, sig: libc::c_int) -> Duration {
    install(sig, on_usr1);
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: plain kill(2) to ourselves; the handler only counts.
        unsafe { libc::kill(libc::getpid(), sig) };
    }
    start.elapsed()
}

/// Counts deliveries of each listed signal (SIGTERM always among them)
/// until a SIGTERM, then prints `caught SIG=N ...` in number order.
fn catch(list: &str) {
    let mut sigs: Vec<libc::c_int> = list.split(',').map(|s| s.parse().expect("sig")).collect();
    sigs.push(libc::SIGTERM);
    for sig in &sigs {
        install(*sig, on_counted);
    }
    say("ready");
    while CAUGHT[libc::SIGTERM as usize].load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let counts: Vec<String> = (1..65)
        .filter(|s| CAUGHT[*s].load(Ordering::Relaxed) > 0)
        .map(|s| format!("{s}={}", CAUGHT[s].load(Ordering::Relaxed)))
        .collect();
    say(&format!("caught {}", counts.join(" ")));
}

/// `n` loopback TCP connections: connect, accept, close both ends.
fn churn(n: u64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    for _ in 0..n {
        let client = TcpStream::connect(addr).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        drop(client);
        drop(server);
    }
}
