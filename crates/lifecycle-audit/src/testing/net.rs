//! TCP helpers of [`Script`]: listeners, connects, refusals, accepts.

use super::{Proc, Script};
use lifecycle_recording::event::{Event, SocketChange, SocketOp};

/// One socket transition to write.
struct Sock<'a> {
    op: SocketOp,
    socket: &'a str,
    local: (&'a str, u16),
    remote: (&'a str, u16),
    uid: u32,
    error: Option<&'a str>,
}

impl Script {
    fn socket(&mut self, owner: &Proc, s: Sock<'_>) {
        let k8s = owner.process.k8s.clone();
        self.push(
            Event::Socket(SocketChange {
                op: s.op,
                socket: s.socket.into(),
                owner: Some(owner.process.clone()),
                socket_cgroup_id: owner.process.cgroup_id,
                socket_cgroup: owner.process.cgroup.clone(),
                socket_k8s: k8s,
                uid: s.uid,
                family: "ipv4".into(),
                local_addr: s.local.0.into(),
                local_port: s.local.1,
                remote_addr: s.remote.0.into(),
                remote_port: s.remote.1,
                old_state: String::new(),
                new_state: String::new(),
                error: s.error.map(str::to_owned),
                errno: 0,
            }),
            true,
        );
    }

    fn new_socket(&mut self) -> String {
        self.next_socket += 1;
        format!("ffff888000{:06x}", self.next_socket)
    }

    /// `owner` listens on `addr:port`; returns the socket.
    pub fn listen(&mut self, owner: &Proc, addr: &str, port: u16, uid: u32) -> String {
        let socket = self.new_socket();
        self.socket(
            owner,
            Sock {
                op: SocketOp::ListenStart,
                socket: &socket,
                local: (addr, port),
                remote: ("0.0.0.0", 0),
                uid,
                error: None,
            },
        );
        socket
    }

    pub fn listen_stop(&mut self, owner: &Proc, socket: &str, addr: &str, port: u16) -> &mut Self {
        self.socket(
            owner,
            Sock {
                op: SocketOp::ListenStop,
                socket,
                local: (addr, port),
                remote: ("0.0.0.0", 0),
                uid: 0,
                error: None,
            },
        );
        self
    }

    /// `owner` connects from `local` to `remote` and succeeds.
    pub fn connect(
        &mut self,
        owner: &Proc,
        local: (&str, u16),
        remote: (&str, u16),
        uid: u32,
    ) -> &mut Self {
        let socket = self.new_socket();
        self.socket(
            owner,
            Sock {
                op: SocketOp::ConnectStart,
                socket: &socket,
                local: (local.0, 0),
                remote,
                uid,
                error: None,
            },
        );
        self.socket(
            owner,
            Sock {
                op: SocketOp::ConnectEstablished,
                socket: &socket,
                local,
                remote,
                uid,
                error: None,
            },
        );
        self
    }

    /// `owner`'s connect to `remote` is refused.
    pub fn refused(&mut self, owner: &Proc, remote: (&str, u16)) -> &mut Self {
        let socket = self.new_socket();
        self.socket(
            owner,
            Sock {
                op: SocketOp::ConnectStart,
                socket: &socket,
                local: ("10.1.0.5", 0),
                remote,
                uid: 0,
                error: None,
            },
        );
        self.socket(
            owner,
            Sock {
                op: SocketOp::ConnectFailed,
                socket: &socket,
                local: ("10.1.0.5", 0),
                remote,
                uid: 0,
                error: Some("ECONNREFUSED"),
            },
        );
        self
    }

    /// `listener`'s socket completes a handshake from `remote`.
    pub fn accept(
        &mut self,
        listener: &Proc,
        local: (&str, u16),
        remote: (&str, u16),
        uid: u32,
    ) -> &mut Self {
        let socket = self.new_socket();
        self.socket(
            listener,
            Sock {
                op: SocketOp::Accept,
                socket: &socket,
                local,
                remote,
                uid,
                error: None,
            },
        );
        self
    }
}
