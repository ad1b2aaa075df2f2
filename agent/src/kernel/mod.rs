//! Everything that talks to the kernel: BTF and tracefs offsets, loading and
//! attaching the eBPF programs, reading and decoding the ring buffer.

pub mod btf;
pub mod decode;
pub mod ebpf_log;
pub mod loader;
pub mod offsets;
pub mod reader;
pub mod signal_mask;
pub mod tracefs;
