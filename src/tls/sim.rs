//! The TLS layer under simulation, for the property tests and the `tls`
//! fuzz target: the same client bytes, cut into the same reads, go through
//! one `Conn` over a plain in-memory socket and through another over
//! [`TlsStream`](crate::tls::TlsStream) (a rustls client on the other end
//! of the pipe, every piece its own record); the answers the TLS client
//! decrypts must be byte for byte the plain ones, whatever the socket takes
//! per write (pending TLS output), and the connection must end the same way.
//! Also raw bytes straight into a TLS connection (a client that is not
//! TLS): no panic, a close. Built only for tests and fuzzing.

use std::io::{Read, Write};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::http::conn::{Buffers, Conn, Ctx, Interest};
use crate::http::transport::Transport;
// The in-memory socket of `sim.rs`: input in scripted pieces, output
// collected, writes limited by `write_budget`.
use crate::http::answer::Responses;
use crate::http::parse::Limits;
use crate::http::template::ResponseSpec;
use crate::obs::scoreboard::TlsCounters;
use crate::sim::Scripted as Pipe;
use crate::tls::{self, TlsStream, Version};

/// A test-only CA and the certificate and key it signed for `localhost`
/// (P-256, valid until 2126), made with openssl for the simulation; they
/// protect nothing.
const CA: &str = include_str!("testdata/ca.pem");
const CERT: &str = include_str!("testdata/leaf.pem");
const KEY: &str = include_str!("testdata/leaf.key");

/// A socket the driver can feed and drain under a `Conn`.
trait Socket: Transport {
    fn pipe(&mut self) -> &mut Pipe;
}

impl Socket for Pipe {
    fn pipe(&mut self) -> &mut Pipe {
        self
    }
}

impl Socket for TlsStream<Pipe> {
    fn pipe(&mut self) -> &mut Pipe {
        self.socket_mut()
    }
}

fn responses() -> Responses {
    let mut r = Responses::new(&ResponseSpec {
        status: 200,
        content_type: "text/plain".into(),
        headers: Vec::new(),
        body: b"Hello, World!\n".to_vec(),
    });
    r.set_date(b"Sun, 06 Nov 1994 08:49:37 GMT");
    r
}

fn limits() -> Limits {
    Limits {
        max_header_bytes: 1024,
        max_body_bytes: 4096,
    }
}

/// The server config, made once (key loading and the ticket secret).
fn server(version: Version) -> Arc<rustls::ServerConfig> {
    static CONFIGS: OnceLock<[Arc<rustls::ServerConfig>; 2]> = OnceLock::new();
    let configs = CONFIGS.get_or_init(|| {
        let make = |v| {
            tls::server_config(CERT.as_bytes(), KEY.as_bytes(), &[v])
                .expect("the simulation's certificate loads")
        };
        [make(Version::Tls12), make(Version::Tls13)]
    });
    configs[usize::from(version == Version::Tls13)].clone()
}

fn client() -> Arc<rustls::ClientConfig> {
    static CLIENT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(CA.as_bytes()) {
                roots
                    .add(c.expect("the simulation's CA parses"))
                    .expect("the simulation's CA is a root");
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut c = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("rustls' defaults")
                .with_root_certificates(roots)
                .with_no_client_auth();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(c)
        })
        .clone()
}

fn counters() -> TlsCounters {
    static C: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    TlsCounters {
        handshakes: &C[0],
        resumed: &C[1],
        failures: &C[2],
    }
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The plaintext answers, as the client got them.
    pub answers: Vec<u8>,
    /// The server closed (or half-closed to linger).
    pub closed: bool,
    /// How many answer bytes the client had once the server was done with
    /// each piece: a server that sits on input it has read shows here.
    pub after_piece: Vec<usize>,
}

/// Drives `conn` until it waits for input it does not have, or closes;
/// `budget` bytes per write turn (None: unlimited). Returns false once
/// closed. Every turn is bounded: a connection that neither progresses nor
/// waits is a bug.
fn drive<S: Socket>(
    conn: &mut Conn<S>,
    interest: &mut Interest,
    budget: Option<usize>,
    drain: &mut dyn FnMut(&mut Pipe),
    ctx: &Ctx,
    bufs: &mut Buffers,
) -> bool {
    for _ in 0..100_000 {
        conn.stream_mut().pipe().write_budget = budget;
        *interest = match *interest {
            Interest::Close => return false,
            Interest::Read => {
                let p = conn.stream_mut().pipe();
                if p.pieces.is_empty() && !p.eof {
                    return true;
                }
                conn.on_readable(ctx, bufs)
            }
            Interest::Write => conn.on_writable(ctx),
        };
        drain(conn.stream_mut().pipe());
        if conn.stream_mut().pipe().shut && *interest == Interest::Read {
            // Lingering: what is left is read and discarded, nothing more
            // can come out.
            return false;
        }
    }
    panic!("the connection neither progressed nor waited");
}

fn ctx(responses: &Responses) -> Ctx<'_> {
    Ctx {
        responses,
        limits: limits(),
        timeouts: crate::sim::timeouts(),
        now: Instant::now(),
        draining: false,
        maintenance: false,
        observer: None,
        counters: None,
        board: None,
    }
}

/// `pieces` over a plain connection: the reference.
pub fn plain(pieces: &[&[u8]], budget: Option<usize>) -> Ending {
    let (_, ending) = run(pieces, budget, |ctx, _| {
        let conn = Conn::new(Pipe::default(), ctx);
        (conn, PlainClient::default(), Interest::Read)
    });
    ending
}

/// A server connection made by `start` and a peer send `pieces` one by
/// one (see `send_pieces`); the connection is released at the end.
fn run<S: Socket, P: Peer>(
    pieces: &[&[u8]],
    budget: Option<usize>,
    start: impl FnOnce(&Ctx, &mut Buffers) -> (Conn<S>, P, Interest),
) -> (P, Ending) {
    let responses = responses();
    let ctx = ctx(&responses);
    let mut bufs = Buffers::new(&ctx.limits);
    let (mut conn, mut peer, mut interest) = start(&ctx, &mut bufs);
    let (closed, after_piece) = send_pieces(
        &mut conn,
        &mut interest,
        &mut peer,
        pieces,
        budget,
        &ctx,
        &mut bufs,
    );
    // What the server wrote last (an answer, close_notify) on the way out.
    conn.release(&mut bufs);
    let ending = Ending {
        answers: peer.take_answers(),
        closed,
        after_piece,
    };
    (peer, ending)
}

/// A client's side of the simulation: what it sends, and what it makes
/// of what the server wrote.
trait Peer {
    /// Sends a piece, or (None) closes its side.
    fn send(&mut self, pipe: &mut Pipe, piece: Option<&[u8]>);
    /// Takes what the server wrote.
    fn receive(&mut self, pipe: &mut Pipe);
    /// Answer bytes received so far.
    fn answered(&self) -> usize;
    fn take_answers(&mut self) -> Vec<u8>;
}

/// A plain-text client: bytes in, bytes out.
#[derive(Default)]
struct PlainClient {
    answers: Vec<u8>,
}

impl Peer for PlainClient {
    fn send(&mut self, pipe: &mut Pipe, piece: Option<&[u8]>) {
        match piece {
            Some(piece) => pipe.pieces.push_back(piece.to_vec()),
            None => pipe.eof = true,
        }
    }

    fn receive(&mut self, pipe: &mut Pipe) {
        self.answers.append(&mut pipe.written);
    }

    fn answered(&self) -> usize {
        self.answers.len()
    }

    fn take_answers(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.answers)
    }
}

/// Each piece, the server driven after each, then EOF if the connection
/// is still open by then: (closed during the pieces, answer bytes after
/// each piece).
fn send_pieces<S: Socket>(
    conn: &mut Conn<S>,
    interest: &mut Interest,
    peer: &mut impl Peer,
    pieces: &[&[u8]],
    budget: Option<usize>,
    ctx: &Ctx,
    bufs: &mut Buffers,
) -> (bool, Vec<usize>) {
    let mut after_piece = Vec::new();
    for piece in pieces.iter().copied().map(Some).chain([None]) {
        peer.send(conn.stream_mut().pipe(), piece);
        let open = drive(conn, interest, budget, &mut |p| peer.receive(p), ctx, bufs);
        if piece.is_none() {
            break;
        }
        if !open {
            return (true, after_piece);
        }
        after_piece.push(peer.answered());
    }
    (false, after_piece)
}

/// The client's end of the pipe.
struct Client {
    conn: rustls::ClientConnection,
    answers: Vec<u8>,
    /// The server sent something the client refuses.
    failed: bool,
}

impl Client {
    /// Takes what the server wrote, and queues what the client has to send
    /// (handshake records, new plaintext) as one piece.
    fn exchange(&mut self, p: &mut Pipe) {
        let mut from_server = &p.written[..];
        while !from_server.is_empty() && !self.failed {
            match self.conn.read_tls(&mut from_server) {
                Ok(0) | Err(_) => self.failed = true,
                Ok(_) => {
                    if self.conn.process_new_packets().is_err() {
                        self.failed = true;
                    }
                }
            }
            let _ = self.conn.reader().read_to_end(&mut self.answers);
        }
        p.written.clear();
        let mut to_server = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut to_server).is_err() {
                break;
            }
        }
        if !to_server.is_empty() {
            p.pieces.push_back(to_server);
        }
    }
}

/// A TLS `version` connection whose handshake is done, `budget` bytes per
/// write turn meanwhile.
fn connect(
    version: Version,
    budget: Option<usize>,
    ctx: &Ctx,
    bufs: &mut Buffers,
) -> (Conn<TlsStream<Pipe>>, Client, Interest) {
    let stream = TlsStream::new(Pipe::default(), &server(version), counters())
        .expect("a session from the simulation's config");
    let mut conn = Conn::new(stream, ctx);
    let name = ServerName::try_from("localhost").expect("a valid name");
    let mut client = Client {
        conn: rustls::ClientConnection::new(client(), name).expect("a client session"),
        answers: Vec::new(),
        failed: false,
    };
    let mut interest = Interest::Read;
    // The handshake: flights back and forth until the client is done.
    client.exchange(conn.stream_mut().pipe());
    for _ in 0..10 {
        let open = drive(
            &mut conn,
            &mut interest,
            budget,
            &mut |p| client.exchange(p),
            ctx,
            bufs,
        );
        assert!(open, "the server closed during a clean handshake");
        if !client.conn.is_handshaking() && conn.stream_mut().pipe().pieces.is_empty() {
            break;
        }
    }
    assert!(
        !client.conn.is_handshaking(),
        "the handshake did not finish"
    );
    (conn, client, interest)
}

/// `pieces` over TLS `version`: a rustls client does the handshake, then
/// sends each piece as its own record(s), reading answers as they come.
pub fn over_tls(pieces: &[&[u8]], budget: Option<usize>, version: Version) -> Ending {
    let (client, ending) = run(pieces, budget, |ctx, bufs| {
        connect(version, budget, ctx, bufs)
    });
    assert!(!client.failed, "the client refused what the server sent");
    ending
}

impl Peer for Client {
    fn send(&mut self, pipe: &mut Pipe, piece: Option<&[u8]>) {
        match piece {
            Some(piece) => {
                self.conn
                    .writer()
                    .write_all(piece)
                    .expect("the client takes plaintext");
                self.exchange(pipe);
            }
            None => pipe.eof = true,
        }
    }

    fn receive(&mut self, pipe: &mut Pipe) {
        self.exchange(pipe);
    }

    fn answered(&self) -> usize {
        self.answers.len()
    }

    fn take_answers(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.answers)
    }
}

/// Raw bytes into a TLS connection, as a client that does not speak TLS:
/// no panic, and unless the bytes are a partial TLS record, a close.
pub fn garbage(input: &[u8]) {
    let responses = responses();
    let ctx = ctx(&responses);
    let mut bufs = Buffers::new(&ctx.limits);
    let stream = TlsStream::new(Pipe::default(), &server(Version::Tls13), counters())
        .expect("a session from the simulation's config");
    let mut conn = Conn::new(stream, &ctx);
    let mut interest = Interest::Read;
    conn.stream_mut().pipe().pieces.push_back(input.to_vec());
    let mut out = Vec::new();
    // The input, then (if the connection is still open) EOF, which must
    // close it.
    for eof in [false, true] {
        conn.stream_mut().pipe().eof = eof;
        let open = drive(
            &mut conn,
            &mut interest,
            Some(64),
            &mut |p| out.append(&mut p.written),
            &ctx,
            &mut bufs,
        );
        assert!(conn.held_bytes() <= 64 * 1024, "unbounded buffers");
        if !open {
            break;
        }
        assert!(!eof, "EOF did not close the connection");
    }
    conn.release(&mut bufs);
}

/// Runs `pieces` plain and over both TLS versions and panics unless the
/// client gets the same answers and the same ending.
pub fn check(pieces: &[&[u8]], budget: Option<usize>) {
    // An empty read is EOF on a socket, and an empty record is nothing:
    // no empty pieces.
    let pieces: Vec<&[u8]> = pieces.iter().copied().filter(|p| !p.is_empty()).collect();
    let pieces = &pieces[..];
    let reference = plain(pieces, budget);
    for version in [Version::Tls13, Version::Tls12] {
        let got = over_tls(pieces, budget, version);
        assert_eq!(
            String::from_utf8_lossy(&got.answers),
            String::from_utf8_lossy(&reference.answers),
            "{version:?}: answers differ from plain HTTP"
        );
        assert_eq!(got.closed, reference.closed, "{version:?}: ending differs");
        assert_eq!(
            got.after_piece, reference.after_piece,
            "{version:?}: answers came later than over plain HTTP"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::conn::Standing;
    use proptest::prelude::*;
    use std::time::Duration;

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

    #[test]
    fn pipelined_requests_and_a_close() {
        let many = GET.repeat(300);
        check(
            &[
                &many,
                b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ],
            None,
        );
        // The socket takes 7 bytes per write turn: records wait in rustls.
        check(&[&GET.repeat(20)], Some(7));
        let reference = plain(&[&many], None);
        assert_eq!(
            reference
                .answers
                .windows(15)
                .filter(|w| w == b"HTTP/1.1 200 OK")
                .count(),
            300
        );
    }

    #[test]
    fn plaintext_beyond_a_partial_heads_buffer_is_not_left_behind() {
        // A partial head takes most of the connection's own buffer; the
        // next record brings more plaintext than fits: rustls keeps the
        // rest, and the connection must read it before waiting again.
        let mut head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ".to_vec();
        head.resize(900, b'a');
        let mut rest = b"\r\n\r\n".to_vec();
        rest.extend(GET.repeat(300));
        check(&[&head, &rest], None);
    }

    #[test]
    fn an_error_answer_closes_alike() {
        check(
            &[b"GET / HTTP/1.1\r\nHost: t\r\n", b"Bad Header\r\n\r\n", GET],
            Some(100),
        );
    }

    #[test]
    fn plain_http_and_noise_close() {
        garbage(GET);
        garbage(&[0x16, 3, 1, 0x48, 0x01, 1, 2, 3]);
        garbage(&[0x16, 3, 1, 0, 4, 1, 0, 0, 0]);
        garbage(&[]);
    }

    #[test]
    fn an_answer_waiting_in_rustls_is_busy_and_outlives_a_drain() {
        // rustls takes the whole answer, the socket 16 bytes of it: nothing
        // waits in `pending`, the rest of the answer waits in rustls.
        let responses = responses();
        let mut ctx = ctx(&responses);
        let t0 = ctx.now;
        let mut bufs = Buffers::new(&ctx.limits);
        let (mut conn, mut client, _) = connect(Version::Tls13, None, &ctx, &mut bufs);
        client.conn.writer().write_all(GET).expect("plaintext");
        client.exchange(conn.stream_mut().pipe());
        conn.stream_mut().pipe().write_budget = Some(16);
        let mut interest = conn.on_readable(&ctx, &mut bufs);
        client.exchange(conn.stream_mut().pipe());
        assert_eq!(interest, Interest::Write);
        assert!(conn.stream().has_pending_output());
        // Never evicted to make room, counted as writing.
        assert_eq!(conn.standing(), Standing::Busy);
        assert!(!conn.is_idle());
        // QUIT (or HUP, TTOU): the worker drains. The client takes 16 bytes
        // every 2 s, slower than drain_idle_grace (1 s) but well within
        // header_timeout (10 s) per write; the worker's sweep acts on
        // whatever deadline has passed, as `worker::sweep` does.
        ctx.draining = true;
        conn.start_drain(&ctx);
        for step in 1..=100 {
            ctx.now = t0 + Duration::from_secs(2 * step);
            interest = if conn.deadline() <= ctx.now {
                conn.on_timeout(&ctx, &mut bufs)
            } else {
                conn.stream_mut().pipe().write_budget = Some(16);
                conn.on_writable(&ctx)
            };
            client.exchange(conn.stream_mut().pipe());
            if interest != Interest::Write {
                break;
            }
        }
        assert_eq!(
            String::from_utf8_lossy(&client.answers),
            String::from_utf8_lossy(&plain(&[GET], None).answers),
            "the answer was cut short"
        );
        assert!(!client.failed);
        assert_eq!(
            interest,
            Interest::Read,
            "answered, then idle until the grace ends"
        );
        assert!(conn.is_idle());
        conn.release(&mut bufs);
    }

    /// What an observer (the access log) was told: status, head, body bytes.
    #[derive(Default)]
    struct Told(std::cell::RefCell<Vec<(u16, Vec<u8>, u64)>>);

    impl crate::obs::exchange::Observer for Told {
        fn answered(&self, e: &crate::obs::exchange::Exchange) {
            self.0
                .borrow_mut()
                .push((e.status, e.head.to_vec(), e.body_bytes));
        }
    }

    /// `pieces` straight into a TLS connection with an observer, one read
    /// each; what the observer was told.
    fn observed(pieces: &[&[u8]]) -> Vec<(u16, Vec<u8>, u64)> {
        let responses = responses();
        let told = Told::default();
        let mut ctx = ctx(&responses);
        ctx.observer = Some(&told);
        let mut bufs = Buffers::new(&ctx.limits);
        let stream = TlsStream::new(Pipe::default(), &server(Version::Tls13), counters())
            .expect("a session from the simulation's config");
        let mut conn = Conn::new(stream, &ctx);
        let mut interest = Interest::Read;
        for piece in pieces {
            conn.stream_mut().pipe().pieces.push_back(piece.to_vec());
            if !drive(&mut conn, &mut interest, None, &mut |_| {}, &ctx, &mut bufs) {
                break;
            }
        }
        conn.release(&mut bufs);
        told.0.take()
    }

    #[test]
    fn plain_http_is_told_to_the_observer_as_a_400() {
        // What had arrived is the head (rustls refuses a first byte that
        // is no record type at once, so the request line comes in one read).
        let told = observed(&[b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"]);
        assert_eq!(
            told,
            [(400, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 46)]
        );
        // Kept up to PLAIN_HEAD_MAX (1 KiB).
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(2000));
        let told = observed(&[long.as_bytes()]);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].1, long.as_bytes()[..1024]);
        // Not HTTP, not TLS: closed, no answer, nothing to tell.
        assert_eq!(observed(&[&[0x16, 3, 1, 0x48, 0x01, 1, 2, 3]]), []);
        assert_eq!(observed(&[b"get / HTTP/1.1\r\n\r\n"]), []);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn tls_is_transparent(
            requests in prop::collection::vec(prop_oneof![
                Just(&b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"[..]),
                Just(&b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"[..]),
                Just(&b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"[..]),
                Just(&b"GET / HTTP/1.0\r\n\r\n"[..]),
                Just(&b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..]),
                Just(&b"GET / HTTP/1.1\r\n\r\n"[..]),
            ], 1..12),
            cuts in prop::collection::vec(0usize..400, 0..6),
            budget in prop::option::of(1usize..300),
        ) {
            let input = requests.concat();
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c > 0 && c < input.len()).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([input.len()]) {
                pieces.push(&input[at..c]);
                at = c;
            }
            check(&pieces, budget);
        }
    }
}
