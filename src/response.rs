//! The bytes a worker answers with, built once at start: every response is a
//! precomputed template whose `Date` value is patched in place once a second,
//! so answering a request is one `extend_from_slice`, with no formatting.
//!
//! What to answer is decided by `conn.rs` (and, among routes, by
//! `route.rs`, whose answers are templates too); the configured status,
//! headers and body come from `config.rs`.

use crate::http::{Method, Reject, Request};
use crate::route::{Asker, Choice, RouteSpec, Router};

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// Whether the answer keeps the connection open, and how it says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 default: no Connection header.
    KeepAlive,
    /// HTTP/1.0 keep-alive: `Connection: keep-alive`.
    KeepAlive10,
    /// `Connection: close`; the server closes after this answer.
    Close,
}

impl Persistence {
    pub(crate) const ALL: [Persistence; 3] = [
        Persistence::KeepAlive,
        Persistence::KeepAlive10,
        Persistence::Close,
    ];

    fn header(self) -> &'static str {
        match self {
            Persistence::KeepAlive => "",
            Persistence::KeepAlive10 => "Connection: keep-alive\r\n",
            Persistence::Close => "Connection: close\r\n",
        }
    }
}

/// What the configured response is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseSpec {
    pub status: u16,
    pub content_type: String,
    /// Extra header lines, already validated: (name, value).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One precomputed response: head and body, and where in it the date goes.
pub(crate) struct Template {
    /// The status it answers with (for the responses counters).
    status: u16,
    bytes: Vec<u8>,
    date_at: usize,
    head_len: usize,
    /// Where bytes chosen per request go (the rest of a redirect's
    /// `Location`): at the end of the last extra header line.
    insert_at: usize,
}

impl Template {
    pub(crate) fn new(
        status: u16,
        extra: &str,
        persistence: Persistence,
        content_type: &str,
        body: &[u8],
    ) -> Self {
        let before_date = format!("HTTP/1.1 {status} {}\r\nDate: ", reason(status));
        let head = format!(
            "{before_date}{date}\r\nServer: preforkd\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n{extra}{conn}\r\n",
            date = "Thu, 01 Jan 1970 00:00:00 GMT",
            len = body.len(),
            conn = persistence.header(),
        );
        let mut bytes = head.into_bytes();
        let head_len = bytes.len();
        bytes.extend_from_slice(body);
        Template {
            status,
            bytes,
            date_at: before_date.len(),
            head_len,
            insert_at: head_len,
        }
    }

    /// The template with its last extra header line left open: bytes
    /// given to [`push_with`](Template::push_with) go before that line's
    /// CRLF (the rest of a redirect's `Location`). `persistence` is the
    /// one the template was made with.
    pub(crate) fn open_last_header(mut self, persistence: Persistence) -> Self {
        self.insert_at = self.head_len - persistence.header().len() - 4;
        self
    }

    /// 204 to OPTIONS, with `allow` (`Allow: …\r\n`). It carries no body
    /// and no Content-Length (RFC 9110 8.6).
    pub(crate) fn options(allow: &str, p: Persistence) -> Self {
        let before_date = "HTTP/1.1 204 No Content\r\nDate: ";
        let head = format!(
            "{before_date}Thu, 01 Jan 1970 00:00:00 GMT\r\nServer: preforkd\r\n{allow}{}\r\n",
            p.header()
        );
        let bytes = head.into_bytes();
        Template {
            status: 204,
            head_len: bytes.len(),
            insert_at: bytes.len(),
            bytes,
            date_at: before_date.len(),
        }
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// Appends the whole answer, or its head alone (HEAD).
    pub(crate) fn push(&self, out: &mut Vec<u8>, head_only: bool) {
        let end = if head_only {
            self.head_len
        } else {
            self.bytes.len()
        };
        out.extend_from_slice(&self.bytes[..end]);
    }

    /// Appends the answer with `insert` at its insertion point.
    pub(crate) fn push_with(&self, out: &mut Vec<u8>, insert: &[u8], head_only: bool) {
        let end = if head_only {
            self.head_len
        } else {
            self.bytes.len()
        };
        out.extend_from_slice(&self.bytes[..self.insert_at]);
        out.extend_from_slice(insert);
        out.extend_from_slice(&self.bytes[self.insert_at..end]);
    }

    pub(crate) fn set_date(&mut self, date: &[u8; DATE_LEN]) {
        self.bytes[self.date_at..self.date_at + DATE_LEN].copy_from_slice(date);
    }
}

/// All templates one worker answers with.
pub struct Responses {
    /// The configured response, per [`Persistence`].
    configured: [Template; 3],
    /// 204 to OPTIONS, per [`Persistence`].
    options: [Template; 3],
    /// 405 to other methods, per [`Persistence`].
    not_allowed: [Template; 3],
    /// One per [`Reject`], always `Connection: close`.
    rejects: Vec<(Reject, Template)>,
    /// `[maintenance]`, per [`Persistence`].
    maintenance: [Template; 3],
    /// `[[route]]`s.
    router: Router,
}

/// The methods we answer, for `Allow`.
const ALLOW: &str = "Allow: GET, HEAD, OPTIONS\r\n";

/// An interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The `[maintenance]` answer unless configured otherwise.
pub fn default_maintenance() -> ResponseSpec {
    ResponseSpec {
        status: 503,
        content_type: "text/plain; charset=utf-8".into(),
        headers: Vec::new(),
        body: b"Down for maintenance\n".to_vec(),
    }
}

impl Responses {
    /// The templates for `spec` alone: no routes.
    pub fn new(spec: &ResponseSpec) -> Self {
        Responses::with_routes(spec, &[], &default_maintenance())
    }

    pub fn with_routes(spec: &ResponseSpec, routes: &[RouteSpec], maint: &ResponseSpec) -> Self {
        let extra = |spec: &ResponseSpec| -> String {
            spec.headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\r\n"))
                .collect()
        };
        let text = "text/plain; charset=utf-8";
        let per = |f: &dyn Fn(Persistence) -> Template| Persistence::ALL.map(f);
        let (extra, maint_extra) = (extra(spec), extra(maint));
        Responses {
            configured: per(&|p| {
                Template::new(spec.status, &extra, p, &spec.content_type, &spec.body)
            }),
            maintenance: per(&|p| {
                Template::new(
                    maint.status,
                    &maint_extra,
                    p,
                    &maint.content_type,
                    &maint.body,
                )
            }),
            router: Router::new(routes),
            options: per(&|p| Template::options(ALLOW, p)),
            not_allowed: per(&|p| Template::new(405, ALLOW, p, text, b"Method Not Allowed\n")),
            rejects: Reject::ALL
                .iter()
                .map(|&r| {
                    let body = format!("{}\n", reason(r.status()));
                    (
                        r,
                        Template::new(r.status(), "", Persistence::Close, text, body.as_bytes()),
                    )
                })
                .collect(),
        }
    }

    /// Which route (if any) answers a request whose head is `head`; see
    /// [`Router::choose`].
    pub fn route<'h>(&self, request: &Request, head: &'h [u8]) -> (Choice, &'h [u8]) {
        self.router.choose(request, head)
    }

    /// What answered, for the access log: `maintenance` while the
    /// maintenance page answers (as [`Responses::answer`] decides), the
    /// route's name, or None for the configured response.
    pub fn route_name(&self, choice: Choice, maintenance: bool) -> Option<&str> {
        if maintenance && !self.router.bypasses_maintenance(choice) {
            return Some("maintenance");
        }
        self.router.name(choice)
    }

    /// Appends the answer to a complete request: the maintenance page while
    /// `maintenance` is on (health and status routes excepted), else its
    /// route's, else the configured response (OPTIONS and other methods as
    /// always). `asker` is who asks (a status route's `allow`) and what a
    /// status route reads. Returns the status answered.
    #[allow(clippy::too_many_arguments)] // each is one fact about this request; a struct would be built per request
    pub fn answer(
        &self,
        out: &mut Vec<u8>,
        request: &Request,
        choice: Choice,
        tail: &[u8],
        p: Persistence,
        maintenance: bool,
        draining: bool,
        asker: Asker,
    ) -> u16 {
        let head_only = request.method == Method::Head;
        if maintenance && !self.router.bypasses_maintenance(choice) {
            return push(out, &self.maintenance[p as usize], head_only);
        }
        match (choice, request.method) {
            (Choice::Default, Method::Get) => self.configured(out, p, false),
            (Choice::Default, Method::Head) => self.configured(out, p, true),
            (Choice::Default, Method::Options) => self.options(out, p),
            (Choice::Default, Method::Other) => self.not_allowed(out, p),
            (c, _) => self
                .router
                .answer(out, c, tail, p, head_only, draining, asker),
        }
    }

    /// A status route is configured: connections must know their
    /// client's address (for `allow`).
    pub fn needs_client(&self) -> bool {
        self.router.has_status()
    }

    /// Appends the configured response (its head alone for HEAD).
    pub fn configured(&self, out: &mut Vec<u8>, p: Persistence, head_only: bool) -> u16 {
        push(out, &self.configured[p as usize], head_only)
    }

    pub fn options(&self, out: &mut Vec<u8>, p: Persistence) -> u16 {
        push(out, &self.options[p as usize], false)
    }

    pub fn not_allowed(&self, out: &mut Vec<u8>, p: Persistence) -> u16 {
        push(out, &self.not_allowed[p as usize], false)
    }

    /// Appends the error answer for `r` (its head alone for HEAD).
    pub fn reject(&self, out: &mut Vec<u8>, r: Reject, head_only: bool) -> u16 {
        let t = &self
            .rejects
            .iter()
            .find(|(k, _)| *k == r)
            .expect("every Reject has a template")
            .1;
        push(out, t, head_only)
    }

    /// Writes `date` (an IMF-fixdate) into every template.
    pub fn set_date(&mut self, date: &[u8; DATE_LEN]) {
        let all = self
            .configured
            .iter_mut()
            .chain(self.options.iter_mut())
            .chain(self.not_allowed.iter_mut())
            .chain(self.maintenance.iter_mut())
            .chain(self.rejects.iter_mut().map(|(_, t)| t));
        for t in all {
            t.set_date(date);
        }
        self.router.set_date(date);
    }
}

/// Appends `t` and says its status.
fn push(out: &mut Vec<u8>, t: &Template, head_only: bool) -> u16 {
    t.push(out, head_only);
    t.status
}

/// The current time as an IMF-fixdate.
pub fn http_date(now: std::time::SystemTime) -> [u8; DATE_LEN] {
    let s = httpdate::fmt_http_date(now);
    let mut date = [b' '; DATE_LEN];
    let n = s.len().min(DATE_LEN);
    date[..n].copy_from_slice(&s.as_bytes()[..n]);
    date
}

/// Reason phrases for the statuses we may send (RFC 9110 15).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ResponseSpec {
        ResponseSpec {
            status: 200,
            content_type: "text/plain; charset=utf-8".into(),
            headers: vec![("X-A".into(), "b".into())],
            body: b"Hello, World!\n".to_vec(),
        }
    }

    #[test]
    fn configured_response_bytes() {
        let mut r = Responses::new(&spec());
        r.set_date(b"Sun, 06 Nov 1994 08:49:37 GMT");
        let mut out = Vec::new();
        r.configured(&mut out, Persistence::KeepAlive, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: preforkd\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\nX-A: b\r\n\r\nHello, World!\n"
        );
        let mut out = Vec::new();
        r.configured(&mut out, Persistence::Close, true);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.ends_with("Content-Length: 14\r\nX-A: b\r\nConnection: close\r\n\r\n"),
            "{s}"
        );
    }

    #[test]
    fn rejects_close_and_carry_the_status() {
        let r = Responses::new(&spec());
        for reject in Reject::ALL {
            let mut out = Vec::new();
            r.reject(&mut out, reject, false);
            let s = String::from_utf8(out).unwrap();
            assert!(
                s.starts_with(&format!("HTTP/1.1 {} ", reject.status())),
                "{s}"
            );
            assert!(s.contains("Connection: close\r\n"), "{s}");
        }
    }

    #[test]
    fn date_is_29_bytes() {
        let d = http_date(std::time::UNIX_EPOCH);
        assert_eq!(&d, b"Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
