//! One real-kernel test at a time. Each attaches the probes (or checks the
//! machine as the daemon would) and the timings they assert on assume a
//! calm machine with both cores free, as when each ran in a binary of its
//! own. The lock does not poison: a failed test lets the next one run.

use tokio::sync::{Mutex, MutexGuard};

static KERNEL: Mutex<()> = Mutex::const_new(());

/// Waits for the machine, from an async test.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    KERNEL.lock().await
}

/// Waits for the machine, from a plain `#[test]`.
pub fn exclusive_blocking() -> MutexGuard<'static, ()> {
    KERNEL.blocking_lock()
}
