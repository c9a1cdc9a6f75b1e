//! Hostile and careless clients against the real binary.
//!
//! Covered here:
//! - an RFC 9112 / RFC 9110 edge-case table: framing (Content-Length lists,
//!   Transfer-Encoding lists and order), chunk sizes, chunk extensions,
//!   trailers, field-name and method syntax, request-target forms, Host,
//!   the version token and line endings; each case on a fresh connection,
//!   asserting the exact answer and whether the connection stays open (a
//!   request pipelined behind the case is answered, or never is);
//! - a body dripped slower than `header_timeout`: 408 and a clean close;
//! - a client that pipelines without reading: the worker stops reading,
//!   stays small, serves others, and drops it after `header_timeout`;
//! - 10,000 idle connections on one worker while another client is served;
//! - floods of connections closed at once (FIN and RST), and clients that
//!   reset in the middle of their answers: the worker lives on;
//! - a worker's memory over a million pipelined requests.
//!
//! What `tests/http.rs` already asserts the same way (each error status from
//! raw bytes, slowloris heads, stalled bodies, pipelining order) is not
//! repeated. Every wait has a deadline.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::socket::{setsockopt, sockopt};

// ---------------------------------------------------------------------------
// Requests and expected answers
// ---------------------------------------------------------------------------

/// Sent behind every edge case in the same write: answered only if the
/// connection stayed open and the case's framing ended where it should.
const PROBE: &[u8] = b"GET /probe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A `key:` value in kB from /proc/PID/status.
fn proc_status_kib(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Resident memory of `pid`, KiB.
fn vm_rss_kib(pid: i32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

/// How many sockets `pid` holds open.
fn socket_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().starts_with("socket:"))
                .unwrap_or(false)
        })
        .count()
}

/// Waits until the worker holds exactly `n` sockets.
fn wait_sockets(worker: i32, n: usize, within: Duration, what: &str) {
    wait_until(within, what, || {
        let now = socket_count(worker);
        (now == n).then_some(())
    });
}

/// Closing this socket sends RST instead of FIN.
fn set_linger0(s: &TcpStream) {
    setsockopt(
        s,
        sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .unwrap();
}

/// Paces a loop that opens connections, after connection `i`. A loopback
/// connect completes inside this thread, and it wakes the worker with a
/// "sync" wake-up that the scheduler places on this CPU: a connector that
/// never sleeps keeps the worker off the CPU until 128 connections fill the
/// harness listener's backlog, and each overflow costs a 1 s SYN
/// retransmission. A 1 ms pause every 64 connections lets the worker run.
fn pace(i: usize) {
    if i % 64 == 63 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// 1. The RFC edge-case table
// ---------------------------------------------------------------------------

/// What must follow a case's bytes on its connection.
enum Expect {
    /// This answer, then the probe's 200: the connection stayed open.
    Open(String),
    /// This error answer and a clean close; the probe is never answered.
    Closed(u16),
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn open_case(name: &'static str, bytes: impl Into<Vec<u8>>, answer: String) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        expect: Expect::Open(answer),
    }
}

fn closed_case(name: &'static str, bytes: impl Into<Vec<u8>>, status: u16) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        expect: Expect::Closed(status),
    }
}

/// A chunked POST head followed by `body`.
fn chunked(body: &[u8]) -> Vec<u8> {
    cat(&[
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        body,
    ])
}

/// A GET with `fields` (CRLF-terminated lines) after `Host: t`.
fn get_with(fields: &[u8]) -> Vec<u8> {
    cat(&[b"GET / HTTP/1.1\r\nHost: t\r\n", fields, b"\r\n"])
}

fn edge_cases() -> Vec<Case> {
    vec![
        // --- Content-Length (RFC 9112 6.3, RFC 9110 8.6) -----------------
        // RFC 9110 8.6 lets a recipient take `5, 5` (a list of identical
        // values) as 5, or reject it. Strict choice: exactly one field of
        // 1*DIGIT, anything else 400 and close. A parser in front that
        // merges lists differently (`5, 05`, `5,5,`) would disagree about
        // where the body ends, which is how requests get smuggled.
        closed_case(
            "content-length list of equal values",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello".as_slice(),
            400,
        ),
        closed_case(
            "content-length twice, equal",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
                .as_slice(),
            400,
        ),
        closed_case(
            "content-length list with an empty element",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5,\r\n\r\nhello".as_slice(),
            400,
        ),
        // Leading zeros are still 1*DIGIT: the value is 5.
        open_case(
            "content-length with leading zeros",
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 005\r\n\r\nhello".as_slice(),
            not_allowed(Persist::KeepAlive),
        ),
        // --- Transfer-Encoding (RFC 9112 6.1, 6.3) ------------------------
        // chunked applied twice: MUST NOT (6.1), as a list in one field.
        closed_case(
            "transfer-encoding chunked, chunked",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"
                .as_slice(),
            400,
        ),
        // chunked not last: the length cannot be determined; 6.3 item 4
        // says 400 and close for a request.
        closed_case(
            "transfer-encoding gzip only",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n".as_slice(),
            400,
        ),
        closed_case(
            "transfer-encoding chunked then identity in a second field",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"
                .as_slice(),
            400,
        ),
        // chunked defines no parameters (RFC 9112 7): strict, 400.
        closed_case(
            "transfer-encoding chunked with a parameter",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n"
                .as_slice(),
            400,
        ),
        closed_case(
            "transfer-encoding empty",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n".as_slice(),
            400,
        ),
        // RFC 9110 5.6.1: a recipient MUST accept (and ignore) empty list
        // elements; coding names are case-insensitive (RFC 9112 7).
        open_case(
            "transfer-encoding with empty list elements",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: , chunked,\r\n\r\n0\r\n\r\n"
                .as_slice(),
            not_allowed(Persist::KeepAlive),
        ),
        open_case(
            "transfer-encoding CHUNKED",
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n".as_slice(),
            not_allowed(Persist::KeepAlive),
        ),
        // --- chunk-size (RFC 9112 7.1) -------------------------------------
        // The largest u64: past any body limit, refused before the data.
        closed_case(
            "chunk size 2^64-1",
            chunked(b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
            413,
        ),
        closed_case(
            "chunk size with a leading space",
            chunked(b" 5\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        closed_case(
            "chunk size with trailing junk",
            chunked(b"5x\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        closed_case(
            "chunk size in C hex notation",
            chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        // BWS is allowed only before the `;` of an extension: a size line
        // ending in whitespace, or in a `;` with no extension name, is off
        // the grammar.
        closed_case(
            "chunk size then whitespace",
            chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        closed_case(
            "chunk size then ' ;' and no extension",
            chunked(b"5 ;\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        open_case(
            "chunk size in upper-case hex",
            chunked(b"A\r\n0123456789\r\n0\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        // last-chunk = 1*("0"): several zeros end the body too.
        open_case(
            "last chunk written 000",
            chunked(b"5\r\nhello\r\n000\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        // --- chunk extensions (RFC 9112 7.1.1) ------------------------------
        open_case(
            "chunk extension token",
            chunked(b"5;a=b\r\nhello\r\n0\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        open_case(
            "chunk extension quoted",
            chunked(b"5;a=\"q\"\r\nhello\r\n0\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        open_case(
            "chunk extension quoted with an escape",
            chunked(b"5;a=\"q\\\"x\"\r\nhello\r\n0\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        open_case(
            "chunk extension name only, twice",
            chunked(b"5;a;b\r\nhello\r\n0\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        open_case(
            "chunk extension with BWS around ; and =",
            chunked(b"5 ; a = b\r\nhello\r\n0\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        open_case(
            "chunk extension on the last chunk",
            chunked(b"5\r\nhello\r\n0;a=b\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        closed_case(
            "chunk extension quoted name",
            chunked(b"5;\"x\"\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        closed_case(
            "chunk extension empty value",
            chunked(b"5;a=\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        closed_case(
            "chunk extension unterminated quote",
            chunked(b"5;a=\"q\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        // --- trailers (RFC 9112 7.1.2) --------------------------------------
        open_case(
            "trailer fields",
            chunked(b"5\r\nhello\r\n0\r\nX-T: v\r\nX-U:w\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        open_case(
            "trailer field with an empty value",
            chunked(b"5\r\nhello\r\n0\r\nX-T:\r\n\r\n"),
            not_allowed(Persist::KeepAlive),
        ),
        closed_case(
            "trailer field name with a space",
            chunked(b"0\r\nX T: v\r\n\r\n"),
            400,
        ),
        closed_case(
            "trailer field with whitespace before the colon",
            chunked(b"0\r\nX-T : v\r\n\r\n"),
            400,
        ),
        closed_case(
            "trailer line without a colon",
            chunked(b"0\r\nX-T\r\n\r\n"),
            400,
        ),
        closed_case(
            "trailer line ending in a bare LF",
            chunked(b"0\r\nX-T: v\n\r\n"),
            400,
        ),
        // --- field syntax (RFC 9112 5, RFC 9110 5) ----------------------------
        // RFC 9112 5.1: whitespace between a field name and the colon MUST
        // be rejected with 400 (not a choice); any field, not only Host.
        closed_case(
            "whitespace before the colon",
            get_with(b"X-A : b\r\n"),
            400,
        ),
        closed_case("tab before the colon", get_with(b"X-A\t: b\r\n"), 400),
        // RFC 9112 2.2: whitespace between the start line and the first
        // field: reject, or drop the line. Strict choice: reject.
        closed_case(
            "whitespace before the first field line",
            b"GET / HTTP/1.1\r\n X: y\r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        closed_case("field name with a space", get_with(b"Ho st: x\r\n"), 400),
        closed_case("field name with parentheses", get_with(b"X(y): z\r\n"), 400),
        closed_case("empty field name", get_with(b": z\r\n"), 400),
        // RFC 9110 5.5: CTLs are not field-vchar; a recipient MAY keep them.
        // Strict choice: refuse.
        closed_case("control character in a value", get_with(b"X-A: a\x01b\r\n"), 400),
        closed_case("DEL in a value", get_with(b"X-A: a\x7fb\r\n"), 400),
        // obs-text is allowed in values (RFC 9110 5.5).
        open_case(
            "obs-text in a value",
            get_with(b"X-A: caf\xc3\xa9\r\n"),
            ok(Persist::KeepAlive),
        ),
        // --- methods (RFC 9110 9.1: a case-sensitive token) -----------------
        closed_case(
            "method with @",
            b"G@T / HTTP/1.1\r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        closed_case(
            "method with a control character",
            b"GET\x01 / HTTP/1.1\r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        // `get` is a valid token and another method than GET.
        open_case(
            "lower-case get",
            b"get / HTTP/1.1\r\nHost: t\r\n\r\n".as_slice(),
            not_allowed(Persist::KeepAlive),
        ),
        // --- request targets (RFC 9112 3.2) ----------------------------------
        open_case(
            "absolute-form",
            b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n".as_slice(),
            ok(Persist::KeepAlive),
        ),
        // 3.2.2: with absolute-form the server MUST ignore Host.
        open_case(
            "absolute-form with another Host",
            b"GET http://a/b HTTP/1.1\r\nHost: other\r\n\r\n".as_slice(),
            ok(Persist::KeepAlive),
        ),
        // 3.2: an HTTP/1.1 request without Host is 400, whatever the form.
        closed_case(
            "absolute-form without Host",
            b"GET http://a/b HTTP/1.1\r\n\r\n".as_slice(),
            400,
        ),
        // RFC 9110 4.2.4: no userinfo in http(s) URIs.
        closed_case(
            "absolute-form with userinfo",
            b"GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n".as_slice(),
            400,
        ),
        open_case(
            "asterisk-form OPTIONS",
            b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n".as_slice(),
            no_content(Persist::KeepAlive),
        ),
        // asterisk-form is only for OPTIONS (3.2.4).
        closed_case(
            "asterisk-form GET",
            b"GET * HTTP/1.1\r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        // authority-form is only for CONNECT (3.2.3).
        closed_case(
            "authority-form GET",
            b"GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n".as_slice(),
            400,
        ),
        open_case(
            "authority-form CONNECT",
            b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n".as_slice(),
            not_allowed(Persist::KeepAlive),
        ),
        // --- Host (RFC 9112 3.2, RFC 9110 7.2) -------------------------------
        closed_case(
            "Host twice, different case",
            b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n".as_slice(),
            400,
        ),
        closed_case(
            "Host as a list",
            b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n".as_slice(),
            400,
        ),
        // An empty Host is what a client sends for a target without an
        // authority (RFC 9110 7.2).
        open_case(
            "empty Host",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n".as_slice(),
            ok(Persist::KeepAlive),
        ),
        // --- HTTP-version (RFC 9112 2.3: case-sensitive, one digit each) ----
        closed_case(
            "lower-case http/1.1",
            b"GET / http/1.1\r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        closed_case(
            "HTTP/01.1",
            b"GET / HTTP/01.1\r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        closed_case(
            "HTTP/1.01",
            b"GET / HTTP/1.01\r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        closed_case(
            "space after the version",
            b"GET / HTTP/1.1 \r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        // --- line endings (RFC 9112 2.2) ---------------------------------------
        // A recipient MAY take a bare LF as a line end; strict choice: 400,
        // since a parser in front that does not would see other lines.
        closed_case(
            "LF-only line endings",
            b"GET / HTTP/1.1\nHost: t\n\n".as_slice(),
            400,
        ),
        closed_case(
            "LF-only empty line ending the head",
            b"GET / HTTP/1.1\r\nHost: t\r\n\n".as_slice(),
            400,
        ),
        closed_case(
            "CR-only line endings",
            b"GET / HTTP/1.1\rHost: t\r\r".as_slice(),
            400,
        ),
        closed_case(
            "a bare LF before the request line",
            b"\nGET / HTTP/1.1\r\nHost: t\r\n\r\n".as_slice(),
            400,
        ),
        // 2.2: a server SHOULD ignore at least one empty line (CRLF) before
        // the request line.
        open_case(
            "empty lines before the request line",
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n".as_slice(),
            ok(Persist::KeepAlive),
        ),
    ]
}

// Proves: each edge case gets its exact answer, and afterwards the
// connection is open (the pipelined probe is answered, so the framing ended
// exactly where it should) or closed cleanly with the probe never answered.
#[test]
fn rfc_edge_cases_get_exact_answers_and_persistence() {
    quiet_sigchld();
    let server =
        Server::start("workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n");
    let pids = server.wait_workers(1);
    let cases = edge_cases();
    let mut failures = Vec::new();
    for case in &cases {
        let mut s = open(server.addr);
        send(&mut s, &cat(&[&case.bytes, PROBE]));
        let expected = match &case.expect {
            Expect::Open(answer) => format!("{answer}{}", ok(Persist::Close)),
            Expect::Closed(status) => rejection(*status),
        };
        match read_to_eof(&mut s, ANSWER) {
            Ok(raw) => {
                let got = redact_dates(&raw);
                if got != expected {
                    failures.push(format!(
                        "{}: {:?}\n  expected {expected:?}\n  got      {got:?}",
                        case.name,
                        String::from_utf8_lossy(&case.bytes)
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "{}: {:?}\n  {e}",
                case.name,
                String::from_utf8_lossy(&case.bytes)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(server.worker_pids(), pids, "the worker was replaced");
    server.finish();
}

// Proves: a request sent after the 400 has arrived is never answered, and
// the connection ends in a clean close (the server lingers, reading and
// discarding, instead of resetting).
#[test]
fn nothing_is_answered_after_a_400() {
    quiet_sigchld();
    let server =
        Server::start("workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n");
    let mut s = open(server.addr);
    send(&mut s, b"GET / HTTP/1.1\r\nHost: t\r\nX(y): z\r\n\r\n");
    let first = read_one(&mut s, ANSWER).unwrap();
    assert_eq!(redact_dates(&first), rejection(400));
    // The server has answered and half-closed; these arrive while it lingers.
    for _ in 0..3 {
        send(&mut s, GET);
    }
    assert_eq!(
        read_to_eof(&mut s, ANSWER).unwrap(),
        "",
        "bytes after the 400"
    );
    drop(s);
    server.finish();
}

// Proves: whitespace between a chunk extension and the CRLF ending the
// chunk-size line is refused like the rest of what is off the grammar
// (RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
// chunk-ext-val ] ): BWS only before ";" and around "="), as the server
// already refuses `5 \r\n` (see the table). Today `5;a=b \r\n`, `5;a \r\n`,
// `5;a="q" \r\n`, `5;a=b\t\r\n` and `0;a \r\n` are accepted (405, open).
#[test]
fn whitespace_after_a_chunk_extension_is_refused() {
    quiet_sigchld();
    let server =
        Server::start("workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n");
    let mut failures = Vec::new();
    for body in [
        &b"5;a=b \r\nhello\r\n0\r\n\r\n"[..],
        b"5;a \r\nhello\r\n0\r\n\r\n",
        b"5;a=\"q\" \r\nhello\r\n0\r\n\r\n",
        b"5;a=b\t\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0;a \r\n\r\n",
    ] {
        let mut s = open(server.addr);
        send(&mut s, &cat(&[&chunked(body), PROBE]));
        let got = read_to_eof(&mut s, ANSWER).map(|raw| redact_dates(&raw));
        if got.as_deref() != Ok(rejection(400).as_str()) {
            failures.push(format!("{:?}: {got:?}", String::from_utf8_lossy(body)));
        }
    }
    assert!(failures.is_empty(), "accepted:\n{}", failures.join("\n"));
    server.finish();
}

// ---------------------------------------------------------------------------
// 2. Slow body
// ---------------------------------------------------------------------------

// Proves: header_timeout bounds each stretch of a body: bytes dripped faster
// than it keep the request alive (even past header_timeout in total), and
// the first gap longer than it gets 408 and a clean close about
// header_timeout after the last byte.
#[test]
fn body_dripped_slower_than_header_timeout_gets_408() {
    quiet_sigchld();
    let server =
        // The minimum rate off: this is header_timeout's own 408.
        Server::start("workers = 1\nheader_timeout = \"1s\"\nkeepalive_timeout = \"30s\"\nmin_request_rate = \"off\"\n");
    let mut s = open(server.addr);
    s.set_nodelay(true).unwrap();
    let head_sent = Instant::now();
    send(
        &mut s,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n",
    );
    // Three bytes 500 ms apart: 1.5 s in all, each gap under the timeout.
    // These waits are the drip itself; nothing may arrive meanwhile.
    let mut buf = [0u8; 1];
    for b in b"abc" {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        match s.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("answer before the body stalled: {other:?}"),
        }
        send(&mut s, std::slice::from_ref(b));
    }
    let last_byte = Instant::now();
    // Now a gap longer than header_timeout: the next byte would come
    // after 2 s, but the answer must come first.
    let raw = read_to_eof(&mut s, Duration::from_secs(6)).unwrap();
    let waited = last_byte.elapsed();
    assert_eq!(redact_dates(&raw), rejection(408));
    // ~1 s (header_timeout, checked every 250 ms); up to 4 s is room for a
    // loaded machine, well short of the 30 s keep-alive timeout.
    assert!(
        waited >= Duration::from_millis(900) && waited <= Duration::from_secs(4),
        "408 and close {waited:?} after the last byte, expected ~1 s"
    );
    assert!(
        head_sent.elapsed() < Duration::from_secs(8),
        "the whole exchange took {:?}",
        head_sent.elapsed()
    );
    server.finish();
}

// ---------------------------------------------------------------------------
// 3. A client that sends and never reads
// ---------------------------------------------------------------------------

// Proves: against a client that pipelines without reading, the worker stops
// reading once its answers cannot be written (its receive queue stops
// draining), its memory stays bounded, other clients are served meanwhile,
// and the connection is dropped once header_timeout (the send timeout)
// passes without progress.
#[test]
fn greedy_pipeliner_is_throttled_and_dropped() {
    quiet_sigchld();
    // Long enough that the checks below, on a loaded machine, fit before it.
    const TIMEOUT: Duration = Duration::from_secs(8);
    let server =
        Server::start("workers = 1\nheader_timeout = \"8s\"\nkeepalive_timeout = \"30s\"\n");
    let worker = server.wait_workers(1)[0];
    // Warm up (buffers allocated, pages touched), then measure.
    for _ in 0..3 {
        get_ok(server.addr).unwrap();
    }
    let sockets = socket_count(worker);
    let rss_before = vm_rss_kib(worker);

    let mut greedy = connect(server.addr);
    let greedy_addr = greedy.local_addr().unwrap();
    // The server's receive queue (bytes it has not read) on that connection.
    let server_rx_queue = || tcp_row(server.addr, greedy_addr).map(|r| r.rx_queue);
    greedy
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let batch = GET.repeat(2000);
    let cap: usize = 256 << 20;
    let mut sent = 0usize;
    let mut off = 0usize;
    // Write until a write makes no progress for 300 ms: the socket buffers
    // on both sides are full. The cap bounds the loop if the server never
    // stops reading (which fails the test).
    let blocked_at = loop {
        assert!(
            sent < cap,
            "the server took {sent} bytes of requests without stopping"
        );
        match greedy.write(&batch[off..]) {
            Ok(n) => {
                sent += n;
                off = (off + n) % batch.len();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("write failed after {sent} bytes: {e}"),
        }
    };
    let requests = sent / GET.len();
    assert!(requests >= 1000, "only {requests} requests fit the buffers");

    // The worker has stopped reading: its receive queue holds our
    // requests and does not shrink.
    let queued =
        server_rx_queue().expect("the server side of the greedy connection in /proc/net/tcp");
    assert!(queued > 0, "the server read everything");
    let rss_flooded = vm_rss_kib(worker);
    // Another client is served promptly meanwhile.
    for _ in 0..5 {
        // A worker stuck on the greedy client would answer only once
        // header_timeout drops it (TIMEOUT); a few seconds is room for load.
        let took = get_ok(server.addr).unwrap();
        assert!(took < TIMEOUT / 3, "a GET took {took:?}");
    }
    let mut other = open(server.addr);
    get_on(&mut other, TIMEOUT / 3).unwrap();
    drop(other);
    let still = server_rx_queue();
    assert_eq!(
        still,
        Some(queued),
        "the server's receive queue changed: it read from a client that does not read"
    );
    let rss_later = vm_rss_kib(worker);
    let growth = rss_flooded.max(rss_later).saturating_sub(rss_before);
    eprintln!(
        "greedy: {requests} requests ({sent} bytes) sent before blocking; {queued} bytes \
         unread by the server; VmRSS {rss_before} KiB -> {rss_flooded} KiB -> {rss_later} KiB"
    );
    assert!(
        growth < 4 * 1024,
        "the worker grew by {growth} KiB under a client that does not read"
    );
    assert!(
        blocked_at.elapsed() < TIMEOUT - Duration::from_millis(500),
        "the checks above took too long to tell anything about the timeout"
    );
    assert!(
        server_rx_queue().is_some(),
        "the greedy connection was dropped before header_timeout"
    );

    // Dropped once header_timeout passes without progress: the worker is
    // back to its own sockets.
    wait_sockets(
        worker,
        sockets,
        TIMEOUT + Duration::from_secs(3),
        "the greedy connection to be closed",
    );
    let closed_after = blocked_at.elapsed();
    assert!(
        closed_after >= TIMEOUT - Duration::from_secs(1),
        "dropped {closed_after:?} after it blocked, before header_timeout"
    );
    // Closed with our requests unread, so reset: our next write fails.
    greedy.set_write_timeout(Some(ANSWER)).unwrap();
    let mut failed = None;
    for _ in 0..100 {
        match greedy.write(GET) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    assert!(failed.is_some(), "the greedy connection still takes writes");
    get_ok(server.addr).unwrap();
    assert_eq!(server.worker_pids(), vec![worker]);
    server.finish();
}

// ---------------------------------------------------------------------------
// 4. Ten thousand idle connections
// ---------------------------------------------------------------------------

// Proves: one worker holds 10,000 idle connections (silent ones and ones
// stuck mid-head) while another client's GETs keep succeeding promptly,
// then closes every one of them when the clients go.
//
// The harness hands the server its socket, which has no TCP_DEFER_ACCEPT:
// the worker really accepts and holds the silent connections (a socket the
// server binds itself with -l defers them in the kernel instead).
// 10,000 fits this process's RLIMIT_NOFILE of 20,000 together with the one
// other test libtest runs beside it on 2 cores (at most 5,000 sockets);
// the server inherits the same limit.
#[test]
fn ten_thousand_idle_connections_do_not_starve_a_client() {
    quiet_sigchld();
    const IDLE: usize = 10_000;
    let server = Server::start(
        // One client address on purpose: no per-client cap, no rate.
        "workers = 1\nworker_connections = 20000\nheader_timeout = \"120s\"\n\
         keepalive_timeout = \"120s\"\nmax_connections_per_client = 0\nmin_request_rate = \"off\"\n",
    );
    let worker = server.wait_workers(1)[0];
    let sockets = socket_count(worker);
    let addr = server.addr;

    // The served client: a keep-alive connection and fresh ones, in turn,
    // paced, recording the slowest answer.
    let stop = AtomicBool::new(false);
    let served = AtomicU32::new(0);
    let (idle, report) = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let client = scope.spawn(|| {
            let mut kept = open(addr);
            let mut slowest = Duration::ZERO;
            let mut failures = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let r = if served.load(Ordering::SeqCst) % 2 == 0 {
                    get_on(&mut kept, ANSWER)
                } else {
                    get_ok(addr)
                };
                match r {
                    Ok(took) => {
                        served.fetch_add(1, Ordering::SeqCst);
                        slowest = slowest.max(took);
                    }
                    Err(e) => failures.push(e),
                }
                // Pacing: a steady client, not a load test.
                std::thread::sleep(Duration::from_millis(20));
            }
            (slowest, failures)
        });
        let started = Instant::now();
        let mut idle = Vec::with_capacity(IDLE);
        for i in 0..IDLE {
            let s = TcpStream::connect_timeout(&addr, ANSWER)
                .unwrap_or_else(|e| panic!("connection {i} of {IDLE}: {e}"));
            if i % 10 == 0 {
                // Stuck mid-head: the worker keeps a buffer for these.
                (&s).write_all(b"GET / HTTP/1.1\r\nHost:").unwrap();
            }
            if i % 2 == 0 {
                set_linger0(&s);
            }
            idle.push(s);
            pace(i);
        }
        let opened = started.elapsed();
        // The worker holds them all.
        wait_until(
            Duration::from_secs(30),
            "the worker to hold them all",
            || (socket_count(worker) >= sockets + IDLE).then_some(()),
        );
        eprintln!(
            "idle: {IDLE} connections opened in {opened:?}, all held after {:?}; worker VmRSS {} KiB",
            started.elapsed(),
            vm_rss_kib(worker)
        );
        // Served while the worker holds them all.
        let so_far = served.load(Ordering::SeqCst);
        wait_until(WAIT, "20 more answers beside the idle connections", || {
            (served.load(Ordering::SeqCst) >= so_far + 20).then_some(())
        });
        assert!(
            socket_count(worker) >= sockets + IDLE,
            "idle connections dropped"
        );
        stop.store(true, Ordering::SeqCst);
        let report = client.join().unwrap();
        (idle, report)
    });
    let served = served.load(Ordering::SeqCst);
    let (slowest, failures) = report;
    eprintln!("idle: the other client was served {served} times, slowest {slowest:?}");
    assert!(
        failures.is_empty(),
        "the served client failed: {failures:#?}"
    );
    assert!(
        served >= 20,
        "the other client was served only {served} times"
    );
    // Starved, it would wait for the idle connections to time out (120 s);
    // 3 s is room for a loaded 2-CPU machine.
    assert!(
        slowest < Duration::from_secs(3),
        "a GET took {slowest:?} beside the idle connections"
    );
    assert_eq!(
        server.worker_pids(),
        vec![worker],
        "the worker was replaced"
    );

    // Everyone leaves: the worker closes all of them.
    let closing = Instant::now();
    drop(idle);
    wait_sockets(
        worker,
        sockets,
        Duration::from_secs(20),
        "the worker to close the idle connections",
    );
    eprintln!("idle: all closed by the worker in {:?}", closing.elapsed());
    get_ok(addr).unwrap();
    server.finish();
}

// ---------------------------------------------------------------------------
// 5. Connect-then-close flood
// ---------------------------------------------------------------------------

// Proves: 5,000 connections opened then closed at once (FIN and RST, some
// silent, some mid-head, some with an unread answer) leave the worker alive
// (same pid), with no connection left behind, serving, and without an
// error line.
#[test]
fn connect_then_close_flood() {
    quiet_sigchld();
    const N: usize = 5_000;
    let server = Server::start(
        "workers = 1\nworker_connections = 20000\nheader_timeout = \"60s\"\n\
         keepalive_timeout = \"60s\"\n",
    );
    let worker = server.wait_workers(1)[0];
    let sockets = socket_count(worker);
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        let s = TcpStream::connect_timeout(&server.addr, ANSWER)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        match i % 4 {
            0 => {}
            1 => set_linger0(&s),
            2 => {
                (&s).write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
                set_linger0(&s);
            }
            _ => (&s).write_all(GET).unwrap(),
        }
        conns.push(s);
        pace(i);
    }
    // All at once.
    drop(conns);
    wait_sockets(
        worker,
        sockets,
        Duration::from_secs(20),
        "the worker to close all 5,000 connections",
    );
    assert_eq!(
        server.worker_pids(),
        vec![worker],
        "the worker was replaced"
    );
    for _ in 0..3 {
        get_ok(server.addr).unwrap();
    }
    assert_eq!(server.error_lines(), Vec::<String>::new());
    server.finish();
}

// ---------------------------------------------------------------------------
// 6. Clients that reset mid-response
// ---------------------------------------------------------------------------

// Proves: clients that send thousands of pipelined requests and reset the
// connection while their answers are being written (the worker's writes
// fail with EPIPE or ECONNRESET, some of them from a blocked write) do not
// hurt the worker: same pid, no error line, no connection left, serving.
#[test]
fn clients_resetting_mid_response() {
    quiet_sigchld();
    let server =
        Server::start("workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n");
    let worker = server.wait_workers(1)[0];
    let sockets = socket_count(worker);
    let pipeline = GET.repeat(3000);
    for round in 0..40 {
        let mut s = TcpStream::connect_timeout(&server.addr, ANSWER).unwrap();
        if round % 2 == 0 {
            // A small receive window: the answers (~420 KiB) block the
            // worker's write, which then fails on our reset.
            setsockopt(&s, sockopt::RcvBuf, &4096).unwrap();
        }
        s.set_write_timeout(Some(ANSWER)).unwrap();
        s.set_read_timeout(Some(ANSWER)).unwrap();
        send(&mut s, &pipeline);
        if round % 4 < 2 {
            // Wait until answers flow, so the reset lands mid-response.
            let mut first = [0u8; 16];
            let mut got = 0;
            while got < first.len() {
                match s.read(&mut first[got..]) {
                    Ok(0) => panic!("closed before answering (round {round})"),
                    Ok(n) => got += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => panic!("no answer (round {round}): {e}"),
                }
            }
            assert_eq!(&first, b"HTTP/1.1 200 OK\r");
        }
        set_linger0(&s);
        drop(s);
    }
    wait_sockets(
        worker,
        sockets,
        Duration::from_secs(10),
        "the worker to close the reset connections",
    );
    assert_eq!(
        server.worker_pids(),
        vec![worker],
        "the worker was replaced"
    );
    get_ok(server.addr).unwrap();
    assert_eq!(server.error_lines(), Vec::<String>::new());
    server.finish();
}

// ---------------------------------------------------------------------------
// 7. Memory over a million requests
// ---------------------------------------------------------------------------

/// Sends `n` pipelined GETs on `s` (in batches, from a second thread) and
/// reads all `n` answers, each `len` bytes, checking where each starts.
fn pipeline_round(s: &TcpStream, n: usize, len: usize, batch: &[u8]) {
    let per_batch = batch.len() / GET.len();
    assert_eq!(n % per_batch, 0);
    let mut writer = s.try_clone().unwrap();
    let mut reader = s.try_clone().unwrap();
    std::thread::scope(|scope| {
        let w = scope.spawn(move || {
            for _ in 0..n / per_batch {
                writer.write_all(batch).unwrap();
            }
        });
        let total = n * len;
        let mut buf = vec![0u8; 256 << 10];
        let mut seen = 0usize;
        while seen < total {
            let want = buf.len().min(total - seen);
            let got = match reader.read(&mut buf[..want]) {
                Ok(0) => panic!("EOF after {} of {n} answers", seen / len),
                Ok(k) => k,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("read after {} of {n} answers: {e}", seen / len),
            };
            // Each answer starts with the status line, where one is due in this read.
            let mut at = (len - seen % len) % len;
            while at + 15 <= got {
                assert_eq!(
                    &buf[at..at + 15],
                    b"HTTP/1.1 200 OK",
                    "answer at byte {}",
                    seen + at
                );
                at += len;
            }
            seen += got;
        }
        w.join().unwrap();
    });
}

// Proves: a worker's resident memory stays flat (< 1 MiB difference) from
// after a warm-up of 100,000 requests to the end of 1,000,000, pipelined in
// batches of 1,000 over two keep-alive connections, every answer read.
#[test]
fn memory_stays_flat_over_a_million_requests() {
    quiet_sigchld();
    const CONNS: usize = 2;
    const WARM_UP: usize = 100_000;
    const TOTAL: usize = 1_000_000;
    let server =
        Server::start("workers = 1\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n");
    let worker = server.wait_workers(1)[0];
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| open(server.addr)).collect();
    // Every answer has the same length (the Date is fixed-width).
    let first = read_one_after(&mut conns[0]);
    let len = first.len();
    let batch = GET.repeat(1000);
    let started = Instant::now();
    let run = |n: usize| {
        std::thread::scope(|scope| {
            for s in &conns {
                let batch = &batch;
                scope.spawn(move || pipeline_round(s, n / CONNS, len, batch));
            }
        });
    };
    run(WARM_UP);
    let rss_warm = vm_rss_kib(worker);
    let warm_time = started.elapsed();
    run(TOTAL - WARM_UP);
    let rss_end = vm_rss_kib(worker);
    let took = started.elapsed();
    eprintln!(
        "memory: {TOTAL} requests in {took:?} (warm-up {WARM_UP} in {warm_time:?}); \
         VmRSS {rss_warm} KiB after warm-up, {rss_end} KiB at the end"
    );
    assert!(
        rss_end.abs_diff(rss_warm) < 1024,
        "VmRSS went from {rss_warm} KiB to {rss_end} KiB"
    );
    assert_eq!(server.worker_pids(), vec![worker]);
    drop(conns);
    server.finish();
}

/// One GET on `s`, its whole (raw) answer.
fn read_one_after(s: &mut TcpStream) -> String {
    send(s, GET);
    let answer = read_one(s, ANSWER).unwrap();
    assert_eq!(redact_dates(&answer), ok(Persist::KeepAlive));
    answer
}

// Empty lines after a request (RFC 9112 2.2 lets a server ignore them) are
// no new request: the connection stays idle and is closed silently after
// keepalive_timeout, not answered 408 after header_timeout.
#[test]
fn empty_lines_after_a_request_keep_the_connection_idle() {
    quiet_sigchld();
    let server =
        Server::start("workers = 1\nkeepalive_timeout = \"1s\"\nheader_timeout = \"30s\"\n");
    let mut s = open(server.addr);
    send(&mut s, &cat(&[GET, b"\r\n\r\n"]));
    let first = read_one(&mut s, ANSWER).unwrap();
    assert_eq!(redact_dates(&first), ok(Persist::KeepAlive));
    let started = Instant::now();
    let rest = read_to_eof(&mut s, Duration::from_secs(8)).unwrap();
    assert_eq!(rest, "", "no answer to empty lines");
    let took = started.elapsed();
    // keepalive_timeout is 1 s, header_timeout 30 s.
    assert!(
        took < Duration::from_secs(6),
        "closed after {took:?}, not keepalive_timeout"
    );
    server.finish();
}
