//! Kernel records -> recording events, with cgroup attribution.

use std::net::{Ipv4Addr, Ipv6Addr};

use agent_common::{EventKind, SocketOp as KernelSocketOp, TaskId};

use super::{
    CgroupChange, CgroupOp, Event, Process, ProcessExec, ProcessExit, ProcessFork, SignalDeliver,
    SignalGenerate, SocketChange, SocketOp, names,
};
use crate::{
    attribution::{CgroupClass, parse_cgroup_path},
    kernel::decode::{ProbeSample, c_str},
};

/// Resolves a cgroup id to what it is.
pub trait Attribute {
    fn class_of(&mut self, cgroup_id: u64) -> Option<CgroupClass>;
}

impl<F: FnMut(u64) -> Option<CgroupClass>> Attribute for F {
    fn class_of(&mut self, cgroup_id: u64) -> Option<CgroupClass> {
        self(cgroup_id)
    }
}

/// Turns kernel records into events; counts what it could not attribute.
pub struct EventBuilder<A> {
    pub attribute: A,
    /// Processes or sockets whose cgroup id did not resolve.
    pub unattributed: u64,
}

impl<A: Attribute> EventBuilder<A> {
    pub fn new(attribute: A) -> Self {
        Self {
            attribute,
            unattributed: 0,
        }
    }

    fn class(&mut self, cgroup_id: u64) -> Option<CgroupClass> {
        let class = self.attribute.class_of(cgroup_id);
        if class.is_none() {
            self.unattributed += 1;
        }
        class
    }

    fn process(&mut self, task: &TaskId) -> Process {
        Process {
            pid: task.tgid,
            tid: task.pid,
            start_ns: task.start_boottime_ns,
            comm: c_str(&task.comm),
            cgroup_id: task.cgroup_id,
            cgroup: self.class(task.cgroup_id),
            k8s: None,
        }
    }

    pub fn build(&mut self, record: &ProbeSample) -> Event {
        match record {
            ProbeSample::SignalGenerate(e) => Event::SignalGenerate(SignalGenerate {
                sender: self.process(&e.header.task),
                sender_parent_pid: e.sender_parent_tgid,
                sender_parent_comm: c_str(&e.sender_parent_comm),
                target: self.process(&e.target),
                signal: e.sig,
                signal_name: names::signal_name(e.sig),
                code: e.code,
                code_name: names::si_code_name(e.code).to_string(),
                errno: e.errno,
                group: e.group != 0,
                result: names::delivery_result_name(e.result).to_string(),
                target_action: (e.target_handler != agent_common::ACTION_UNREAD)
                    .then(|| names::handler_name(e.target_handler).to_string()),
                target_ns_init: (e.target_signal_flags != agent_common::FLAGS_UNREAD)
                    .then_some(e.target_signal_flags & agent_common::SIGNAL_UNKILLABLE != 0),
            }),
            ProbeSample::SignalDeliver(e) => Event::SignalDeliver(SignalDeliver {
                process: self.process(&e.header.task),
                signal: e.sig,
                signal_name: names::signal_name(e.sig),
                code: e.code,
                handler: names::handler_name(e.sa_handler).to_string(),
                sa_flags: e.sa_flags,
            }),
            ProbeSample::ProcessExec(e) => {
                let truncated = e.filename_len as usize >= agent_common::FILENAME_LEN;
                Event::ProcessExec(ProcessExec {
                    process: self.process(&e.header.task),
                    parent_pid: e.parent_tgid,
                    filename: c_str(&e.filename),
                    filename_truncated: truncated,
                    recovered: None,
                })
            }
            ProbeSample::ProcessFork(e) => Event::ProcessFork(ProcessFork {
                parent: self.process(&e.header.task),
                child: self.process(&e.child),
            }),
            ProbeSample::ProcessExit(e) => {
                Event::ProcessExit(exit_event(self.process(&e.header.task), e.exit_code))
            }
            ProbeSample::Cgroup(e) => {
                let op = match record.kind() {
                    EventKind::CgroupMkdir => CgroupOp::Mkdir,
                    EventKind::CgroupRmdir => CgroupOp::Rmdir,
                    _ => CgroupOp::Attach,
                };
                let path = c_str(&e.path);
                Event::Cgroup(CgroupChange {
                    moved_pid: (op == CgroupOp::Attach).then_some(e.attach_pid),
                    op,
                    cgroup_id: e.cgroup_id,
                    level: e.level,
                    class: parse_cgroup_path(&path),
                    path_truncated: e.path_len as usize >= agent_common::CGROUP_PATH_LEN,
                    path,
                    actor: self.process(&e.header.task),
                })
            }
            ProbeSample::Socket(e) => {
                let owner = (e.owner_known != 0).then(|| self.process(&e.header.task));
                let v4 = e.family == libc::AF_INET as u16;
                Event::Socket(SocketChange {
                    op: socket_op(e.op),
                    socket: format!("{:x}", e.skaddr),
                    owner,
                    socket_cgroup_id: e.sock_cgroup_id,
                    socket_cgroup: self.class(e.sock_cgroup_id),
                    socket_k8s: None,
                    uid: e.header.uid,
                    family: if v4 { "ipv4" } else { "ipv6" }.to_string(),
                    local_addr: addr_string(&e.saddr, v4),
                    local_port: e.sport,
                    remote_addr: addr_string(&e.daddr, v4),
                    remote_port: e.dport,
                    old_state: names::tcp_state_name(e.oldstate).to_string(),
                    new_state: names::tcp_state_name(e.newstate).to_string(),
                    error: names::errno_name(e.sk_err).map(str::to_string),
                    errno: e.sk_err,
                })
            }
        }
    }
}

/// Splits the kernel's wait status into what happened.
pub fn exit_event(process: Process, raw: u32) -> ProcessExit {
    let signal = (raw & 0x7f) as i32;
    let status = ((raw >> 8) & 0xff) as i32;
    ProcessExit {
        process,
        exit_code_raw: raw,
        exit_status: (signal == 0).then_some(status),
        killed_by_signal: (signal != 0).then_some(signal),
        container_exit_code: if signal != 0 { 128 + signal } else { status },
    }
}

fn socket_op(op: u32) -> SocketOp {
    match KernelSocketOp::from_u32(op) {
        Some(KernelSocketOp::ListenStart) => SocketOp::ListenStart,
        Some(KernelSocketOp::ListenStop) => SocketOp::ListenStop,
        Some(KernelSocketOp::ConnectStart) => SocketOp::ConnectStart,
        Some(KernelSocketOp::ConnectEstablished) => SocketOp::ConnectEstablished,
        Some(KernelSocketOp::ConnectFailed) => SocketOp::ConnectFailed,
        Some(KernelSocketOp::Accept) => SocketOp::Accept,
        Some(KernelSocketOp::Close) | None => SocketOp::Close,
    }
}

fn addr_string(bytes: &[u8; 16], v4: bool) -> String {
    if v4 {
        Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()
    } else {
        Ipv6Addr::from(*bytes).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_and_signal_deaths_split() {
        let normal = exit_event(Process::default(), 3 << 8);
        assert_eq!(
            (
                normal.exit_status,
                normal.killed_by_signal,
                normal.container_exit_code
            ),
            (Some(3), None, 3)
        );
        let killed = exit_event(Process::default(), 9);
        assert_eq!(
            (
                killed.exit_status,
                killed.killed_by_signal,
                killed.container_exit_code
            ),
            (None, Some(9), 137)
        );
        let termed_core = exit_event(Process::default(), 0x80 | 15);
        assert_eq!(termed_core.container_exit_code, 143);
    }

    #[test]
    fn unresolved_cgroups_are_counted() {
        let mut builder =
            EventBuilder::new(|id: u64| (id == 1).then_some(CgroupClass::NotKubernetes));
        let exit = agent_common::ProcessExitEvent {
            header: agent_common::EventHeader {
                kind: EventKind::ProcessExit as u32,
                task: TaskId {
                    cgroup_id: 2,
                    ..Default::default()
                },
                ..Default::default()
            },
            exit_code: 0,
            _pad: 0,
        };
        let Event::ProcessExit(e) = builder.build(&ProbeSample::ProcessExit(exit)) else {
            panic!()
        };
        assert_eq!(e.process.cgroup, None);
        assert_eq!(builder.unattributed, 1);
    }
}
