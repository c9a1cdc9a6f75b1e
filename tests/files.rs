//! `kind = "files"` routes (issue 19), through the real binary: GET/HEAD
//! only; Content-Type and charset; Last-Modified and the strong ETag;
//! If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since (and
//! their precedence); single ranges, 416, If-Range, multiple ranges
//! answered 200 whole; precompressed siblings with Content-Encoding and
//! Vary; the trailing-slash redirect, index files, listing and fallback;
//! dot files and `/.well-known/`; a traversal corpus that never yields a
//! byte of a file outside root; symlinks, a FIFO, a directory named like a
//! file; `rename` under a looping client, freshness without reload; a
//! 40 MiB download to fast, slow and stalled readers; the access log's
//! status and bytes; maintenance; `-t` errors with `file:line:col`; a file
//! the workers' user cannot read (root only); curl, wget and nginx as
//! peers (each skipped with a message when missing).
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The bytes of the file outside root that no request may ever see.
const SECRET: &[u8] = b"TOP-SECRET-9f8e7d6c\n";

// ---------------------------------------------------------------------------
// A site on disk
// ---------------------------------------------------------------------------

/// A temp dir holding `www/` (the root served) and, beside it, `secret`
/// (outside root).
struct Site {
    dir: TempDir,
}

impl Site {
    /// The site most tests use.
    fn new() -> Site {
        let site = Site {
            dir: TempDir::new(),
        };
        std::fs::create_dir_all(site.root()).unwrap();
        std::fs::write(site.dir.path().join("secret"), SECRET).unwrap();
        site.write("index.html", b"<h1>home</h1>\n");
        site.write("a.txt", b"alpha alpha alpha\n");
        site.write("sub/index.html", b"<h1>sub</h1>\n");
        site.write("noindex/f.txt", b"f\n");
        site.write(".secret", b"dot file\n");
        site.write(".git/config", b"[core]\n");
        site.write(".well-known/acme-challenge/tok", b"token-value\n");
        site
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// A config with one worker, `top` (top-level keys, then any tables), and
/// a files route at `/` on `root` with `keys`.
fn files_toml(top: &str, root: &Path, keys: &str) -> String {
    format!(
        "workers = 1\n{top}\n[[route]]\nprefix = \"/\"\nkind = \"files\"\nroot = \"{}\"\n{keys}\n",
        root.display()
    )
}

fn start(site: &Site, keys: &str) -> Server {
    Server::start(&files_toml("", &site.root(), keys))
}

// ---------------------------------------------------------------------------
// A client for binary bodies
// ---------------------------------------------------------------------------

/// One response: its head as text, its body as bytes.
struct Got {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Got {
    /// The first `name` field's value (any case), trimmed.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn len(&self) -> usize {
        self.header("Content-Length")
            .unwrap_or_else(|| panic!("no Content-Length in {}", self.head))
            .parse()
            .unwrap()
    }
}

impl std::fmt::Debug for Got {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.body[..self.body.len().min(200)];
        write!(f, "{}{}", self.head, String::from_utf8_lossy(shown))
    }
}

/// Reads one response from `s` within `within`: the head, then
/// Content-Length bytes (none for HEAD, 304 and 1xx). Bytes beyond it are
/// an error: the server sent something nobody asked for.
fn read_got(s: &mut TcpStream, head_only: bool, within: Duration) -> Result<Got, String> {
    let deadline = Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut need: Option<usize> = None;
    let mut head_end = 0;
    loop {
        if need.is_none() {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                head_end = i + 4;
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                let bodiless =
                    head_only || head.starts_with("HTTP/1.1 304") || head.starts_with("HTTP/1.1 1");
                need = Some(head_end + if bodiless { 0 } else { len });
            }
        }
        if let Some(n) = need {
            if buf.len() == n {
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let status = head
                    .get(9..12)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("not a response: {head:?}"))?;
                return Ok(Got {
                    status,
                    head,
                    body: buf[head_end..].to_vec(),
                });
            }
            if buf.len() > n {
                return Err(format!("{} bytes after the response", buf.len() - n));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no whole response within {within:?}; {} bytes: {:?}",
                buf.len(),
                String::from_utf8_lossy(&buf[..buf.len().min(300)])
            ));
        }
        s.set_read_timeout(Some(left)).unwrap();
        let want = match need {
            Some(n) => chunk.len().min(n - buf.len()),
            None => chunk.len(),
        };
        match s.read(&mut chunk[..want]) {
            Ok(0) => return Err(format!("EOF after {} bytes", buf.len())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(e) => return Err(format!("{e} after {} bytes", buf.len())),
        }
    }
}

/// Sends `method target` with the `extra` header lines (each ending in
/// CRLF) on `s` and reads the answer.
fn ask_on(s: &mut TcpStream, method: &str, target: &str, extra: &str) -> Got {
    let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).unwrap();
    read_got(s, method == "HEAD", ANSWER).unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

/// `method target` with `extra` on a new connection (closed after it).
fn ask(addr: SocketAddr, method: &str, target: &str, extra: &str) -> Got {
    let mut s = open(addr);
    ask_on(
        &mut s,
        method,
        target,
        &format!("{extra}Connection: close\r\n"),
    )
}

fn get(addr: SocketAddr, target: &str) -> Got {
    ask(addr, "GET", target, "")
}

/// The ETag nginx would compute, extended as validators.rs says:
/// `"<mtime hex>.<nsec hex>-<size hex>-<inode hex>"`.
fn etag_of(path: &Path) -> String {
    let m = std::fs::metadata(path).unwrap();
    format!(
        "\"{:x}.{:x}-{:x}-{:x}\"",
        m.mtime(),
        m.mtime_nsec(),
        m.size(),
        m.ino()
    )
}

fn last_modified_of(path: &Path) -> String {
    httpdate::fmt_http_date(std::fs::metadata(path).unwrap().modified().unwrap())
}

/// Pseudo-random bytes (xorshift): a body whose every offset differs, so
/// a byte out of place shows.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Methods, types, validators
// ---------------------------------------------------------------------------

// Proves: GET and HEAD are served (HEAD: the same head, no body), other
// methods get 405 with Allow; Content-Type comes from the extension, with
// charset=utf-8 on text only, octet-stream for unknown ones; Last-Modified
// is the file's mtime and ETag the strong tag of its size, mtime and inode;
// Accept-Ranges and cache_control are on every file answer.
#[test]
fn get_head_types_validators_and_cache_control() {
    let site = Site::new();
    let types: &[(&str, &str)] = &[
        ("page.html", "text/html; charset=utf-8"),
        ("page.htm", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("mod.mjs", "text/javascript; charset=utf-8"),
        ("data.json", "application/json"),
        ("pic.svg", "image/svg+xml"),
        ("img.png", "image/png"),
        ("img.JPG", "image/jpeg"),
        ("img.webp", "image/webp"),
        ("img.avif", "image/avif"),
        ("img.gif", "image/gif"),
        ("favicon.ico", "image/x-icon"),
        ("font.woff2", "font/woff2"),
        ("mod.wasm", "application/wasm"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("feed.xml", "text/xml; charset=utf-8"),
        ("doc.pdf", "application/pdf"),
        ("clip.mp4", "video/mp4"),
        ("clip.webm", "video/webm"),
        ("bundle.zip", "application/zip"),
        ("bundle.tar.gz", "application/gzip"),
        ("blob.xyz", "application/octet-stream"),
        ("README", "application/octet-stream"),
    ];
    for (name, _) in types {
        site.write(name, format!("content of {name}\n").as_bytes());
    }
    let server = start(&site, "cache_control = \"max-age=3600\"");
    for (name, want) in types {
        let r = get(server.addr, &format!("/{name}"));
        assert_eq!(r.status, 200, "{name}: {r:?}");
        assert_eq!(r.header("Content-Type"), Some(*want), "{name}");
        assert_eq!(r.body, format!("content of {name}\n").as_bytes());
    }

    let path = site.path("a.txt");
    let r = get(server.addr, "/a.txt");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.len(), 18);
    assert_eq!(r.header("ETag"), Some(etag_of(&path).as_str()));
    assert!(!r.header("ETag").unwrap().starts_with("W/"), "a strong tag");
    assert_eq!(
        r.header("Last-Modified"),
        Some(last_modified_of(&path).as_str())
    );
    imf_fixdate(r.header("Last-Modified").unwrap());
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(r.header("Cache-Control"), Some("max-age=3600"));

    // HEAD: the GET head, no body.
    let h = ask(server.addr, "HEAD", "/a.txt", "");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    for f in [
        "Content-Type",
        "Content-Length",
        "ETag",
        "Last-Modified",
        "Accept-Ranges",
        "Cache-Control",
    ] {
        assert_eq!(h.header(f), r.header(f), "{f} of HEAD");
    }

    // Other methods: 405 naming what a files route takes.
    for m in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = ask(server.addr, m, "/a.txt", "Content-Length: 0\r\n");
        assert_eq!(r.status, 405, "{m}: {r:?}");
        let allow = r.header("Allow").unwrap();
        assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
        assert!(!allow.contains(m), "{allow}");
    }

    // Accept-Ranges and Cache-Control on every answer about the file:
    // 206, 304, 412, 416.
    let tag = etag_of(&path);
    let answers = [
        ask(server.addr, "GET", "/a.txt", "Range: bytes=0-0\r\n"),
        ask(
            server.addr,
            "GET",
            "/a.txt",
            &format!("If-None-Match: {tag}\r\n"),
        ),
        ask(server.addr, "GET", "/a.txt", "If-Match: \"other\"\r\n"),
        ask(server.addr, "GET", "/a.txt", "Range: bytes=999-\r\n"),
    ];
    for (r, status) in answers.iter().zip([206, 304, 412, 416]) {
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"), "{r:?}");
    }
    assert_eq!(answers[1].header("Cache-Control"), Some("max-age=3600"));
    server.finish();
}

// Proves: If-None-Match (matching, `*`, in a list, weak comparison) gives
// 304 with the validators and no body; it wins over If-Modified-Since
// either way (RFC 9110 13.2.2); If-Modified-Since alone gives 304 at or
// after Last-Modified, 200 before; If-Match that does not match and
// If-Unmodified-Since before Last-Modified give 412; HEAD alike.
#[test]
fn conditionals_304_and_412_with_precedence() {
    let site = Site::new();
    let server = start(&site, "");
    let path = site.path("a.txt");
    let tag = etag_of(&path);
    let lm = last_modified_of(&path);
    let before = "Sat, 01 Jan 2000 00:00:00 GMT";
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let cond = |h: String| ask(server.addr, "GET", "/a.txt", &h);

    for inm in [
        tag.clone(),
        "*".to_owned(),
        format!("\"x\", {tag}"),
        format!("W/{tag}"),
    ] {
        let r = cond(format!("If-None-Match: {inm}\r\n"));
        assert_eq!(r.status, 304, "If-None-Match: {inm}: {r:?}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("ETag"), Some(tag.as_str()));
    }
    assert_eq!(cond("If-None-Match: \"other\"\r\n".into()).status, 200);
    // If-None-Match wins: a match with an old If-Modified-Since is 304,
    // no match with a fresh one is 200.
    let r = cond(format!(
        "If-None-Match: {tag}\r\nIf-Modified-Since: {before}\r\n"
    ));
    assert_eq!(r.status, 304, "{r:?}");
    let r = cond(format!(
        "If-None-Match: \"other\"\r\nIf-Modified-Since: {later}\r\n"
    ));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"alpha alpha alpha\n");

    // If-Modified-Since alone.
    let r = cond(format!("If-Modified-Since: {lm}\r\n"));
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(r.header("Last-Modified"), Some(lm.as_str()));
    assert_eq!(cond(format!("If-Modified-Since: {later}\r\n")).status, 304);
    assert_eq!(cond(format!("If-Modified-Since: {before}\r\n")).status, 200);
    assert_eq!(cond("If-Modified-Since: yesterday\r\n".into()).status, 200);

    // If-Match and If-Unmodified-Since.
    let r = cond("If-Match: \"other\"\r\n".into());
    assert_eq!(r.status, 412, "{r:?}");
    assert_eq!(cond(format!("If-Match: {tag}\r\n")).status, 200);
    assert_eq!(cond("If-Match: *\r\n".into()).status, 200);
    // If-Match compares strongly: a weak tag never matches.
    assert_eq!(cond(format!("If-Match: W/{tag}\r\n")).status, 412);
    assert_eq!(
        cond(format!("If-Unmodified-Since: {before}\r\n")).status,
        412
    );
    assert_eq!(cond(format!("If-Unmodified-Since: {lm}\r\n")).status, 200);
    // If-Match wins over If-Unmodified-Since.
    let r = cond(format!(
        "If-Match: {tag}\r\nIf-Unmodified-Since: {before}\r\n"
    ));
    assert_eq!(r.status, 200, "{r:?}");

    let h = ask(
        server.addr,
        "HEAD",
        "/a.txt",
        &format!("If-None-Match: {tag}\r\n"),
    );
    assert_eq!(h.status, 304);
    server.finish();
}

// Proves: one range (first-last, open, suffix) gives 206 with
// Content-Range and exactly those bytes; an unsatisfiable one 416 with
// `bytes */len`; If-Range with the current ETag or Last-Modified honours
// the range, with another validator answers 200 whole; several ranges are
// answered 200 with the whole file (our decision: no multipart/byteranges).
#[test]
fn ranges_206_416_if_range_and_multiple_ranges_whole() {
    let site = Site::new();
    let data = noise(10_000, 7);
    let path = site.write("data.bin", &data);
    let server = start(&site, "");
    let range = |r: &str| ask(server.addr, "GET", "/data.bin", &format!("Range: {r}\r\n"));

    for (spec, from, to) in [
        ("bytes=0-99", 0, 99),
        ("bytes=9990-", 9990, 9999),
        ("bytes=-10", 9990, 9999),
        ("bytes=5000-5000", 5000, 5000),
        ("bytes=9000-20000", 9000, 9999),
    ] {
        let r = range(spec);
        assert_eq!(r.status, 206, "{spec}: {r:?}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {from}-{to}/10000").as_str()),
            "{spec}"
        );
        assert_eq!(r.body, &data[from..=to], "{spec}");
        assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    }
    for spec in ["bytes=10000-", "bytes=20000-30000"] {
        let r = range(spec);
        assert_eq!(r.status, 416, "{spec}: {r:?}");
        assert_eq!(r.header("Content-Range"), Some("bytes */10000"));
    }
    // Several ranges: 200 and the whole file.
    let r = range("bytes=0-1,5-6");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, data);
    assert_eq!(r.header("Content-Range"), None);

    let tag = etag_of(&path);
    let lm = last_modified_of(&path);
    let if_range = |v: &str| {
        ask(
            server.addr,
            "GET",
            "/data.bin",
            &format!("Range: bytes=0-9\r\nIf-Range: {v}\r\n"),
        )
    };
    let r = if_range(&tag);
    assert_eq!((r.status, r.body.as_slice()), (206, &data[..10]), "{r:?}");
    let r = if_range(&lm);
    assert_eq!(r.status, 206, "If-Range with Last-Modified: {r:?}");
    for other in [
        "\"another-version\"".to_owned(),
        format!("W/{tag}"),
        "Sat, 01 Jan 2000 00:00:00 GMT".to_owned(),
    ] {
        let r = if_range(&other);
        assert_eq!(r.status, 200, "If-Range: {other}: {r:?}");
        assert_eq!(r.body, data);
    }
    server.finish();
}

// Proves: foo.css.br / foo.css.gz beside foo.css are answered when
// Accept-Encoding allows them (best first in `precompressed` order), with
// Content-Encoding, Vary: Accept-Encoding, the identity's Content-Type and
// a tag of their own; q=0 refuses an encoding (and `identity;q=0` does not
// make us compress); a variant's ETag revalidates it; `precompressed = []`
// never looks for one; a route without variants still says Vary.
#[test]
fn precompressed_variants_by_accept_encoding() {
    let site = Site::new();
    let css = site.write("style.css", b"body { color: red }\n");
    let br = site.write("style.css.br", b"BROTLI-BYTES");
    let gz = site.write("style.css.gz", b"GZIP-BYTES-LONGER");
    let server = start(&site, "");
    let css_get = |ae: &str| ask(server.addr, "GET", "/style.css", &format!("{ae}\r\n"));

    let cases: &[(&str, Option<&str>, &[u8])] = &[
        ("Accept-Encoding: br, gzip", Some("br"), b"BROTLI-BYTES"),
        ("Accept-Encoding: gzip, br", Some("br"), b"BROTLI-BYTES"),
        ("Accept-Encoding: gzip", Some("gzip"), b"GZIP-BYTES-LONGER"),
        (
            "Accept-Encoding: br;q=0, gzip",
            Some("gzip"),
            b"GZIP-BYTES-LONGER",
        ),
        ("Accept-Encoding: *", Some("br"), b"BROTLI-BYTES"),
        (
            "Accept-Encoding: *, br;q=0",
            Some("gzip"),
            b"GZIP-BYTES-LONGER",
        ),
        (
            "Accept-Encoding: br;q=0, gzip;q=0",
            None,
            b"body { color: red }\n",
        ),
        ("Accept-Encoding: identity", None, b"body { color: red }\n"),
        ("Accept-Encoding: deflate", None, b"body { color: red }\n"),
        ("X-None: 1", None, b"body { color: red }\n"),
    ];
    for (ae, enc, body) in cases {
        let r = css_get(ae);
        assert_eq!(r.status, 200, "{ae}: {r:?}");
        assert_eq!(r.header("Content-Encoding"), *enc, "{ae}");
        assert_eq!(r.body, *body, "{ae}");
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"), "{ae}");
        assert_eq!(r.header("Content-Type"), Some("text/css; charset=utf-8"));
        let own = match enc {
            Some("br") => &br,
            Some(_) => &gz,
            None => &css,
        };
        assert_eq!(r.header("ETag"), Some(etag_of(own).as_str()), "{ae}");
    }
    let tags = [etag_of(&css), etag_of(&br), etag_of(&gz)];
    assert!(tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2]);
    // A variant's tag revalidates that variant; the identity's tag does
    // not revalidate it.
    let r = css_get(&format!(
        "Accept-Encoding: br\r\nIf-None-Match: {}",
        tags[1]
    ));
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(r.header("ETag"), Some(tags[1].as_str()));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    let r = css_get(&format!(
        "Accept-Encoding: br\r\nIf-None-Match: {}",
        tags[0]
    ));
    assert_eq!(r.status, 200, "{r:?}");
    // A range of a variant is a range of its bytes.
    let r = css_get("Accept-Encoding: gzip\r\nRange: bytes=0-3");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"GZIP"[..]), "{r:?}");
    assert_eq!(r.header("Content-Range"), Some("bytes 0-3/17"));
    // Asked for the variant by name: served as what it is.
    let r = get(server.addr, "/style.css.gz");
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.header("Content-Type"), Some("application/gzip"));
    server.finish();

    // Only the listed encodings; none at all: never a variant, no Vary.
    let server = start(&site, "precompressed = [\"gzip\"]");
    let r = ask(
        server.addr,
        "GET",
        "/style.css",
        "Accept-Encoding: br, gzip\r\n",
    );
    assert_eq!(r.header("Content-Encoding"), Some("gzip"), "{r:?}");
    server.finish();
    let server = start(&site, "precompressed = []");
    let r = ask(
        server.addr,
        "GET",
        "/style.css",
        "Accept-Encoding: br, gzip\r\n",
    );
    assert_eq!(r.header("Content-Encoding"), None, "{r:?}");
    assert_eq!(r.header("Vary"), None, "{r:?}");
    assert_eq!(r.body, b"body { color: red }\n");
    server.finish();
}

// ---------------------------------------------------------------------------
// Directories, listing, fallback, dot files
// ---------------------------------------------------------------------------

// Proves: a directory without its slash gets 301 to the path with it, the
// query kept (also under a prefix); index files are tried in order; a
// directory with none of them and `listing = false` is 404; a directory
// named like a file is a directory (301, then 404), never served as html.
#[test]
fn directories_redirect_index_order_and_404_without_index() {
    let site = Site::new();
    site.write("both/index.htm", b"htm first\n");
    site.write("both/index.html", b"html second\n");
    site.write("dir.html/inner.txt", b"inner\n");
    // /static/ first: the first route that matches answers.
    let toml = format!(
        "workers = 1\n[[route]]\nprefix = \"/static/\"\nkind = \"files\"\nroot = \"{r}\"\n\
         [[route]]\nprefix = \"/\"\nkind = \"files\"\nroot = \"{r}\"\n\
         index = [\"index.htm\", \"index.html\"]\n",
        r = site.root().display()
    );
    let server = Server::start(&toml);

    for (target, location) in [
        ("/sub", "/sub/"),
        ("/sub?x=1&y=%20", "/sub/?x=1&y=%20"),
        ("/both?q", "/both/?q"),
        ("/static/sub?a=b", "/static/sub/?a=b"),
        // The prefix itself without its slash: the route's directory.
        ("/static?v=1", "/static/?v=1"),
        ("/dir.html", "/dir.html/"),
    ] {
        let r = get(server.addr, target);
        assert_eq!(r.status, 301, "{target}: {r:?}");
        assert_eq!(r.header("Location"), Some(location), "{target}");
    }
    assert_eq!(get(server.addr, "/").body, b"<h1>home</h1>\n");
    assert_eq!(get(server.addr, "/sub/").body, b"<h1>sub</h1>\n");
    assert_eq!(get(server.addr, "/both/").body, b"htm first\n");
    assert_eq!(get(server.addr, "/static/sub/").body, b"<h1>sub</h1>\n");
    // The /static/ route's default index is index.html only.
    assert_eq!(get(server.addr, "/static/both/").body, b"html second\n");
    std::fs::remove_file(site.path("both/index.htm")).unwrap();
    assert_eq!(get(server.addr, "/both/").body, b"html second\n");
    for target in ["/noindex/", "/dir.html/", "/static/noindex/"] {
        let r = get(server.addr, target);
        assert_eq!(r.status, 404, "{target}: {r:?}");
    }
    assert_eq!(get(server.addr, "/dir.html/inner.txt").body, b"inner\n");
    server.finish();
}

// Proves: `listing = true` answers an HTML index of a directory without
// an index file, names escaped in the text (and percent-encoded in the
// hrefs), dot files left out; a directory with an index still gets it.
#[test]
fn listing_escapes_names() {
    let site = Site::new();
    site.write("list/<i>&\"q'.txt", b"x\n");
    site.write("list/plain.txt", b"p\n");
    site.write("list/.hidden", b"h\n");
    site.write("list/deeper/x", b"x\n");
    let server = start(&site, "listing = true");
    let r = get(server.addr, "/list/");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    let page = String::from_utf8(r.body).unwrap();
    assert!(page.contains("&lt;i&gt;&amp;&quot;q&#39;.txt"), "{page}");
    assert!(!page.contains("<i>"), "a raw name in the page: {page}");
    assert!(
        page.contains("plain.txt") && page.contains("deeper/"),
        "{page}"
    );
    assert!(!page.contains(".hidden"), "{page}");
    // The href it gives leads to the file.
    let href = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.contains("%3C"))
        .unwrap_or_else(|| panic!("no encoded href in {page}"));
    let r = get(
        server.addr,
        &format!("/list/{}", href.trim_start_matches("./")),
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"x\n"[..]), "{href}");
    assert_eq!(get(server.addr, "/sub/").body, b"<h1>sub</h1>\n");
    // HEAD of a listing: its head alone.
    let h = ask(server.addr, "HEAD", "/list/", "");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    server.finish();
}

// Proves: `fallback` answers a missing file (a single-page app's client
// routes) but not a refused path; dot files are 404 with `dotfiles =
// "deny"` (the default) at any depth, `/.well-known/` is served all the
// same; `dotfiles = "allow"` serves them.
#[test]
fn fallback_and_dotfiles() {
    let site = Site::new();
    site.write("app.html", b"<div id=app></div>\n");
    site.write("sub/.env", b"KEY=1\n");
    let server = start(&site, "fallback = \"/app.html\"");
    for target in ["/missing", "/users/42/profile", "/sub/nothing.js"] {
        let r = get(server.addr, target);
        assert_eq!(r.status, 200, "{target}: {r:?}");
        assert_eq!(r.body, b"<div id=app></div>\n", "{target}");
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    }
    assert_eq!(get(server.addr, "/a.txt").body, b"alpha alpha alpha\n");
    assert_eq!(get(server.addr, "/%2e%2e/secret").status, 400);
    server.finish();

    let server = start(&site, "");
    for target in [
        "/.secret",
        "/.git/config",
        "/sub/.env",
        "/%2esecret",
        "/.well-known/../.secret",
    ] {
        let r = get(server.addr, target);
        assert_eq!(r.status, 404, "{target}: {r:?}");
    }
    let r = get(server.addr, "/.well-known/acme-challenge/tok");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"token-value\n"[..]));
    assert_eq!(get(server.addr, "/missing").status, 404);
    server.finish();

    let server = start(&site, "dotfiles = \"allow\"");
    assert_eq!(get(server.addr, "/.secret").body, b"dot file\n");
    assert_eq!(get(server.addr, "/sub/.env").body, b"KEY=1\n");
    server.finish();
}

// ---------------------------------------------------------------------------
// Traversal
// ---------------------------------------------------------------------------

/// Sends `target` raw (bytes as given, no normalising client) and reads
/// the answer to the close.
fn raw_target(addr: SocketAddr, target: &[u8]) -> Vec<u8> {
    let mut s = open(addr);
    let req = cat(&[
        b"GET ",
        target,
        b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ]);
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + ANSWER;
    let mut buf = [0u8; 65536];
    loop {
        assert!(Instant::now() < deadline, "no close after {target:?}");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{target:?}: {e}"),
        }
    }
    out
}

// Proves: no target in a corpus of encodings (`%2e%2e`, mixed case, `%2f`,
// double encoding, overlong UTF-8, backslashes raw and `%5c`, NUL,
// absolute-form targets) and no symlink that leads out of root ever yields
// a byte of the file beside root; each gets 400 or 404. A symlink that
// stays inside root is served.
#[test]
fn traversal_corpus_never_leaves_root() {
    let site = Site::new();
    let outside = site.dir.path().join("secret");
    std::os::unix::fs::symlink("../secret", site.path("escape")).unwrap();
    std::os::unix::fs::symlink(&outside, site.path("escape_abs")).unwrap();
    std::os::unix::fs::symlink("..", site.path("updir")).unwrap();
    std::os::unix::fs::symlink(site.dir.path(), site.path("updir_abs")).unwrap();
    std::os::unix::fs::symlink("sub/../../secret", site.path("sub_escape")).unwrap();
    std::os::unix::fs::symlink("/proc/self/root/etc/passwd", site.path("magic")).unwrap();
    std::os::unix::fs::symlink("a.txt", site.path("inside")).unwrap();
    std::os::unix::fs::symlink("../a.txt", site.path("sub/inside_up")).unwrap();
    std::os::unix::fs::symlink("sub", site.path("inside_dir")).unwrap();
    let server = start(&site, "dotfiles = \"allow\"");

    let corpus: &[&[u8]] = &[
        b"/../secret",
        b"/..",
        b"/%2e%2e/secret",
        b"/%2E%2e/secret",
        b"/%2e%2E/secret",
        b"/.%2e/secret",
        b"/%2e./secret",
        b"/%2e%2e%2fsecret",
        b"/%2E%2e/",
        b"/..%2fsecret",
        b"/..%2Fsecret",
        b"/%2f..%2fsecret",
        b"/sub/..%2f..%2fsecret",
        b"/sub/../../secret",
        b"/./../secret",
        b"//../secret",
        b"/sub/%2e%2e/%2e%2e/secret",
        b"/%252e%252e/secret",
        b"/%252e%252e%252fsecret",
        b"/%25%32%65%25%32%65/secret",
        b"/%c0%ae%c0%ae/secret",
        b"/%c0%ae%c0%ae%c0%afsecret",
        b"/%e0%80%ae%e0%80%ae/secret",
        b"/..\\secret",
        b"/\\..\\secret",
        b"/..%5csecret",
        b"/%5c..%5csecret",
        b"/sub%5c..%5c..%5csecret",
        b"/secret%00",
        b"/%00/../secret",
        b"/a.txt%00.html",
        b"/..%00/secret",
        b"http://x/../secret",
        b"http://x/%2e%2e/secret",
        b"http://x/..%2fsecret",
        b"http://x/sub/../../secret",
        b"http://x/..",
        b"/escape",
        b"/escape_abs",
        b"/updir/secret",
        b"/updir_abs/secret",
        b"/sub_escape",
        b"/magic",
        b"/updir/www/../secret",
    ];
    for target in corpus {
        let answer = raw_target(server.addr, target);
        let text = String::from_utf8_lossy(&answer);
        let status = if answer.is_empty() { 0 } else { status(&text) };
        assert!(
            status == 400 || status == 404,
            "{}: {text}",
            String::from_utf8_lossy(target)
        );
        assert!(
            !answer.windows(SECRET.len()).any(|w| w == SECRET) && !text.contains("root:x:0:0"),
            "{} leaked: {text}",
            String::from_utf8_lossy(target)
        );
    }
    // Symlinks that stay inside root are served.
    assert_eq!(get(server.addr, "/inside").body, b"alpha alpha alpha\n");
    assert_eq!(
        get(server.addr, "/sub/inside_up").body,
        b"alpha alpha alpha\n"
    );
    assert_eq!(get(server.addr, "/inside_dir/").body, b"<h1>sub</h1>\n");
    // A `..` that stays inside is fine; so is an absolute-form target.
    assert_eq!(get(server.addr, "/sub/../a.txt").status, 200);
    assert_eq!(get(server.addr, "http://x/a.txt").status, 200);
    server.finish();
}

// Proves: a FIFO in root is 404 and opening it never blocks the worker
// (the one worker answers the next request on the same connection and on
// another at once); a socket and a device are 404 too.
#[test]
fn a_fifo_in_root_is_404_and_never_blocks_the_worker() {
    let site = Site::new();
    let fifo = site.path("fifo");
    sh("mkfifo \"$1\"", &[&fifo]);
    let _sock = std::os::unix::net::UnixListener::bind(site.path("sock")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", site.path("zero")).unwrap();
    let server = start(&site, "");
    let mut s = open(server.addr);
    for _ in 0..3 {
        let start = Instant::now();
        let r = ask_on(&mut s, "GET", "/fifo", "");
        assert_eq!(r.status, 404, "{r:?}");
        let r = ask_on(&mut s, "GET", "/a.txt", "");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the worker took {:?}",
            start.elapsed()
        );
        assert_eq!(get(server.addr, "/a.txt").status, 200);
    }
    assert_eq!(get(server.addr, "/sock").status, 404);
    assert_eq!(get(server.addr, "/zero").status, 404);
    server.finish();
}

// ---------------------------------------------------------------------------
// Freshness and consistency
// ---------------------------------------------------------------------------

// Proves: while a thread replaces a file by `rename` (two versions of
// different sizes and bytes) for a bounded time, every answer a keep-alive
// client gets is one whole version, its Content-Length its own, never a
// mix; both versions are seen.
#[test]
fn rename_over_a_file_gives_whole_versions_only() {
    let site = Site::new();
    let a = vec![b'a'; 1000];
    let b = vec![b'b'; 3000];
    site.write("v.txt", &a);
    let server = start(&site, "");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (mut seen_a, mut seen_b, mut answers) = (0, 0, 0);
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let renamer = scope.spawn(|| {
            let tmp = site.path(".v.tmp");
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 200_000 {
                std::fs::write(&tmp, if n % 2 == 0 { &b } else { &a }).unwrap();
                std::fs::rename(&tmp, site.path("v.txt")).unwrap();
                n += 1;
            }
            n
        });
        let mut s = open(server.addr);
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end && answers < 20_000 {
            let r = ask_on(&mut s, "GET", "/v.txt", "");
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(r.len(), r.body.len());
            if r.body == a {
                seen_a += 1;
            } else if r.body == b {
                seen_b += 1;
            } else {
                panic!("a mixed body of {} bytes: {r:?}", r.body.len());
            }
            assert_eq!(
                r.header("Content-Length").unwrap(),
                r.body.len().to_string()
            );
            answers += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let renames = renamer.join().unwrap();
        assert!(renames > 10, "only {renames} renames");
    });
    assert!(
        seen_a > 0 && seen_b > 0,
        "{answers} answers: {seen_a} of one version, {seen_b} of the other"
    );
    server.finish();
}

// Proves: a file changed (same size, same second: the tag still changes),
// replaced, deleted or created is seen by the very next request, with no
// reload.
#[test]
fn changes_are_seen_on_the_next_request() {
    let site = Site::new();
    let path = site.write("f.txt", b"version 1\n");
    let server = start(&site, "");
    let mut s = open(server.addr);
    let r1 = ask_on(&mut s, "GET", "/f.txt", "");
    assert_eq!(r1.body, b"version 1\n");
    std::fs::write(&path, b"version 2\n").unwrap();
    let r2 = ask_on(&mut s, "GET", "/f.txt", "");
    assert_eq!(r2.body, b"version 2\n");
    assert_ne!(r1.header("ETag"), r2.header("ETag"), "same size, new tag");
    assert_eq!(r2.header("ETag"), Some(etag_of(&path).as_str()));
    // The old tag no longer revalidates.
    let r = ask_on(
        &mut s,
        "GET",
        "/f.txt",
        &format!("If-None-Match: {}\r\n", r1.header("ETag").unwrap()),
    );
    assert_eq!(r.status, 200);
    std::fs::write(&path, b"a longer version 3\n").unwrap();
    assert_eq!(
        ask_on(&mut s, "GET", "/f.txt", "").body,
        b"a longer version 3\n"
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(ask_on(&mut s, "GET", "/f.txt", "").status, 404);
    site.write("new/g.txt", b"created\n");
    assert_eq!(ask_on(&mut s, "GET", "/new/g.txt", "").body, b"created\n");
    // A variant appearing is seen too.
    site.write("f.txt", b"plain\n");
    site.write("f.txt.gz", b"zipped\n");
    let r = ask_on(&mut s, "GET", "/f.txt", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.body, b"zipped\n");
    server.finish();
}

// ---------------------------------------------------------------------------
// Large files: fast, slow and stalled readers
// ---------------------------------------------------------------------------

const BIG: usize = 40 << 20;

/// Opens a connection with a small receive buffer and asks for `target`.
fn ask_big(addr: SocketAddr, target: &str) -> TcpStream {
    use nix::sys::socket::{setsockopt, sockopt};
    let fd = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &4096).unwrap();
    nix::sys::socket::connect(
        fd.as_raw_fd(),
        &nix::sys::socket::SockaddrStorage::from(addr),
    )
    .unwrap();
    let mut s = TcpStream::from(fd);
    s.set_write_timeout(Some(ANSWER)).unwrap();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    s
}

/// Reads what `s` holds until EOF or a reset within `within`: (bytes,
/// whether it ended by a reset).
fn drain(s: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no EOF within {within:?} ({} bytes)",
            out.len()
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (out, false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (out, true),
            Err(e) => panic!("{e} after {} bytes", out.len()),
        }
    }
}

/// Reads `s` to EOF at about `rate` bytes a second (a slow client's
/// pacing: it sleeps until its reading is back on schedule), within
/// `within`.
fn read_paced(s: &mut TcpStream, rate: u64, within: Duration) -> Vec<u8> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    s.set_read_timeout(Some(ANSWER)).unwrap();
    loop {
        assert!(start.elapsed() < within, "slow read not done in {within:?}");
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("slow reader: {e} after {} bytes", got.len()),
        }
        let due = Duration::from_micros(got.len() as u64 * 1_000_000 / rate);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// The `$status $body_bytes_sent` of the combined line for `request`.
fn logged(server: &Server, request: &str) -> (u16, u64) {
    let path = server.dir.path().join("access.log");
    let line = wait_until(WAIT, &format!("an access log line for {request}"), || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(&format!("\"{request}\"")))
            .map(str::to_owned)
    });
    let after = line.split(&format!("\"{request}\" ")).nth(1).unwrap();
    let mut f = after.split(' ');
    (
        f.next().unwrap().parse().unwrap(),
        f.next().unwrap().parse().unwrap(),
    )
}

// Proves: a 40 MiB file arrives whole, byte for byte, to a fast reader and
// to a slow one (about 8 MiB/s, far longer than header_timeout in all, as
// the write keeps moving); a reader that stops reading is closed once
// header_timeout passes with no progress, and the access log says how many
// body bytes were really sent to each (all, all, fewer).
#[test]
fn a_40_mib_file_whole_to_fast_and_slow_readers_and_a_stalled_one_is_closed() {
    let site = Site::new();
    let data = noise(BIG, 40);
    site.write("big.bin", &data);
    site.write("big2.bin", &data);
    site.write("big3.bin", &data);
    let top = "header_timeout = \"2s\"\n[access_log]\npath = \"access.log\"\nflush = \"100ms\"\n";
    let server = Server::start(&files_toml(top, &site.root(), ""));

    // Fast.
    let mut s = open(server.addr);
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = read_got(&mut s, false, Duration::from_secs(60)).unwrap();
    assert_eq!((r.status, r.len()), (200, BIG));
    assert!(r.body == data, "the 40 MiB body differs");
    // The connection lives on after the big body.
    assert_eq!(ask_on(&mut s, "GET", "/a.txt", "").status, 200);
    drop(s);
    assert_eq!(logged(&server, "GET /big.bin HTTP/1.1"), (200, BIG as u64));

    // Slow: about 12 MiB/s, so that the whole takes longer than
    // header_timeout (2 s) while the write keeps moving.
    let mut s = open(server.addr);
    s.write_all(b"GET /big2.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let got = read_paced(&mut s, 12 << 20, Duration::from_secs(60));
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(got.starts_with(b"HTTP/1.1 200 "));
    assert!(
        got[head_end..] == data[..],
        "the slow body differs ({} bytes)",
        got.len() - head_end
    );
    assert!(
        start.elapsed() > Duration::from_secs(2),
        "the slow reader was not slow: {:?}",
        start.elapsed()
    );
    assert_eq!(logged(&server, "GET /big2.bin HTTP/1.1"), (200, BIG as u64));

    // Stalled: never reads. The server gives up after header_timeout with
    // no progress; its log line says so; the client then drains what the
    // buffers held and meets the end (EOF or reset), far short of 40 MiB.
    let mut s = ask_big(server.addr, "/big3.bin");
    let (status, sent) = logged(&server, "GET /big3.bin HTTP/1.1");
    assert_eq!(status, 200);
    assert!(
        sent < BIG as u64 / 2,
        "sent {sent} to a reader that never read"
    );
    let (bytes, _reset) = drain(&mut s, Duration::from_secs(10));
    assert!(bytes.len() < BIG / 2, "drained {}", bytes.len());
    assert!(bytes.starts_with(b"HTTP/1.1 200 "));
    server.finish();
}

// Proves: a reader slow enough (1 MiB/s through a small receive buffer)
// to take far longer than header_timeout (1 s) in all gets the whole
// file: the deadline bounds a stall, not the download.
#[test]
fn a_slow_but_moving_reader_is_not_cut_by_header_timeout() {
    let site = Site::new();
    let data = noise(8 << 20, 41);
    site.write("big.bin", &data);
    let server = Server::start(&files_toml("header_timeout = \"1s\"", &site.root(), ""));
    let mut s = ask_big(server.addr, "/big.bin");
    let got = read_paced(&mut s, 1 << 20, Duration::from_secs(60));
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - head_end, data.len(), "cut short");
    server.finish();
}

// Proves: the access log has the status and the body bytes actually sent
// for a full answer, a range, HEAD, 304, 404 and 416 of a files route.
#[test]
fn access_log_has_status_and_body_bytes() {
    let site = Site::new();
    let data = noise(100_000, 3);
    let path = site.write("d.bin", &data);
    let top = "[access_log]\npath = \"access.log\"\nflush = \"100ms\"\n";
    let server = Server::start(&files_toml(top, &site.root(), ""));
    let tag = etag_of(&path);
    let cases: &[(&str, &str, String, u16, u64)] = &[
        ("GET", "/d.bin?full", String::new(), 200, 100_000),
        (
            "GET",
            "/d.bin?range",
            "Range: bytes=100-199\r\n".into(),
            206,
            100,
        ),
        ("GET", "/d.bin?suffix", "Range: bytes=-7\r\n".into(), 206, 7),
        ("HEAD", "/d.bin?head", String::new(), 200, 0),
        (
            "GET",
            "/d.bin?cond",
            format!("If-None-Match: {tag}\r\n"),
            304,
            0,
        ),
        (
            "GET",
            "/d.bin?bad",
            "Range: bytes=200000-\r\n".into(),
            416,
            22,
        ),
        ("GET", "/nothing", String::new(), 404, 10),
    ];
    for (method, target, extra, status, _) in cases {
        let r = ask(server.addr, method, target, extra);
        assert_eq!(r.status, *status, "{target}: {r:?}");
    }
    for (method, target, _, status, bytes) in cases {
        let got = logged(&server, &format!("{method} {target} HTTP/1.1"));
        assert_eq!(got, (*status, *bytes), "{method} {target}");
    }
    server.finish();
}

// ---------------------------------------------------------------------------
// Maintenance, -t, permissions
// ---------------------------------------------------------------------------

// Proves: `-s maintenance on` makes a files route answer the maintenance
// page (GET and HEAD), and `off` brings the files back.
#[test]
fn maintenance_answers_for_a_files_route() {
    let site = Site::new();
    let top =
        "[maintenance]\nstatus = 503\nretry_after = \"120s\"\nbody = \"Down for maintenance\\n\"\n";
    let server = Server::start_with(Options {
        pid_file: true,
        ..Options::toml(&files_toml(top, &site.root(), ""))
    });
    assert_eq!(get(server.addr, "/a.txt").status, 200);
    server.maintenance(true);
    for target in ["/a.txt", "/", "/sub", "/missing", "/.secret"] {
        let r = get(server.addr, target);
        assert_eq!(r.status, 503, "{target}: {r:?}");
        assert_eq!(r.body, b"Down for maintenance\n");
        assert_eq!(r.header("Retry-After"), Some("120"));
    }
    let h = ask(server.addr, "HEAD", "/a.txt", "");
    assert_eq!(h.status, 503);
    server.maintenance(false);
    assert_eq!(get(server.addr, "/a.txt").body, b"alpha alpha alpha\n");
    server.finish();
}

// Proves: `-t` refuses a files route with `file:line:col` at the key for a
// missing root, a root that is missing on disk or not a directory, an
// unknown encoding, a fallback without its leading `/`, an exact path, a
// method other than GET/HEAD, a bad dotfiles value and an index with a
// slash; a good one passes, a relative root taken from the config's folder.
#[test]
fn t_names_bad_files_routes_with_file_line_col() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("plain"), "x").unwrap();
    let d = dir.path().display();
    let route = "[[route]]\nprefix = \"/\"\nkind = \"files\"\n";
    let cases: Vec<(String, String)> = vec![
        (
            route.into(),
            ":1:1: route.root: missing (the directory to serve)".into(),
        ),
        (
            format!("{route}root = \"{d}/none\"\n"),
            format!(":4:8: route.root: {d}/none: No such file or directory"),
        ),
        (
            format!("{route}root = \"{d}/plain\"\n"),
            format!(":4:8: route.root: {d}/plain is not a directory"),
        ),
        (
            format!("{route}root = \"www\"\nprecompressed = [\"br\", \"lzma\"]\n"),
            ":5:17: route.precompressed: unknown encoding \"lzma\"".into(),
        ),
        (
            format!("{route}root = \"www\"\nfallback = \"index.html\"\n"),
            ":5:12: route.fallback: \"index.html\" does not start with \"/\"".into(),
        ),
        (
            "[[route]]\npath = \"/x\"\nkind = \"files\"\nroot = \"www\"\n".into(),
            ":2:8: route.path: a files route takes a prefix".into(),
        ),
        (
            format!("{route}root = \"www\"\nmethods = [\"GET\", \"POST\"]\n"),
            ":5:11: route.methods: a files route answers GET and HEAD only".into(),
        ),
        (
            format!("{route}root = \"www\"\ndotfiles = \"hide\"\n"),
            ":5:12: route.dotfiles: \"hide\" is neither \"deny\" nor \"allow\"".into(),
        ),
        (
            format!("{route}root = \"www\"\nindex = [\"a/b.html\"]\n"),
            ":5:9: route.index: \"a/b.html\" is not a file name".into(),
        ),
        (
            format!("{route}root = \"www\"\nbody = \"x\"\n"),
            ":5:8: route.body: not used by a route of kind \"files\"".into(),
        ),
    ];
    assert_config_errors(&dir.path().join("bad.toml"), &cases);
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!("{route}root = \"www\"\nindex = [\"index.htm\", \"index.html\"]\nprecompressed = [\"gzip\"]\ncache_control = \"max-age=60\"\ndotfiles = \"allow\"\nlisting = true\nfallback = \"/index.html\"\nmethods = [\"GET\", \"HEAD\"]\n"),
    )
    .unwrap();
    let (code, out, err) = run_bin(&["-t", "-c", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

// Proves (as root, workers as `nobody`): a file the workers' user cannot
// read is 403, logged once per worker however often it is asked for, and
// the same worker goes on serving readable files.
#[test]
fn an_unreadable_file_is_403_logged_once_and_the_worker_lives() {
    if !is_root() {
        eprintln!("skipped: needs root (workers must switch to nobody)");
        return;
    }
    if nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .is_none()
    {
        eprintln!("skipped: no user nobody");
        return;
    }
    let site = Site::new();
    let locked = site.write("locked.txt", b"root only\n");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(site.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::start(&files_toml("user = \"nobody\"", &site.root(), ""));
    let workers = server.wait_workers(1);
    let mut s = open(server.addr);
    let r = ask_on(&mut s, "GET", "/locked.txt", "");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!String::from_utf8_lossy(&r.body).contains("root only"));
    server.wait_for_log("files: permission denied");
    let r = ask_on(&mut s, "GET", "/locked.txt", "");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(get(server.addr, "/locked.txt").status, 403);
    let r = ask_on(&mut s, "GET", "/a.txt", "");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"alpha alpha alpha\n"[..])
    );
    holds_for(Duration::from_millis(500), "one permission line", || {
        server
            .log_lines()
            .iter()
            .filter(|l| l.contains("files: permission denied"))
            .count()
            == 1
    });
    assert_eq!(server.worker_pids(), workers, "the worker lives");
    server.finish();
}

// ---------------------------------------------------------------------------
// Real peers: curl, wget
// ---------------------------------------------------------------------------

/// Runs a peer tool to completion (bounded).
fn run(cmd: &mut Command) -> std::process::Output {
    output_within(cmd, b"", RUN_WITHIN)
}

// Proves: curl gets what it asks for: `-r 0-99` the first 100 bytes
// (206), `-z FILE` nothing new (304) and the file when it is older,
// `--compressed` the decoded body of the .gz sibling, and `-C -` resumes
// an interrupted download to the whole file.
#[test]
fn curl_ranges_conditionals_compressed_and_resume() {
    let Some(curl) = tool("curl", "curl") else {
        return;
    };
    let site = Site::new();
    let data = noise(16 << 20, 11);
    let big = site.write("big.bin", &data);
    let css = site.write("style.css", &b"body { margin: 0 }\n".repeat(200));
    sh("gzip -9 -k \"$1\"", &[&css]);
    let server = start(&site, "");
    let url = |p: &str| format!("http://{}{p}", server.addr);
    let out_dir = TempDir::new();

    // -r 0-99
    let out = run(Command::new(&curl)
        .args(["-s", "-r", "0-99", "-w", "%{http_code}", "-o"])
        .arg(out_dir.path().join("r"))
        .arg(url("/big.bin")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "206");
    assert_eq!(
        std::fs::read(out_dir.path().join("r")).unwrap(),
        &data[..100]
    );

    // -z FILE: a local copy as new as the file → 304, nothing written;
    // older → 200 and the body.
    let copy = out_dir.path().join("copy.bin");
    std::fs::write(&copy, b"old").unwrap();
    let mtime = std::fs::metadata(&big).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = run(Command::new(&curl)
        .args(["-s", "-w", "%{http_code}", "-o"])
        .arg(out_dir.path().join("z"))
        .arg("-z")
        .arg(&copy)
        .arg(url("/big.bin")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "304");
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(mtime - Duration::from_secs(100))
        .unwrap();
    let out = run(Command::new(&curl)
        .args(["-s", "-w", "%{http_code}", "-o"])
        .arg(out_dir.path().join("z"))
        .arg("-z")
        .arg(&copy)
        .arg(url("/big.bin")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert!(std::fs::read(out_dir.path().join("z")).unwrap() == data);

    // --compressed: curl asks for br, gzip, zstd...; the .gz sibling comes,
    // and curl decodes it to the file's bytes.
    let out = run(Command::new(&curl)
        .args(["-s", "--compressed", "-D", "-", "-o"])
        .arg(out_dir.path().join("c"))
        .arg(url("/style.css")));
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(
        std::fs::read(out_dir.path().join("c")).unwrap(),
        std::fs::read(&css).unwrap()
    );

    // -C -: a download cut short (--max-time, at a limited rate; what the
    // socket buffers held arrives at once), resumed.
    let part = out_dir.path().join("part.bin");
    let out = run(Command::new(&curl)
        .args(["-s", "--limit-rate", "100k", "--max-time", "1", "-o"])
        .arg(&part)
        .arg(url("/big.bin")));
    assert!(!out.status.success(), "curl should have been cut short");
    let had = std::fs::metadata(&part).unwrap().len();
    assert!(had > 0 && had < data.len() as u64, "had {had}");
    let out = run(Command::new(&curl)
        .args(["-s", "-C", "-", "-w", "%{http_code}", "-o"])
        .arg(&part)
        .arg(url("/big.bin")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "206");
    assert!(
        std::fs::read(&part).unwrap() == data,
        "the resumed file differs"
    );
    server.finish();
}

// Proves: wget -c finishes a download that was cut short (a partial file
// from an interrupted transfer) into the whole file.
#[test]
fn wget_resumes_an_interrupted_download() {
    let (Some(wget), Some(curl)) = (tool("wget", "wget"), tool("curl", "curl")) else {
        return;
    };
    let site = Site::new();
    let data = noise(16 << 20, 12);
    site.write("dl.bin", &data);
    let server = start(&site, "");
    let url = format!("http://{}/dl.bin", server.addr);
    let out_dir = TempDir::new();
    let part = out_dir.path().join("dl.bin");
    let out = run(Command::new(&curl)
        .args(["-s", "--limit-rate", "100k", "--max-time", "1", "-o"])
        .arg(&part)
        .arg(&url));
    assert!(
        !out.status.success(),
        "the first transfer should be cut short"
    );
    let had = std::fs::metadata(&part).unwrap().len();
    assert!(had > 0 && had < data.len() as u64, "had {had}");
    let out = run(Command::new(&wget)
        .args(["-q", "-c", "-S", "-P"])
        .arg(out_dir.path())
        .arg(&url));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wget: {said}");
    assert!(said.contains("206 Partial Content"), "{said}");
    assert!(
        std::fs::read(&part).unwrap() == data,
        "the resumed file differs"
    );
    server.finish();
}

// ---------------------------------------------------------------------------
// nginx, serving the same directory
// ---------------------------------------------------------------------------

/// The status of `target` (with `extra` fields) from `addr`, raw.
fn status_of(addr: SocketAddr, method: &str, target: &str, extra: &str) -> u16 {
    let mut s = open(addr);
    let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let text = read_until_close(&mut s);
    status(&text)
}

// Proves: nginx and preforkd, serving the same directory, answer a set of
// requests with the same status, except where preforkd decided otherwise
// (each listed with its reason); the bytes of 200 and 206 answers agree.
#[test]
fn statuses_agree_with_nginx_serving_the_same_directory() {
    if tool("nginx", "nginx-light").is_none() {
        return;
    }
    let site = Site::new();
    let data = noise(5000, 5);
    site.write("data.bin", &data);
    let server = start(&site, "");
    let (_nginx, nginx) = Nginx::start(&format!(
        "listen {{addr}};\n    root {};",
        site.root().display()
    ));
    // (method, target, extra fields, ours, nginx's when it differs)
    let cases: &[(&str, &str, &str, u16, Option<u16>)] = &[
        ("GET", "/", "", 200, None),
        ("GET", "/index.html", "", 200, None),
        ("HEAD", "/index.html", "", 200, None),
        ("GET", "/sub", "", 301, None),
        ("GET", "/sub/", "", 200, None),
        ("GET", "/sub/index.html", "", 200, None),
        ("GET", "/missing", "", 404, None),
        ("GET", "/sub/missing", "", 404, None),
        ("GET", "/%2e%2e/x", "", 400, None),
        ("GET", "/../secret", "", 400, None),
        ("GET", "/sub/../a.txt", "", 200, None),
        ("GET", "/a.txt", "Range: bytes=0-9\r\n", 206, None),
        ("GET", "/data.bin", "Range: bytes=-100\r\n", 206, None),
        ("GET", "/data.bin", "Range: bytes=4000-\r\n", 206, None),
        ("GET", "/data.bin", "Range: bytes=9000-\r\n", 416, None),
        ("GET", "/data.bin", "If-Match: \"nope\"\r\n", 412, None),
        (
            "GET",
            "/data.bin",
            "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n",
            200,
            None,
        ),
        ("POST", "/a.txt", "Content-Length: 0\r\n", 405, None),
        // Ours: 404 for a directory without an index file (nothing says
        // it exists); nginx: 403.
        ("GET", "/noindex/", "", 404, Some(403)),
        // Ours: several ranges are answered 200 with the whole file;
        // nginx: 206 multipart/byteranges.
        (
            "GET",
            "/data.bin",
            "Range: bytes=0-1,10-11\r\n",
            200,
            Some(206),
        ),
        // Ours: dot files are 404 by default; nginx serves them.
        ("GET", "/.secret", "", 404, Some(200)),
        // Ours: a backslash (here `%5c`) is 400; nginx looks for a file so
        // named.
        ("GET", "/a%5cb", "", 400, Some(404)),
        // Ours: NUL is 400; nginx: 400 as well.
        ("GET", "/a%00b", "", 400, None),
    ];
    for (method, target, extra, ours, differs) in cases {
        let got_ours = status_of(server.addr, method, target, extra);
        let got_nginx = status_of(nginx, method, target, extra);
        assert_eq!(got_ours, *ours, "preforkd: {method} {target} {extra:?}");
        assert_eq!(
            got_nginx,
            differs.unwrap_or(*ours),
            "nginx: {method} {target} {extra:?}"
        );
    }
    for (target, extra) in [("/a.txt", ""), ("/data.bin", "Range: bytes=100-199\r\n")] {
        let a = ask(server.addr, "GET", target, extra);
        let b = ask(nginx, "GET", target, extra);
        assert_eq!(a.body, b.body, "{target}");
        assert_eq!(a.header("Content-Range"), b.header("Content-Range"));
        assert_eq!(a.header("Last-Modified"), b.header("Last-Modified"));
    }
    server.finish();
}
