//! Blocking TCP for the operator CLI and the replication role thread: one place that
//! resolves an address and connects with a deadline, and, for a port that speaks TLS,
//! wraps the connection (see [`crate::tls`]).

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub use crate::tls::{Port, SyncStream};

/// Connects to `addr` (`host:port`) within `timeout`; reads and writes on the stream then
/// time out after `timeout` too. Plain TCP whatever the port speaks (a liveness check).
pub fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let s = TcpStream::connect_timeout(&sock, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// [`connect`] to a peer's `port`, speaking TLS when that port does (the handshake runs
/// on first use, under the same timeouts).
pub fn connect_to(addr: &str, port: Port, timeout: Duration) -> Result<SyncStream, String> {
    let s = connect(addr, timeout)?;
    crate::tls::wrap_blocking(s, addr, port).map_err(|e| format!("{addr}: {e}"))
}
