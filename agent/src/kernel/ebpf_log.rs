//! Forwards eBPF-side diagnostics (aya-log records) into `tracing`.

/// A `log::Log` that re-emits each record as a `tracing` event with the
/// target `ebpf`.
pub struct TracingLog;

impl log::Log for TracingLog {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let message = record.args().to_string();
        match record.level() {
            log::Level::Error => tracing::error!(target: "ebpf", "{message}"),
            log::Level::Warn => tracing::warn!(target: "ebpf", "{message}"),
            log::Level::Info => tracing::info!(target: "ebpf", "{message}"),
            log::Level::Debug => tracing::debug!(target: "ebpf", "{message}"),
            log::Level::Trace => tracing::trace!(target: "ebpf", "{message}"),
        }
    }

    fn flush(&self) {}
}
