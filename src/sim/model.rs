//! The request model of the simulations: well-formed requests ([`Req`](crate::sim::Req)),
//! the routed ones with the answers they expect ([`ROUTED`](crate::sim::ROUTED)), and
//! [`run_sequence_in`](crate::sim::run_sequence_in), which sends a sequence through the
//! driver and checks that each request got exactly its own answer, in order.

use super::{run_in, Outcome, State};

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
