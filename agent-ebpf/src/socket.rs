//! TCP sockets from `sock:inet_sock_set_state`, reduced to listen, connect
//! (and its outcome), accept and close.
//!
//! State changes often run in softirq context, where the current task is
//! unrelated to the socket. The owner is therefore remembered per socket at
//! the transitions that always run in the owner's syscall (listen, connect)
//! and, for accepted connections, taken from the listener's owner (keyed by
//! the socket's cgroup and local port). The socket's own cgroup
//! (`sk->sk_cgrp_data`) attributes it to a container in any context.

use agent_common::{EventKind, SocketEvent, SocketOp, TaskId};
use aya_ebpf::{
    macros::{map, tracepoint},
    maps::LruHashMap,
    programs::TracePointContext,
};

use crate::{
    emit,
    kmem::{self, TracepointBase, off},
};

const IPPROTO_TCP: u16 = 6;
const AF_INET: u16 = 2;
const TCP_ESTABLISHED: u32 = 1;
const TCP_SYN_SENT: u32 = 2;
const TCP_SYN_RECV: u32 = 3;
const TCP_CLOSE: u32 = 7;
const TCP_LISTEN: u32 = 10;

/// Owner of a socket, by socket address.
#[map]
static SOCK_OWNERS: LruHashMap<u64, TaskId> = LruHashMap::with_max_entries(65536, 0);

/// Owner of a listener, by (socket cgroup id, local port).
#[repr(C)]
#[derive(Clone, Copy)]
struct ListenerKey {
    cgroup_id: u64,
    port: u64,
}

#[map]
static LISTENERS: LruHashMap<ListenerKey, TaskId> = LruHashMap::with_max_entries(16384, 0);

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
    let record = ctx.as_ptr_u8();
    let protocol = kmem::read::<u16>(record, off!(tp_sock_protocol)).ok_or(())?;
    if protocol != IPPROTO_TCP {
        return Ok(());
    }
    let old = kmem::read::<i32>(record, off!(tp_sock_oldstate)).ok_or(())? as u32;
    let new = kmem::read::<i32>(record, off!(tp_sock_newstate)).ok_or(())? as u32;
    let Some(op) = classify(old, new) else {
        return Ok(());
    };
    let skaddr = kmem::read::<u64>(record, off!(tp_sock_skaddr)).ok_or(())?;
    let sk = skaddr as *const u8;
    let sock_cgrp = kmem::read_ptr(sk, off!(sock_cgroup_ptr));
    if !kmem::cgroup_watched(sock_cgrp) {
        return Ok(());
    }
    let sock_cgroup_id = kmem::cgroup_id(sock_cgrp);
    let sport = kmem::read::<u16>(record, off!(tp_sock_sport)).unwrap_or(0);
    let listener = ListenerKey {
        cgroup_id: sock_cgroup_id,
        port: sport as u64,
    };

    let owner: Option<TaskId> = match op {
        SocketOp::ListenStart | SocketOp::ConnectStart => {
            let me = emit::current_task_id();
            let _ = SOCK_OWNERS.insert(skaddr, me, 0);
            if op == SocketOp::ListenStart {
                let _ = LISTENERS.insert(listener, me, 0);
            }
            Some(me)
        }
        SocketOp::Accept => {
            // SAFETY: the value is copied out before any map update.
            let found = unsafe { LISTENERS.get(listener) }.copied();
            if let Some(owner) = found {
                let _ = SOCK_OWNERS.insert(skaddr, owner, 0);
            }
            found
        }
        _ => {
            // SAFETY: the value is copied out before any map update.
            let found = unsafe { SOCK_OWNERS.get(skaddr) }.copied();
            if matches!(
                op,
                SocketOp::ConnectFailed | SocketOp::Close | SocketOp::ListenStop
            ) {
                let _ = SOCK_OWNERS.remove(skaddr);
            }
            if op == SocketOp::ListenStop {
                let _ = LISTENERS.remove(listener);
            }
            found
        }
    };

    let kind = EventKind::Socket as u32;
    let uid = kmem::read::<u32>(sk, off!(sock_uid)).unwrap_or(u32::MAX);
    let family = kmem::read::<u16>(record, off!(tp_sock_family)).unwrap_or(0);
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
        (*event).sk_err = kmem::read::<i32>(sk, off!(sock_err)).unwrap_or(0) as u32;
        (*event).family = family;
        (*event).sport = sport;
        (*event).dport = kmem::read::<u16>(record, off!(tp_sock_dport)).unwrap_or(0);
        (*event).owner_known = owner.is_some() as u16;
        let (saddr, daddr) = addresses(record, family);
        (*event).saddr = saddr;
        (*event).daddr = daddr;
    }
    emit::submit(entry);
    Ok(())
}

/// Source and destination address as 16 bytes (IPv4 in the first four).
#[inline(always)]
fn addresses(record: *const u8, family: u16) -> ([u8; 16], [u8; 16]) {
    if family != AF_INET {
        return (
            kmem::read::<[u8; 16]>(record, off!(tp_sock_saddr_v6)).unwrap_or([0; 16]),
            kmem::read::<[u8; 16]>(record, off!(tp_sock_daddr_v6)).unwrap_or([0; 16]),
        );
    }
    let mut saddr = [0u8; 16];
    let mut daddr = [0u8; 16];
    saddr[..4]
        .copy_from_slice(&kmem::read::<[u8; 4]>(record, off!(tp_sock_saddr)).unwrap_or([0; 4]));
    daddr[..4]
        .copy_from_slice(&kmem::read::<[u8; 4]>(record, off!(tp_sock_daddr)).unwrap_or([0; 4]));
    (saddr, daddr)
}
