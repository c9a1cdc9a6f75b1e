//! The request model of the simulations: well-formed requests ([`Req`](crate::sim::Req)),
//! the routed ones with the answers they expect ([`ROUTED`](crate::sim::ROUTED)), and
//! [`run_sequence_in`](crate::sim::run_sequence_in), which sends a sequence through the
//! driver and checks that each request got exactly its own answer, in order.
//! File requests ([`Req::File`](crate::sim::Req::File)) have paths made of fragments
//! (`files::FRAGMENTS`): their answer is exact where the path is one of
//! `files::KNOWN`, else one of the answers a plain GET of a files route
//! may get, a whole file of the tree for a 200.

use super::files;
use super::{run_in, Outcome, Response, State};

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
    /// A GET (HEAD where `head`) beneath the files route: the path after
    /// its prefix, a valid request target (see `files::path_from`).
    File {
        path: String,
        head: bool,
    },
}

/// What answer a request expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// This status, with a body or without.
    Exact(u16, bool),
    /// A files answer to a path not in `files::KNOWN`: a status such an
    /// answer to a plain GET has, a body unless HEAD.
    File { head: bool },
}

/// Statuses a plain GET of a files route may get (no validators, no Range).
const FILE_GET_STATUSES: [u16; 4] = [200, 301, 400, 404];

impl Expect {
    /// Panics unless `r` is the answer expected.
    fn check(self, r: &Response, what: &str) {
        match self {
            Expect::Exact(status, has_body) => {
                assert_eq!(r.status, status, "{what}");
                assert_eq!(r.has_body, has_body, "{what}");
            }
            Expect::File { head } => {
                assert!(FILE_GET_STATUSES.contains(&r.status), "{what}: {r:?}");
                assert_eq!(r.has_body, !head, "{what}");
            }
        }
    }
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
            // What most paths get; `expect_in` knows better.
            Req::File { path, .. } => files::known(path).map_or(404, |(status, _)| status),
        }
    }

    fn has_body(&self) -> bool {
        match self {
            Req::Head | Req::Options => false,
            Req::Routed(i) => ROUTED[i % ROUTED.len()].has_body,
            Req::File { head, .. } => !head,
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

    /// The answer in `state`.
    fn expect_in(&self, state: State) -> Expect {
        let head = matches!(self, Req::Head | Req::File { head: true, .. })
            || matches!(self, Req::Routed(i) if ROUTED[i % ROUTED.len()].request.starts_with(b"HEAD "));
        if self.is_health() && state.draining {
            Expect::Exact(503, true)
        } else if state.maintenance && !self.is_health() {
            Expect::Exact(503, !head)
        } else if let Req::File { path, head } = self {
            match files::known(path) {
                Some((status, _)) => Expect::Exact(status, !head),
                None => Expect::File { head: *head },
            }
        } else {
            Expect::Exact(self.expected_status(), self.has_body())
        }
    }

    /// Panics unless `r` is this request's answer in `state` (`what` says
    /// which, for the message): its status and body, and its `Location`.
    fn check_answer(&self, state: State, r: &Response, what: &str) {
        self.expect_in(state).check(r, what);
        if state.maintenance {
            return;
        }
        let Req::File { path, head } = self else {
            assert_eq!(r.location.as_deref(), self.location(), "{what}");
            return;
        };
        match r.status {
            // The slash form of what was asked, beneath the prefix.
            301 => assert!(
                r.location
                    .as_deref()
                    .is_some_and(|l| l.starts_with(files::PREFIX.trim_end_matches('/'))
                        && l.split('?').next().is_some_and(|p| p.ends_with('/'))),
                "{what}: {r:?}"
            ),
            _ => assert_eq!(r.location, None, "{what}"),
        }
        if let (Some((200, Some(body))), false) = (files::known(path), head) {
            assert_eq!(r.body, body, "{what}");
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
            Req::File { path, head } => {
                let method = if *head { "HEAD" } else { "GET" };
                out.extend_from_slice(
                    format!(
                        "{method} {}{path} HTTP/1.1\r\nHost: a\r\n\r\n",
                        files::PREFIX
                    )
                    .as_bytes(),
                );
            }
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
            let got = outcome.responses.first();
            let got = got.unwrap_or_else(|| panic!("draining: no answer to {first:?}"));
            first.check_answer(state, got, "draining: the first answer");
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
        req.check_answer(state, resp, &format!("answer {i} to {req:?}"));
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
