//! A file's validators (RFC 9110 8.8): its strong [`ETag`] and its
//! `Last-Modified` date, and how a request's validator fields are compared
//! with them (entity-tag lists, HTTP-dates). Pure.
//!
//! The ETag is `"<mtime secs hex>.<mtime nsecs hex>-<size hex>-<inode hex>"`,
//! e.g. `"2ebc98a1.1dcd6500-1a2b-83f2"`. nginx's is
//! `"<mtime secs hex>-<size hex>"`; ours adds the nanoseconds (a rewrite
//! of the same size within one second changes it) and the inode (a file
//! replaced by rename, as deploy tools do, changes it even with the same
//! mtime, and a precompressed variant, being another file, never shares
//! its identity file's tag, as RFC 9110 8.8.3 requires of strong tags).
//! The price: the same content on two servers has two tags.

use std::io::{Cursor, Write};
use std::time::{Duration, UNIX_EPOCH};

use super::Meta;
use crate::http::template::{http_date, DATE_LEN};

/// A strong entity-tag, quotes included.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ETag {
    buf: [u8; ETag::CAP],
    len: u8,
}

impl ETag {
    /// Two quotes, three 16-digit and one 8-digit hex number, three separators.
    const CAP: usize = 2 + 16 * 3 + 8 + 3;

    pub fn of(meta: &Meta) -> ETag {
        let mut buf = [0u8; ETag::CAP];
        let mut w = Cursor::new(&mut buf[..]);
        let written = write!(
            w,
            "\"{:x}.{:x}-{:x}-{:x}\"",
            meta.mtime_secs, meta.mtime_nsecs, meta.size, meta.ino
        );
        debug_assert!(written.is_ok(), "CAP fits the longest tag");
        let len = u8::try_from(w.position()).unwrap_or(0);
        ETag { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// The `Last-Modified` of a file, in seconds: its mtime, but never later
/// than `now` (RFC 9110 8.8.2.1 requires that), and none at all for a time
/// before 1970, which an HTTP-date cannot say.
pub fn last_modified(meta: &Meta, now: i64) -> Option<i64> {
    let t = meta.mtime_secs.min(now);
    (t >= 0).then_some(t)
}

/// `secs` since the epoch as an IMF-fixdate (`secs` ≥ 0).
pub fn format_date(secs: i64) -> [u8; DATE_LEN] {
    let secs = u64::try_from(secs).unwrap_or(0);
    http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// An HTTP-date (any of the three forms, RFC 9110 5.6.7) as seconds since
/// the epoch; `None` if it is not one.
pub fn parse_date(field: &[u8]) -> Option<i64> {
    crate::obs::clock::parse_http_date(std::str::from_utf8(trim(field)).ok()?)
}

/// Whether a field that is `*` or a list of entity-tags (If-Match,
/// If-None-Match) matches `tag`: `*` matches any current representation;
/// `weak` allows the weak comparison (RFC 9110 8.8.3.2), else a `W/` tag
/// never matches. A malformed list matches nothing from the bad element on.
pub fn list_matches(field: &[u8], tag: &ETag, weak: bool) -> bool {
    let field = trim(field);
    if field == b"*" {
        return true;
    }
    let mut rest = field;
    loop {
        rest = skip(rest, |b| b == b',' || is_ows(b));
        if rest.is_empty() {
            return false;
        }
        let Some((is_weak, opaque, after)) = entity_tag(rest) else {
            return false;
        };
        if opaque == tag.as_bytes() && (weak || !is_weak) {
            return true;
        }
        rest = skip(after, is_ows);
        if !rest.is_empty() && rest[0] != b',' {
            return false;
        }
    }
}

/// Whether an If-Range value that is an entity-tag matches `tag` (strong
/// comparison). `None` if it is not an entity-tag (then it may be a date).
pub fn if_range_tag_matches(field: &[u8], tag: &ETag) -> Option<bool> {
    let field = trim(field);
    let (is_weak, opaque, after) = entity_tag(field)?;
    Some(after.is_empty() && !is_weak && opaque == tag.as_bytes())
}

/// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE at the start of `s`: (weak,
/// the quoted part, the rest).
fn entity_tag(s: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (weak, s) = match s.strip_prefix(b"W/") {
        Some(r) => (true, r),
        None => (false, s),
    };
    if s.first() != Some(&b'"') {
        return None;
    }
    let close = 1 + s[1..].iter().position(|&b| b == b'"')?;
    let opaque = &s[..=close];
    // etagc = %x21 / %x23-7E / obs-text
    if !opaque[1..close]
        .iter()
        .all(|&b| b == 0x21 || b >= 0x23 && b != 0x7f)
    {
        return None;
    }
    Some((weak, opaque, &s[close + 1..]))
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip(s: &[u8], f: impl Fn(u8) -> bool) -> &[u8] {
    let n = s.iter().take_while(|&&b| f(b)).count();
    &s[n..]
}

pub(super) fn trim(s: &[u8]) -> &[u8] {
    let s = skip(s, is_ows);
    let n = s.iter().rev().take_while(|&&b| is_ows(b)).count();
    &s[..s.len() - n]
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const META: Meta = Meta {
        size: 0x1a2b,
        mtime_secs: 784_111_777, // Sun, 06 Nov 1994 08:49:37 GMT
        mtime_nsecs: 500_000_000,
        ino: 0x83f2,
        dev: 1,
    };

    #[test]
    fn etag_format() {
        assert_eq!(
            ETag::of(&META).as_bytes(),
            b"\"2ebc98a1.1dcd6500-1a2b-83f2\""
        );
        let max = Meta {
            size: u64::MAX,
            mtime_secs: -1,
            mtime_nsecs: 999_999_999,
            ino: u64::MAX,
            dev: 0,
        };
        let t = ETag::of(&max);
        assert_eq!(
            t.as_bytes(),
            b"\"ffffffffffffffff.3b9ac9ff-ffffffffffffffff-ffffffffffffffff\""
        );
        let other = Meta { ino: 1, ..META };
        assert_ne!(ETag::of(&other), ETag::of(&META));
        let other = Meta {
            mtime_nsecs: 1,
            ..META
        };
        assert_ne!(ETag::of(&other), ETag::of(&META));
    }

    #[test]
    fn dates() {
        assert_eq!(&format_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "  Sun, 06 Nov 1994 08:49:37 GMT ",
        ] {
            assert_eq!(parse_date(form.as_bytes()), Some(784_111_777), "{form}");
        }
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 GMT, x",
            "\u{ff}",
        ] {
            assert_eq!(parse_date(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(last_modified(&META, i64::MAX), Some(784_111_777));
        assert_eq!(last_modified(&META, 1000), Some(1000));
        let old = Meta {
            mtime_secs: -5,
            ..META
        };
        assert_eq!(last_modified(&old, 1000), None);
    }

    #[test]
    fn lists() {
        let t = ETag::of(&META);
        let tag = String::from_utf8(t.as_bytes().to_vec()).unwrap();
        let yes = |f: &str, weak: bool| list_matches(f.as_bytes(), &t, weak);
        for weak in [false, true] {
            assert!(yes("*", weak));
            assert!(yes(" * ", weak));
            assert!(yes(&tag, weak));
            assert!(yes(&format!("\"x\", {tag}"), weak));
            assert!(yes(&format!(" ,\"x\" ,, {tag} ,"), weak));
            assert!(!yes("\"x\"", weak));
            assert!(!yes("", weak));
            assert!(!yes("*, \"x\"", weak));
            // Malformed before the match: nothing after it counts.
            assert!(!yes(&format!("x, {tag}"), weak));
            assert!(!yes(&format!("\"x\" \"y\", {tag}"), weak));
            assert!(!yes(&tag[..tag.len() - 1], weak));
        }
        assert!(yes(&format!("W/{tag}"), true));
        assert!(!yes(&format!("W/{tag}"), false));
        assert!(!yes(&format!("w/{tag}"), true));
    }

    #[test]
    fn if_range_tags() {
        let t = ETag::of(&META);
        let tag = String::from_utf8(t.as_bytes().to_vec()).unwrap();
        let m = |f: &str| if_range_tag_matches(f.as_bytes(), &t);
        assert_eq!(m(&tag), Some(true));
        assert_eq!(m(&format!(" {tag} ")), Some(true));
        assert_eq!(m(&format!("W/{tag}")), Some(false));
        assert_eq!(m("\"other\""), Some(false));
        assert_eq!(m(&format!("{tag}, \"x\"")), Some(false));
        assert_eq!(m("Sun, 06 Nov 1994 08:49:37 GMT"), None);
    }
}
