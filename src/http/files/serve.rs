//! A `kind = "files"` route answering one request: the pieces of this
//! folder strung together. The target after the prefix is resolved
//! (`target`), opened beneath the root descriptor the route holds (`open`),
//! judged (`steps`: index files, the slash redirect, listing, fallback),
//! its precompressed siblings opened in negotiated order, and the answer
//! decided (`decide`) and framed (`head`). The body is handed back as an
//! open file and a range, for the connection to send with `sendfile`.
//!
//! Freshness: every request opens and `fstat`s the file anew (one
//! `openat2` and one `fstat`, plus one `openat2` per acceptable variant),
//! so a changed, replaced or deleted file is seen by the next request with
//! no cache to revalidate. An answer is always one whole version: the body
//! comes from the descriptor opened for it, whose inode a `rename` over the
//! path does not touch.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::rc::Rc;

use super::cache::Cache;
use super::config::FilesConfig;
use super::decide::{decide_among, FileHeaders, FileRequest};
use super::head::{body_plan, write_head, BodyPlan};
use super::negotiate::negotiate;
use super::open::{OpenError, Opened, Root};
use super::steps::{after, Lookup, Step};
use super::target::{resolve, Target};
use super::{listing, mime, Meta};
use crate::http::parse::Method;
use crate::http::template::{reason, Persistence, DATE_LEN};
use crate::http::transport::FileBody;

/// A files route's runtime half: its configuration and the `O_PATH`
/// descriptor of its root, opened once per configuration (inherited by
/// the workers, so a root renamed later keeps being the one served until
/// the next reload).
#[derive(Debug)]
pub struct FilesRoute {
    config: FilesConfig,
    root: Root,
    /// The files this worker keeps open, confirmed by a stat per request.
    cache: RefCell<Cache>,
    /// A 403 or an unexpected error was logged (once per worker and
    /// configuration: a crawler must not flood the log).
    warned: Cell<bool>,
}

/// What a files answer appended to the output, and the file body that
/// follows it there, if any.
#[derive(Debug)]
pub struct Served {
    pub status: u16,
    pub file: Option<FileBody>,
}

/// The parts of the request a files answer reads.
pub struct Asked<'a> {
    pub method: Method,
    /// The whole request head (its fields: validators, Range,
    /// Accept-Encoding).
    pub head: &'a [u8],
    /// The path after the route's prefix, the prefix's trailing `/` kept
    /// (`/static/` and `/static/a` give `/a`); empty: the prefix itself
    /// without its slash.
    pub rest: &'a [u8],
    /// The request path and the query (with its `?`), for a redirect's
    /// `Location`.
    pub path: &'a [u8],
    pub query: &'a [u8],
    pub persistence: Persistence,
    pub date: &'a [u8; DATE_LEN],
    /// Seconds since the epoch, for `Last-Modified` (never in the future).
    pub now: i64,
}

impl FilesRoute {
    /// Opens `config.root`; fails if it is gone or not a directory.
    pub fn new(config: FilesConfig) -> nix::Result<FilesRoute> {
        let root = Root::new(&config.root)?;
        Ok(FilesRoute {
            config,
            root,
            cache: RefCell::new(Cache::default()),
            warned: Cell::new(false),
        })
    }

    /// Appends the answer to `a` and says what body follows.
    pub fn answer(&self, out: &mut Vec<u8>, a: &Asked) -> Served {
        let target = match resolve(a.rest, self.config.dotfiles) {
            Ok(t) => t,
            Err(reject) => return self.refuse(out, a, reject.status()),
        };
        let mut lookup = Lookup::Request;
        let mut current = target.clone();
        // Each step moves on (index i+1, the fallback once), so this ends;
        // the bound says so without a proof.
        for _ in 0..self.config.index.len() + 3 {
            let found = self.lookup(current.rel());
            match after(lookup, &current, &found, &self.config) {
                Step::Serve => {
                    if let Ok(Opened::File(file, meta)) = found {
                        return self.serve(out, a, &current, file, &meta);
                    }
                }
                Step::RedirectToSlash => return redirect(out, a),
                Step::Index(i) => {
                    current = target.join(&self.config.index[i]);
                    lookup = Lookup::Index(i);
                }
                Step::List => {
                    // After index files were looked for, `found` is the
                    // last of them (missing), not the directory to list.
                    let dir = match found {
                        Ok(Opened::Directory(dir, _)) => Ok(Some(dir)),
                        _ => self.root.open(target.rel()).map(|o| match o {
                            Opened::Directory(dir, _) => Some(dir),
                            Opened::File(..) => None,
                        }),
                    };
                    return match dir {
                        Ok(Some(dir)) => self.listing(out, a, &dir),
                        Ok(None) => self.refuse(out, a, 404),
                        Err(e) => self.refuse(out, a, e.status()),
                    };
                }
                Step::Fallback => {
                    let path = self.config.fallback.as_deref().unwrap_or("/");
                    match resolve(path.as_bytes(), self.config.dotfiles) {
                        Ok(t) => current = t,
                        Err(r) => return self.refuse(out, a, r.status()),
                    }
                    lookup = Lookup::Fallback;
                }
                Step::Refuse(status) => {
                    if let Err(e) = &found {
                        self.warn_once(current.rel(), e);
                    }
                    return self.refuse(out, a, status);
                }
            }
        }
        self.refuse(out, a, 404)
    }

    /// The file (or a precompressed sibling) answers: validators, range,
    /// encoding decided, the head appended, the body handed back.
    fn serve(
        &self,
        out: &mut Vec<u8>,
        a: &Asked,
        t: &Target,
        file: Rc<File>,
        meta: &Meta,
    ) -> Served {
        let mut joined = Vec::new();
        let req = file_request(a.method, a.head, &mut joined);
        // Only the variants the client accepts are looked for, best first.
        let preferred = negotiate(req.accept_encoding, &self.config.precompressed);
        let mut variants = Vec::new();
        let mut variant_files = Vec::new();
        for &enc in preferred.as_slice() {
            let name = format!("{}{}", t.rel(), enc.suffix());
            if let Ok(Opened::File(f, m)) = self.lookup(&name) {
                variants.push((enc, m));
                variant_files.push((enc, f));
            }
        }
        let vary = !self.config.precompressed.is_empty();
        let answer = decide_among(&req, meta, &variants, vary, a.now);
        let headers = FileHeaders {
            content_type: mime::content_type(t.rel()),
            cache_control: self.config.cache_control.as_deref(),
        };
        write_head(out, &answer, &headers, a.date, a.persistence);
        let chosen = match answer.encoding {
            None => Some(file),
            Some(enc) => variant_files
                .into_iter()
                .find(|(e, _)| *e == enc)
                .map(|(_, f)| f),
        };
        let file = match body_plan(&answer) {
            BodyPlan::Sendfile { offset, len } if a.method != Method::Head => {
                chosen.map(|file| FileBody { file, offset, len })
            }
            BodyPlan::Bytes(text) if a.method != Method::Head => {
                out.extend_from_slice(text);
                None
            }
            _ => None,
        };
        Served {
            status: answer.status,
            file,
        }
    }

    /// `rel` beneath root, through the open-file cache.
    fn lookup(&self, rel: &str) -> Result<Opened, OpenError> {
        self.cache.borrow_mut().lookup(&self.root, rel)
    }

    fn listing(&self, out: &mut Vec<u8>, a: &Asked, dir: &File) -> Served {
        let mut entries = match listing::read_entries(dir, self.config.dotfiles) {
            Ok(e) => e,
            Err(e) => {
                self.warn_once(
                    &String::from_utf8_lossy(a.path),
                    &OpenError::Other(errno(&e)),
                );
                return self.refuse(out, a, 500);
            }
        };
        let shown = percent_decoded(a.path);
        let page = listing::render(&shown, &mut entries);
        let status = text(out, a, 200, "text/html; charset=utf-8", "", &page);
        Served { status, file: None }
    }

    /// 404 for a path the route's prefix matched but that is not beneath
    /// it (`/staticx` under `/static`).
    pub fn not_found(
        &self,
        out: &mut Vec<u8>,
        method: Method,
        persistence: Persistence,
        date: &[u8; DATE_LEN],
    ) -> u16 {
        let a = Asked {
            method,
            head: &[],
            rest: &[],
            path: &[],
            query: &[],
            persistence,
            date,
            now: 0,
        };
        self.refuse(out, &a, 404).status
    }

    fn refuse(&self, out: &mut Vec<u8>, a: &Asked, status: u16) -> Served {
        let body = format!("{}\n", reason(status));
        let status = text(
            out,
            a,
            status,
            "text/plain; charset=utf-8",
            "",
            body.as_bytes(),
        );
        Served { status, file: None }
    }

    /// A 403 or an unexpected error is worth one line per worker: the
    /// operator learns the root has a permission problem, a crawler cannot
    /// fill the log.
    fn warn_once(&self, rel: &str, e: &OpenError) {
        if matches!(e, OpenError::NotFound) || self.warned.replace(true) {
            return;
        }
        let root = self.config.root.display();
        match e {
            OpenError::Forbidden => log::warn!(
                "files: permission denied root={root} path={rel:?} (answered 403; logged once per worker)"
            ),
            OpenError::Other(errno) => log::warn!(
                "files: cannot open root={root} path={rel:?}: {errno} (answered 500; logged once per worker)"
            ),
            OpenError::NotFound => {}
        }
    }
}

/// 301 to the request path with `/` appended, the query kept.
fn redirect(out: &mut Vec<u8>, a: &Asked) -> Served {
    let mut location = Vec::with_capacity(a.path.len() + a.query.len() + 1);
    location.extend_from_slice(a.path);
    location.push(b'/');
    location.extend_from_slice(a.query);
    let extra = format!("Location: {}\r\n", String::from_utf8_lossy(&location));
    let body = format!("{}\n", reason(301));
    let status = text(
        out,
        a,
        301,
        "text/plain; charset=utf-8",
        &extra,
        body.as_bytes(),
    );
    Served { status, file: None }
}

/// Appends a small answer of our own (its head alone for HEAD).
fn text(out: &mut Vec<u8>, a: &Asked, status: u16, ctype: &str, extra: &str, body: &[u8]) -> u16 {
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\nDate: ", reason(status)).as_bytes());
    out.extend_from_slice(a.date);
    out.extend_from_slice(
        format!(
            "\r\nServer: preforkd\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}{}\r\n",
            body.len(),
            a.persistence.header()
        )
        .as_bytes(),
    );
    if a.method != Method::Head {
        out.extend_from_slice(body);
    }
    status
}

/// The conditional, range and encoding fields of `head` (as the parser
/// accepted it). A list field on several lines is joined with `, ` into
/// `joined` (RFC 9110 5.3); a singleton field sent twice is ignored.
fn file_request<'a>(method: Method, head: &'a [u8], joined: &'a mut Vec<u8>) -> FileRequest<'a> {
    let mut req = FileRequest::get();
    req.method = if method == Method::Head {
        Method::Head
    } else {
        Method::Get
    };
    let mut lists: [Vec<&[u8]>; 3] = Default::default();
    let mut singles: [(Option<&[u8]>, u8); 4] = [(None, 0); 4];
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = trim(&line[colon + 1..]);
        let list = ["if-match", "if-none-match", "accept-encoding"]
            .iter()
            .position(|n| name.eq_ignore_ascii_case(n.as_bytes()));
        if let Some(i) = list {
            lists[i].push(value);
            continue;
        }
        let single = [
            "if-modified-since",
            "if-unmodified-since",
            "range",
            "if-range",
        ]
        .iter()
        .position(|n| name.eq_ignore_ascii_case(n.as_bytes()));
        if let Some(i) = single {
            singles[i] = (Some(value), singles[i].1.saturating_add(1));
        }
    }
    let once = |(v, n): (Option<&'a [u8]>, u8)| if n == 1 { v } else { None };
    req.if_modified_since = once(singles[0]);
    req.if_unmodified_since = once(singles[1]);
    req.range = once(singles[2]);
    req.if_range = once(singles[3]);
    // Joined lists live in `joined`, one after another; their ranges are
    // taken once all are written, so no slice outlives a reallocation.
    let mut spans = [None; 3];
    for (i, values) in lists.iter().enumerate() {
        spans[i] = match values.as_slice() {
            [] => None,
            [one] => Some(Err(*one)),
            many => {
                let start = joined.len();
                for (k, v) in many.iter().enumerate() {
                    if k > 0 {
                        joined.extend_from_slice(b", ");
                    }
                    joined.extend_from_slice(v);
                }
                Some(Ok((start, joined.len())))
            }
        };
    }
    let joined: &'a [u8] = joined;
    let pick = |s: Option<Result<(usize, usize), &'a [u8]>>| {
        s.map(|s| match s {
            Ok((from, to)) => &joined[from..to],
            Err(v) => v,
        })
    };
    req.if_match = pick(spans[0]);
    req.if_none_match = pick(spans[1]);
    req.accept_encoding = pick(spans[2]);
    req
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// The request path as a listing's title shows it (decoded once; bytes
/// that are not UTF-8 replaced).
fn percent_decoded(path: &[u8]) -> String {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            path[i],
            path.get(i + 1).copied().and_then(hex),
            path.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn errno(e: &std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
}
