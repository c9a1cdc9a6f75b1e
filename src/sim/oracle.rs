//! The invariants of the simulations: what the bytes a connection wrote
//! must look like (every answer well-formed HTTP/1.1 with a correct
//! Content-Length, nothing after an error, the connection then closed; no
//! byte of the file outside the files route's root, and files answers with
//! a status and body they may have), and what its observer must have
//! learnt (exactly the answers sent, in order, with the body bytes the
//! client got). Pure checks over a finished run's output; running the
//! connection is the driver's (`mod.rs`), which requests expect which
//! answers the request model's (`model.rs`).

use super::files;
use crate::http::parse::Reject;
use crate::obs::exchange::{Exchange, Observer};

/// What the connection told its observer of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub status: u16,
    pub body: u64,
    /// The files route answered (not a refusal of the request).
    pub files: bool,
}

/// Records what the connection tells its observer.
#[derive(Default)]
pub(crate) struct Recorder(pub(crate) std::cell::RefCell<Vec<Seen>>);

impl Observer for Recorder {
    fn answered(&self, e: &Exchange) {
        assert!(
            !e.head.is_empty() || e.status == 400,
            "an observed answer without its request"
        );
        self.0.borrow_mut().push(Seen {
            status: e.status,
            body: e.body_bytes,
            files: e.route == Some(files::ROUTE_NAME),
        });
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
    /// The body as received (empty without one), Content-Length bytes.
    pub body: Vec<u8>,
}

/// The observer saw every answer sent, in order, with a body exactly when
/// the answer had one, of the length the client received; beyond those
/// only answers still waiting for a client that does not read, or one
/// request cut short by EOF (400, no body).
pub(crate) fn check_observed(seen: &[Seen], o: &Outcome, stalled: bool) {
    assert!(
        seen.len() >= o.responses.len(),
        "answers sent {:?}, observed {seen:?}",
        o.responses
    );
    for (r, s) in o.responses.iter().zip(seen) {
        assert_eq!(
            r.status, s.status,
            "observed {seen:?} for {:?}",
            o.responses
        );
        assert_eq!(
            r.has_body,
            s.body > 0,
            "observed {seen:?} for {:?}",
            o.responses
        );
        assert_eq!(
            r.body.len() as u64,
            s.body,
            "observed body bytes {seen:?} for {:?}",
            o.responses
        );
    }
    let extra = &seen[o.responses.len()..];
    if !stalled {
        assert!(
            extra.is_empty()
                || extra
                    == [Seen {
                        status: 400,
                        body: 0,
                        files: false
                    }],
            "observed beyond the answers sent: {extra:?}"
        );
    }
}

/// Nothing the server wrote holds the secret outside the files route's
/// root, whatever was asked; every files answer has a status such a route
/// gives and a body it may send: a whole file of the tree for a 200, a
/// piece of one for a 206, a short text otherwise (`files::body_ok`),
/// where it has one (not for HEAD or 304).
pub(crate) fn check_files(written: &[u8], seen: &[Seen], o: &Outcome) {
    assert!(
        !files::contains(written, files::SECRET),
        "the secret outside root was sent: {:?}",
        String::from_utf8_lossy(written)
    );
    for (r, s) in o.responses.iter().zip(seen).filter(|(_, s)| s.files) {
        assert!(
            files::STATUSES.contains(&r.status),
            "a files answer {} ({:?})",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !r.has_body || files::body_ok(r.status, &r.body),
            "a files answer {} {s:?} with the body {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
}

/// After an error answer (a [`Reject`]'s status: 405 and the 503 of
/// maintenance or draining are answers, not errors; so is a files route's
/// 400 for a path it will not look up) nothing else is sent, and the
/// connection closes.
pub(crate) fn check_error_is_last(o: &Outcome, seen: &[Seen]) {
    let files = |i: usize| seen.get(i).is_some_and(|s| s.files);
    if let Some(i) = o
        .responses
        .iter()
        .enumerate()
        .position(|(i, r)| !files(i) && Reject::ALL.iter().any(|e| e.status() == r.status))
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
        let mut body = Vec::new();
        let has_body = match (status, length) {
            (204, None) => false,
            (204, Some(_)) => panic!("204 with a Content-Length"),
            // A files route's Not Modified: no body, and no length to
            // mistake for the body's (RFC 9110 8.6 lets it be left out).
            (304, None) => false,
            (_, None) => panic!("response {status} without Content-Length"),
            (_, Some(n)) => {
                // Either the body is there, or this answered HEAD: then the
                // next response (or nothing) follows at once.
                if out.len() >= n
                    && (out.len() == n || out[n..].starts_with(b"HTTP/1.1 "))
                    && !out.starts_with(b"HTTP/1.1 ")
                {
                    body = out[..n].to_vec();
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
            body,
        });
    }
    responses
}
