//! eBPF programs of lifecycle-agent.
//!
//! Every entry point is a thin wrapper that calls a `try_` function and
//! ignores its error: a probe must never fail the traced kernel path. Events
//! go to one ring buffer (`EVENTS`); a reservation that fails is counted per
//! CPU and per kind in `DROPS`, which userspace exports. Signals outside the
//! load-time mask are counted in `FILTERED_SIGNALS` instead of written.
#![no_std]
#![no_main]

mod cgroup;
mod emit;
mod kmem;
mod process;
mod sigmask;
mod signal;
mod socket;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
