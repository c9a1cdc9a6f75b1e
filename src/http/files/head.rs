//! A file [`Answer`] framed as an HTTP/1.1 response head: status line,
//! `Date`, `Server`, the answer's fields, the connection's `Connection`
//! line. The body is not here: [`body_plan`] says what the connection sends
//! after the head (a range of the file, with `sendfile`, or our short text).

use super::decide::{Answer, Body, FileHeaders};
use crate::http::template::{reason, Persistence, DATE_LEN};

/// What follows the head on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPlan {
    None,
    /// `len` bytes of the chosen file from `offset`.
    Sendfile {
        offset: u64,
        len: u64,
    },
    /// Bytes to copy after the head.
    Bytes(&'static [u8]),
}

/// Appends the head of `answer`. `date` is the current IMF-fixdate (the
/// worker's once-a-second copy), `p` what the connection does next.
pub fn write_head(
    out: &mut Vec<u8>,
    answer: &Answer,
    h: &FileHeaders<'_>,
    date: &[u8; DATE_LEN],
    p: Persistence,
) {
    let status = answer.status;
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\nDate: ", reason(status)).as_bytes());
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nServer: preforkd\r\n");
    answer.for_each_field(h, |field, value| {
        out.extend_from_slice(field.name().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    });
    out.extend_from_slice(p.header().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// What to send after the head of `answer`.
pub fn body_plan(answer: &Answer) -> BodyPlan {
    match answer.body {
        Body::Empty => BodyPlan::None,
        Body::File { len: 0, .. } => BodyPlan::None,
        Body::File { offset, len } => BodyPlan::Sendfile { offset, len },
        Body::Text(t) => BodyPlan::Bytes(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::files::decide::{decide, FileRequest, Representation};
    use crate::http::files::{Encoding, Meta};
    use crate::http::parse::Method;

    const DATE: &[u8; DATE_LEN] = b"Mon, 01 Jan 2024 00:00:00 GMT";
    const META: Meta = Meta {
        size: 5,
        mtime_secs: 784_111_777,
        mtime_nsecs: 0,
        ino: 1,
        dev: 1,
    };

    fn head(req: &FileRequest<'_>, enc: Option<Encoding>, p: Persistence) -> (String, BodyPlan) {
        let rep = Representation {
            meta: META,
            encoding: enc,
        };
        let a = decide(req, &rep, enc.is_some(), 1_700_000_000);
        let h = FileHeaders {
            content_type: "text/plain; charset=utf-8",
            cache_control: None,
        };
        let mut out = Vec::new();
        write_head(&mut out, &a, &h, DATE, p);
        (String::from_utf8(out).unwrap(), body_plan(&a))
    }

    #[test]
    fn full_head() {
        let (s, body) = head(&FileRequest::get(), None, Persistence::KeepAlive);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: preforkd\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\
             Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"2ebc98a1.0-5-1\"\r\n\
             Accept-Ranges: bytes\r\n\r\n"
        );
        assert_eq!(body, BodyPlan::Sendfile { offset: 0, len: 5 });
    }

    #[test]
    fn range_encoding_and_close() {
        let mut r = FileRequest::get();
        r.range = Some(b"bytes=1-2");
        let (s, body) = head(&r, Some(Encoding::Gzip), Persistence::Close);
        assert!(s.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{s}");
        assert!(
            s.ends_with(
                "Content-Range: bytes 1-2/5\r\nContent-Encoding: gzip\r\n\
                 Vary: Accept-Encoding\r\nConnection: close\r\n\r\n"
            ),
            "{s}"
        );
        assert_eq!(body, BodyPlan::Sendfile { offset: 1, len: 2 });
    }

    #[test]
    fn statuses_and_bodies() {
        let mut r = FileRequest::get();
        r.if_none_match = Some(b"*");
        let (s, body) = head(&r, None, Persistence::KeepAlive10);
        assert!(s.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{s}");
        assert!(s.ends_with("Connection: keep-alive\r\n\r\n"), "{s}");
        assert!(!s.contains("Content-Length"), "{s}");
        assert_eq!(body, BodyPlan::None);

        let mut r = FileRequest::get();
        r.range = Some(b"bytes=9-");
        let (s, body) = head(&r, None, Persistence::KeepAlive);
        assert!(
            s.starts_with("HTTP/1.1 416 Range Not Satisfiable\r\n"),
            "{s}"
        );
        assert_eq!(body, BodyPlan::Bytes(b"Range Not Satisfiable\n"));

        let mut r = FileRequest::get();
        r.method = Method::Head;
        let (s, body) = head(&r, None, Persistence::KeepAlive);
        assert!(s.contains("Content-Length: 5\r\n"), "{s}");
        assert_eq!(body, BodyPlan::None);
    }

    #[test]
    fn empty_file_has_no_sendfile() {
        let rep = Representation {
            meta: Meta { size: 0, ..META },
            encoding: None,
        };
        let a = decide(&FileRequest::get(), &rep, false, 1_700_000_000);
        assert_eq!(body_plan(&a), BodyPlan::None);
    }
}
