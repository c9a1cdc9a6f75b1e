//! What a connection reads from and writes to: the [`Transport`](crate::http::transport::Transport) trait,
//! and its plain implementation on a `TcpStream`. TLS (`tls/`) and the
//! in-memory sockets of the simulations implement it too; the connection
//! (`conn.rs`) is written against it alone.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};

/// What a connection reads from and writes to: the client's TCP socket in
/// a worker, a scripted stream in the fuzz target and the property tests.
pub trait Transport: Read + Write {
    /// Sends FIN: no more output, input may still arrive.
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// The peer's address, for the access log.
    fn peer_ip(&self) -> Option<IpAddr> {
        None
    }

    /// The transport holds output the socket did not take yet (TLS
    /// records): the connection waits for writability and `flush`es.
    fn has_pending_output(&self) -> bool {
        false
    }

    /// The transport may hold input already taken from the socket (TLS
    /// plaintext): read again before waiting for the socket.
    fn has_buffered_input(&self) -> bool {
        false
    }

    /// The transport refused the client and answered it itself (plain
    /// HTTP on a TLS port gets a 400): what of the request it had read and
    /// the answer it sent, for the observer. Asked when a read fails.
    fn refused(&self) -> Option<(&[u8], &[u8])> {
        None
    }
}

impl Transport for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer_addr().ok().map(|a| a.ip())
    }
}
