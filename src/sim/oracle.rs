//! The invariants of the simulations: what the bytes a connection wrote
//! must look like (every answer well-formed HTTP/1.1 with a correct
//! Content-Length, nothing after an error, the connection then closed),
//! and what its observer must have learnt (exactly the answers sent, in
//! order). Pure checks over a finished run's output; running the
//! connection is the driver's (`mod.rs`), which requests expect which
//! answers the request model's (`model.rs`).

use crate::http::parse::Reject;
use crate::obs::exchange::{Exchange, Observer};

/// Records what the connection tells its observer: (status, body bytes).
#[derive(Default)]
pub(crate) struct Recorder(pub(crate) std::cell::RefCell<Vec<(u16, u64)>>);

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

/// The observer saw every answer sent, in order, with a body exactly when
/// the answer had one; beyond those only answers still waiting for a client
/// that does not read, or one request cut short by EOF (400, no body).
pub(crate) fn check_observed(seen: &[(u16, u64)], o: &Outcome, stalled: bool) {
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
pub(crate) fn check_error_is_last(o: &Outcome) {
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
