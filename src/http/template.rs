//! Response templates: the bytes of one answer built once, with the
//! `Date` value patched in place once a second, so answering a request is
//! one `extend_from_slice`, with no formatting. Also the reason phrases and
//! the connection persistence an answer declares. `answer.rs` and
//! `route/` build on these; this file decides nothing.

/// The `Date` value and its length, formatted once for the program.
pub use crate::obs::clock::{http_date, DATE_LEN};

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

    /// Its `Connection` line (none for HTTP/1.1 keep-alive).
    pub(crate) fn header(self) -> &'static str {
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
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
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
