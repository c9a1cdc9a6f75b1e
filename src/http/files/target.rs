//! The request path after a files route's prefix → the relative path to look
//! up beneath root ([`Target`]), or a refusal with its status
//! ([`TargetReject`]). Pure: no disk, no allocation beyond the result.
//!
//! The rules, and where they come from:
//! - The query (`?…`) is cut off first; the rest is percent-decoded exactly
//!   once, so `%252e` is the three bytes `%2e`, a plain name, never `.`.
//! - After decoding: NUL, any other control byte and backslash → 400. The
//!   request parser already refuses a raw `\` (it is not a URI character,
//!   RFC 3986 2), so `%5c` gets the same answer. nginx on Linux treats `\` as
//!   an ordinary byte and would look for such a file (404); we refuse it, as
//!   nothing we serve is named so and it is the shape of a Windows traversal.
//! - The decoded bytes must be UTF-8 → else 400. That rejects overlong forms
//!   such as `%c0%ae` (never a `.` here, but the classic IIS traversal), and
//!   keeps every name we serve printable in logs and listings.
//! - A decoded `/` (`%2f`) separates segments like a raw one, as nginx does:
//!   `..%2f` is a `..` segment and gets the `..` rule.
//! - Empty segments (`//`) merge, `.` segments drop, `..` removes the segment
//!   before it; a `..` with nothing left to remove would leave root → 400
//!   (nginx's answer too).
//! - Dot files: with `dotfiles = "deny"`, any remaining segment starting with
//!   `.` → 404, except `.well-known` as the first segment (RFC 8615).
//!
//! Matching the prefix and the absolute form (`http://host/path`) are the
//! caller's; it hands over what follows the prefix.

use super::Dotfiles;

/// Why a path is not looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetReject {
    /// Malformed, or it would leave root.
    BadRequest,
    /// A dot file while `dotfiles = "deny"`.
    NotFound,
}

impl TargetReject {
    pub fn status(self) -> u16 {
        match self {
            TargetReject::BadRequest => 400,
            TargetReject::NotFound => 404,
        }
    }
}

/// A path beneath root: segments joined by `/`, none empty, `.` or `..`, no
/// leading slash; empty for root itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    rel: String,
    dir_request: bool,
}

impl Target {
    /// The path to open beneath root (`""` is root itself).
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// The request named a directory: its path ended in `/` (or in a `.` or
    /// `..` segment). The caller redirects a directory found without it.
    pub fn is_dir_request(&self) -> bool {
        self.dir_request
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.rel.split('/').filter(|s| !s.is_empty())
    }

    /// This directory's entry `name` (an index file): a file request.
    pub fn join(&self, name: &str) -> Target {
        let rel = if self.rel.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.rel)
        };
        Target {
            rel,
            dir_request: false,
        }
    }
}

/// Resolves `rest`, the request path after the route's prefix (its query
/// still on, if any), where a prefix's trailing `/` belongs to the rest:
/// with prefix `/` or `/static/`, a request for `/static/a/` passes `/a/`.
/// `""` is a request that ended where a prefix without slash does
/// (`/static` for prefix `/static`): root named without its slash, so it
/// is not a directory request and gets the redirect.
pub fn resolve(rest: &[u8], dotfiles: Dotfiles) -> Result<Target, TargetReject> {
    let path = rest
        .iter()
        .position(|&b| b == b'?')
        .map_or(rest, |q| &rest[..q]);
    let decoded = percent_decode(path)?;
    if decoded.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\') {
        return Err(TargetReject::BadRequest);
    }
    let decoded = std::str::from_utf8(&decoded).map_err(|_| TargetReject::BadRequest)?;
    let mut segments: Vec<&str> = Vec::new();
    let mut dir_request = false;
    for seg in decoded.split('/').filter(|_| !decoded.is_empty()) {
        dir_request = matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(TargetReject::BadRequest)?;
            }
            _ => segments.push(seg),
        }
    }
    if dotfiles == Dotfiles::Deny {
        let hidden =
            |(i, s): (usize, &&str)| s.starts_with('.') && !(i == 0 && *s == ".well-known");
        if segments.iter().enumerate().any(hidden) {
            return Err(TargetReject::NotFound);
        }
    }
    Ok(Target {
        rel: segments.join("/"),
        dir_request,
    })
}

/// Decodes every `%XX` once; a `%` without two hex digits → 400.
fn percent_decode(s: &[u8]) -> Result<Vec<u8>, TargetReject> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = |j: usize| s.get(j).and_then(|&b| (b as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(TargetReject::BadRequest);
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (relative path, is a directory request), or the status.
    type Want = Result<(&'static str, bool), u16>;

    const BAD: Want = Err(400);
    const GONE: Want = Err(404);

    fn run(path: &str, dotfiles: Dotfiles) -> Result<(String, bool), u16> {
        resolve(path.as_bytes(), dotfiles)
            .map(|t| (t.rel().to_owned(), t.is_dir_request()))
            .map_err(TargetReject::status)
    }

    fn check(table: &[(&str, Want)], dotfiles: Dotfiles) {
        for (path, want) in table {
            let want = want.map(|(r, d)| (r.to_owned(), d));
            assert_eq!(run(path, dotfiles), want, "path {path:?}");
        }
    }

    #[test]
    fn plain_paths() {
        check(
            &[
                ("", Ok(("", false))),
                ("?x", Ok(("", false))),
                ("/", Ok(("", true))),
                ("/?x", Ok(("", true))),
                ("index.html", Ok(("index.html", false))),
                ("/a/b.css", Ok(("a/b.css", false))),
                ("a//b///c", Ok(("a/b/c", false))),
                ("a/b/", Ok(("a/b", true))),
                ("a/./b/.", Ok(("a/b", true))),
                ("a/b/..", Ok(("a", true))),
                ("a/../b", Ok(("b", false))),
                ("a?x=../../etc", Ok(("a", false))),
                ("a/?", Ok(("a", true))),
                ("dir/?x=1", Ok(("dir", true))),
                ("caf%C3%A9", Ok(("café", false))),
                ("sp%20ace+plus", Ok(("sp ace+plus", false))),
                ("%41%62", Ok(("Ab", false))),
            ],
            Dotfiles::Deny,
        );
    }

    #[test]
    fn traversal() {
        check(
            &[
                ("..", BAD),
                ("/../etc/passwd", BAD),
                ("a/../../b", BAD),
                ("%2e%2e", BAD),
                ("%2E%2e/", BAD),
                ("/%2e%2e/etc", BAD),
                ("..%2f", BAD),
                ("..%2Fetc%2Fpasswd", BAD),
                ("a%2f..%2f..%2fb", BAD),
                ("a/.%2e/b", Ok(("b", false))),
                // Decoded once: the literal names `%2e%2e` and `%2e`.
                ("%252e%252e", Ok(("%2e%2e", false))),
                ("%252e%252e/%252e", Ok(("%2e%2e/%2e", false))),
                ("%252e%252e%252f", Ok(("%2e%2e%2f", false))),
                // Overlong `.` and `/`: not UTF-8.
                ("%c0%ae%c0%ae", BAD),
                ("%c0%ae%c0%ae/etc", BAD),
                ("%c0%af", BAD),
                ("%e0%80%ae", BAD),
                ("%ff", BAD),
                // Backslash, raw or encoded.
                ("\\..\\", BAD),
                ("a\\b", BAD),
                ("..%5c..%5cetc", BAD),
                ("%5C", BAD),
                // NUL and other controls.
                ("%00", BAD),
                ("index.html%00.jpg", BAD),
                ("a%0ab", BAD),
                ("a%0d%0aSet-Cookie:x", BAD),
                ("a%7f", BAD),
                // Broken escapes.
                ("%", BAD),
                ("%2", BAD),
                ("%zz", BAD),
                ("a%2", BAD),
            ],
            Dotfiles::Allow,
        );
    }

    #[test]
    fn dotfiles() {
        let denied = [
            (".env", GONE),
            (".git/config", GONE),
            ("a/.htaccess", GONE),
            ("%2egit/HEAD", GONE),
            ("a/.well-known/x", GONE),
            (".well-known/.hidden", GONE),
            (
                ".well-known/acme-challenge/tok",
                Ok((".well-known/acme-challenge/tok", false)),
            ),
            (".well-known/", Ok((".well-known", true))),
            ("a/..", Ok(("", true))),
            ("a.b/c..d", Ok(("a.b/c..d", false))),
            ("..%252e", GONE),
            // `..` wins over the dot rule: 400, not 404.
            ("../.env", BAD),
            // A dot segment removed by `..` is not looked at.
            (".git/../a", Ok(("a", false))),
        ];
        check(&denied, Dotfiles::Deny);
        check(
            &[
                (".env", Ok((".env", false))),
                ("a/.htaccess", Ok(("a/.htaccess", false))),
                ("..%252e", Ok(("..%2e", false))),
            ],
            Dotfiles::Allow,
        );
    }

    #[test]
    fn join_and_segments() {
        let root = resolve(b"/", Dotfiles::Deny).unwrap();
        assert_eq!(root.join("index.html").rel(), "index.html");
        let dir = resolve(b"/a/b/", Dotfiles::Deny).unwrap();
        let idx = dir.join("index.html");
        assert_eq!(idx.rel(), "a/b/index.html");
        assert!(!idx.is_dir_request());
        assert_eq!(idx.segments().collect::<Vec<_>>(), ["a", "b", "index.html"]);
        assert_eq!(root.segments().count(), 0);
    }
}
