//! HTTP/1.1 behaviour of `preforkd`, over real sockets against the real binary.
//!
//! Covered here:
//! - answers: GET and HEAD (same head, no body), OPTIONS (204 + `Allow`),
//!   other methods (405 + `Allow`, their bodies, Content-Length or chunked,
//!   read and discarded), the configured response, the `Date` header;
//! - connection handling: HTTP/1.1 keep-alive, `Connection: close`, HTTP/1.0
//!   with and without `Connection: keep-alive`, pipelining (a few mixed
//!   requests in one write, and thousands that cross the server's read
//!   buffer), requests dripped one byte per write, `Expect: 100-continue`;
//! - every error status (400, 408, 413, 414, 417, 431, 501, 505), each from
//!   raw bytes in its own test, byte for byte, with `Connection: close` and a
//!   clean close (EOF) afterwards; then all of them against one worker, which
//!   must live on;
//! - timeouts: `header_timeout` (408 for a started head or a stalled body,
//!   a silent close for a connection that sent nothing), `keepalive_timeout`;
//! - `worker_connections`: a worker at its limit makes room by closing the
//!   connection idle longest.
//!
//! Expected responses are written out in full; the `Date` value, which
//! changes, is checked to be an IMF-fixdate and then replaced by `D`
//! (see [`redact_dates`]). Every read has a deadline.
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use nix::sys::socket::{setsockopt, sockopt};

// ---------------------------------------------------------------------------
// Configs and requests
// ---------------------------------------------------------------------------

/// Timeouts far beyond any wait here, so that a connection the server
/// failed to close cannot pass for closed by a timeout.
const ONE_WORKER: &str = "workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n";
/// [`ONE_WORKER`] for requests sent a byte at a time, each once the server
/// has read the one before ([`drip`]): on a loaded machine that can be
/// slower than the default minimum rate (512 B/s after 2 s), which is not
/// what those tests are about.
const DRIP: &str = "workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n\
                    min_request_rate = \"off\"\n";

/// Small limits, so that the size errors take little input.
const SMALL_LIMITS: &str = "workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n\
                            max_request_header_bytes = 1024\nmax_request_body_bytes = 1024\n";
const HEADER_LIMIT: usize = 1024;
const BODY_LIMIT: usize = 1024;

const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n";
const OPTIONS: &[u8] = b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n";
const CHUNKED_POST: &[u8] = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";

const CONTINUE: &str = "HTTP/1.1 100 Continue\r\n\r\n";

// ---------------------------------------------------------------------------
// Reading, with deadlines
// ---------------------------------------------------------------------------

/// Sends `bytes` one byte per write (TCP_NODELAY), each only once the
/// server has read the one before: the server sees the request in as many
/// reads as it has bytes.
fn drip(s: &mut TcpStream, bytes: &[u8]) {
    s.set_nodelay(true).expect("set TCP_NODELAY");
    for b in bytes {
        send_read(s, std::slice::from_ref(b));
    }
}

/// The server closes the connection (EOF) without sending anything more.
fn expect_eof(s: &mut TcpStream) {
    let rest = answers_to_eof(s, ANSWER);
    assert_eq!(rest, "", "bytes after the last expected response");
}

/// Nothing arrives, and the connection stays open, for `dur`.
fn expect_silence(s: &mut TcpStream, dur: Duration) {
    s.set_read_timeout(Some(dur)).expect("set a read timeout");
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(0) => panic!("the server closed the connection"),
        Ok(n) => panic!(
            "expected silence, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => panic!("expected silence, read failed: {e}"),
    }
    s.set_read_timeout(Some(ANSWER))
        .expect("set a read timeout");
}

/// Sends `bytes` on a new connection; the whole answer must be exactly the
/// error response for `status`, then a clean close.
fn assert_rejected(server: &Server, status: u16, bytes: &[u8]) {
    let mut s = server.open();
    send(&mut s, bytes);
    let answer = answers_to_eof(&mut s, ANSWER);
    assert_eq!(
        answer,
        rejection(status),
        "answer to {:?}",
        String::from_utf8_lossy(bytes)
    );
}

/// The whole answer to `bytes` on a new connection, up to a clean close.
fn read_to_eof_after(server: &Server, bytes: &[u8]) -> String {
    let mut s = server.open();
    send(&mut s, bytes);
    answers_to_eof(&mut s, ANSWER)
}

/// A GET on a keep-alive connection is answered 200.
fn assert_serves(s: &mut TcpStream) {
    send(s, GET);
    assert_eq!(answer(s), ok(Persist::KeepAlive));
}

// ---------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------

#[test]
fn head_has_the_get_head_and_no_body() {
    let server = Server::start(ONE_WORKER);
    // Each closes: the whole stream is the answer, so nothing can hide after it.
    let get = read_to_eof_after(&server, GET_CLOSE);
    assert_eq!(get, ok(Persist::Close));
    let head = read_to_eof_after(
        &server,
        b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head, ok_head(Persist::Close));
    assert!(head.contains("\r\nContent-Length: 14\r\n"), "{head}");
    assert_eq!(get, format!("{head}{HELLO}"), "HEAD head == GET head");

    // Kept alive: the next response follows the HEAD head directly.
    let mut s = server.open();
    send(&mut s, &cat(&[HEAD, GET_CLOSE]));
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        ok_head(Persist::KeepAlive) + &ok(Persist::Close)
    );
    server.finish();
}

#[test]
fn options_is_204_with_allow_and_no_body() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(
        &mut s,
        &cat(&[OPTIONS, b"OPTIONS / HTTP/1.1\r\nHost: t\r\n\r\n", GET_CLOSE]),
    );
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        no_content(Persist::KeepAlive) + &no_content(Persist::KeepAlive) + &ok(Persist::Close)
    );
    server.finish();
}

#[test]
fn other_methods_are_405_with_allow() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE"] {
        send(
            &mut s,
            format!("{method} / HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(answer(&mut s), not_allowed(Persist::KeepAlive), "{method}");
    }
    send(&mut s, GET_CLOSE);
    assert_eq!(answer(&mut s), ok(Persist::Close));
    expect_eof(&mut s);
    server.finish();
}

/// A body that would be answered if the server took it for a request.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn content_length_body_of_405_is_discarded() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    let post = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{SMUGGLED}",
        SMUGGLED.len()
    );
    send(&mut s, &cat(&[post.as_bytes(), GET_CLOSE]));
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        not_allowed(Persist::KeepAlive) + &ok(Persist::Close)
    );
    server.finish();
}

#[test]
fn chunked_body_of_405_is_discarded() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    let put = format!(
        "PUT / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x};ext=\"v\"\r\n{SMUGGLED}\r\n3\r\nabc\r\n0\r\nX-Trailer: v\r\n\r\n",
        SMUGGLED.len()
    );
    let delete = format!(
        "DELETE / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{SMUGGLED}",
        SMUGGLED.len()
    );
    send(
        &mut s,
        &cat(&[put.as_bytes(), delete.as_bytes(), GET_CLOSE]),
    );
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        not_allowed(Persist::KeepAlive) + &not_allowed(Persist::KeepAlive) + &ok(Persist::Close)
    );
    server.finish();
}

#[test]
fn bodies_at_the_limit_are_accepted() {
    let server = Server::start(SMALL_LIMITS);
    let mut s = server.open();
    let body = "a".repeat(BODY_LIMIT);
    let post = format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {BODY_LIMIT}\r\n\r\n{body}");
    let half = BODY_LIMIT / 2;
    let chunked = format!(
        "{half:x}\r\n{}\r\n{half:x}\r\n{}\r\n0\r\n\r\n",
        &body[..half],
        &body[..half]
    );
    send(
        &mut s,
        &cat(&[post.as_bytes(), CHUNKED_POST, chunked.as_bytes(), GET_CLOSE]),
    );
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        not_allowed(Persist::KeepAlive) + &not_allowed(Persist::KeepAlive) + &ok(Persist::Close)
    );
    server.finish();
}

// ---------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------

#[test]
fn http11_keeps_alive_without_a_connection_header() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    for _ in 0..2 {
        send(&mut s, GET);
        assert_eq!(answer(&mut s), ok(Persist::KeepAlive));
    }
    // Still open: a third request is answered too.
    send(&mut s, GET_CLOSE);
    assert_eq!(answer(&mut s), ok(Persist::Close));
    expect_eof(&mut s);
    server.finish();
}

#[test]
fn connection_close_is_answered_and_closed() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(&mut s, GET_CLOSE);
    assert_eq!(answer(&mut s), ok(Persist::Close));
    expect_eof(&mut s);

    // A request pipelined after `Connection: close` is not answered.
    let mut s = server.open();
    send(
        &mut s,
        &cat(&[
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n",
            GET,
        ]),
    );
    assert_eq!(answers_to_eof(&mut s, ANSWER), ok(Persist::Close));
    server.finish();
}

#[test]
fn http10_closes_by_default() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(&mut s, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(answer(&mut s), ok(Persist::Close));
    expect_eof(&mut s);
    server.finish();
}

#[test]
fn http10_keep_alive_stays_open() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(&mut s, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(answer(&mut s), ok(Persist::KeepAlive10));
    send(
        &mut s,
        b"GET / HTTP/1.0\r\nHost: t\r\nConnection: Keep-Alive\r\n\r\n",
    );
    assert_eq!(answer(&mut s), ok(Persist::KeepAlive10));
    send(&mut s, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(answer(&mut s), ok(Persist::Close));
    expect_eof(&mut s);
    server.finish();
}

// ---------------------------------------------------------------------------
// Pipelining and fragmented input
// ---------------------------------------------------------------------------

#[test]
fn ten_pipelined_requests_are_answered_in_order() {
    let server = Server::start(ONE_WORKER);
    let post = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
    let delete = b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n";
    let requests: [(&[u8], String); 10] = [
        (GET, ok(Persist::KeepAlive)),
        (HEAD, ok_head(Persist::KeepAlive)),
        (OPTIONS, no_content(Persist::KeepAlive)),
        (post, not_allowed(Persist::KeepAlive)),
        (GET, ok(Persist::KeepAlive)),
        (delete, not_allowed(Persist::KeepAlive)),
        (HEAD, ok_head(Persist::KeepAlive)),
        (OPTIONS, no_content(Persist::KeepAlive)),
        (GET, ok(Persist::KeepAlive)),
        (GET_CLOSE, ok(Persist::Close)),
    ];
    let all: Vec<u8> = requests
        .iter()
        .flat_map(|(r, _)| r.iter().copied())
        .collect();
    let expected: String = requests.iter().map(|(_, a)| a.as_str()).collect();
    let mut s = server.open();
    send(&mut s, &all);
    assert_eq!(answers_to_eof(&mut s, ANSWER), expected);
    server.finish();
}

#[test]
fn thousands_of_pipelined_requests_cross_read_boundaries() {
    // 3000 × 27 bytes is well over the server's 32 KiB read buffer, so heads
    // get cut between reads; the answers (~400 KiB) outgrow socket buffers.
    const N: usize = 3000;
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    let mut all = GET.repeat(N - 1);
    all.extend_from_slice(GET_CLOSE);
    let mut writer = s.try_clone().expect("clone the stream");
    let answer = std::thread::scope(|scope| {
        let w = scope.spawn(move || writer.write_all(&all));
        let answer = answers_to_eof(&mut s, Duration::from_secs(20));
        w.join()
            .expect("the writer thread")
            .expect("send the pipeline");
        answer
    });
    let one = ok(Persist::KeepAlive);
    let count = answer.matches("HTTP/1.1 200 OK\r\n").count();
    assert_eq!(count, N, "number of responses");
    assert!(
        answer == one.repeat(N - 1) + &ok(Persist::Close),
        "the {N} responses are not {N} exact copies (first 300 bytes: {:?})",
        &answer[..300.min(answer.len())]
    );
    server.finish();
}

#[test]
fn error_in_a_pipeline_comes_after_the_earlier_answers() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(
        &mut s,
        &cat(&[GET, HEAD, b"GET / HTTP/1.1\r\nHost t\r\n\r\n", GET]),
    );
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        ok(Persist::KeepAlive) + &ok_head(Persist::KeepAlive) + &rejection(400)
    );
    server.finish();
}

#[test]
fn request_in_one_byte_writes() {
    let server = Server::start(DRIP);
    let mut s = server.open();
    drip(&mut s, GET);
    assert_eq!(answer(&mut s), ok(Persist::KeepAlive));
    drip(&mut s, GET_CLOSE);
    assert_eq!(answers_to_eof(&mut s, ANSWER), ok(Persist::Close));
    server.finish();
}

#[test]
fn chunked_body_in_one_byte_writes() {
    let server = Server::start(DRIP);
    let mut s = server.open();
    let body = b"5;a=b\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: v\r\n\r\n";
    drip(&mut s, &cat(&[CHUNKED_POST, body, GET_CLOSE]));
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        not_allowed(Persist::KeepAlive) + &ok(Persist::Close)
    );
    server.finish();
}

// ---------------------------------------------------------------------------
// Expect: 100-continue
// ---------------------------------------------------------------------------

#[test]
fn expect_100_continue_before_the_body() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(
        &mut s,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(answer(&mut s), CONTINUE);
    send(&mut s, b"hello");
    assert_eq!(answer(&mut s), not_allowed(Persist::KeepAlive));

    // Chunked, and a GET (a body on GET is allowed and discarded).
    send(
        &mut s,
        b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-Continue\r\n\r\n",
    );
    assert_eq!(answer(&mut s), CONTINUE);
    send(&mut s, b"3\r\nabc\r\n0\r\n\r\n");
    assert_eq!(answer(&mut s), ok(Persist::KeepAlive));
    send(&mut s, GET_CLOSE);
    assert_eq!(answers_to_eof(&mut s, ANSWER), ok(Persist::Close));
    server.finish();
}

#[test]
fn expect_100_continue_not_sent_when_the_body_came_along() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(
        &mut s,
        &cat(&[
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
            // No body at all: nothing to continue.
            b"GET / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        ]),
    );
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        not_allowed(Persist::KeepAlive) + &ok(Persist::Close)
    );
    server.finish();
}

/// RFC 9110 10.1.1: "A server that receives a 100-continue expectation in an
/// HTTP/1.0 request MUST ignore that expectation"; 15.2: "a server MUST NOT
/// send a 1xx response to an HTTP/1.0 client".
#[test]
fn expect_100_continue_ignored_for_http10() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(
        &mut s,
        b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    expect_silence(&mut s, Duration::from_millis(500));
    send(&mut s, b"hello");
    assert_eq!(answers_to_eof(&mut s, ANSWER), not_allowed(Persist::Close));
    server.finish();
}

// ---------------------------------------------------------------------------
// Error answers from raw bytes
// ---------------------------------------------------------------------------

fn long_request_line() -> Vec<u8> {
    let target = "a".repeat(HEADER_LIMIT + 10);
    format!("GET /{target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// A request line past the limit with no line end yet.
fn long_unfinished_request_line() -> Vec<u8> {
    format!("GET /{}", "a".repeat(HEADER_LIMIT + 10)).into_bytes()
}

fn long_header() -> Vec<u8> {
    let value = "a".repeat(HEADER_LIMIT);
    format!("GET / HTTP/1.1\r\nHost: t\r\nX-Long: {value}\r\n\r\n").into_bytes()
}

/// A head of exactly `len` bytes (padded in one header).
fn head_of_len(len: usize) -> Vec<u8> {
    let fixed = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Pad: \r\n\r\n".len();
    let pad = "p".repeat(len - fixed);
    let head = format!("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Pad: {pad}\r\n\r\n");
    assert_eq!(head.len(), len);
    head.into_bytes()
}

fn too_many_headers() -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..100 {
        head.extend_from_slice(format!("h{i}:v\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    assert!(head.len() < HEADER_LIMIT);
    head
}

fn chunked_over_the_limit() -> Vec<u8> {
    // 512 + 512 bytes is the limit; one more byte is over it.
    let data = "d".repeat(512);
    cat(&[
        CHUNKED_POST,
        format!("200\r\n{data}\r\n200\r\n{data}\r\n1\r\nx\r\n0\r\n\r\n").as_bytes(),
    ])
}

/// Defines one test per case (each on a fresh server), and `reject_cases()`
/// listing them all for the test that sends them to one worker.
macro_rules! reject_tests {
    ($($name:ident: $status:expr => $bytes:expr;)*) => {
        fn reject_cases() -> Vec<(&'static str, u16, Vec<u8>)> {
            vec![$((stringify!($name), $status, Vec::from($bytes))),*]
        }
        $(
            #[test]
            fn $name() {
                let server = Server::start(SMALL_LIMITS);
                assert_rejected(&server, $status, &Vec::from($bytes));
                server.finish();
            }
        )*
    };
}

reject_tests! {
    // Request line.
    reject_400_request_line_missing_version: 400 => b"GET /\r\nHost: t\r\n\r\n";
    reject_400_request_line_double_space: 400 => b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n";
    reject_400_request_line_bad_method: 400 => b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n";
    reject_400_request_line_bad_target: 400 => b"GET x HTTP/1.1\r\nHost: t\r\n\r\n";
    reject_400_request_line_bad_version: 400 => b"GET / http/1.1\r\nHost: t\r\n\r\n";
    reject_400_request_line_garbage: 400 => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";
    // Header fields.
    reject_400_header_without_colon: 400 => b"GET / HTTP/1.1\r\nHost: t\r\nX-A b\r\n\r\n";
    reject_400_header_space_before_colon: 400 => b"GET / HTTP/1.1\r\nHost : t\r\n\r\n";
    reject_400_nul_in_header: 400 => b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n";
    reject_400_nul_in_request_line: 400 => b"GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n";
    reject_400_bare_cr: 400 => b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n";
    reject_400_bare_lf_line_endings: 400 => b"GET / HTTP/1.1\nHost: t\n\n";
    reject_400_bare_lf_in_header: 400 => b"GET / HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n";
    reject_400_obs_fold: 400 => b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n folded\r\n\r\n";
    reject_400_missing_host: 400 => b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    reject_400_duplicate_host: 400 => b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    reject_400_duplicate_identical_host: 400 => b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n";
    reject_400_invalid_host: 400 => b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n";
    // Framing.
    reject_400_content_length_and_transfer_encoding: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    reject_400_conflicting_content_length: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    reject_400_duplicate_content_length: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
    reject_400_content_length_list: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello";
    reject_400_content_length_signed: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello";
    reject_400_content_length_not_a_number: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5a\r\n\r\nhello";
    reject_400_content_length_empty: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\n";
    reject_400_content_length_overflow: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n";
    reject_400_transfer_encoding_chunked_then_gzip: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n";
    reject_400_transfer_encoding_chunked_twice: 400 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    reject_400_transfer_encoding_in_http10: 400 =>
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    // Chunk framing (the head is fine; the body is not).
    reject_400_chunk_size_not_hex: 400 => cat(&[CHUNKED_POST, b"zz\r\nhello\r\n0\r\n\r\n"]);
    reject_400_chunk_size_empty: 400 => cat(&[CHUNKED_POST, b"\r\n\r\n"]);
    reject_400_chunk_data_without_crlf: 400 => cat(&[CHUNKED_POST, b"5\r\nhelloX\r\n0\r\n\r\n"]);
    reject_400_chunk_size_line_bare_lf: 400 => cat(&[CHUNKED_POST, b"5\nhello\r\n0\r\n\r\n"]);
    // More than 16 hex digits cannot fit a u64 counter; refused even when
    // leading zeros keep the value small.
    reject_400_chunk_size_overflow_digits: 400 =>
        cat(&[CHUNKED_POST, b"00000000000000000005\r\nhello\r\n0\r\n\r\n"]);
    reject_400_chunk_bad_trailer: 400 => cat(&[CHUNKED_POST, b"0\r\n bad\r\n\r\n"]);
    // Other statuses.
    reject_501_transfer_encoding_gzip_then_chunked: 501 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
    reject_414_request_line_too_long: 414 => long_request_line();
    reject_414_unfinished_request_line_too_long: 414 => long_unfinished_request_line();
    reject_431_header_too_long: 431 => long_header();
    reject_431_head_one_byte_over_the_limit: 431 => head_of_len(HEADER_LIMIT + 1);
    reject_431_too_many_headers: 431 => too_many_headers();
    reject_413_content_length_over_the_limit: 413 => format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", BODY_LIMIT + 1
    ).into_bytes();
    reject_413_content_length_over_the_limit_with_expect: 413 => format!(
        "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n", BODY_LIMIT + 1
    ).into_bytes();
    reject_413_chunked_body_grows_over_the_limit: 413 => chunked_over_the_limit();
    // A size past u64 is past any body limit first.
    reject_413_chunk_size_overflowing_u64: 413 =>
        cat(&[CHUNKED_POST, b"10000000000000000\r\nhello\r\n0\r\n\r\n"]);
    reject_505_http2: 505 => b"GET / HTTP/2.0\r\nHost: t\r\n\r\n";
    reject_505_http12: 505 => b"GET / HTTP/1.2\r\nHost: t\r\n\r\n";
    reject_417_unknown_expectation: 417 =>
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 200-ok\r\n\r\nhello";
}

#[test]
fn head_at_the_limit_is_accepted() {
    let server = Server::start(SMALL_LIMITS);
    let answer = read_to_eof_after(&server, &head_of_len(HEADER_LIMIT));
    assert_eq!(answer, ok(Persist::Close));
    server.finish();
}

#[test]
fn worker_survives_every_kind_of_bad_input() {
    let server = Server::start(
        "workers = 1\nheader_timeout = \"3s\"\nkeepalive_timeout = \"30s\"\n\
         max_request_header_bytes = 1024\nmax_request_body_bytes = 1024\n",
    );
    let pids = server.wait_workers(1);
    let cases = reject_cases();
    assert!(cases.len() > 40, "the table holds every case");
    for (name, status, bytes) in &cases {
        let mut s = server.open();
        send(&mut s, bytes);
        // Closed at once, not by header_timeout.
        let answer = answers_to_eof(&mut s, Duration::from_secs(2));
        assert_eq!(answer, rejection(*status), "{name}");
    }
    // And a timed-out head, and a connection dropped mid-request.
    let mut s = server.open();
    send(&mut s, b"GET / HTTP/1.1\r\nHost:");
    assert_eq!(answers_to_eof(&mut s, ANSWER), rejection(408));
    let mut s = server.open();
    send(&mut s, &cat(&[CHUNKED_POST, b"5\r\nhel"]));
    drop(s);

    let mut s = server.open();
    assert_serves(&mut s);
    assert_eq!(server.worker_pids(), pids, "the worker was not replaced");
    drop(s);
    server.finish();
}

// ---------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------

/// `header_timeout = 1s`; idle keep-alive connections last long.
const SHORT_HEADER_TIMEOUT: &str =
    "workers = 1\nheader_timeout = \"1s\"\nkeepalive_timeout = \"30s\"\n";

/// Asserts that `elapsed` fits a 1 s timeout checked every 250 ms, with
/// room for a loaded 2-CPU machine (the other timeout is 30 s).
fn assert_about_one_second(elapsed: Duration, what: &str) {
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed <= Duration::from_secs(5),
        "{what} after {elapsed:?}, expected ~1 s (0.9 s to 5 s)"
    );
}

#[test]
fn slow_head_gets_408() {
    let server = Server::start(SHORT_HEADER_TIMEOUT);
    let mut s = server.open();
    s.set_nodelay(true).expect("set TCP_NODELAY");
    let start = Instant::now();
    send(&mut s, b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    // Slowloris: one more byte of the head every 200 ms, never finishing
    // it, until the answer comes; the drip must not push the deadline back.
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a read timeout");
    let mut first = [0u8; 4096];
    let n = loop {
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "no answer to a head dripped for 6 s"
        );
        match s.read(&mut first) {
            Ok(n) => break n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                send(&mut s, b"a");
            }
            Err(e) => panic!("read failed: {e}"),
        }
    };
    assert_about_one_second(start.elapsed(), "408");
    let answer =
        String::from_utf8_lossy(&first[..n]).into_owned() + &read_to_eof(&mut s, ANSWER).unwrap();
    assert_eq!(redact_dates(&answer), rejection(408));
    server.finish();
}

#[test]
fn stalled_body_gets_408() {
    let server = Server::start(SHORT_HEADER_TIMEOUT);
    let mut s = server.open();
    let start = Instant::now();
    send(
        &mut s,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
    );
    let answer = answers_to_eof(&mut s, ANSWER);
    assert_about_one_second(start.elapsed(), "408");
    assert_eq!(answer, rejection(408));
    server.finish();
}

#[test]
fn silent_connection_is_closed_without_answer() {
    let server = Server::start(SHORT_HEADER_TIMEOUT);
    let mut s = server.open();
    let start = Instant::now();
    let answer = answers_to_eof(&mut s, ANSWER);
    assert_about_one_second(start.elapsed(), "close");
    assert_eq!(answer, "", "no answer to a connection that sent nothing");
    server.finish();
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let server =
        Server::start("workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"1s\"\n");
    let mut s = server.open();
    assert_serves(&mut s);
    let start = Instant::now();
    let rest = answers_to_eof(&mut s, ANSWER);
    assert_about_one_second(start.elapsed(), "close");
    assert_eq!(rest, "", "no answer to an idle connection");
    server.finish();
}

/// After an answer that did not fit the socket at once, the connection is
/// idle like any other and must get `keepalive_timeout`, not the
/// `header_timeout` that bounded the blocked write.
#[test]
fn keepalive_timeout_applies_after_a_blocked_write() {
    const BODY: usize = 8 << 20;
    let server = Server::start(&format!(
        "workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"1s\"\n\
         [response]\nbody = \"{}\"\n",
        "x".repeat(BODY)
    ));
    let mut s = server.open();
    // A fixed 256 KiB receive buffer (no autotuning) and a client that reads
    // nothing until the server's write has blocked: 8 MiB cannot fit the
    // buffers (send buffers top out at 4 MiB).
    setsockopt(&s, sockopt::RcvBuf, &(256 << 10)).expect("set SO_RCVBUF");
    send(&mut s, GET);
    wait_peer_write_blocked(&s, BODY as u64);
    let head = read_one_head(&mut s, ANSWER).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n")
            && head.contains(&format!("\r\nContent-Length: {BODY}\r\n")),
        "{head}"
    );
    let mut body = vec![0u8; BODY];
    s.read_exact(&mut body).expect("read the body");
    assert!(body.iter().all(|&b| b == b'x'));
    let start = Instant::now();
    let rest = answers_to_eof(&mut s, ANSWER);
    assert_about_one_second(start.elapsed(), "close of the idle connection");
    assert_eq!(rest, "", "no answer to an idle connection");
    drop(s);
    server.finish();
}

// ---------------------------------------------------------------------------
// worker_connections
// ---------------------------------------------------------------------------

#[test]
fn worker_connections_limit_makes_room_by_closing_the_idle_longest() {
    let server = Server::start(
        "workers = 1\nworker_connections = 2\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n",
    );
    let mut first = server.open();
    assert_serves(&mut first);
    let mut second = server.open();
    assert_serves(&mut second);

    // The worker is full: the third is served at once, and the connection
    // idle longest (the first) is closed to make room for it.
    let mut third = server.open();
    send(&mut third, GET);
    assert_eq!(answer(&mut third), ok(Persist::KeepAlive));
    expect_eof(&mut first);
    assert_serves(&mut second);
    assert_serves(&mut third);
    drop((second, third));
    server.finish();
}

// ---------------------------------------------------------------------------
// The configured response and Date
// ---------------------------------------------------------------------------

#[test]
fn configured_response_is_sent_exactly() {
    let server = Server::start(
        "workers = 1\n[response]\nstatus = 404\nbody = \"<p>gone</p>\\n\"\n\
         content_type = \"text/html\"\nheaders = { \"X-A\" = \"b\", \"X-Other\" = \"two words\" }\n",
    );
    let extra = "X-A: b\r\nX-Other: two words\r\n";
    let body = "<p>gone</p>\n";
    let mut s = server.open();
    send(
        &mut s,
        &cat(&[
            GET,
            b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
            OPTIONS,
            b"POST / HTTP/1.1\r\nHost: t\r\n\r\n",
            GET_CLOSE,
        ]),
    );
    assert_eq!(
        answers_to_eof(&mut s, ANSWER),
        [
            response(
                "404 Not Found",
                "text/html",
                extra,
                body,
                Persist::KeepAlive
            ),
            response_head(
                "404 Not Found",
                "text/html",
                extra,
                body.len(),
                Persist::KeepAlive
            ),
            // OPTIONS and other methods are not the configured response.
            no_content(Persist::KeepAlive),
            not_allowed(Persist::KeepAlive),
            response("404 Not Found", "text/html", extra, body, Persist::Close),
        ]
        .concat()
    );
    server.finish();
}

#[test]
fn date_is_a_current_imf_fixdate() {
    let server = Server::start(ONE_WORKER);
    let mut s = server.open();
    send(&mut s, GET_CLOSE);
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the answer");
    let date = raw
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Date: "))
        .unwrap_or_else(|| panic!("no Date header in {raw:?}"));
    let t = imf_fixdate(date);
    let now = SystemTime::now();
    let skew = now.duration_since(t).unwrap_or_else(|e| e.duration());
    assert!(
        skew <= Duration::from_secs(5),
        "Date {date:?} is {skew:?} away from now"
    );
    server.finish();
}
