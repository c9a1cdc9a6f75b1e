//! A simulated client for the connection state machine (`conn.rs`), for the
//! fuzz target and the property tests: it feeds a connection its input in
//! arbitrary pieces through the same `Conn` the worker uses, over an
//! in-memory [`Transport`], and checks what came out against invariants:
//! every answer is a well-formed HTTP/1.1 response with a correct
//! Content-Length, requests are answered at most once and in order, nothing
//! follows an error answer and the connection is then closed, and a
//! connection never holds more than its bounded buffers; and the observer
//! (the access log's hook) learns of exactly the answers sent, in order,
//! plus at most one request the client cut short. Built only for tests and
//! fuzzing.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::conn::{Buffers, Conn, Ctx, Exchange, Interest, Observer, Timeouts};
use crate::http::Limits;
use crate::response::{ResponseSpec, Responses};

/// The body the simulated server answers with; it never looks like a
/// status line, so a missing body is told apart from a present one.
pub const BODY: &[u8] = b"Hello, World!\n";

/// Input delivered in scripted pieces, output collected; a write may take
/// only part of what it is given, to exercise the pending-output path.
pub struct Scripted {
    pieces: VecDeque<Vec<u8>>,
    /// After the last piece: EOF (the client closed) or "nothing yet".
    pub eof: bool,
    pub written: Vec<u8>,
    /// Bytes the next write calls may take before WouldBlock (None: all).
    pub write_budget: Option<usize>,
    pub shut: bool,
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(piece) = self.pieces.front_mut() else {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        piece.drain(..n);
        if piece.is_empty() {
            self.pieces.pop_front();
        }
        Ok(n)
    }
}

impl Write for Scripted {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = match &mut self.write_budget {
            None => data.len(),
            Some(0) => return Err(io::ErrorKind::WouldBlock.into()),
            Some(budget) => {
                let n = data.len().min(*budget);
                *budget -= n;
                n
            }
        };
        self.written.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl crate::conn::Transport for Scripted {
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Records what the connection tells its observer: (status, body bytes).
#[derive(Default)]
struct Recorder(std::cell::RefCell<Vec<(u16, u64)>>);

impl Observer for Recorder {
    fn answered(&self, e: &Exchange) {
        assert!(
            !e.head.is_empty() || e.status == 400,
            "an observed answer without its request"
        );
        self.0.borrow_mut().push((e.status, e.body_bytes));
    }
}

/// What a simulated connection ended as.
#[derive(Debug)]
pub struct Outcome {
    pub responses: Vec<Response>,
    /// The server closed the connection (or went to its lingering close).
    pub closed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub close: bool,
    pub has_body: bool,
}

pub fn limits() -> Limits {
    Limits {
        max_header_bytes: 1024,
        max_body_bytes: 4096,
    }
}

fn responses() -> Responses {
    let mut r = Responses::new(&ResponseSpec {
        status: 200,
        content_type: "text/plain".into(),
        headers: Vec::new(),
        body: BODY.to_vec(),
    });
    r.set_date(b"Sun, 06 Nov 1994 08:49:37 GMT");
    r
}

/// Runs `input`, cut at `cuts` (offsets, any order, out-of-range ignored),
/// through one connection; `write_budget` limits how much output the
/// socket takes per readable event (None: all). Panics when an invariant
/// breaks.
pub fn run(input: &[u8], cuts: &[usize], write_budget: Option<usize>) -> Outcome {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < input.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = VecDeque::new();
    let mut start = 0;
    for c in cuts.into_iter().chain(std::iter::once(input.len())) {
        if c > start {
            pieces.push_back(input[start..c].to_vec());
            start = c;
        }
    }
    let limits = limits();
    let responses = responses();
    let recorder = Recorder::default();
    let ctx = Ctx {
        responses: &responses,
        limits,
        timeouts: Timeouts {
            header: Duration::from_secs(10),
            keepalive: Duration::from_secs(10),
            drain_idle: Duration::from_secs(1),
        },
        now: Instant::now(),
        draining: false,
        observer: Some(&recorder),
    };
    let mut bufs = Buffers::new(&limits);
    let stream = Scripted {
        pieces,
        eof: false,
        written: Vec::new(),
        write_budget,
        shut: false,
    };
    let mut conn = Conn::new(stream, &ctx);
    // Bounded: every readable event consumes at least one byte or ends.
    let mut closed = false;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100_000, "the connection made no progress");
        let pieces_left = !conn.stream().pieces.is_empty();
        let interest = conn.on_readable(&ctx, &mut bufs);
        assert!(
            conn.held_bytes() <= limits.max_header_bytes + 4096 + 256 * 1024,
            "a connection holds {} bytes",
            conn.held_bytes()
        );
        match interest {
            Interest::Close => {
                closed = true;
                break;
            }
            Interest::Write => {
                if write_budget == Some(0) {
                    // A client that never reads: nothing more will move.
                    break;
                }
                // The client reads: the socket takes more.
                conn.stream_mut().write_budget = write_budget;
                match conn.on_writable(&ctx) {
                    Interest::Close => {
                        closed = true;
                        break;
                    }
                    _ => continue,
                }
            }
            Interest::Read => {
                if conn.is_lingering() {
                    closed = true;
                    break;
                }
                if !pieces_left {
                    break;
                }
                conn.stream_mut().write_budget = write_budget;
            }
        }
    }
    let outcome = Outcome {
        responses: parse_responses(&conn.stream().written),
        closed,
    };
    conn.release(&mut bufs);
    check_error_is_last(&outcome);
    check_observed(&recorder.0.borrow(), &outcome, write_budget == Some(0));
    outcome
}

/// The observer saw every answer sent, in order, with a body exactly when
/// the answer had one; beyond those only answers still waiting for a client
/// that does not read, or one request cut short by EOF (400, no body).
fn check_observed(seen: &[(u16, u64)], o: &Outcome, stalled: bool) {
    assert!(
        seen.len() >= o.responses.len(),
        "answers sent {:?}, observed {seen:?}",
        o.responses
    );
    for (r, &(status, body)) in o.responses.iter().zip(seen) {
        assert_eq!(r.status, status, "observed {seen:?} for {:?}", o.responses);
        assert_eq!(
            r.has_body,
            body > 0,
            "observed {seen:?} for {:?}",
            o.responses
        );
    }
    let extra = &seen[o.responses.len()..];
    if !stalled {
        assert!(
            extra.is_empty() || extra == [(400, 0)],
            "observed beyond the answers sent: {extra:?}"
        );
    }
}

/// After an error answer nothing else is sent, and the connection closes.
fn check_error_is_last(o: &Outcome) {
    if let Some(i) = o
        .responses
        .iter()
        .position(|r| r.status >= 400 && r.status != 405)
    {
        assert_eq!(
            i + 1,
            o.responses.len(),
            "answers after an error: {:?}",
            o.responses
        );
        assert!(o.closed, "the connection stays open after an error");
        assert!(
            o.responses[i].close,
            "an error answer without Connection: close"
        );
    }
    if let Some(last) = o.responses.last() {
        if last.close {
            assert!(o.closed, "Connection: close but the connection stays open");
        }
    }
    for r in &o.responses[..o.responses.len().saturating_sub(1)] {
        assert!(!r.close, "an answer after one that said Connection: close");
    }
}

/// Splits output into responses, checking each is well-formed HTTP/1.1 with
/// a Content-Length its body matches (a HEAD answer has none).
pub fn parse_responses(mut out: &[u8]) -> Vec<Response> {
    let mut responses = Vec::new();
    while !out.is_empty() {
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "a response head without its end: {:?}",
                    String::from_utf8_lossy(out)
                )
            });
        let head = std::str::from_utf8(&out[..end]).expect("response heads are ASCII");
        out = &out[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "bad status line {status_line:?}"
        );
        let status: u16 = status_line[9..12].parse().expect("a three-digit status");
        assert!(
            status_line.len() > 13 && status_line.as_bytes()[12] == b' ',
            "{status_line:?}"
        );
        if status == 100 {
            continue;
        }
        let mut length = None;
        let mut close = false;
        for line in lines {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad header line {line:?}"));
            assert!(
                !name.is_empty() && name.bytes().all(crate::http::is_tchar),
                "{line:?}"
            );
            if name.eq_ignore_ascii_case("content-length") {
                assert!(length.is_none(), "two Content-Length fields");
                length = Some(value.parse::<usize>().expect("a numeric Content-Length"));
            }
            if name.eq_ignore_ascii_case("connection") && value == "close" {
                close = true;
            }
        }
        let has_body = match (status, length) {
            (204, None) => false,
            (204, Some(_)) => panic!("204 with a Content-Length"),
            (_, None) => panic!("response {status} without Content-Length"),
            (_, Some(n)) => {
                // Either the body is there, or this answered HEAD: then the
                // next response (or nothing) follows at once.
                if out.len() >= n
                    && (out.len() == n || out[n..].starts_with(b"HTTP/1.1 "))
                    && !out.starts_with(b"HTTP/1.1 ")
                {
                    out = &out[n..];
                    true
                } else {
                    assert!(
                        out.is_empty() || out.starts_with(b"HTTP/1.1 "),
                        "body does not match Content-Length {n}"
                    );
                    false
                }
            }
        };
        responses.push(Response {
            status,
            close,
            has_body,
        });
    }
    responses
}

/// One well-formed request of a generated sequence.
#[derive(Debug, Clone)]
pub enum Req {
    Get,
    Head,
    Options,
    /// A method we do not serve, with a Content-Length body.
    PostLength(Vec<u8>),
    /// A chunked body, cut into chunks of these sizes (with extensions and
    /// trailers where `fancy`).
    PostChunked(Vec<u8>, Vec<usize>, bool),
}

impl Req {
    pub fn expected_status(&self) -> u16 {
        match self {
            Req::Get | Req::Head => 200,
            Req::Options => 204,
            Req::PostLength(_) | Req::PostChunked(..) => 405,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Req::Get => out.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Req::Head => {
                out.extend_from_slice(b"HEAD /x?y=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n")
            }
            Req::Options => out.extend_from_slice(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
            Req::PostLength(body) => {
                out.extend_from_slice(
                    format!(
                        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(body);
            }
            Req::PostChunked(body, sizes, fancy) => {
                out.extend_from_slice(
                    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                let mut rest = &body[..];
                for &size in sizes.iter().chain(std::iter::once(&usize::MAX)) {
                    let n = size.clamp(1, rest.len().max(1)).min(rest.len());
                    if n == 0 {
                        break;
                    }
                    let ext = if *fancy { ";ext=\"v\"" } else { "" };
                    out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                out.extend_from_slice(if *fancy {
                    b"0\r\nX-Trailer: t\r\n\r\n"
                } else {
                    b"0\r\n\r\n"
                });
            }
        }
    }
}

/// Sends `requests` (then `tail`, raw bytes) cut at `cuts` and checks each
/// request got exactly its answer, in order, and nothing was taken for a
/// request that was not one (a body, say, holding request bytes).
pub fn run_sequence(
    requests: &[Req],
    tail: &[u8],
    cuts: &[usize],
    write_budget: Option<usize>,
) -> Outcome {
    let mut input = Vec::new();
    for r in requests {
        r.write(&mut input);
    }
    let sent = input.len();
    input.extend_from_slice(tail);
    let outcome = run(&input, cuts, write_budget);
    let answered = outcome.responses.len().min(requests.len());
    for (i, (req, resp)) in requests.iter().zip(&outcome.responses).enumerate() {
        assert_eq!(resp.status, req.expected_status(), "answer {i} to {req:?}");
        assert_eq!(
            resp.has_body,
            !matches!(req, Req::Head | Req::Options),
            "answer {i} to {req:?}"
        );
    }
    assert_eq!(
        answered,
        requests.len(),
        "every well-formed request is answered (input {sent} bytes)"
    );
    let extra = &outcome.responses[requests.len()..];
    if tail.is_empty() {
        assert!(
            extra.is_empty(),
            "answers to requests nobody sent: {extra:?}"
        );
        assert!(!outcome.closed, "a keep-alive connection was closed");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req() -> impl Strategy<Value = Req> {
        // Bodies often hold request bytes, to catch a body taken for a request.
        let body = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            Just(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
            Just(b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        ];
        prop_oneof![
            Just(Req::Get),
            Just(Req::Head),
            Just(Req::Options),
            body.clone().prop_map(Req::PostLength),
            (
                body,
                proptest::collection::vec(1usize..64, 0..8),
                any::<bool>()
            )
                .prop_map(|(b, s, f)| Req::PostChunked(b, s, f)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn well_formed_sequences_are_answered_in_order(
            requests in proptest::collection::vec(req(), 1..12),
            cuts in proptest::collection::vec(0usize..4000, 0..40),
            budget in proptest::option::of(1usize..300),
        ) {
            run_sequence(&requests, b"", &cuts, budget);
        }

        #[test]
        fn a_bad_request_after_good_ones_is_the_last_answer(
            requests in proptest::collection::vec(req(), 0..6),
            bad in prop_oneof![
                Just(&b"GET / HTTP/1.1\r\n\r\n"[..]),
                Just(&b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..]),
                Just(&b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..]),
                Just(&b"GET / HTTP/1.1\nHost: a\n\n"[..]),
                Just(&b"GET / HTTP/9.9\r\nHost: a\r\n\r\n"[..]),
            ],
            trailing in proptest::collection::vec(any::<u8>(), 0..100),
            cuts in proptest::collection::vec(0usize..2000, 0..20),
        ) {
            let tail = [bad, &trailing[..]].concat();
            let o = run_sequence(&requests, &tail, &cuts, None);
            prop_assert_eq!(o.responses.len(), requests.len() + 1);
            prop_assert!(o.responses.last().is_some_and(|r| r.status >= 400 && r.close));
            prop_assert!(o.closed);
        }

        #[test]
        fn arbitrary_bytes_keep_the_invariants(
            input in proptest::collection::vec(any::<u8>(), 0..3000),
            cuts in proptest::collection::vec(0usize..3000, 0..30),
        ) {
            run(&input, &cuts, None);
        }
    }

    #[test]
    fn a_client_that_never_reads_is_held_to_bounded_memory() {
        let mut input = Vec::new();
        for _ in 0..2000 {
            Req::Get.write(&mut input);
        }
        // The socket takes nothing: output piles up only as far as one read.
        let o = run(&input, &[], Some(0));
        assert!(o.responses.is_empty());
    }
}
