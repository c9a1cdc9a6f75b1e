//! Sans-IO HTTP/1.1 request parsing (RFC 9110, RFC 9112): a request head from
//! bytes (the chunked body decoder is `chunked.rs`). Everything off the grammar becomes a
//! [`Reject`](crate::http::parse::Reject) with its status; where the RFCs leave a choice, this parser takes
//! the strict one, because a lenient parser behind or in front of another
//! lenient parser is how request smuggling happens.
//!
//! No I/O, no clocks, no allocation: the connection (`http/conn/`) owns buffers
//! and deadlines, `template.rs` and `answer.rs` own the bytes we answer with.

/// Why a request is refused; the connection is closed after the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    BadRequest,
    RequestTimeout,
    BodyTooLarge,
    UriTooLong,
    ExpectationFailed,
    HeaderTooLarge,
    NotImplemented,
    VersionNotSupported,
}

impl Reject {
    pub const ALL: [Reject; 8] = [
        Reject::BadRequest,
        Reject::RequestTimeout,
        Reject::BodyTooLarge,
        Reject::UriTooLong,
        Reject::ExpectationFailed,
        Reject::HeaderTooLarge,
        Reject::NotImplemented,
        Reject::VersionNotSupported,
    ];

    pub fn status(self) -> u16 {
        match self {
            Reject::BadRequest => 400,
            Reject::RequestTimeout => 408,
            Reject::BodyTooLarge => 413,
            Reject::UriTooLong => 414,
            Reject::ExpectationFailed => 417,
            Reject::HeaderTooLarge => 431,
            Reject::NotImplemented => 501,
            Reject::VersionNotSupported => 505,
        }
    }
}

/// What the server does with a method: only these three are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    Other,
}

/// How the request body is delimited (RFC 9112 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

/// The part of a parsed request head that decides the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub http10: bool,
    /// The client allows the connection to stay open after the answer.
    pub keep_alive: bool,
    pub body: Body,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
}

/// Result of looking at the start of a buffer for a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole head: the request and how many bytes it took.
    Complete(Request, usize),
    /// Not yet a whole head; nothing is wrong with the bytes so far.
    Partial,
}

/// How many header fields a request may carry; more is answered 431.
const MAX_HEADERS: usize = 100;

/// Parses one request head at the start of `buf`.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Parsed, Reject> {
    // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the
    // request-line (clients add one after a body); we ignore any number of them.
    let mut start = 0;
    while buf.len() >= start + 2 && &buf[start..start + 2] == b"\r\n" {
        start += 2;
    }
    let rest = &buf[start..];
    let Some(head_len) = find_head_end(rest)? else {
        // Measured over the whole buffer, leading empty lines included: that
        // is what the connection has to hold.
        if buf.len() > limits.max_header_bytes {
            return Err(if rest.contains(&b'\n') {
                Reject::HeaderTooLarge
            } else {
                Reject::UriTooLong
            });
        }
        return Ok(Parsed::Partial);
    };
    let head = &rest[..head_len];
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a complete head contains CRLF");
    // Leading empty lines count, as they do while the head is partial, so
    // the answer does not depend on how the bytes arrived.
    if start + head_len > limits.max_header_bytes {
        return Err(if line_end > limits.max_header_bytes {
            Reject::UriTooLong
        } else {
            Reject::HeaderTooLarge
        });
    }
    let line = parse_request_line(&head[..line_end])?;
    let mut request = Request {
        method: line.method,
        http10: line.http10,
        keep_alive: !line.http10,
        body: Body::None,
        expect_continue: false,
    };
    check_headers(&head[line_end + 2..], &line, &mut request, limits)?;
    Ok(Parsed::Complete(request, start + head_len))
}

/// Finds the end of the head (just past CRLF CRLF), refusing bytes no head may
/// hold anywhere: NUL, a CR not followed by LF, a LF not preceded by CR.
fn find_head_end(buf: &[u8]) -> Result<Option<usize>, Reject> {
    let mut i = 0;
    while i < buf.len() {
        match buf[i] {
            0 => return Err(Reject::BadRequest),
            b'\r' => match buf.get(i + 1) {
                None => return Ok(None),
                Some(b'\n') => {
                    if buf.get(i + 2..i + 4) == Some(b"\r\n") {
                        return Ok(Some(i + 4));
                    }
                    i += 2;
                    continue;
                }
                Some(_) => return Err(Reject::BadRequest),
            },
            b'\n' => return Err(Reject::BadRequest),
            _ => {}
        }
        i += 1;
    }
    Ok(None)
}

struct RequestLine {
    method: Method,
    http10: bool,
}

/// request-line = method SP request-target SP HTTP-version (RFC 9112 3),
/// single spaces only.
fn parse_request_line(line: &[u8]) -> Result<RequestLine, Reject> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::BadRequest);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Reject::BadRequest);
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        // Well-formed but another version: HTTP/2.0 in this syntax, HTTP/1.2…
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(Reject::VersionNotSupported)
        }
        _ => return Err(Reject::BadRequest),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    check_target(target, method, line.starts_with(b"CONNECT "))?;
    Ok(RequestLine { method, http10 })
}

/// The four request-target forms of RFC 9112 3.2; anything else is a 400.
fn check_target(target: &[u8], method: Method, connect: bool) -> Result<(), Reject> {
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(Reject::BadRequest);
    }
    if !target.iter().all(|&b| is_uri_char(b)) || !percent_encoding_ok(target) {
        return Err(Reject::BadRequest);
    }
    if connect {
        // authority-form is for CONNECT alone, and CONNECT has only it.
        return if is_authority(target, true) {
            Ok(())
        } else {
            Err(Reject::BadRequest)
        };
    }
    if target[0] == b'/' {
        // origin-form = absolute-path [ "?" query ]; no fragment.
        return if target.contains(&b'#') {
            Err(Reject::BadRequest)
        } else {
            Ok(())
        };
    }
    if target == b"*" {
        return if method == Method::Options {
            Ok(())
        } else {
            Err(Reject::BadRequest)
        };
    }
    // absolute-form: scheme "://" authority path-abempty [ "?" query ].
    let Some(colon) = target.iter().position(|&b| b == b':') else {
        return Err(Reject::BadRequest);
    };
    let scheme = &target[..colon];
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let rest = &target[colon + 1..];
    if !scheme_ok || !rest.starts_with(b"//") || target.contains(&b'#') {
        return Err(Reject::BadRequest);
    }
    let rest = &rest[2..];
    let authority_end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // No userinfo: RFC 9110 4.2.4 forbids it in http(s) URIs.
    if authority.is_empty() || authority.contains(&b'@') || !is_authority(authority, false) {
        return Err(Reject::BadRequest);
    }
    Ok(())
}

/// Characters RFC 3986 allows in a URI reference.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Every `%` is followed by two hex digits.
fn percent_encoding_ok(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if !(s.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// uri-host [ ":" port ] (RFC 3986 3.2.2), as in Host and in targets.
/// `port_required` is for CONNECT's authority-form.
fn is_authority(s: &[u8], port_required: bool) -> bool {
    let (host, port) = if s.first() == Some(&b'[') {
        let Some(close) = s.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &s[1..close];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b":.".contains(&b))
        {
            return false;
        }
        match &s[close + 1..] {
            [] => (&s[..=close], None),
            [b':', port @ ..] => (&s[..=close], Some(port)),
            _ => return false,
        }
    } else {
        match s.iter().position(|&b| b == b':') {
            Some(colon) => (&s[..colon], Some(&s[colon + 1..])),
            None => (s, None),
        }
    };
    let host_ok = host.starts_with(b"[")
        || host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b));
    let port_ok = match port {
        None => !port_required,
        Some(p) => {
            p.len() <= 5 && p.iter().all(u8::is_ascii_digit) && !(port_required && p.is_empty())
        }
    };
    host_ok && port_ok && percent_encoding_ok(host)
}

/// tchar (RFC 9110 5.6.2): the characters of methods and field names.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads the header section: framing (Content-Length, Transfer-Encoding),
/// Host, Connection, Expect. `fields` is everything after the request line,
/// ending in CRLF CRLF.
fn check_headers(
    fields: &[u8],
    line: &RequestLine,
    request: &mut Request,
    limits: &Limits,
) -> Result<(), Reject> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let headers = match httparse::parse_headers(fields, &mut storage) {
        Ok(httparse::Status::Complete((_, headers))) => headers,
        Ok(httparse::Status::Partial) => return Err(Reject::BadRequest),
        Err(httparse::Error::TooManyHeaders) => return Err(Reject::HeaderTooLarge),
        Err(_) => return Err(Reject::BadRequest),
    };
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut chunked = TransferCoding::Absent;
    let mut close = false;
    let mut keep_alive = false;
    for h in headers {
        let value = trim_ows(h.value);
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            if !value.is_empty() && !is_authority(value, false) {
                return Err(Reject::BadRequest);
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // One field holding 1*DIGIT; a repeated or listed value is
            // refused even when the copies agree (RFC 9112 6.3 lets us).
            if content_length.is_some() {
                return Err(Reject::BadRequest);
            }
            content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = chunked.add_field(value)?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in list_elements(value) {
                let option = option?;
                if !option.iter().all(|&b| is_tchar(b)) {
                    return Err(Reject::BadRequest);
                }
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                request.expect_continue = true;
            } else {
                return Err(Reject::ExpectationFailed);
            }
        }
    }
    // RFC 9112 3.2: exactly one Host in an HTTP/1.1 request, else 400.
    if hosts > 1 || (hosts == 0 && !line.http10) {
        return Err(Reject::BadRequest);
    }
    request.keep_alive = if line.http10 {
        keep_alive && !close
    } else {
        !close
    };
    request.body = match (chunked, content_length) {
        (TransferCoding::Absent, None) => Body::None,
        (TransferCoding::Absent, Some(0)) => Body::None,
        (TransferCoding::Absent, Some(n)) if n > limits.max_body_bytes => {
            return Err(Reject::BodyTooLarge)
        }
        (TransferCoding::Absent, Some(n)) => Body::Length(n),
        // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing;
        // 6.3: with Content-Length as well, it is a smuggling attempt.
        (_, Some(_)) => return Err(Reject::BadRequest),
        _ if line.http10 => return Err(Reject::BadRequest),
        (TransferCoding::Chunked, None) => Body::Chunked,
        (TransferCoding::UnknownBeforeChunked, None) => return Err(Reject::NotImplemented),
        // Final coding not chunked: the length cannot be known (6.3 item 4).
        (TransferCoding::NotChunkedLast | TransferCoding::AfterChunked, None) => {
            return Err(Reject::BadRequest)
        }
    };
    if request.body == Body::None || line.http10 {
        // Nothing will follow, so there is nothing to continue; and an
        // HTTP/1.0 client gets no 1xx at all (RFC 9110 10.1.1, 15.2).
        request.expect_continue = false;
    }
    Ok(())
}

/// What the Transfer-Encoding fields seen so far say about framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TransferCoding {
    Absent,
    /// The last coding is chunked and the only one.
    Chunked,
    /// Codings we do not implement, then chunked last.
    UnknownBeforeChunked,
    /// The last coding so far is not chunked, and none was.
    NotChunkedLast,
    /// chunked came, then another coding: chunked is not last, and may not
    /// come again.
    AfterChunked,
}

impl TransferCoding {
    fn add_field(mut self, value: &[u8]) -> Result<Self, Reject> {
        let mut any = false;
        for coding in list_elements(value) {
            let coding = coding?;
            any = true;
            // transfer-coding = token *( OWS ";" OWS transfer-parameter ); a
            // parameter on chunked is not allowed, and we know no other coding.
            let name_end = coding
                .iter()
                .position(|&b| b == b';')
                .unwrap_or(coding.len());
            let name = trim_ows(&coding[..name_end]);
            if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                return Err(Reject::BadRequest);
            }
            let is_chunked = name.eq_ignore_ascii_case(b"chunked");
            if is_chunked && name_end != coding.len() {
                return Err(Reject::BadRequest);
            }
            self = match (self, is_chunked) {
                // chunked applied twice (RFC 9112 6.1: MUST NOT).
                (
                    TransferCoding::Chunked
                    | TransferCoding::UnknownBeforeChunked
                    | TransferCoding::AfterChunked,
                    true,
                ) => return Err(Reject::BadRequest),
                (TransferCoding::Absent, true) => TransferCoding::Chunked,
                (TransferCoding::NotChunkedLast, true) => TransferCoding::UnknownBeforeChunked,
                // A coding after chunked: chunked is no longer last.
                (
                    TransferCoding::Chunked
                    | TransferCoding::UnknownBeforeChunked
                    | TransferCoding::AfterChunked,
                    false,
                ) => TransferCoding::AfterChunked,
                (TransferCoding::Absent | TransferCoding::NotChunkedLast, false) => {
                    TransferCoding::NotChunkedLast
                }
            };
            // Unknown codings before chunked are tracked so that a later
            // chunked maps to 501; chunked followed by another is a 400.
            if !is_chunked && name_end != coding.len() {
                check_parameters(&coding[name_end..])?;
            }
        }
        if !any {
            // An empty Transfer-Encoding names no coding at all.
            return Err(Reject::BadRequest);
        }
        Ok(self)
    }
}

/// `;name=value` parameters after a transfer coding name.
fn check_parameters(params: &[u8]) -> Result<(), Reject> {
    for param in params.split(|&b| b == b';').skip(1) {
        let param = trim_ows(param);
        let Some(eq) = param.iter().position(|&b| b == b'=') else {
            return Err(Reject::BadRequest);
        };
        let (name, value) = (trim_ows(&param[..eq]), trim_ows(&param[eq + 1..]));
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) || value.is_empty() {
            return Err(Reject::BadRequest);
        }
        // A quoted-string value never gets here: list_elements refuses
        // quotes (a comma inside one would split the list wrongly).
        if !value.iter().all(|&b| is_tchar(b)) {
            return Err(Reject::BadRequest);
        }
    }
    Ok(())
}

/// The elements of a comma-separated list (RFC 9110 5.6.1), with OWS
/// trimmed. Empty elements are skipped, as the RFC requires of recipients;
/// a quoted comma is not a separator (none of the fields we read allow
/// quotes outside parameters, so a quote is refused where it would matter).
fn list_elements(value: &[u8]) -> impl Iterator<Item = Result<&[u8], Reject>> {
    value.split(|&b| b == b',').filter_map(|e| {
        let e = trim_ows(e);
        if e.is_empty() {
            None
        } else if e.contains(&b'"') {
            Some(Err(Reject::BadRequest))
        } else {
            Some(Ok(e))
        }
    })
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Content-Length = 1*DIGIT, no sign, no list, no overflow.
fn parse_content_length(value: &[u8]) -> Result<u64, Reject> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Reject::BadRequest);
    }
    Ok(value
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 8192,
        max_body_bytes: 1 << 20,
    };

    fn parse(bytes: &[u8]) -> Result<Parsed, Reject> {
        parse_head(bytes, &LIMITS)
    }

    fn complete(bytes: &[u8]) -> Request {
        match parse(bytes) {
            Ok(Parsed::Complete(r, n)) => {
                assert_eq!(n, bytes.len(), "whole input is the head");
                r
            }
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    fn rejected(bytes: &[u8]) -> u16 {
        match parse(bytes) {
            Err(r) => r.status(),
            other => panic!(
                "expected a rejection for {:?}, got {other:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    #[test]
    fn simple_get_keeps_alive() {
        let r = complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.method, Method::Get);
        assert!(r.keep_alive);
        assert_eq!(r.body, Body::None);
    }

    #[test]
    fn http10_closes_unless_keep_alive() {
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n").keep_alive
        );
    }

    #[test]
    fn partial_heads_wait() {
        for cut in 1..26 {
            let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
            assert_eq!(parse(&full[..cut]), Ok(Parsed::Partial), "cut at {cut}");
        }
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let input = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(matches!(parse(input), Ok(Parsed::Complete(_, n)) if n == input.len()));
    }

    #[test]
    fn framing_errors_are_400() {
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nHost: a\0\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / http/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/01.1\r\nHost: a\r\n\r\n",
            b"GET x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(rejected(bad), 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn other_statuses() {
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n"),
            501
        );
        // chunked twice is a 400 even with another coding between.
        assert_eq!(
            rejected(
                b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n"
            ),
            400
        );
        assert_eq!(rejected(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: nope\r\n\r\n"),
            417
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n"),
            413
        );
        let long_target = [b"GET /".as_slice(), &[b'a'; 9000]].concat();
        assert_eq!(rejected(&long_target), 414);
        let long_header = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 9000]].concat();
        assert_eq!(rejected(&long_header), 431);
    }

    #[test]
    fn bodies() {
        let r = complete(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(r.body, Body::Length(5));
        assert_eq!(r.method, Method::Other);
        let r = complete(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(r.body, Body::Chunked);
    }

    #[test]
    fn target_forms() {
        complete(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        complete(b"GET http://a.example:80/x?y HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            rejected(b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
            400
        );
        assert_eq!(rejected(b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        complete(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
        assert_eq!(rejected(b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    }
}
