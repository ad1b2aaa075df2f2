//! The kubelet's own network calls (httpGet and tcpSocket probes and
//! hooks), made from the cluster namespace to the pod's address.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

/// GET `path`; the HTTP status.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.33\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status"))
}

/// A TCP connect that is closed at once.
pub fn tcp(addr: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    TcpStream::connect_timeout(&addr, timeout).map(drop)
}
