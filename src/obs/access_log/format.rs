//! The access log's line formats: `combined` and `common` as nginx writes
//! them (its escaping byte for byte) and `json` (always valid JSON), the
//! fields picked from a request head, all written straight into the
//! buffer without allocating.
//!
//! Leaves the time strings to `obs/clock.rs` and where lines go to `sink.rs`.

use std::io::Write;
use std::net::IpAddr;

use super::config::Format;
use crate::obs::clock::{push_padded, push_u64, Clock};
use crate::obs::exchange::Exchange;

/// Writes the line for `e` (without its newline) in `format`; `head` is
/// the part of the request head looked at.
pub(super) fn push_line(
    buf: &mut Vec<u8>,
    format: Format,
    clock: &Clock,
    pid: u32,
    e: &Exchange,
    head: &[u8],
) {
    let fields = Fields::of(head);
    match format {
        Format::Combined | Format::Common => {
            push_addr(buf, e.peer);
            buf.extend_from_slice(b" - - [");
            buf.extend_from_slice(&clock.local);
            buf.extend_from_slice(b"] \"");
            push_nginx(buf, fields.line);
            buf.extend_from_slice(b"\" ");
            push_u64(buf, u64::from(e.status));
            buf.push(b' ');
            push_u64(buf, e.body_bytes);
            if format == Format::Combined {
                buf.extend_from_slice(b" \"");
                push_nginx(buf, fields.referer);
                buf.extend_from_slice(b"\" \"");
                push_nginx(buf, fields.user_agent);
                buf.push(b'"');
            }
        }
        Format::Json => {
            let ms = e
                .now
                .saturating_duration_since(clock.second_start)
                .as_millis()
                .min(999) as u64;
            buf.extend_from_slice(b"{\"time\":\"");
            buf.extend_from_slice(&clock.iso);
            buf.push(b'.');
            push_padded(buf, ms, 3);
            buf.extend_from_slice(&clock.iso_offset);
            buf.extend_from_slice(b"\",\"remote_addr\":");
            match e.peer {
                Some(_) => {
                    buf.push(b'"');
                    push_addr(buf, e.peer);
                    buf.push(b'"');
                }
                None => buf.extend_from_slice(b"null"),
            }
            let [method, target, protocol] = fields.request_parts();
            buf.extend_from_slice(b",\"method\":");
            push_json(buf, method);
            buf.extend_from_slice(b",\"target\":");
            push_json(buf, target);
            buf.extend_from_slice(b",\"protocol\":");
            push_json(buf, protocol);
            buf.extend_from_slice(b",\"status\":");
            push_u64(buf, u64::from(e.status));
            buf.extend_from_slice(b",\"body_bytes\":");
            push_u64(buf, e.body_bytes);
            buf.extend_from_slice(b",\"referer\":");
            push_json(buf, fields.referer);
            buf.extend_from_slice(b",\"user_agent\":");
            push_json(buf, fields.user_agent);
            // What answered: a route, the maintenance page, or null
            // (before the timing, so that `pid` stays the last field).
            buf.extend_from_slice(b",\"route\":");
            push_json(buf, e.route.map(str::as_bytes));
            buf.extend_from_slice(b",\"request_time_us\":");
            let us = e.now.saturating_duration_since(e.started).as_micros();
            push_u64(buf, u64::try_from(us).unwrap_or(u64::MAX));
            buf.extend_from_slice(b",\"pid\":");
            push_u64(buf, u64::from(pid));
            buf.push(b'}');
        }
    }
}

/// The parts of a request head a line shows.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields<'a> {
    /// The request line as read (up to the first CR or LF), `None` if not
    /// even one byte of it arrived.
    line: Option<&'a [u8]>,
    referer: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// Picks the request line and the first Referer and User-Agent from
    /// whole header lines of `head` (as nginx 1.22 does: the first of each).
    fn of(head: &'a [u8]) -> Fields<'a> {
        // Empty lines before the request line are skipped (RFC 9112 2.2).
        let start = head
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(head.len());
        let head = &head[start..];
        if head.is_empty() {
            return Fields::default();
        }
        let line_end = head
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(head.len());
        let mut fields = Fields {
            line: Some(&head[..line_end]),
            ..Fields::default()
        };
        let mut rest = &head[line_end..];
        // Skip the line's end, then take each whole header line.
        rest = rest.strip_prefix(b"\r").unwrap_or(rest);
        let Some(after) = rest.strip_prefix(b"\n") else {
            return fields;
        };
        rest = after;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            rest = &rest[nl + 1..];
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"referer") {
                fields.referer.get_or_insert(value);
            } else if name.eq_ignore_ascii_case(b"user-agent") {
                fields.user_agent.get_or_insert(value);
            }
        }
        fields
    }

    /// method, target, protocol: the request line split at its first two
    /// spaces; what is not there is `None`.
    fn request_parts(&self) -> [Option<&'a [u8]>; 3] {
        let Some(line) = self.line else {
            return [None; 3];
        };
        let mut parts = line.splitn(3, |&b| b == b' ');
        [parts.next(), parts.next(), parts.next()]
    }
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// nginx's log escaping: `"`, `\` and every byte outside 0x20-0x7e as
/// `\xHH` (upper case); `-` for a missing field.
fn push_nginx(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    let Some(v) = field else {
        buf.push(b'-');
        return;
    };
    let mut plain = 0;
    for (i, &b) in v.iter().enumerate() {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            continue;
        }
        buf.extend_from_slice(&v[plain..i]);
        buf.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]);
        plain = i + 1;
    }
    buf.extend_from_slice(&v[plain..]);
}

/// A JSON string (or `null`): `"` and `\` escaped, control characters as
/// `\n`, `\r`, `\t` or `\u00XX`, valid UTF-8 kept, and each byte that is
/// not part of valid UTF-8 as `\u00XX` (its Latin-1 reading), so that every
/// line is valid JSON whatever the client sent.
fn push_json(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    let Some(mut v) = field else {
        buf.extend_from_slice(b"null");
        return;
    };
    buf.push(b'"');
    loop {
        let (valid, bad) = match std::str::from_utf8(v) {
            Ok(s) => (s.as_bytes(), None),
            Err(e) => (
                &v[..e.valid_up_to()],
                Some(e.error_len().unwrap_or(v.len() - e.valid_up_to())),
            ),
        };
        let mut plain = 0;
        for (i, &b) in valid.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f | 0x7f => b"",
                _ => continue,
            };
            buf.extend_from_slice(&valid[plain..i]);
            if esc.is_empty() {
                push_u00(buf, b);
            } else {
                buf.extend_from_slice(esc);
            }
            plain = i + 1;
        }
        buf.extend_from_slice(&valid[plain..]);
        let Some(n) = bad else { break };
        let from = valid.len();
        for &b in &v[from..from + n] {
            push_u00(buf, b);
        }
        v = &v[from + n..];
    }
    buf.push(b'"');
}

fn push_u00(buf: &mut Vec<u8>, b: u8) {
    buf.extend_from_slice(&[
        b'\\',
        b'u',
        b'0',
        b'0',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

/// `$remote_addr`, `-` when unknown.
fn push_addr(buf: &mut Vec<u8>, peer: Option<IpAddr>) {
    match peer {
        None => buf.push(b'-'),
        Some(IpAddr::V4(a)) => {
            for (i, o) in a.octets().iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                push_u64(buf, u64::from(*o));
            }
        }
        Some(IpAddr::V6(a)) => {
            // std's formatting, into a stack buffer: no allocation.
            let mut text = [0u8; 64];
            let mut w = &mut text[..];
            let _ = write!(w, "{a}");
            let left = w.len();
            buf.extend_from_slice(&text[..text.len() - left]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx(v: &[u8]) -> String {
        let mut b = Vec::new();
        push_nginx(&mut b, Some(v));
        String::from_utf8(b).unwrap()
    }

    fn json(v: &[u8]) -> String {
        let mut b = Vec::new();
        push_json(&mut b, Some(v));
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn nginx_escaping() {
        assert_eq!(nginx(b"GET / HTTP/1.1"), "GET / HTTP/1.1");
        assert_eq!(nginx(b"a\"b\\c"), "a\\x22b\\x5Cc");
        assert_eq!(
            nginx(b"\x16\x03\x01\x00\xa5\t\x7f\xff~ "),
            "\\x16\\x03\\x01\\x00\\xA5\\x09\\x7F\\xFF~ "
        );
        let mut b = Vec::new();
        push_nginx(&mut b, None);
        assert_eq!(b, b"-");
    }

    #[test]
    fn json_escaping_is_always_valid_json() {
        assert_eq!(json(b"plain"), "\"plain\"");
        assert_eq!(
            json(b"a\"b\\c\n\t\x01\x7f"),
            "\"a\\\"b\\\\c\\n\\t\\u0001\\u007F\""
        );
        assert_eq!(json("é".as_bytes()), "\"é\"");
        assert_eq!(json(b"a\xffb\xc3"), "\"a\\u00FFb\\u00C3\"");
        let mut b = Vec::new();
        push_json(&mut b, None);
        assert_eq!(b, b"null");
    }

    #[test]
    fn numbers() {
        let mut b = Vec::new();
        push_u64(&mut b, 0);
        b.push(b' ');
        push_u64(&mut b, 18_446_744_073_709_551_615);
        b.push(b' ');
        push_padded(&mut b, 7, 3);
        b.push(b' ');
        push_padded(&mut b, 1234, 2);
        assert_eq!(b, b"0 18446744073709551615 007 1234");
    }

    #[test]
    fn fields_of_a_head() {
        let f = Fields::of(
            b"\r\nGET /x HTTP/1.1\r\nHost: a\r\nreferer:  http://r/ \r\nUser-Agent: \tua 1\r\nReferer: second\r\nUSER-AGENT: u2\r\n\r\n",
        );
        assert_eq!(f.line, Some(&b"GET /x HTTP/1.1"[..]));
        assert_eq!(f.referer, Some(&b"http://r/"[..]));
        assert_eq!(f.user_agent, Some(&b"ua 1"[..]));
        assert_eq!(
            f.request_parts(),
            [Some(&b"GET"[..]), Some(&b"/x"[..]), Some(&b"HTTP/1.1"[..])]
        );
        // What of a refused request arrived: part of a line, no headers.
        let f = Fields::of(b"GET / HT");
        assert_eq!(f.line, Some(&b"GET / HT"[..]));
        assert_eq!(f.referer, None);
        // A header line not yet complete is not read.
        let f = Fields::of(b"GET / HTTP/1.1\r\nUser-Agent: x\r\nReferer: r");
        assert_eq!((f.user_agent, f.referer), (Some(&b"x"[..]), None));
        // Empty values are there, but empty ("" in the line, not -).
        let f = Fields::of(b"GET / HTTP/1.1\r\nReferer:\r\n\r\n");
        assert_eq!(f.referer, Some(&b""[..]));
        assert_eq!(Fields::of(b"\r\n"), Fields::default());
        assert_eq!(
            Fields::of(b"\x16\x03").request_parts(),
            [Some(&b"\x16\x03"[..]), None, None]
        );
    }
}
