//! Human names for kernel numbers that appear in recordings.

/// `SIGTERM` for 15, ...; `SIG<n>` for real-time and unknown numbers.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        16 => "SIGSTKFLT",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        20 => "SIGTSTP",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGURG",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGIO",
        30 => "SIGPWR",
        31 => "SIGSYS",
        _ => return format!("SIG{sig}"),
    };
    name.to_string()
}

/// `si_code` of a generated signal.
pub fn si_code_name(code: i32) -> &'static str {
    match code {
        0 => "SI_USER",
        0x80 => "SI_KERNEL",
        -1 => "SI_QUEUE",
        -2 => "SI_TIMER",
        -3 => "SI_MESGQ",
        -4 => "SI_ASYNCIO",
        -5 => "SI_SIGIO",
        -6 => "SI_TKILL",
        c if c > 0 => "SI_FAULT_OR_CHILD",
        _ => "SI_OTHER",
    }
}

/// `result` of `signal:signal_generate`.
pub fn delivery_result_name(result: i32) -> &'static str {
    match result {
        0 => "delivered",
        1 => "ignored",
        2 => "already_pending",
        3 => "overflow_fail",
        4 => "lose_info",
        _ => "unknown",
    }
}

/// How the receiver had the signal set up when it was delivered.
pub fn handler_name(sa_handler: u64) -> &'static str {
    match sa_handler {
        0 => "default",
        1 => "ignore",
        _ => "handler",
    }
}

/// Kernel TCP state name (`ESTABLISHED`, `LISTEN`, ...) of a state number, or `UNKNOWN`.
pub fn tcp_state_name(state: u32) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// errno names for socket errors worth telling apart.
pub fn errno_name(errno: u32) -> Option<&'static str> {
    Some(match errno {
        0 => return None,
        104 => "ECONNRESET",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        101 => "ENETUNREACH",
        32 => "EPIPE",
        _ => "EOTHER",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_linux_numbers() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(40), "SIG40");
        assert_eq!(si_code_name(0), "SI_USER");
        assert_eq!(si_code_name(0x80), "SI_KERNEL");
        assert_eq!(si_code_name(-6), "SI_TKILL");
        assert_eq!(delivery_result_name(1), "ignored");
        assert_eq!(handler_name(1), "ignore");
        assert_eq!(handler_name(0x5555_0000), "handler");
        assert_eq!(tcp_state_name(10), "LISTEN");
        assert_eq!(errno_name(111), Some("ECONNREFUSED"));
        assert_eq!(errno_name(0), None);
    }
}
