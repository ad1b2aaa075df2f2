//! Reads the event ring buffer on tokio and hands decoded batches on.
//!
//! The reader only copies and decodes; attribution and output run in the
//! consumer. The channel is bounded: if the consumer falls behind, the reader
//! waits, the ring buffer fills, and the kernel counts what it cannot write
//! (the `DROPS` map) instead of userspace growing without bound.

use std::os::fd::AsRawFd;

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, watch},
};
use tracing::{debug, warn};

use super::decode::{DecodeError, ProbeSample, decode};

/// The kernel wakes the reader only once a quarter of the ring is filled;
/// below that, the reader looks every `POLL_INTERVAL`.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// At most this many records are handed on in one batch.
pub const MAX_BATCH: usize = 4096;

/// What the reader sends: decoded records, and records it could not decode.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<ProbeSample>,
    pub errors: Vec<DecodeError>,
}

struct RingFd(RingBuf<MapData>);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// Spawned by the caller; ends when `stop` turns true (after draining what
/// the kernel already wrote) or when the consumer goes away.
pub async fn read_ring(
    ring: RingBuf<MapData>,
    out: mpsc::Sender<Batch>,
    mut stop: watch::Receiver<bool>,
    mut logger: Option<aya_log::EbpfLogger<super::ebpf_log::TracingLog>>,
) -> std::io::Result<u64> {
    // SAFETY: the RingBuf owns its map fd for as long as the AsyncFd lives.
    let mut fd = unsafe { AsyncFd::register_with_interest(RingFd(ring), Interest::READABLE) }
        .map_err(std::io::Error::from)?;
    let mut total = 0u64;
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = *stop.borrow();
        if stopping {
            loop {
                let (n, emptied) = drain(&mut fd.get_mut().0, &out).await;
                total += n;
                if emptied || out.is_closed() {
                    break;
                }
            }
            debug!(total, "ring reader stopped");
            return Ok(total);
        }
        tokio::select! {
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                let (n, emptied) = drain(&mut guard.get_inner_mut().0, &out).await;
                total += n;
                // Clear readiness only once the ring is empty: the kernel
                // wakes us again only after we have caught up.
                if emptied {
                    guard.clear_ready();
                }
                if let Some(logger) = logger.as_mut() {
                    logger.flush();
                }
                if out.is_closed() {
                    return Ok(total);
                }
            }
            _ = poll.tick() => {
                // Submits below the wake-up threshold do not wake us.
                total += drain(&mut fd.get_mut().0, &out).await.0;
                if let Some(logger) = logger.as_mut() {
                    logger.flush();
                }
            }
            _ = stop.changed() => {}
        }
    }
}

/// Batches read per `drain` call before the stop flag is looked at again.
const BATCHES_PER_DRAIN: usize = 16;

/// Reads what is in the ring, in batches; returns the count and whether the
/// ring was found empty.
async fn drain(ring: &mut RingBuf<MapData>, out: &mpsc::Sender<Batch>) -> (u64, bool) {
    let mut count = 0u64;
    for _ in 0..BATCHES_PER_DRAIN {
        let mut batch = Batch {
            records: Vec::with_capacity(256),
            errors: Vec::new(),
        };
        while batch.records.len() + batch.errors.len() < MAX_BATCH {
            let Some(item) = ring.next() else { break };
            match decode(&item) {
                Ok(record) => batch.records.push(record),
                Err(e) => batch.errors.push(e),
            }
        }
        let n = (batch.records.len() + batch.errors.len()) as u64;
        if n == 0 {
            return (count, true);
        }
        count += n;
        if out.send(batch).await.is_err() {
            warn!("event consumer is gone; ring reader stops");
            return (count, true);
        }
    }
    (count, false)
}
