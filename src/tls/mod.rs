//! HTTPS: the `[tls]` certificate and key as the master loads them (before
//! fork, as root), the session-ticket keys every worker derives alike, and
//! a rustls session over a client's TCP socket as a [`Transport`](crate::http::transport::Transport) for
//! `Conn`. HTTP, the event loop and the counting of answers stay with
//! `http/conn/` and `worker/`.
//!
//! rustls' buffered `ServerConnection` runs inside the worker's epoll loop:
//! no threads, no runtime. `read` feeds socket bytes to rustls and hands out
//! plaintext, sending whatever the handshake wants to send; `write`
//! encrypts and sends; records the socket does not take now stay in rustls
//! ([`Transport::has_pending_output`](crate::http::transport::Transport::has_pending_output)) until the socket is writable.
//!
//! Memory: an idle TLS connection holds its `ServerConnection` (boxed, so
//! plain connections do not pay for it) with rustls' session state and its
//! receive buffer, whose capacity stays at what the largest read needed (at
//! most one full record, 16 KiB plus overhead: a longer one is an error):
//! about 7.7 KiB of worker RSS per idle keep-alive connection after a small
//! request, measured over 1,000 connections. rustls caps buffered plaintext
//! at 16 KiB each way. The buffered API allocates per record it encrypts or
//! decrypts; rustls' unbuffered API would not (not used yet).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::obs::scoreboard::TlsCounters;

use rustls::crypto::aws_lc_rs as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, ServerConfig, ServerConnection};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{HandshakeKind, SupportedProtocolVersion};

use crate::http::transport::Transport;

/// Session-ticket keys change every this many seconds of wall-clock time;
/// a ticket from the period before is still accepted, so a ticket lives
/// between one and two periods.
pub const TICKET_PERIOD_SECS: u64 = 12 * 3600;

/// The answer to plain HTTP sent to a TLS port (nginx answers it with a
/// 400 too, in plain text). `Conn` logs and counts it, as any refusal,
/// through [`Transport::refused`].
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\nContent-Length: 46\r\nConnection: close\r\n\r\n\
The plain HTTP request was sent to HTTPS port\n";

/// Of plain HTTP sent to a TLS port, at most this much is kept for the
/// access log (its request line; nginx's default `client_header_buffer_size`).
const PLAIN_HEAD_MAX: usize = 1024;

/// A protocol version `protocols` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Tls12,
    Tls13,
}

impl Version {
    /// `"1.2"` or `"1.3"`.
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "1.2" => Some(Version::Tls12),
            "1.3" => Some(Version::Tls13),
            _ => None,
        }
    }

    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            Version::Tls12 => &rustls::version::TLS12,
            Version::Tls13 => &rustls::version::TLS13,
        }
    }
}

/// `[tls]` with what its files held: the rustls config every TLS
/// connection is made from. Loaded by the master (config load, `-t`, HUP),
/// inherited by the workers over fork.
#[derive(Clone)]
pub struct TlsConfig {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub protocols: Vec<Version>,
    pub server: Arc<ServerConfig>,
}

impl PartialEq for TlsConfig {
    /// Two loads of the same files are different configs: a reload always
    /// takes the new one (the files may have changed under the same names).
    fn eq(&self, other: &Self) -> bool {
        self.certificate == other.certificate
            && self.key == other.key
            && self.protocols == other.protocols
            && Arc::ptr_eq(&self.server, &other.server)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("certificate", &self.certificate)
            .field("key", &self.key)
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

/// Why the certificate or key cannot be used: `file: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Reads the certificate chain (PEM, leaf first) and the key (PEM: PKCS#8,
/// SEC1 or RSA), checks that they belong together, and builds the rustls
/// config: the `protocols` given, ALPN `http/1.1` (`alpn::with_alpn` sets
/// the configured list), the server's cipher
/// order, session tickets every worker can open (`tickets.rs`) and no
/// server-side session cache.
pub fn load(certificate: &Path, key: &Path, protocols: &[Version]) -> Result<TlsConfig, LoadError> {
    let fail = |path: &Path, reason: String| LoadError {
        path: path.to_owned(),
        reason,
    };
    let cert_pem = std::fs::read(certificate).map_err(|e| fail(certificate, e.to_string()))?;
    let key_pem = std::fs::read(key).map_err(|e| fail(key, e.to_string()))?;
    let server = server_config(&cert_pem, &key_pem, protocols).map_err(|e| match e {
        Bad::Certificate(reason) => fail(certificate, reason),
        Bad::Key(reason) => fail(key, reason),
        Bad::Mismatch => fail(
            key,
            format!("does not match the certificate {}", certificate.display()),
        ),
    })?;
    Ok(TlsConfig {
        certificate: certificate.to_owned(),
        key: key.to_owned(),
        protocols: protocols.to_vec(),
        server,
    })
}

/// What is wrong with a certificate and key.
#[derive(Debug)]
pub enum Bad {
    Certificate(String),
    Key(String),
    /// The key is not the certificate's.
    Mismatch,
}

/// The rustls config from PEM text (see [`load`]).
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    protocols: &[Version],
) -> Result<Arc<ServerConfig>, Bad> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Bad::Certificate(format!("bad PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Bad::Certificate("no CERTIFICATE in the PEM file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            Bad::Key("no private key (PKCS#8, SEC1 or RSA PEM) in the file".into())
        }
        e => Bad::Key(format!("bad PEM: {e}")),
    })?;
    let provider = Arc::new(provider::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| Bad::Key(format!("unusable key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(Bad::Mismatch)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => return Err(Bad::Certificate(format!("bad certificate: {e}"))),
    }
    let versions: Vec<_> = protocols.iter().map(|v| v.rustls()).collect();
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| Bad::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The server's order (AEAD suites, AES-GCM first), as audits expect.
    server.ignore_client_order = true;
    // Resumption by ticket only: a session cache would live in one worker,
    // and the client's next connection usually lands on another.
    server.session_storage = Arc::new(NoServerSessionStorage {});
    server.ticketer = Arc::new(Tickets::new(secret().map_err(Bad::Key)?));
    // One ticket per connection (rustls sends two by default): each
    // resumed connection gets a fresh one, and a full handshake costs one
    // encryption less.
    server.send_tls13_tickets = 1;
    Ok(Arc::new(server))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    /// Not done; `seen`: the client sent something.
    Pending {
        seen: bool,
    },
    Done,
    Failed,
}

/// A client connection on a TLS listener: rustls over the client's socket
/// (a `TcpStream` in a worker, an in-memory pipe in the simulation).
pub struct TlsStream<S: Transport = TcpStream> {
    tcp: S,
    tls: ServerConnection,
    counters: TlsCounters,
    handshake: Handshake,
    /// The client's first bytes, to tell plain HTTP from TLS.
    first: [u8; 8],
    first_len: usize,
    /// Plain HTTP: what of the request had arrived when that was clear (at
    /// most `PLAIN_HEAD_MAX`), for the access log; None for TLS clients,
    /// which pay nothing for it.
    plain: Option<Vec<u8>>,
    /// The last read filled the caller's buffer: rustls may hold more.
    more: bool,
    /// close_notify sent (or no point sending one).
    closed: bool,
}

impl<S: Transport> TlsStream<S> {
    pub fn new(
        tcp: S,
        config: &Arc<ServerConfig>,
        counters: TlsCounters,
    ) -> Result<TlsStream<S>, rustls::Error> {
        Ok(TlsStream {
            tcp,
            tls: ServerConnection::new(Arc::clone(config))?,
            counters,
            handshake: Handshake::Pending { seen: false },
            first: [0; 8],
            first_len: 0,
            plain: None,
            more: false,
            closed: false,
        })
    }

    /// Reads from the socket into rustls, keeping the first bytes seen.
    fn read_tls(&mut self) -> io::Result<usize> {
        if self.first_len == self.first.len() {
            return self.tls.read_tls(&mut self.tcp);
        }
        let mut rec = Recording {
            inner: &mut self.tcp,
            first: &mut self.first,
            len: &mut self.first_len,
            plain: &mut self.plain,
        };
        let n = self.tls.read_tls(&mut rec)?;
        if n > 0 {
            if let Handshake::Pending { .. } = self.handshake {
                self.handshake = Handshake::Pending { seen: true };
            }
        }
        Ok(n)
    }

    /// Sends what rustls has queued, as far as the socket takes it now.
    fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A protocol error: plain HTTP gets a plain 400, anything else the
    /// alert rustls queued; the connection closes either way.
    fn fail(&mut self, error: rustls::Error) -> io::Error {
        self.closed = true;
        if let Handshake::Pending { .. } = self.handshake {
            self.handshake = Handshake::Failed;
            self.counters.failures.fetch_add(1, Relaxed);
            if looks_like_http(&self.first[..self.first_len]) {
                let _ = self.tcp.write(PLAIN_HTTP_ANSWER);
                let _ = self.tcp.shutdown_write();
                return io::Error::new(io::ErrorKind::InvalidData, error);
            }
        }
        let _ = self.flush_tls();
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    fn note_handshake(&mut self) {
        if let Handshake::Pending { .. } = self.handshake {
            if !self.tls.is_handshaking() {
                self.handshake = Handshake::Done;
                self.counters.handshakes.fetch_add(1, Relaxed);
                if self.tls.handshake_kind() == Some(HandshakeKind::Resumed) {
                    self.counters.resumed.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// The socket under the session.
    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.tcp
    }
}

/// Plain HTTP starts with an upper-case method and a space.
fn looks_like_http(first: &[u8]) -> bool {
    let method = first.iter().take_while(|b| b.is_ascii_uppercase()).count();
    method >= 3 && first.get(method) == Some(&b' ')
}

/// A reader that keeps a copy of the first bytes it passes on, and of
/// everything up to then (bounded) once they look like plain HTTP.
struct Recording<'a, R> {
    inner: &'a mut R,
    first: &'a mut [u8; 8],
    len: &'a mut usize,
    plain: &'a mut Option<Vec<u8>>,
}

impl<R: Read> Read for Recording<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let before = *self.len;
        let take = n.min(self.first.len() - before);
        self.first[before..before + take].copy_from_slice(&buf[..take]);
        *self.len += take;
        if let Some(head) = self.plain {
            let keep = n.min(PLAIN_HEAD_MAX.saturating_sub(head.len()));
            head.extend_from_slice(&buf[..keep]);
        } else if looks_like_http(&self.first[..*self.len]) {
            // Everything read so far: the earlier reads are all in `first`.
            let keep = n.min(PLAIN_HEAD_MAX - before);
            let mut head = Vec::with_capacity(before + keep);
            head.extend_from_slice(&self.first[..before]);
            head.extend_from_slice(&buf[..keep]);
            *self.plain = Some(head);
        }
        Ok(n)
    }
}

impl<S: Transport> Read for TlsStream<S> {
    /// Plaintext if rustls has some; else one read from the socket, fed to
    /// rustls, whose handshake replies go out at once. `WouldBlock` when
    /// the socket has nothing more; `Ok(0)` at the end (close_notify or EOF).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => {
                    self.more = n == buf.len() && n > 0;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // EOF without close_notify: the client is gone all the same.
                Err(_) => return Ok(0),
            }
            self.more = false;
            if self.read_tls()? == 0 {
                return Ok(0);
            }
            if let Err(e) = self.tls.process_new_packets() {
                return Err(self.fail(e));
            }
            self.note_handshake();
            self.flush_tls()?;
        }
    }
}

impl<S: Transport> Write for TlsStream<S> {
    /// Encrypts and sends; `WouldBlock` while earlier records still wait
    /// for the socket, so that at most one batch of output is buffered.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.flush_tls()?;
        if self.tls.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tls.writer().write(data)?;
        self.flush_tls()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}

impl<S: Transport> Transport for TlsStream<S> {
    /// close_notify, then FIN.
    fn shutdown_write(&mut self) -> io::Result<()> {
        if !self.closed {
            self.closed = true;
            self.tls.send_close_notify();
            self.flush_tls()?;
        }
        self.tcp.shutdown_write()
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.tcp.peer_ip()
    }

    fn has_pending_output(&self) -> bool {
        self.tls.wants_write()
    }

    fn has_buffered_input(&self) -> bool {
        self.more
    }

    fn refused(&self) -> Option<(&[u8], &[u8])> {
        match (&self.plain, self.handshake) {
            (Some(head), Handshake::Failed) => Some((head, PLAIN_HTTP_ANSWER)),
            _ => None,
        }
    }
}

impl<S: Transport> Drop for TlsStream<S> {
    /// A connection closed mid-handshake (timeout, client gone) is a
    /// failure; one closed after it says close_notify first (best effort:
    /// the socket is non-blocking), so clients see a clean end.
    fn drop(&mut self) {
        match self.handshake {
            Handshake::Pending { seen: true } => {
                self.counters.failures.fetch_add(1, Relaxed);
            }
            Handshake::Done if !self.closed => {
                self.tls.send_close_notify();
                let _ = self.flush_tls();
            }
            _ => {}
        }
    }
}

impl<S: Transport + AsFd> AsFd for TlsStream<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tcp.as_fd()
    }
}

/// A worker's client connection: plain, or TLS on a listener marked `tls`.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(data),
            Stream::Tls(s) => s.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Transport for Stream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown_write(),
            Stream::Tls(s) => s.shutdown_write(),
        }
    }

    fn write_more(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_more(data),
            Stream::Tls(s) => s.write(data),
        }
    }

    fn send_file(&mut self, file: &std::fs::File, offset: u64, len: u64) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.send_file(file, offset, len),
            Stream::Tls(s) => s.send_file(file, offset, len),
        }
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        match self {
            Stream::Plain(s) => s.peer_ip(),
            Stream::Tls(s) => s.peer_ip(),
        }
    }

    fn has_pending_output(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.has_pending_output(),
        }
    }

    fn has_buffered_input(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.has_buffered_input(),
        }
    }

    fn refused(&self) -> Option<(&[u8], &[u8])> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.refused(),
        }
    }

    fn negotiated_h2(&self) -> bool {
        self.alpn_h2()
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Plain(s) => s.as_fd(),
            Stream::Tls(s) => s.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_open_in_their_period_and_the_next_only() {
        let t = Tickets::new([7; 32]);
        let sealed = t.seal(100, b"session state").unwrap();
        assert_eq!(t.open(100, &sealed).as_deref(), Some(&b"session state"[..]));
        assert_eq!(t.open(101, &sealed).as_deref(), Some(&b"session state"[..]));
        assert_eq!(t.open(102, &sealed), None, "two periods later: expired");
        assert_eq!(t.open(99, &sealed), None, "from the future");
    }

    #[test]
    fn tickets_agree_across_instances_with_the_same_secret() {
        // Two workers: the same secret inherited over fork, separate objects.
        let (a, b) = (Tickets::new([1; 32]), Tickets::new([1; 32]));
        let sealed = a.seal(5, b"x").unwrap();
        assert_eq!(b.open(5, &sealed).as_deref(), Some(&b"x"[..]));
        let other = Tickets::new([2; 32]);
        assert_eq!(other.open(5, &sealed), None, "another master's secret");
    }

    #[test]
    fn tampered_or_short_tickets_are_refused() {
        let t = Tickets::new([3; 32]);
        let mut sealed = t.seal(9, b"abc").unwrap();
        assert!(t.open(9, &sealed[..20]).is_none());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(t.open(9, &sealed).is_none());
        let mut relabelled = t.seal(9, b"abc").unwrap();
        relabelled[7] = 10; // claims period 10: the AAD no longer matches
        assert!(t.open(10, &relabelled).is_none());
    }

    #[test]
    fn plain_http_is_recognised() {
        assert!(looks_like_http(b"GET / HT"));
        assert!(looks_like_http(b"OPTIONS "));
        assert!(!looks_like_http(b"\x16\x03\x01\x02\x00\x01\x00\x01"));
        assert!(!looks_like_http(b"get / ht"));
        assert!(!looks_like_http(b"GE"));
    }
}

/// ALPN: `[tls] alpn`, and whether a connection chose `h2`.
pub mod alpn;

/// Session-ticket keys every worker derives alike from one secret.
mod tickets;

use tickets::{secret, Tickets};

/// The TLS layer against plain HTTP in memory, for property tests and fuzzing.
#[cfg(any(test, feature = "sim"))]
pub mod sim;
