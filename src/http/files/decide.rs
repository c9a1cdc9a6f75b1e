//! The answer to a GET or HEAD of a file that exists, from the request's
//! fields and the file's metadata alone: status, representation fields and
//! what of the file to send ([`Answer`]). Pure, no disk, no clock (the
//! caller passes the time), no HTTP/1 framing: [`Answer::for_each_field`]
//! gives name/value pairs that `head.rs` frames for HTTP/1.1 and an HTTP/2
//! layer can encode its own way.
//!
//! Preconditions in RFC 9110 13.2.2's order: If-Match (412 unless a tag
//! matches strongly, `*` matches), else If-Unmodified-Since (412 if the file
//! is newer); then If-None-Match (304 if a tag matches weakly), else
//! If-Modified-Since (304 unless newer, at one-second resolution; nginx's
//! default `if_modified_since exact` wants equality, the RFC says "earlier
//! or equal"); then Range (GET only, RFC 9110 14.2), subject to If-Range
//! (a strong tag match or a date equal to Last-Modified, else the whole
//! file); see `range.rs` for what is ignored. Unparsable dates are ignored.
//!
//! Which file answers (the identity file or a precompressed variant) is
//! chosen before: `negotiate.rs` orders the variants, the caller finds
//! which exist; [`decide_among`] does both for a caller that has every
//! variant's metadata at hand. Ranges, validators and lengths are then those
//! of the chosen file.

use super::negotiate::negotiate;
use super::range::{evaluate, RangeOutcome};
use super::validators::{self, ETag};
use super::{Encoding, Meta};
use crate::http::parse::Method;
use crate::http::template::DATE_LEN;

/// The fields of a request that decide a file answer, as their raw values.
/// A list field sent on several lines (If-Match, If-None-Match,
/// Accept-Encoding) is passed joined with `, ` (RFC 9110 5.3); a singleton
/// field sent twice is best passed as `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRequest<'a> {
    /// GET or HEAD; the caller answers other methods itself.
    pub method: Method,
    pub if_match: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub if_unmodified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
    pub accept_encoding: Option<&'a [u8]>,
}

impl FileRequest<'_> {
    /// A plain GET: no conditionals, no range, no Accept-Encoding.
    pub fn get() -> Self {
        FileRequest {
            method: Method::Get,
            if_match: None,
            if_none_match: None,
            if_modified_since: None,
            if_unmodified_since: None,
            range: None,
            if_range: None,
            accept_encoding: None,
        }
    }
}

/// The file chosen to answer: the identity file (`encoding: None`) or a
/// precompressed variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Representation {
    pub meta: Meta,
    pub encoding: Option<Encoding>,
}

/// What is sent after the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// Nothing (HEAD, 304).
    Empty,
    /// `len` bytes of the chosen file from `offset`, for `sendfile`.
    File { offset: u64, len: u64 },
    /// A short text of our own (412, 416), sent as `text/plain`.
    Text(&'static [u8]),
}

/// `Content-Range` (RFC 9110 14.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/complete` (206).
    Bytes {
        first: u64,
        last: u64,
        complete: u64,
    },
    /// `bytes */complete` (416).
    Unsatisfied { complete: u64 },
}

/// A header field of a file answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    ContentType,
    ContentLength,
    LastModified,
    ETag,
    AcceptRanges,
    ContentRange,
    ContentEncoding,
    Vary,
    CacheControl,
}

impl Field {
    /// The name as HTTP/1.1 conventionally writes it; HTTP/2 and 3 use
    /// [`str::to_ascii_lowercase`] of it.
    pub fn name(self) -> &'static str {
        match self {
            Field::ContentType => "Content-Type",
            Field::ContentLength => "Content-Length",
            Field::LastModified => "Last-Modified",
            Field::ETag => "ETag",
            Field::AcceptRanges => "Accept-Ranges",
            Field::ContentRange => "Content-Range",
            Field::ContentEncoding => "Content-Encoding",
            Field::Vary => "Vary",
            Field::CacheControl => "Cache-Control",
        }
    }
}

/// The route's fixed values for a file's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeaders<'a> {
    /// Of the file as requested (`foo.css`, also when `foo.css.br` answers).
    pub content_type: &'a str,
    pub cache_control: Option<&'a str>,
}

/// The answer to a file request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// 200, 206, 304, 412 or 416.
    pub status: u16,
    /// The chosen file's coding (`Content-Encoding`), if a variant.
    pub encoding: Option<Encoding>,
    pub etag: ETag,
    /// `Last-Modified`, seconds since the epoch; none before 1970.
    pub last_modified: Option<i64>,
    /// `Content-Length`; `None` for 304, which sends none.
    pub content_length: Option<u64>,
    pub content_range: Option<ContentRange>,
    /// `Vary: Accept-Encoding`.
    pub vary: bool,
    pub body: Body,
}

const PRECONDITION_FAILED: &[u8] = b"Precondition Failed\n";
const NOT_SATISFIABLE: &[u8] = b"Range Not Satisfiable\n";

/// Decides the answer from `rep`, the file chosen to answer. `vary`: the
/// route has precompressed variants configured, so every answer says
/// `Vary: Accept-Encoding` (as nginx's `gzip_vary`), whichever file
/// answers. `now`: seconds since the epoch (for Last-Modified).
pub fn decide(req: &FileRequest<'_>, rep: &Representation, vary: bool, now: i64) -> Answer {
    let meta = &rep.meta;
    let etag = ETag::of(meta);
    let last_modified = validators::last_modified(meta, now);
    let mut answer = Answer {
        status: 200,
        encoding: rep.encoding,
        etag,
        last_modified,
        content_length: Some(meta.size),
        content_range: None,
        vary,
        body: Body::File {
            offset: 0,
            len: meta.size,
        },
    };
    let head = req.method == Method::Head;
    let text = |a: &mut Answer, status: u16, t: &'static [u8]| {
        a.status = status;
        a.content_length = Some(t.len() as u64);
        a.body = if head { Body::Empty } else { Body::Text(t) };
    };
    if !preconditions_hold(req, &etag, last_modified) {
        text(&mut answer, 412, PRECONDITION_FAILED);
        return answer;
    }
    if not_modified(req, &etag, last_modified) {
        answer.status = 304;
        answer.content_length = None;
        answer.body = Body::Empty;
        return answer;
    }
    let range = match req.range {
        Some(r) if req.method == Method::Get && if_range_holds(req, &etag, last_modified) => {
            evaluate(r, meta.size)
        }
        _ => RangeOutcome::Whole,
    };
    match range {
        RangeOutcome::Whole => {}
        RangeOutcome::Part { first, last } => {
            let len = last - first + 1;
            answer.status = 206;
            answer.content_length = Some(len);
            answer.content_range = Some(ContentRange::Bytes {
                first,
                last,
                complete: meta.size,
            });
            answer.body = Body::File { offset: first, len };
        }
        RangeOutcome::Unsatisfiable => {
            text(&mut answer, 416, NOT_SATISFIABLE);
            answer.content_range = Some(ContentRange::Unsatisfied {
                complete: meta.size,
            });
        }
    }
    if head {
        answer.body = Body::Empty;
    }
    answer
}

/// Negotiates among `variants` (the precompressed files that exist, with
/// their metadata, in configured order) and decides with the winner, or
/// with `identity`. `vary` as for [`decide`].
pub fn decide_among(
    req: &FileRequest<'_>,
    identity: &Meta,
    variants: &[(Encoding, Meta)],
    vary: bool,
    now: i64,
) -> Answer {
    let offered: Vec<Encoding> = variants.iter().map(|&(e, _)| e).collect();
    let preferred = negotiate(req.accept_encoding, &offered);
    let rep = preferred
        .as_slice()
        .first()
        .and_then(|e| variants.iter().find(|(v, _)| v == e))
        .map_or(
            Representation {
                meta: *identity,
                encoding: None,
            },
            |&(e, meta)| Representation {
                meta,
                encoding: Some(e),
            },
        );
    decide(req, &rep, vary, now)
}

/// Steps 1 and 2: If-Match, else If-Unmodified-Since.
fn preconditions_hold(req: &FileRequest<'_>, etag: &ETag, lm: Option<i64>) -> bool {
    if let Some(f) = req.if_match {
        return validators::list_matches(f, etag, false);
    }
    match (req.if_unmodified_since.and_then(validators::parse_date), lm) {
        (Some(date), Some(lm)) => lm <= date,
        // No date we can compare: the field is ignored.
        _ => true,
    }
}

/// Steps 3 and 4: If-None-Match, else If-Modified-Since.
fn not_modified(req: &FileRequest<'_>, etag: &ETag, lm: Option<i64>) -> bool {
    if let Some(f) = req.if_none_match {
        return validators::list_matches(f, etag, true);
    }
    match (req.if_modified_since.and_then(validators::parse_date), lm) {
        (Some(date), Some(lm)) => lm <= date,
        _ => false,
    }
}

/// Step 5's If-Range: absent, or it names this representation.
fn if_range_holds(req: &FileRequest<'_>, etag: &ETag, lm: Option<i64>) -> bool {
    let Some(f) = req.if_range else {
        return true;
    };
    if let Some(matches) = validators::if_range_tag_matches(f, etag) {
        return matches;
    }
    validators::parse_date(f).is_some_and(|d| Some(d) == lm)
}

impl Answer {
    /// Calls `f` with each header field of this answer, in a fixed order
    /// (Date, Server and Connection are the framing layer's).
    pub fn for_each_field(&self, h: &FileHeaders<'_>, mut f: impl FnMut(Field, &[u8])) {
        let mut num = Num::default();
        let file_fields = matches!(self.status, 200 | 206);
        if file_fields {
            f(Field::ContentType, h.content_type.as_bytes());
        } else if self.status != 304 {
            f(Field::ContentType, b"text/plain; charset=utf-8");
        }
        if let Some(len) = self.content_length {
            f(Field::ContentLength, num.fmt(format_args!("{len}")));
        }
        if file_fields || self.status == 304 {
            if let Some(lm) = self.last_modified {
                let date: [u8; DATE_LEN] = validators::format_date(lm);
                f(Field::LastModified, &date);
            }
            f(Field::ETag, self.etag.as_bytes());
        }
        // On every file answer (304 and 412 too): a client learns that
        // ranges work whatever it asked.
        f(Field::AcceptRanges, b"bytes");
        match self.content_range {
            Some(ContentRange::Bytes {
                first,
                last,
                complete,
            }) => f(
                Field::ContentRange,
                num.fmt(format_args!("bytes {first}-{last}/{complete}")),
            ),
            Some(ContentRange::Unsatisfied { complete }) => f(
                Field::ContentRange,
                num.fmt(format_args!("bytes */{complete}")),
            ),
            None => {}
        }
        if let (true, Some(e)) = (file_fields, self.encoding) {
            f(Field::ContentEncoding, e.token().as_bytes());
        }
        if self.vary {
            f(Field::Vary, b"Accept-Encoding");
        }
        if let (true, Some(cc)) = (file_fields || self.status == 304, h.cache_control) {
            f(Field::CacheControl, cc.as_bytes());
        }
    }
}

/// A stack buffer for a formatted field value (numbers: no allocation).
struct Num {
    buf: [u8; 80],
}

impl Default for Num {
    fn default() -> Self {
        Num { buf: [0; 80] }
    }
}

impl Num {
    fn fmt(&mut self, args: std::fmt::Arguments<'_>) -> &[u8] {
        use std::io::Write;
        let mut w = std::io::Cursor::new(&mut self.buf[..]);
        // 80 bytes hold "bytes " and three 20-digit numbers.
        let ok = w.write_fmt(args).is_ok();
        debug_assert!(ok, "a field value outgrew Num");
        let end = usize::try_from(w.position()).unwrap_or(0);
        &self.buf[..end]
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
