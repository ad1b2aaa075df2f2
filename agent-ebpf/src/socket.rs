//! TCP sockets from `sock:inet_sock_set_state`, reduced to listen, connect
//! (and its outcome), accept and close.
//!
//! State changes often run in softirq context, where the current task is
//! unrelated to the socket. The owner is therefore remembered per socket at
//! the transitions that always run in the owner's syscall (listen, connect)
//! and, for accepted connections, taken from the listener's owner (keyed by
//! the socket's cgroup and local port). The socket's own cgroup
//! (`sk->sk_cgrp_data`) attributes it to a container in any context.

use agent_common::{EventKind, SocketEvent, SocketOp, TaskId, config::tp};
use aya_ebpf::{
    macros::{map, tracepoint},
    maps::LruHashMap,
    programs::TracePointContext,
};

use crate::{
    emit,
    kmem::{self, off},
};

const IPPROTO_TCP: u16 = 6;
const AF_INET: u16 = 2;
const TCP_ESTABLISHED: u32 = 1;
const TCP_SYN_SENT: u32 = 2;
const TCP_SYN_RECV: u32 = 3;
const TCP_CLOSE: u32 = 7;
const TCP_LISTEN: u32 = 10;

/// What is remembered of a socket that passed the filter, by socket
/// address: its owner, and its cgroup id (`sk_cgrp_data` is set when the
/// socket is created and never changes), so that its later transitions need
/// neither the cgroup reads nor the filter.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockEntry {
    owner: TaskId,
    sock_cgroup_id: u64,
}

#[map]
static SOCK_OWNERS: LruHashMap<u64, SockEntry> = LruHashMap::with_max_entries(65536, 0);

/// Owner of a listener, by (socket cgroup id, local port).
#[repr(C)]
#[derive(Clone, Copy)]
struct ListenerKey {
    cgroup_id: u64,
    port: u64,
}

#[map]
static LISTENERS: LruHashMap<ListenerKey, TaskId> = LruHashMap::with_max_entries(16384, 0);

#[inline(always)]
fn listener_key(cgroup_id: u64, port: u16) -> ListenerKey {
    ListenerKey {
        cgroup_id,
        port: port as u64,
    }
}

/// The socket's cgroup id (`sk->sk_cgrp_data`'s cgroup), or `Err` when the
/// socket is filtered out.
#[inline(always)]
fn sock_cgroup_id_if_watched(sk: *const u8) -> Result<u64, ()> {
    let cgrp = kmem::read_ptr(sk, off!(sock_cgroup_ptr));
    kmem::watched_cgroup_id(EventKind::Socket as u32, cgrp).ok_or(())
}

#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn on_inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let _ = try_sock_set_state(&ctx);
    0
}

#[inline(always)]
fn classify(old: u32, new: u32) -> Option<SocketOp> {
    Some(match (old, new) {
        (_, TCP_LISTEN) => SocketOp::ListenStart,
        (TCP_LISTEN, TCP_CLOSE) => SocketOp::ListenStop,
        (TCP_CLOSE, TCP_SYN_SENT) => SocketOp::ConnectStart,
        (TCP_SYN_SENT, TCP_ESTABLISHED) => SocketOp::ConnectEstablished,
        (TCP_SYN_SENT, TCP_CLOSE) => SocketOp::ConnectFailed,
        (TCP_SYN_RECV, TCP_ESTABLISHED) => SocketOp::Accept,
        (_, TCP_CLOSE) => SocketOp::Close,
        _ => return None,
    })
}

fn try_sock_set_state(ctx: &TracePointContext) -> Result<(), ()> {
    if kmem::tp_load::<u16, { tp::SOCK_PROTOCOL }>(ctx) != IPPROTO_TCP {
        return Ok(());
    }
    let old = kmem::tp_load::<i32, { tp::SOCK_OLDSTATE }>(ctx) as u32;
    let new = kmem::tp_load::<i32, { tp::SOCK_NEWSTATE }>(ctx) as u32;
    let Some(op) = classify(old, new) else {
        return Ok(());
    };
    let skaddr = kmem::tp_load::<u64, { tp::SOCK_SKADDR }>(ctx);
    let sk = skaddr as *const u8;
    let sport = kmem::tp_load::<u16, { tp::SOCK_SPORT }>(ctx);

    let (owner, sock_cgroup_id) = match op {
        SocketOp::ListenStart | SocketOp::ConnectStart => {
            // These run in the owner's syscall, usually in the cgroup the
            // socket was created in: then the current task's filter (one
            // helper call) stands for the socket's (its cgroup's ancestors).
            let cgrp = kmem::read_ptr(sk, off!(sock_cgroup_ptr));
            let sock_cgroup_id = kmem::cgroup_id(cgrp);
            let current_cgroup_id = emit::current_cgroup_id();
            let watched = if sock_cgroup_id == current_cgroup_id && sock_cgroup_id != 0 {
                kmem::current_watched()
            } else {
                kmem::watched_cgroup_id(EventKind::Socket as u32, cgrp).is_some()
            };
            if !watched {
                return Ok(());
            }
            let kind = EventKind::Socket as u32;
            let task = kmem::current_task();
            let (me, _) = emit::current_task_id_in(kind, task, current_cgroup_id, false);
            let entry = SockEntry {
                owner: me,
                sock_cgroup_id,
            };
            let _ = SOCK_OWNERS.insert(skaddr, entry, 0);
            if op == SocketOp::ListenStart {
                let _ = LISTENERS.insert(listener_key(sock_cgroup_id, sport), me, 0);
            }
            (Some(me), sock_cgroup_id)
        }
        SocketOp::Accept => {
            // An accepted socket has its listener's cgroup (sk_clone_lock),
            // and a remembered listener passed the filter with it: only an
            // unknown listener needs the filter.
            let cgrp = kmem::read_ptr(sk, off!(sock_cgroup_ptr));
            let sock_cgroup_id = kmem::cgroup_id(cgrp);
            // SAFETY: the value is copied out before any map update.
            let found = unsafe { LISTENERS.get(listener_key(sock_cgroup_id, sport)) }.copied();
            if found.is_none() && kmem::watched_cgroup_id(EventKind::Socket as u32, cgrp).is_none()
            {
                return Ok(());
            }
            if let Some(owner) = found {
                let entry = SockEntry {
                    owner,
                    sock_cgroup_id,
                };
                let _ = SOCK_OWNERS.insert(skaddr, entry, 0);
            }
            (found, sock_cgroup_id)
        }
        _ => {
            // A socket remembered at listen, connect or accept passed the
            // filter then; its cgroup cannot have changed since.
            // SAFETY: the value is copied out before any map update.
            let found = unsafe { SOCK_OWNERS.get(skaddr) }.copied();
            let (owner, sock_cgroup_id) = match found {
                Some(entry) => (Some(entry.owner), entry.sock_cgroup_id),
                None => (None, sock_cgroup_id_if_watched(sk)?),
            };
            let last = matches!(
                op,
                SocketOp::ConnectFailed | SocketOp::Close | SocketOp::ListenStop
            );
            if last && found.is_some() {
                let _ = SOCK_OWNERS.remove(skaddr);
            }
            if op == SocketOp::ListenStop {
                let _ = LISTENERS.remove(listener_key(sock_cgroup_id, sport));
            }
            (owner, sock_cgroup_id)
        }
    };

    let kind = EventKind::Socket as u32;
    // sk_uid and sk_err with one read where they are close.
    let (uid, sk_err) = match kmem::SpanCopy::of(kind, sk, off!(sock_span)) {
        Some(copy) => (copy.u32_at(off!(sock_uid)), copy.u32_at(off!(sock_err))),
        None => (
            kmem::read::<u32>(sk, off!(sock_uid)).unwrap_or(u32::MAX),
            kmem::read::<u32>(sk, off!(sock_err)).unwrap_or(0),
        ),
    };
    let family = kmem::tp_load::<u16, { tp::SOCK_FAMILY }>(ctx);
    let mut entry = emit::reserve::<SocketEvent>(kind).ok_or(())?;
    let event = entry.as_mut_ptr();
    // SAFETY: `event` is a reserved record we own; all fields are written.
    unsafe {
        let task = match owner {
            Some(task) => task,
            None => TaskId {
                cgroup_id: sock_cgroup_id,
                ..TaskId::default()
            },
        };
        (*event).header = emit::header_for(kind, task, uid);
        (*event).skaddr = skaddr;
        (*event).sock_cgroup_id = sock_cgroup_id;
        (*event).op = op as u32;
        (*event).oldstate = old;
        (*event).newstate = new;
        (*event).sk_err = sk_err;
        (*event).family = family;
        (*event).sport = sport;
        (*event).dport = kmem::tp_load::<u16, { tp::SOCK_DPORT }>(ctx);
        (*event).owner_known = owner.is_some() as u16;
        let (saddr, daddr) = addresses(ctx, family);
        (*event).saddr = saddr;
        (*event).daddr = daddr;
    }
    emit::submit(entry);
    Ok(())
}

/// Source and destination address as 16 bytes (IPv4 in the first four).
#[inline(always)]
fn addresses(ctx: &TracePointContext, family: u16) -> ([u8; 16], [u8; 16]) {
    if family != AF_INET {
        return (
            kmem::tp_load_16::<{ tp::SOCK_SADDR_V6 }, { tp::SOCK_SADDR_V6 + 8 }>(ctx),
            kmem::tp_load_16::<{ tp::SOCK_DADDR_V6 }, { tp::SOCK_DADDR_V6 + 8 }>(ctx),
        );
    }
    let mut saddr = [0u8; 16];
    let mut daddr = [0u8; 16];
    saddr[..4].copy_from_slice(&kmem::tp_load::<u32, { tp::SOCK_SADDR }>(ctx).to_ne_bytes());
    daddr[..4].copy_from_slice(&kmem::tp_load::<u32, { tp::SOCK_DADDR }>(ctx).to_ne_bytes());
    (saddr, daddr)
}
