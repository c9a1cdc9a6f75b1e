//! What a connection reads from and writes to: the [`Transport`](crate::http::transport::Transport) trait,
//! and its plain implementation on a `TcpStream`. TLS (`tls/`) and the
//! in-memory sockets of the simulations implement it too; the connection
//! (`conn/`) is written against it alone.
//!
//! A body that is a file ([`FileBody`](crate::http::transport::FileBody))
//! is a value the connection hands to
//! [`Transport::send_file`](crate::http::transport::Transport::send_file):
//! `sendfile(2)` on plain TCP, so its bytes never enter user memory; one
//! bounded chunk through the transport's own `write` anywhere else (TLS).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::os::unix::fs::FileExt;

/// Bytes of a file one `send_file` call moves at most where it goes
/// through user memory (TLS: a record's worth).
pub const FILE_CHUNK: usize = 16 * 1024;

/// A body sent from an open file: `len` bytes from `offset`.
#[derive(Debug)]
pub struct FileBody {
    /// Shared with the route's open-file cache (`http/files/cache.rs`).
    pub file: std::rc::Rc<File>,
    pub offset: u64,
    pub len: u64,
}

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

    /// ALPN chose `h2` for this connection (TLS): its first request head
    /// may be the HTTP/2 connection preface (`conn/h2start.rs`).
    fn negotiated_h2(&self) -> bool {
        false
    }

    /// Writes as `write` does, telling the kernel that more follows at
    /// once (a file body after its head: one packet instead of two).
    fn write_more(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write(data)
    }

    /// Sends up to `len` bytes of `file` from `offset`; how many went.
    /// `Ok(0)` for `len > 0`: the file ended early (truncated meanwhile).
    /// This default reads one chunk into a buffer and writes what the
    /// transport takes of it; TCP sends without the copy (`sendfile`).
    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<usize> {
        let mut chunk = [0u8; FILE_CHUNK];
        let want = usize::try_from(len).map_or(FILE_CHUNK, |l| l.min(FILE_CHUNK));
        let n = file.read_at(&mut chunk[..want], offset)?;
        if n == 0 {
            return Ok(0);
        }
        self.write(&chunk[..n])
    }
}

impl Transport for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer_addr().ok().map(|a| a.ip())
    }

    /// `send(MSG_MORE)`: the head is held for the `sendfile` that follows.
    fn write_more(&mut self, data: &[u8]) -> io::Result<usize> {
        use nix::sys::socket::{send, MsgFlags};
        use std::os::fd::AsRawFd;
        // nix names no MSG_MORE; the bit is libc's.
        let flags = MsgFlags::from_bits_retain(libc::MSG_MORE) | MsgFlags::MSG_NOSIGNAL;
        send(self.as_raw_fd(), data, flags).map_err(io::Error::from)
    }

    /// `sendfile(2)`: from the page cache to the socket, never through a
    /// buffer of ours.
    fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<usize> {
        let mut off = i64::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        // One call moves at most 2 GiB - 4 KiB anyway (Linux).
        let count = usize::try_from(len).unwrap_or(usize::MAX).min(1 << 30);
        nix::sys::sendfile::sendfile64(&*self, file, Some(&mut off), count).map_err(io::Error::from)
    }
}

/// Writes as much of `data` as the socket takes now.
/// `more`: what follows comes at once (a file body), so the kernel may
/// hold these bytes to send them with it (`MSG_MORE`).
pub fn write_some(stream: &mut impl Transport, data: &[u8], more: bool) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        let wrote = if more {
            stream.write_more(&data[done..])
        } else {
            stream.write(&data[done..])
        };
        match wrote {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
