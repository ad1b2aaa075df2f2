//! The signal mask the probes apply: which signal numbers are written to
//! the ring buffer, parsed from `--signals`, and the names it prints with.
//!
//! Signals of a watched cgroup outside the mask are only counted in the
//! kernel (`FILTERED_SIGNALS`, read by [`super::loader::Probes::filtered_signals`]).

use std::{fmt, str::FromStr};

use lifecycle_recording::event::names::signal_name;
use thiserror::Error;

/// The default of `--signals`: what stops, pauses or pokes a container.
/// An image's STOPSIGNAL is one of these in practice (WINCH: Apache httpd's
/// graceful stop).
pub const DEFAULT_SIGNALS: &str = "TERM,KILL,INT,QUIT,HUP,USR1,USR2,STOP,CONT,WINCH";

/// Bit `n - 1` set: signal `n` (1..=64) is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalMask(pub u64);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignalListError {
    #[error("the signal list is empty")]
    Empty,
    #[error("unknown signal name {0:?} (use e.g. TERM, SIGUSR2, RTMIN+1 or a number 1-64)")]
    UnknownName(String),
    #[error("signal number {0} is outside 1-64")]
    OutOfRange(u64),
}

impl SignalListError {
    /// Short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::UnknownName(_) => "unknown_name",
            Self::OutOfRange(_) => "out_of_range",
        }
    }
}

/// First real-time signal as glibc reports it to programs (34: glibc keeps
/// 32 and 33 for itself).
const SIGRTMIN: u64 = 34;
const SIGRTMAX: u64 = 64;

impl SignalMask {
    /// Every signal written (`--all-signals`).
    pub const ALL: Self = Self(u64::MAX);

    /// The documented default, [`DEFAULT_SIGNALS`].
    pub fn lifecycle() -> Self {
        Self::parse(DEFAULT_SIGNALS).unwrap_or(Self::ALL)
    }

    /// A comma list of names (`TERM`, `SIGTERM`, `term`, `RTMIN+2`) or
    /// numbers (`15`), blanks around items ignored.
    pub fn parse(list: &str) -> Result<Self, SignalListError> {
        let mut bits = 0u64;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let sig = signal_number(item)?;
            bits |= 1 << (sig - 1);
        }
        if bits == 0 {
            return Err(SignalListError::Empty);
        }
        Ok(Self(bits))
    }

    /// Adds signal `sig`; numbers outside 1..=64 are ignored.
    pub fn with(self, sig: u64) -> Self {
        match sig {
            1..=64 => Self(self.0 | 1 << (sig - 1)),
            _ => self,
        }
    }

    /// Adds every signal of `names` (Kubernetes `lifecycle.stopSignal`
    /// values such as `SIGRTMIN+3`) that parses; the rest are left out.
    pub fn with_names<'a>(self, names: impl IntoIterator<Item = &'a str>) -> Self {
        names
            .into_iter()
            .filter_map(|name| signal_number(name).ok())
            .fold(self, Self::with)
    }

    pub fn contains(self, sig: u64) -> bool {
        (1..=64).contains(&sig) && self.0 & (1 << (sig - 1)) != 0
    }

    pub fn is_all(self) -> bool {
        self.0 == u64::MAX
    }

    /// Names of the signals written, in number order.
    pub fn names(self) -> Vec<String> {
        (1..=64)
            .filter(|s| self.contains(*s))
            .map(|s| signal_name(s as i32))
            .collect()
    }
}

impl Default for SignalMask {
    fn default() -> Self {
        Self::lifecycle()
    }
}

impl FromStr for SignalMask {
    type Err = SignalListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SignalMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all");
        }
        f.write_str(&self.names().join(","))
    }
}

/// The number of one list item or Kubernetes `stopSignal` value.
pub fn signal_number(item: &str) -> Result<u64, SignalListError> {
    if let Ok(n) = item.parse::<u64>() {
        return match n {
            1..=64 => Ok(n),
            _ => Err(SignalListError::OutOfRange(n)),
        };
    }
    let upper = item.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let unknown = || SignalListError::UnknownName(item.to_string());
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        return rt_offset(rest, SIGRTMIN, 1).ok_or_else(unknown);
    }
    if let Some(rest) = bare.strip_prefix("RTMAX") {
        return rt_offset(rest, SIGRTMAX, -1).ok_or_else(unknown);
    }
    // Names by their recording spelling, so both sides agree on every one.
    (1..=31)
        .find(|n| signal_name(*n as i32)[3..] == *bare)
        .or(match bare {
            "IOT" => Some(6),
            "POLL" => Some(29),
            "CLD" => Some(17),
            _ => None,
        })
        .ok_or_else(unknown)
}

/// `RTMIN`, `RTMIN+n` (direction 1) or `RTMAX`, `RTMAX-n` (direction -1).
fn rt_offset(rest: &str, base: u64, direction: i64) -> Option<u64> {
    let sign = if direction > 0 { '+' } else { '-' };
    let n: u64 = match rest {
        "" => 0,
        _ => rest.strip_prefix(sign)?.parse().ok()?,
    };
    let sig = if direction > 0 {
        base.checked_add(n)?
    } else {
        base.checked_sub(n)?
    };
    (SIGRTMIN..=SIGRTMAX).contains(&sig).then_some(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_lifecycle_signals() {
        let mask = SignalMask::lifecycle();
        for sig in [15, 9, 2, 3, 1, 10, 12, 19, 18, 28] {
            assert!(mask.contains(sig), "{sig}");
        }
        for sig in [17, 23, 32, 33, 13, 14] {
            assert!(!mask.contains(sig), "{sig}");
        }
        assert_eq!(mask.names().len(), 10);
        assert_eq!(
            mask.to_string(),
            "SIGHUP,SIGINT,SIGQUIT,SIGKILL,SIGUSR1,SIGUSR2,SIGTERM,SIGCONT,SIGSTOP,SIGWINCH"
        );
    }

    #[test]
    fn names_with_or_without_sig_any_case_and_numbers() {
        let mask = SignalMask::parse(" sigterm, KILL ,23, usr2,RTMIN+1, SIGRTMAX").unwrap();
        assert_eq!(
            mask.names(),
            ["SIGKILL", "SIGUSR2", "SIGTERM", "SIGURG", "SIG35", "SIG64"]
        );
        assert_eq!(SignalMask::parse("IOT").unwrap(), SignalMask(1 << 5));
        assert_eq!(SignalMask::parse("64").unwrap(), SignalMask(1 << 63));
        assert_eq!("WINCH".parse::<SignalMask>().unwrap(), SignalMask(1 << 27));
    }

    #[test]
    fn bad_items_say_what_is_wrong() {
        let err = SignalMask::parse("TERM,SIGFOO").unwrap_err();
        assert_eq!(err, SignalListError::UnknownName("SIGFOO".into()));
        assert_eq!(err.label(), "unknown_name");
        assert!(err.to_string().contains("\"SIGFOO\""), "{err}");
        assert_eq!(
            SignalMask::parse("65"),
            Err(SignalListError::OutOfRange(65))
        );
        assert_eq!(SignalMask::parse("0"), Err(SignalListError::OutOfRange(0)));
        assert_eq!(SignalMask::parse(" , "), Err(SignalListError::Empty));
        assert!(matches!(
            SignalMask::parse("RTMIN+40"),
            Err(SignalListError::UnknownName(_))
        ));
        assert!(matches!(
            SignalMask::parse("-1"),
            Err(SignalListError::UnknownName(_))
        ));
    }

    #[test]
    fn all_and_additions() {
        assert!(SignalMask::ALL.is_all());
        assert_eq!(SignalMask::ALL.to_string(), "all");
        let mask = SignalMask::parse("TERM").unwrap().with(23).with(0).with(99);
        assert_eq!(mask.names(), ["SIGTERM", "SIGURG"]);
        let mask = mask.with_names(["SIGRTMIN+3", "SIGNOPE", "SIGPWR"]);
        assert_eq!(mask.names(), ["SIGTERM", "SIGURG", "SIGPWR", "SIG37"]);
    }
}
