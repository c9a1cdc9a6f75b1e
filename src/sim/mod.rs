//! A simulated client for the connection state machine (`http/conn/`), for
//! the fuzz targets and the property tests: it feeds a connection its input
//! in arbitrary pieces through the same `Conn` the worker uses, over an
//! in-memory [`Transport`](crate::http::transport::Transport), and checks
//! what came out against invariants. This file is the driver: the
//! simulated server (its routes and states) and the loop that runs one
//! connection to its end, bounding what it holds; the pieces are
//!
//! - `pipe.rs`: the in-memory socket, [`Scripted`] (`tls/sim.rs` runs
//!   rustls over it too);
//! - `oracle.rs`: the invariants over a run's output and its observer
//!   (every answer well-formed HTTP/1.1 with a correct Content-Length,
//!   answered at most once and in order, nothing after an error answer and
//!   the connection then closed; the observer learns of exactly the answers
//!   sent, in order, plus at most one request the client cut short);
//! - `model.rs`: the request model, [`Req`] and the routed requests of
//!   [`ROUTED`], and [`run_sequence_in`], which checks each request got
//!   exactly its own answer.
//!
//! The simulated server has a few `[[route]]`s (see [`routes`]), so routed
//! requests, keep_path redirects (with bodies) and the maintenance and
//! draining states go through the same checks. Built only for tests and
//! fuzzing.

/// The files route and the directory tree it serves, made once per process.
pub mod files;
/// Well-formed requests, the answers they expect, and sequences of them.
mod model;
/// What a run's output and its observer must look like.
mod oracle;
/// The in-memory socket a simulated connection reads from and writes to.
mod pipe;
/// The simulations' own unit and property tests.
#[cfg(test)]
mod tests;

pub use model::{run_sequence, run_sequence_in, Req, Routed, ROUTED};
pub use oracle::{parse_responses, Outcome, Response};
pub use pipe::Scripted;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::http::answer::Responses;
use crate::http::conn::{Buffers, Conn, Ctx, Interest, Timeouts};
use crate::http::parse::Limits;
use crate::http::route::{Answer, Methods, PathMatch, RouteSpec};
use crate::http::template::ResponseSpec;
use oracle::{check_error_is_last, check_files, check_observed, Recorder};

/// The body the simulated server answers with; it never looks like a
/// status line, so a missing body is told apart from a present one.
pub const BODY: &[u8] = b"Hello, World!\n";

/// The simulated worker's timeouts (`tls/sim.rs` uses them too).
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
/// route, a keep_path redirect that takes POST (a body to read after
/// the head's bytes are gone), and a files route over the tree of
/// [`files`]. None catches the paths of the plain
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
        files::route(),
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
    let written = std::mem::take(&mut conn.stream_mut().written);
    let outcome = Outcome {
        responses: parse_responses(&written),
        closed,
    };
    conn.release(&mut bufs);
    let seen = recorder.0.borrow();
    check_error_is_last(&outcome, &seen);
    check_observed(&seen, &outcome, write_budget == Some(0));
    check_files(&written, &seen, &outcome);
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
