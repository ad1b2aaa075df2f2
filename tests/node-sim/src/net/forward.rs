//! A TCP forwarder from a listener inside the node's network namespace to
//! an address on the host (the test API server on 127.0.0.1), so pods
//! reach it through their default route without the host's network being
//! touched. A socket keeps the namespace it was created in: the listener
//! is made on a thread inside the node namespace, everything else runs on
//! host threads.

use std::{
    io,
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use super::netns::{NetError, NetNs};

/// What failed setting up a forwarder.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("cannot listen on {addr} in the node namespace: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A running forwarder; stops accepting on drop.
pub struct Forwarder {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    ns: std::fs::File,
    acceptor: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Listens on `bind` (port 0: any) inside `ns` and forwards every
    /// connection to `to`.
    pub fn start(ns: &NetNs, bind: SocketAddr, to: SocketAddr) -> Result<Self, ForwardError> {
        let listener = ns
            .run_in(|| TcpListener::bind(bind))?
            .map_err(|source| ForwardError::Bind { addr: bind, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ForwardError::Bind { addr: bind, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let acceptor = std::thread::spawn(move || {
            for incoming in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = incoming else { continue };
                std::thread::spawn(move || {
                    if let Err(error) = pipe(client, to) {
                        tracing::debug!(%error, "forwarded connection ended");
                    }
                });
            }
        });
        Ok(Self {
            local,
            stop,
            ns: ns.open()?,
            acceptor: Some(acceptor),
        })
    }

    /// The address pods connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

fn pipe(client: TcpStream, to: SocketAddr) -> io::Result<()> {
    let upstream = TcpStream::connect(to)?;
    let (mut client_r, mut upstream_w) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut client_r, &mut upstream_w);
        let _ = upstream_w.shutdown(Shutdown::Write);
    });
    let (mut upstream_r, mut client_w) = (upstream, client);
    let _ = io::copy(&mut upstream_r, &mut client_w);
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the acceptor with a connection from inside the namespace.
        let local = self.local;
        let _ = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    super::netns::enter(&self.ns)?;
                    TcpStream::connect(local).map_err(NetError::EnterFailed)
                })
                .join()
        });
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}
