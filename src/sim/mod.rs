//! A simulated client for the connection state machine (`conn.rs`), for the
//! fuzz target and the property tests: it feeds a connection its input in
//! arbitrary pieces through the same `Conn` the worker uses, over an
//! in-memory [`Transport`], and checks what came out against invariants:
//! every answer is a well-formed HTTP/1.1 response with a correct
//! Content-Length, requests are answered at most once and in order, nothing
//! follows an error answer and the connection is then closed, and a
//! connection never holds more than its bounded buffers; and the observer
//! (the access log's hook) learns of exactly the answers sent, in order,
//! plus at most one request the client cut short. The simulated server has
//! a few `[[route]]`s (see [`ROUTED`]), so routed requests, keep_path
//! redirects (with bodies) and the maintenance and draining states go
//! through the same checks. Built only for tests and fuzzing.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::http::answer::Responses;
use crate::http::conn::{Buffers, Conn, Ctx, Interest, Timeouts};
use crate::http::parse::{Limits, Reject};
use crate::http::route::{Answer, Methods, PathMatch, RouteSpec};
use crate::http::template::ResponseSpec;
use crate::obs::exchange::{Exchange, Observer};

/// The body the simulated server answers with; it never looks like a
/// status line, so a missing body is told apart from a present one.
pub const BODY: &[u8] = b"Hello, World!\n";

/// Input delivered in scripted pieces, output collected; a write may take
/// only part of what it is given, to exercise the pending-output path.
/// `tls_sim.rs` runs rustls over it too.
#[derive(Default)]
pub struct Scripted {
    pub(crate) pieces: VecDeque<Vec<u8>>,
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

impl crate::http::transport::Transport for Scripted {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shut = true;
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
    /// The `Location` field, if any.
    pub location: Option<String>,
}

/// The simulated worker's timeouts (`tls_sim.rs` uses them too).
pub fn timeouts() -> Timeouts {
    Timeouts {
        header: Duration::from_secs(10),
        keepalive: Duration::from_secs(10),
        drain_idle: Duration::from_secs(1),
        min_rate: 512,
    }
}

pub fn limits() -> Limits {
    Limits {
        max_header_bytes: 1024,
        max_body_bytes: 4096,
    }
}

/// The simulated server's routes: one of each kind, a host route, a POST
/// route, and a keep_path redirect that takes POST (a body to read after
/// the head's bytes are gone). None catches the paths of the plain
/// [`Req`]s (`/`, `/x`, `*`).
pub fn routes() -> Vec<RouteSpec> {
    let stat = |status, body: &str| {
        Answer::Static(ResponseSpec {
            status,
            content_type: "text/plain".into(),
            headers: vec![("X-Route".into(), "yes".into())],
            body: body.as_bytes().to_vec(),
        })
    };
    let route = |path, methods: &[&str], answer| RouteSpec {
        path,
        host: None,
        methods: Methods::parse(methods.iter().copied()).expect("known methods"),
        answer,
    };
    let exact = |p: &str| PathMatch::Exact(p.into());
    vec![
        route(exact("/r/static"), &["GET"], stat(201, "static\n")),
        route(
            PathMatch::Prefix("/r/old/".into()),
            &["GET", "POST"],
            Answer::Redirect {
                status: 308,
                location: "https://new.example/n/".into(),
                keep_path: true,
                headers: Vec::new(),
            },
        ),
        route(exact("/r/health"), &["GET"], Answer::Health),
        route(exact("/r/post"), &["POST"], stat(202, "posted\n")),
        RouteSpec {
            host: Some("h.example".into()),
            ..route(exact("/r/host"), &["GET"], stat(203, "host\n"))
        },
    ]
}

fn maintenance_spec() -> ResponseSpec {
    ResponseSpec {
        status: 503,
        content_type: "text/plain".into(),
        headers: vec![("Retry-After".into(), "5".into())],
        body: b"maintenance\n".to_vec(),
    }
}

fn responses() -> Responses {
    let spec = ResponseSpec {
        status: 200,
        content_type: "text/plain".into(),
        headers: Vec::new(),
        body: BODY.to_vec(),
    };
    let mut r = Responses::with_routes(&spec, &routes(), &maintenance_spec());
    r.set_date(b"Sun, 06 Nov 1994 08:49:37 GMT");
    r
}

/// The worker's state the connection sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub draining: bool,
    pub maintenance: bool,
    /// A `proxy_protocol` listener's connection: a PROXY header first.
    pub proxied: bool,
}

/// Runs `input`, cut at `cuts` (offsets, any order, out-of-range ignored),
/// through one connection; `write_budget` limits how much output the
/// socket takes per readable event (None: all). Panics when an invariant
/// breaks.
pub fn run(input: &[u8], cuts: &[usize], write_budget: Option<usize>) -> Outcome {
    run_in(State::default(), input, cuts, write_budget)
}

/// [`run`] with the worker draining or in maintenance.
pub fn run_in(state: State, input: &[u8], cuts: &[usize], write_budget: Option<usize>) -> Outcome {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < input.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let given_cuts = cuts.clone();
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
        timeouts: timeouts(),
        now: Instant::now(),
        draining: state.draining,
        maintenance: state.maintenance,
        observer: Some(&recorder),
        counters: None,
        board: None,
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
    if state.proxied {
        conn.expect_proxy_header();
    }
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
    if state.proxied {
        check_proxied(state, input, &given_cuts, write_budget, &outcome);
    }
    outcome
}

/// A proxied connection answers exactly what the same bytes without
/// their PROXY header get on a plain one, or, without a valid header,
/// nothing at all: the header's bytes never reach the HTTP parser.
fn check_proxied(
    state: State,
    input: &[u8],
    cuts: &[usize],
    write_budget: Option<usize>,
    o: &Outcome,
) {
    match crate::http::proxy::parse(input) {
        crate::http::proxy::Parsed::Done { len, .. } => {
            let cuts: Vec<usize> = cuts.iter().filter_map(|c| c.checked_sub(len)).collect();
            let plain = run_in(
                State {
                    proxied: false,
                    ..state
                },
                &input[len..],
                &cuts,
                write_budget,
            );
            assert_eq!(
                o.responses, plain.responses,
                "answers differ behind a PROXY header"
            );
        }
        crate::http::proxy::Parsed::Invalid => {
            assert!(
                o.responses.is_empty(),
                "answered without a valid PROXY header"
            );
            assert!(o.closed, "left open without a valid PROXY header");
        }
        crate::http::proxy::Parsed::Partial => {
            assert!(o.responses.is_empty(), "answered before the PROXY header");
        }
    }
}

/// Decodes a fuzz input of the `request` target and runs it: a leading
/// 0xFD byte and the next set the state (bit 0 draining, bit 1
/// maintenance, bit 2 a `proxy_protocol` listener's connection), then 0xFE and a byte limit each write, then every 0xFF
/// is a cut (not delivered). Shared with the corpus replay test.
pub fn run_encoded(data: &[u8]) -> Outcome {
    let (state, data) = match data {
        [0xFD, flags, rest @ ..] => (
            State {
                draining: flags & 1 != 0,
                maintenance: flags & 2 != 0,
                proxied: flags & 4 != 0,
            },
            rest,
        ),
        _ => (State::default(), data),
    };
    let (budget, data) = match data {
        [0xFE, b, rest @ ..] => (Some(usize::from(*b) + 1), rest),
        _ => (None, data),
    };
    let mut input = Vec::with_capacity(data.len());
    let mut cuts = Vec::new();
    for &b in data {
        if b == 0xFF {
            cuts.push(input.len());
        } else {
            input.push(b);
        }
    }
    run_in(state, &input, &cuts, budget)
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

/// After an error answer (a [`Reject`]'s status: 405 and the 503 of
/// maintenance or draining are answers, not errors) nothing else is sent,
/// and the connection closes.
fn check_error_is_last(o: &Outcome) {
    if let Some(i) = o
        .responses
        .iter()
        .position(|r| Reject::ALL.iter().any(|e| e.status() == r.status))
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
        let mut location = None;
        for line in lines {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad header line {line:?}"));
            assert!(
                !name.is_empty() && name.bytes().all(crate::http::parse::is_tchar),
                "{line:?}"
            );
            if name.eq_ignore_ascii_case("content-length") {
                assert!(length.is_none(), "two Content-Length fields");
                length = Some(value.parse::<usize>().expect("a numeric Content-Length"));
            }
            if name.eq_ignore_ascii_case("connection") && value == "close" {
                close = true;
            }
            if name.eq_ignore_ascii_case("location") {
                location = Some(value.to_owned());
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
            location,
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
    /// One of [`ROUTED`], by index (modulo its length).
    Routed(usize),
}

/// A routed request of the simulated server: its bytes, the answer's
/// status, whether it has a body, its `Location`.
pub struct Routed {
    pub request: &'static [u8],
    pub status: u16,
    pub has_body: bool,
    pub location: Option<&'static str>,
    /// A health route: maintenance leaves it alone, draining makes it 503.
    pub health: bool,
}

const fn routed(
    request: &'static [u8],
    status: u16,
    has_body: bool,
    location: Option<&'static str>,
) -> Routed {
    Routed {
        request,
        status,
        has_body,
        location,
        health: false,
    }
}

/// Requests the routes of [`routes`] answer (and some they refuse).
pub const ROUTED: [Routed; 12] = [
    routed(b"GET /r/static HTTP/1.1\r\nHost: a\r\n\r\n", 201, true, None),
    routed(b"GET /r/static?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", 201, true, None),
    routed(b"HEAD /r/static HTTP/1.1\r\nHost: a\r\n\r\n", 201, false, None),
    routed(
        b"GET /r/old/a/b?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        308,
        true,
        Some("https://new.example/n/a/b?x=1"),
    ),
    routed(
        b"POST /r/old/p?q HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nGET /",
        308,
        true,
        Some("https://new.example/n/p?q"),
    ),
    routed(
        b"POST /r/old/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        308,
        true,
        Some("https://new.example/n/c"),
    ),
    Routed {
        health: true,
        ..routed(b"GET /r/health HTTP/1.1\r\nHost: a\r\n\r\n", 200, true, None)
    },
    routed(
        b"POST /r/post HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        202,
        true,
        None,
    ),
    routed(b"GET /r/post HTTP/1.1\r\nHost: a\r\n\r\n", 405, true, None),
    routed(b"OPTIONS /r/post HTTP/1.1\r\nHost: a\r\n\r\n", 204, false, None),
    routed(b"GET /r/host HTTP/1.1\r\nHost: H.Example:81\r\n\r\n", 203, true, None),
    routed(b"GET /r/host HTTP/1.1\r\nHost: other\r\n\r\n", 200, true, None),
];

impl Req {
    pub fn expected_status(&self) -> u16 {
        match self {
            Req::Get | Req::Head => 200,
            Req::Options => 204,
            Req::PostLength(_) | Req::PostChunked(..) => 405,
            Req::Routed(i) => ROUTED[i % ROUTED.len()].status,
        }
    }

    fn has_body(&self) -> bool {
        match self {
            Req::Head | Req::Options => false,
            Req::Routed(i) => ROUTED[i % ROUTED.len()].has_body,
            _ => true,
        }
    }

    fn location(&self) -> Option<&'static str> {
        match self {
            Req::Routed(i) => ROUTED[i % ROUTED.len()].location,
            _ => None,
        }
    }

    fn is_health(&self) -> bool {
        matches!(self, Req::Routed(i) if ROUTED[i % ROUTED.len()].health)
    }

    /// The answer in `state`: (status, has_body).
    fn expected_in(&self, state: State) -> (u16, bool) {
        let head = matches!(self, Req::Head)
            || matches!(self, Req::Routed(i) if ROUTED[i % ROUTED.len()].request.starts_with(b"HEAD "));
        if self.is_health() && state.draining {
            (503, true)
        } else if state.maintenance && !self.is_health() {
            (503, !head)
        } else {
            (self.expected_status(), self.has_body())
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Req::Get => out.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Req::Head => {
                out.extend_from_slice(b"HEAD /x?y=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n")
            }
            Req::Options => out.extend_from_slice(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
            Req::Routed(i) => out.extend_from_slice(ROUTED[i % ROUTED.len()].request),
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
    run_sequence_in(State::default(), requests, tail, cuts, write_budget)
}

/// [`run_sequence`] with the worker draining or in maintenance. Draining,
/// every answer closes: only the first request is answered.
pub fn run_sequence_in(
    state: State,
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
    let outcome = run_in(state, &input, cuts, write_budget);
    if state.draining {
        // With no request, the tail may still draw an error answer.
        if let Some(first) = requests.first() {
            let got = outcome.responses.first().map(|r| (r.status, r.has_body));
            assert_eq!(
                got,
                Some(first.expected_in(state)),
                "draining: the first answer"
            );
        }
        assert!(
            outcome.responses.len() <= 1,
            "draining: one answer, then close"
        );
        assert!(
            outcome.closed || requests.is_empty(),
            "draining: the connection closes"
        );
        return outcome;
    }
    let answered = outcome.responses.len().min(requests.len());
    for (i, (req, resp)) in requests.iter().zip(&outcome.responses).enumerate() {
        let (status, has_body) = req.expected_in(state);
        assert_eq!(resp.status, status, "answer {i} to {req:?}");
        assert_eq!(resp.has_body, has_body, "answer {i} to {req:?}");
        if !state.maintenance {
            assert_eq!(
                resp.location.as_deref(),
                req.location(),
                "answer {i} to {req:?}"
            );
        }
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

    /// A connection fed `pieces` one read at a time, at the times given.
    struct Timed {
        conn: Conn<Scripted>,
        bufs: Buffers,
        responses: Responses,
        timeouts: Timeouts,
        t0: Instant,
    }

    impl Timed {
        fn new(min_rate: u64) -> Timed {
            let responses = responses();
            let timeouts = Timeouts {
                header: Duration::from_secs(10),
                keepalive: Duration::from_secs(5),
                drain_idle: Duration::from_secs(1),
                min_rate,
            };
            let t0 = Instant::now();
            let ctx = Ctx {
                responses: &responses,
                limits: limits(),
                timeouts,
                now: t0,
                draining: false,
                maintenance: false,
                observer: None,
                counters: None,
                board: None,
            };
            let stream = Scripted {
                pieces: VecDeque::new(),
                eof: false,
                written: Vec::new(),
                write_budget: None,
                shut: false,
            };
            let conn = Conn::new(stream, &ctx);
            Timed {
                conn,
                bufs: Buffers::new(&limits()),
                responses,
                timeouts,
                t0,
            }
        }

        /// Delivers `bytes` at `ms` after accept.
        fn feed(&mut self, ms: u64, bytes: &[u8]) -> Interest {
            self.conn.stream_mut().pieces.push_back(bytes.to_vec());
            let ctx = Ctx {
                responses: &self.responses,
                limits: limits(),
                timeouts: self.timeouts,
                now: self.t0 + Duration::from_millis(ms),
                draining: false,
                maintenance: false,
                observer: None,
                counters: None,
                board: None,
            };
            self.conn.on_readable(&ctx, &mut self.bufs)
        }

        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }
    }

    #[test]
    fn a_trickling_head_is_due_at_the_minimum_rate_and_answered_408() {
        let mut c = Timed::new(512);
        c.feed(100, b"GET / HT");
        c.feed(1100, b"TP/1.1\r\n");
        // 16 bytes: RATE_GRACE plus 16/512 s from the head's first byte,
        // well before header_timeout (10 s from accept).
        assert_eq!(
            c.conn.deadline(),
            c.at(100) + crate::http::conn::RATE_GRACE + Duration::from_millis(31)
        );
        assert!(c.conn.is_slow());
        assert_eq!(
            c.conn.standing(),
            crate::http::conn::Standing::Head {
                since: c.at(100),
                got: 16
            }
        );
        let ctx = Ctx {
            responses: &c.responses,
            limits: limits(),
            timeouts: c.timeouts,
            now: c.at(2200),
            draining: false,
            maintenance: false,
            observer: None,
            counters: None,
            board: None,
        };
        let mut bufs = Buffers::new(&limits());
        assert_eq!(c.conn.on_timeout(&ctx, &mut bufs), Interest::Read);
        let out = String::from_utf8_lossy(&c.conn.stream().written).into_owned();
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
        assert!(c.conn.is_lingering());
    }

    #[test]
    fn a_head_that_keeps_up_stays_ahead_and_no_minimum_means_header_timeout() {
        // 769 bytes over 800 ms, well above 512/s: each byte buys time, so
        // the deadline stays beyond the grace from now.
        let mut c = Timed::new(512);
        c.feed(0, b"GET / HTTP/1.1\r\n");
        let filler = format!("X-Pad: {}\r\n", "a".repeat(242));
        for t in [0, 400, 800] {
            c.feed(t, filler.as_bytes());
        }
        assert_eq!(
            c.conn.deadline(),
            c.at(0) + crate::http::conn::RATE_GRACE + Duration::from_millis(769 * 1000 / 512)
        );
        assert!(c.conn.deadline() > c.at(800) + crate::http::conn::RATE_GRACE);
        // Off: a trickle waits for header_timeout (10 s from accept).
        let mut c = Timed::new(0);
        c.feed(100, b"G");
        c.feed(5000, b"E");
        assert_eq!(c.conn.deadline(), c.at(10_000));
        assert!(!c.conn.is_slow());
    }

    #[test]
    fn a_trickling_body_is_due_at_the_minimum_rate_too() {
        let mut c = Timed::new(512);
        c.feed(
            0,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n",
        );
        assert_eq!(c.conn.standing(), crate::http::conn::Standing::Busy);
        c.feed(500, b"0123456789");
        // 10 bytes since the body began at 0 ms; the stretch limit is
        // 500 ms + header_timeout.
        assert_eq!(
            c.conn.deadline(),
            c.at(0) + crate::http::conn::RATE_GRACE + Duration::from_millis(19)
        );
        assert!(c.conn.is_slow());
    }

    #[test]
    fn standing_follows_the_phases() {
        let mut c = Timed::new(512);
        assert_eq!(
            c.conn.standing(),
            crate::http::conn::Standing::Idle { since: c.at(0) }
        );
        c.feed(300, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            c.conn.standing(),
            crate::http::conn::Standing::Idle { since: c.at(300) }
        );
        c.feed(400, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nrest");
        assert_eq!(
            c.conn.standing(),
            crate::http::conn::Standing::Lingering { since: c.at(400) }
        );
    }

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
            (0..ROUTED.len()).prop_map(Req::Routed),
            (0..ROUTED.len()).prop_map(Req::Routed),
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
        fn maintenance_answers_everything_but_health(
            requests in proptest::collection::vec(req(), 1..12),
            cuts in proptest::collection::vec(0usize..4000, 0..40),
            budget in proptest::option::of(1usize..300),
        ) {
            let state = State { maintenance: true, draining: false, ..State::default() };
            run_sequence_in(state, &requests, b"", &cuts, budget);
        }

        #[test]
        fn draining_answers_once_and_closes(
            requests in proptest::collection::vec(req(), 1..6),
            cuts in proptest::collection::vec(0usize..4000, 0..40),
            maintenance in any::<bool>(),
        ) {
            let state = State { maintenance, draining: true, ..State::default() };
            run_sequence_in(state, &requests, b"", &cuts, None);
        }

        #[test]
        fn a_proxy_header_is_invisible_to_http(
            requests in proptest::collection::vec(req(), 0..6),
            v2 in any::<bool>(),
            source in any::<[u8; 4]>(),
            cuts in proptest::collection::vec(0usize..3000, 0..30),
            budget in proptest::option::of(1usize..300),
        ) {
            let mut input = if v2 {
                let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
                h.extend_from_slice(&source);
                h.extend_from_slice(&[127, 0, 0, 1, 0x10, 0x00, 0, 80]);
                h
            } else {
                let [a, b, c, d] = source;
                format!("PROXY TCP4 {a}.{b}.{c}.{d} 127.0.0.1 4096 80\r\n").into_bytes()
            };
            for r in &requests {
                r.write(&mut input);
            }
            let state = State { proxied: true, ..State::default() };
            // run_in compares with the same requests on a plain connection.
            let o = run_in(state, &input, &cuts, budget);
            prop_assert_eq!(o.responses.len(), requests.len());
        }

        #[test]
        fn arbitrary_bytes_keep_the_invariants(
            input in proptest::collection::vec(any::<u8>(), 0..3000),
            cuts in proptest::collection::vec(0usize..3000, 0..30),
            proxied in any::<bool>(),
        ) {
            run_in(State { proxied, ..State::default() }, &input, &cuts, None);
        }
    }

    // Found by the sequence fuzz target: draining, no request, a tail that
    // is not one: its 400 is the one answer, then the connection closes.
    #[test]
    fn draining_with_only_a_bad_tail_answers_it_and_closes() {
        let state = State {
            draining: true,
            ..State::default()
        };
        let out = run_sequence_in(state, &[], b"\x16\t\n\xe8\r\n\r\n", &[], None);
        assert_eq!(out.responses.len(), 1);
        assert_eq!(out.responses[0].status, 400);
        assert!(out.closed);
    }

    /// The fuzz corpus holds the cases that matter (routes and PROXY
    /// headers among them): every seed runs here too, and the routed and
    /// proxied ones are answered as expected.
    #[test]
    fn the_fuzz_corpus_keeps_the_invariants() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request");
        let mut routed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let o = run_encoded(&data);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let statuses: Vec<u16> = o.responses.iter().map(|r| r.status).collect();
            let want: &[u16] = match name.as_str() {
                "route_static" => &[201, 201],
                "route_keep_path" => &[308],
                "route_keep_path_body" => &[308, 308],
                "route_health_draining" => &[503],
                "route_maintenance" => &[200, 503, 503],
                "route_methods" => &[405, 204, 405],
                "route_host" => &[203, 200, 203],
                "proxy_v1" => &[200, 201],
                "proxy_v1_split" | "proxy_v2" | "proxy_v2_local" => &[200],
                "proxy_missing" | "proxy_lf_only" => &[],
                _ => continue,
            };
            routed += 1;
            assert_eq!(statuses, want, "{name}");
        }
        assert_eq!(routed, 13, "the routed seeds are in {}", dir.display());
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
