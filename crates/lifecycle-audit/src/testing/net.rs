//! TCP helpers of [`Script`]: listeners, connects, refusals, accepts.

use lifecycle_recording::event::{Event, SocketChange, SocketOp};

use super::{Proc, Script};

/// One socket transition to write.
struct Sock<'a> {
    op: SocketOp,
    socket: &'a str,
    local: (&'a str, u16),
    remote: (&'a str, u16),
    uid: u32,
    error: Option<&'a str>,
}

impl<'a> Sock<'a> {
    /// A transition of `socket` with uid 0 and no error.
    fn new(op: SocketOp, socket: &'a str, local: (&'a str, u16), remote: (&'a str, u16)) -> Self {
        Self {
            op,
            socket,
            local,
            remote,
            uid: 0,
            error: None,
        }
    }

    /// The socket's owning uid.
    fn uid(self, uid: u32) -> Self {
        Self { uid, ..self }
    }

    /// The errno name the transition failed with.
    fn error(self, error: &'a str) -> Self {
        Self {
            error: Some(error),
            ..self
        }
    }
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
            Sock::new(SocketOp::ListenStart, &socket, (addr, port), ("0.0.0.0", 0)).uid(uid),
        );
        socket
    }

    /// `owner` stops listening with `socket` on `addr:port`.
    pub fn listen_stop(&mut self, owner: &Proc, socket: &str, addr: &str, port: u16) -> &mut Self {
        self.socket(
            owner,
            Sock::new(SocketOp::ListenStop, socket, (addr, port), ("0.0.0.0", 0)),
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
            Sock::new(SocketOp::ConnectStart, &socket, (local.0, 0), remote).uid(uid),
        );
        self.socket(
            owner,
            Sock::new(SocketOp::ConnectEstablished, &socket, local, remote).uid(uid),
        );
        self
    }

    /// `owner`'s connect to `remote` is refused.
    pub fn refused(&mut self, owner: &Proc, remote: (&str, u16)) -> &mut Self {
        let socket = self.new_socket();
        self.socket(
            owner,
            Sock::new(SocketOp::ConnectStart, &socket, ("10.1.0.5", 0), remote),
        );
        self.socket(
            owner,
            Sock::new(SocketOp::ConnectFailed, &socket, ("10.1.0.5", 0), remote)
                .error("ECONNREFUSED"),
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
            Sock::new(SocketOp::Accept, &socket, local, remote).uid(uid),
        );
        self
    }
}
