//! Ring-buffer bytes -> typed kernel records.
//!
//! The eBPF side writes `#[repr(C)]` structs from `agent-common`; each record
//! starts with an `EventHeader` whose `kind` tells which one. Decoding copies
//! the bytes out (the ring-buffer slot is released right after).

use agent_common::{
    CgroupEvent, EventHeader, EventKind, ProcessExecEvent, ProcessExitEvent, ProcessForkEvent,
    SignalDeliverEvent, SignalGenerateEvent, SocketEvent,
};
use thiserror::Error;

/// What one probe wrote into the ring buffer, decoded (a recording line is
/// built from it by `event::build`).
#[derive(Clone, Copy, Debug)]
pub enum ProbeSample {
    SignalGenerate(SignalGenerateEvent),
    SignalDeliver(SignalDeliverEvent),
    ProcessExec(ProcessExecEvent),
    ProcessFork(ProcessForkEvent),
    ProcessExit(ProcessExitEvent),
    Cgroup(CgroupEvent),
    Socket(SocketEvent),
}

impl ProbeSample {
    pub fn header(&self) -> &EventHeader {
        match self {
            Self::SignalGenerate(e) => &e.header,
            Self::SignalDeliver(e) => &e.header,
            Self::ProcessExec(e) => &e.header,
            Self::ProcessFork(e) => &e.header,
            Self::ProcessExit(e) => &e.header,
            Self::Cgroup(e) => &e.header,
            Self::Socket(e) => &e.header,
        }
    }

    pub fn kind(&self) -> EventKind {
        // The kind was validated when decoding.
        EventKind::from_u32(self.header().kind).unwrap_or(EventKind::Socket)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than an event header")]
    TooShortForHeader { len: usize },
    #[error("unknown event kind {kind}")]
    UnknownKind { kind: u32 },
    #[error("{kind} record has {len} bytes, expected at least {expected}")]
    Truncated {
        kind: &'static str,
        len: usize,
        expected: usize,
    },
}

impl DecodeError {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooShortForHeader { .. } => "too_short",
            Self::UnknownKind { .. } => "unknown_kind",
            Self::Truncated { .. } => "truncated",
        }
    }
}

/// Copies a `T` out of `bytes`, which must hold at least `size_of::<T>()`.
fn copy_out<T: Copy>(bytes: &[u8], kind: EventKind) -> Result<T, DecodeError> {
    let expected = size_of::<T>();
    if bytes.len() < expected {
        return Err(DecodeError::Truncated {
            kind: kind.name(),
            len: bytes.len(),
            expected,
        });
    }
    // SAFETY: the length was checked; T is a plain #[repr(C)] struct valid for
    // any bit pattern (agent-common's event types); read_unaligned copes with
    // any alignment of the slice.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const T) })
}

pub fn decode(bytes: &[u8]) -> Result<ProbeSample, DecodeError> {
    if bytes.len() < size_of::<EventHeader>() {
        return Err(DecodeError::TooShortForHeader { len: bytes.len() });
    }
    let raw_kind = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let kind = EventKind::from_u32(raw_kind).ok_or(DecodeError::UnknownKind { kind: raw_kind })?;
    Ok(match kind {
        EventKind::SignalGenerate => ProbeSample::SignalGenerate(copy_out(bytes, kind)?),
        EventKind::SignalDeliver => ProbeSample::SignalDeliver(copy_out(bytes, kind)?),
        EventKind::ProcessExec => ProbeSample::ProcessExec(copy_out(bytes, kind)?),
        EventKind::ProcessFork => ProbeSample::ProcessFork(copy_out(bytes, kind)?),
        EventKind::ProcessExit => ProbeSample::ProcessExit(copy_out(bytes, kind)?),
        EventKind::CgroupMkdir | EventKind::CgroupRmdir | EventKind::CgroupAttach => {
            ProbeSample::Cgroup(copy_out(bytes, kind)?)
        }
        EventKind::Socket => ProbeSample::Socket(copy_out(bytes, kind)?),
    })
}

/// Serialises a record back to the bytes the kernel would have written
/// (tests and benchmarks feed the decoder with these).
pub fn encode<T: Copy>(event: &T) -> Vec<u8> {
    // SAFETY: reading the bytes of a plain #[repr(C)] value without padding holes
    // (agent-common's event types spell out their padding).
    unsafe { std::slice::from_raw_parts(event as *const T as *const u8, size_of::<T>()) }.to_vec()
}

/// Bytes up to the first NUL, lossily as UTF-8.
pub fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_common::TaskId;

    fn header(kind: EventKind) -> EventHeader {
        EventHeader {
            kind: kind as u32,
            boot_ns: 42,
            task: TaskId {
                pid: 7,
                tgid: 7,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_every_fixed_size_kind() {
        let exit = ProcessExitEvent {
            header: header(EventKind::ProcessExit),
            exit_code: 3 << 8,
            _pad: 0,
        };
        match decode(&encode(&exit)).unwrap() {
            ProbeSample::ProcessExit(e) => assert_eq!(
                (e.exit_code, e.header.boot_ns, e.header.task.pid),
                (768, 42, 7)
            ),
            other => panic!("decoded as {other:?}"),
        }
        let sig = SignalGenerateEvent {
            header: header(EventKind::SignalGenerate),
            sig: 15,
            result: 1,
            ..Default::default()
        };
        match decode(&encode(&sig)).unwrap() {
            ProbeSample::SignalGenerate(e) => assert_eq!((e.sig, e.result), (15, 1)),
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn rejects_short_unknown_and_truncated_records() {
        assert_eq!(
            decode(&[0u8; 8]).unwrap_err(),
            DecodeError::TooShortForHeader { len: 8 }
        );
        let mut bytes = encode(&header(EventKind::Socket));
        bytes[0] = 99;
        assert_eq!(
            decode(&bytes).unwrap_err(),
            DecodeError::UnknownKind { kind: 99 }
        );
        let bytes = encode(&header(EventKind::Socket));
        assert!(matches!(
            decode(&bytes).unwrap_err(),
            DecodeError::Truncated { kind: "socket", .. }
        ));
    }

    #[test]
    fn c_str_stops_at_nul() {
        assert_eq!(c_str(b"runc\0\0garbage"), "runc");
        assert_eq!(c_str(b"no-nul"), "no-nul");
    }
}
