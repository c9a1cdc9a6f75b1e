//! HTTP/2 requests answered by the HTTP/1.1 code: a stream's request
//! becomes an HTTP/1.1 head (`:authority` as `Host`), which goes through
//! `http::parse::parse_head` (every check and limit), `Responses::route`
//! and `Responses::answer` as on an HTTP/1.1 connection, so routes,
//! health and its drain, maintenance and the status pages answer the
//! same. The HTTP/1.1 answer's bytes are then split into a status, a
//! field list for HPACK (names lower-cased, connection-specific fields
//! dropped, RFC 9113 §8.2.2) and a body.

use super::request::Request;
use crate::http::conn::Ctx;
use crate::http::parse::{self, Parsed, Reject};
use crate::http::route::Choice;
use crate::http::template::Persistence;
use crate::http::transport::FileBody;

/// What an HTTP/1.1 answer was made of.
pub struct Made {
    pub status: u16,
    pub file: Option<FileBody>,
    /// What chose the answer (None for a refusal), for the access log.
    pub choice: Option<Choice>,
}

/// Writes the HTTP/1.1 head of `req` into `head`: request line, `Host`
/// from `:authority` (a `host` field only without one), the other fields
/// as they came (cookie crumbs as separate fields, which HTTP/1.1 parsing
/// takes as well).
pub fn h1_head(req: &Request, head: &mut Vec<u8>) {
    let authority = req.authority();
    let target = req.path().or(authority).unwrap_or(b"/");
    head.extend_from_slice(req.method());
    head.push(b' ');
    head.extend_from_slice(target);
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        field(head, b"host", a);
    }
    for (name, value) in req.headers() {
        if name == b"host" && authority.is_some() {
            continue;
        }
        field(head, name, value);
    }
    head.extend_from_slice(b"\r\n");
}

fn field(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// Answers the HTTP/1.1 head `head` into `out` exactly as an HTTP/1.1
/// connection would (keep-alive persistence: the connection fields are
/// dropped by [`split`] anyway).
pub fn make(head: &[u8], client: Option<std::net::IpAddr>, ctx: &Ctx, out: &mut Vec<u8>) -> Made {
    let request = match parse::parse_head(head, &ctx.limits) {
        Ok(Parsed::Complete(request, _)) => request,
        Ok(Parsed::Partial) => return refuse(Reject::BadRequest, ctx, out),
        Err(reject) => return refuse(reject, ctx, out),
    };
    let (choice, tail) = ctx.responses.route(&request, head);
    let q = ctx.question(&request, choice, tail, head, Persistence::KeepAlive, client);
    let answered = ctx.responses.answer(out, &q);
    Made {
        status: answered.status,
        file: answered.file,
        choice: Some(choice),
    }
}

/// The error answer for `reject` (431 for a header list too large).
pub fn refuse(reject: Reject, ctx: &Ctx, out: &mut Vec<u8>) -> Made {
    Made {
        status: ctx.responses.reject(out, reject, false),
        file: None,
        choice: None,
    }
}

/// Fields HTTP/2 forbids (RFC 9113 §8.2.2), dropped from the answer.
const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// An answer split for HTTP/2: status, fields (name, value), body.
pub type Split<'a> = (u16, Vec<(&'a [u8], &'a [u8])>, &'a [u8]);

/// An HTTP/1.1 answer `HTTP/1.1 NNN reason\r\nName: value\r\n...\r\n\r\nbody`
/// split for HTTP/2: its status, its fields (names lower-cased in place),
/// its body. None if it is not one (never, for our templates).
pub fn split(answer: &mut [u8]) -> Option<Split<'_>> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(answer.get(9..12)?).ok()?.parse().ok()?;
    let first = answer.windows(2).position(|w| w == b"\r\n")?;
    let (head, body) = answer.split_at_mut(end + 4);
    let mut fields = Vec::with_capacity(8);
    for line in head[first + 2..end + 2].split_mut(|&b| b == b'\n') {
        let cr = usize::from(line.last() == Some(&b'\r'));
        let len = line.len() - cr;
        let line = &mut line[..len];
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at_mut(colon);
        name.make_ascii_lowercase();
        let (name, value): (&[u8], &[u8]) = (name, value);
        let value = value[1..].trim_ascii();
        if !CONNECTION_SPECIFIC.contains(&name) {
            fields.push((name, value));
        }
    }
    Some((status, fields, body))
}

/// The request head as the access log shows it: `HTTP/2.0` in the
/// request line, as nginx logs an HTTP/2 request.
pub fn as_logged(head: &[u8]) -> Vec<u8> {
    let mut logged = head.to_vec();
    if let Some(eol) = logged.windows(2).position(|w| w == b"\r\n") {
        if eol >= 8 && &logged[eol - 8..eol] == b"HTTP/1.1" {
            logged[eol - 8..eol].copy_from_slice(b"HTTP/2.0");
        }
    }
    logged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_splits_into_status_fields_and_body() {
        let mut a = b"HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 3\r\nConnection: close\r\nX-A:  b \r\n\r\nabc".to_vec();
        let (status, fields, body) = split(&mut a).unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            fields,
            vec![
                (&b"date"[..], &b"x"[..]),
                (b"content-length", b"3"),
                (b"x-a", b"b")
            ]
        );
        assert_eq!(body, b"abc");
    }

    #[test]
    fn the_logged_head_says_http2() {
        assert_eq!(
            as_logged(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"),
            b"GET / HTTP/2.0\r\nhost: a\r\n\r\n"
        );
    }
}
