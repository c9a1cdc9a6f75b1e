//! `[[route]]`: the answers chosen by path, built once per configuration
//! into a lookup (exact paths in a hash map, prefixes in a byte trie) and a
//! set of precomputed answers per route, so that choosing is a hash, one
//! walk down the path and one `extend_from_slice`, however many routes.
//!
//! File order decides: of all routes whose path, host and method match, the
//! one written first answers, whether it is an exact or a prefix route. The
//! lookup keeps that true without trying every route: the exact map gives
//! the first exact candidate's index; walking the path through the trie
//! meets exactly the prefixes the path starts with, and of those the one
//! written first (and before the exact candidate) wins.
//!
//! Reading the TOML is `config.rs`'s job; sockets, clocks and the worker's
//! state (draining, maintenance) are the caller's, passed in.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

/// The exact-path hash and the prefix trie.
mod lookup;
/// Method, path, query and host, read from an accepted head.
mod parts;
/// `RouteSpec` and `Methods`: what the configuration hands over.
pub mod spec;

use lookup::{Fnv, Trie};
use parts::Parts;
use spec::method_bit;
pub use spec::{Answer, Methods, PathMatch, RouteSpec, METHOD_NAMES};

use crate::http::cidr::{self, Cidr};
use crate::http::files::serve::{Asked, FilesRoute};
use crate::http::parse::{Method, Request};
use crate::http::template::{reason, Persistence, Template, DATE_LEN};
use crate::http::transport::FileBody;
use crate::obs::metrics::Page;
use crate::obs::scoreboard::Board;

/// The most routes one configuration may hold.
pub const MAX_ROUTES: usize = 1000;

/// Who asks, and what a status route reads: the client's address (for
/// `allow`) and the scoreboard (none outside a worker). Two words, built
/// per request on the stack.
#[derive(Clone, Copy, Debug, Default)]
pub struct Asker {
    pub client: Option<IpAddr>,
    pub board: Option<Board>,
}

/// One request as its answer sees it: borrowed, built on the stack per
/// request, passed by reference (one pointer where a call took eight).
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    pub request: &'a Request,
    /// What `Router::choose` picked.
    pub choice: Choice,
    /// For a `keep_path` redirect, what to append to its location.
    pub tail: &'a [u8],
    /// The request head as read (a file route reads its target and
    /// validators there); empty when it is gone (a body was read and no
    /// observer kept it).
    pub head: &'a [u8],
    /// How the answer leaves the connection (`Close` while draining).
    pub persistence: Persistence,
    /// `-s maintenance on`.
    pub maintenance: bool,
    /// The worker drains: a health route answers 503.
    pub draining: bool,
    pub asker: Asker,
}

impl Question<'_> {
    /// A HEAD request: the answer's head alone.
    pub fn head_only(&self) -> bool {
        self.request.method == Method::Head
    }
}

/// What answering appended to the output, and what follows it there.
#[derive(Debug)]
pub struct Answered {
    pub status: u16,
    /// The body is this file's bytes, sent after the head (`sendfile`).
    pub file: Option<FileBody>,
}

impl Answered {
    /// An answer that is all in the output.
    pub fn bytes(status: u16) -> Answered {
        Answered { status, file: None }
    }
}

/// What answers a request, decided from its head (while its bytes are
/// still at hand) and carried until its body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// No route: the configured `[response]` (and OPTIONS/405 as before).
    Default,
    /// This route answers.
    Route(u16),
    /// OPTIONS on this route's path: 204 with its `Allow`.
    Options(u16),
    /// The path matches this route, but no route takes the method: 405.
    NotAllowed(u16),
}

/// The precomputed answers of one route.
struct Route {
    host: Option<Box<[u8]>>,
    methods: Methods,
    health: bool,
    /// A status page and who may read it.
    status: Option<(Page, Box<[Cidr]>)>,
    /// The answer, per [`Persistence`] (health: the `ok` one; status: the
    /// 403 to clients outside `allow`).
    answer: [Template; 3],
    /// Where the rest of the path goes in `answer` (keep_path redirects).
    keep_path: bool,
    /// A prefix route: how much of the path the prefix takes.
    prefix_len: Option<usize>,
    options: [Template; 3],
    not_allowed: [Template; 3],
    /// For the access log: the path, or the prefix followed by `*`.
    name: Box<str>,
    /// A files route: its root, or why it could not be opened (then it
    /// answers 500 until the next reload).
    files: Option<Result<FilesRoute, nix::errno::Errno>>,
}

/// The routes of one configuration, and how to find them.
pub struct Router {
    routes: Vec<Route>,
    /// Exact path → indices of the routes with that path, in file order.
    exact: HashMap<Box<[u8]>, Vec<u16>, BuildHasherDefault<Fnv>>,
    /// Prefix routes, by their bytes.
    prefixes: Trie,
    /// Some route names a host: the Host field must be looked up.
    any_host: bool,
    /// Shared by every health route while draining (always closes).
    draining: Template,
    /// Some route is a status page.
    any_status: bool,
    /// The current `Date`, for status answers built per request.
    date: [u8; DATE_LEN],
    /// The same time in seconds since the epoch (files' Last-Modified is
    /// never later).
    now: i64,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl Router {
    pub fn new(specs: &[RouteSpec]) -> Router {
        let mut r = Router {
            routes: Vec::with_capacity(specs.len()),
            exact: HashMap::default(),
            prefixes: Trie::default(),
            any_host: false,
            any_status: false,
            date: *b"Thu, 01 Jan 1970 00:00:00 GMT",
            now: 0,
            draining: Template::new(
                503,
                "Cache-Control: no-store\r\n",
                Persistence::Close,
                TEXT,
                b"draining\n",
            ),
        };
        for (i, spec) in specs.iter().enumerate().take(MAX_ROUTES) {
            let index = i as u16;
            match &spec.path {
                PathMatch::Exact(p) => r.exact.entry(p.as_bytes().into()).or_default().push(index),
                PathMatch::Prefix(p) => r.prefixes.insert(p.as_bytes(), index),
            }
            // A files route under `/static/` also takes `/static`, to
            // redirect it to the directory (as nginx does for a directory).
            if let (Answer::Files(_), PathMatch::Prefix(p)) = (&spec.answer, &spec.path) {
                if let Some(bare) = p.strip_suffix('/').filter(|b| !b.is_empty()) {
                    r.exact
                        .entry(bare.as_bytes().into())
                        .or_default()
                        .push(index);
                }
            }
            r.any_host |= spec.host.is_some();
            r.any_status |= matches!(spec.answer, Answer::Status { .. });
            r.routes.push(Route::new(spec));
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Some route is a status page.
    pub fn has_status(&self) -> bool {
        self.any_status
    }

    /// Chooses the route for a request whose head is `head` (as
    /// `http::parse_head` accepted it). Returns the choice and, for a
    /// `keep_path` redirect, what to append to its location: the target
    /// after the prefix (or after the exact path), query included.
    pub fn choose<'h>(&self, request: &Request, head: &'h [u8]) -> (Choice, &'h [u8]) {
        if self.routes.is_empty() {
            return (Choice::Default, &[]);
        }
        let Some(parts) = Parts::of(head, self.any_host) else {
            return (Choice::Default, &[]);
        };
        let bit = method_bit(request.method, parts.method);
        let options = request.method == Method::Options;
        let path = parts.path;
        // The first exact candidate with the right host bounds the prefixes
        // worth trying: only those written before it can win.
        let mut first_path: Option<u16> = None;
        let mut winner: Option<u16> = None;
        if let Some(list) = self.exact.get(path) {
            for &i in list {
                if !self.host_ok(i, parts.host) {
                    continue;
                }
                first_path.get_or_insert(i);
                if options || self.routes[usize::from(i)].methods.contains(bit) {
                    winner = Some(i);
                    break;
                }
            }
        }
        // Every prefix the path starts with: the first written that takes
        // host and method, if it comes before the exact winner.
        self.prefixes.walk(path, |ends| {
            for &i in ends {
                if winner.is_some_and(|w| i >= w) {
                    break;
                }
                if !self.host_ok(i, parts.host) {
                    continue;
                }
                if first_path.is_none_or(|f| i < f) {
                    first_path = Some(i);
                }
                if options || self.routes[usize::from(i)].methods.contains(bit) {
                    winner = Some(i);
                    break;
                }
            }
        });
        let Some(i) = winner else {
            return match first_path {
                Some(f) => (Choice::NotAllowed(f), &[]),
                None => (Choice::Default, &[]),
            };
        };
        if options {
            return (Choice::Options(i), &[]);
        }
        let route = &self.routes[usize::from(i)];
        if !route.keep_path {
            return (Choice::Route(i), &[]);
        }
        let skip = route.prefix_len.unwrap_or(path.len());
        // The path and the query are contiguous in the target; an empty
        // absolute-form path was taken as "/" and has nothing to skip.
        let tail = parts
            .after_path_start
            .get(skip.min(parts.real_path_len)..)
            .unwrap_or(&[]);
        (Choice::Route(i), tail)
    }

    fn host_ok(&self, i: u16, host: &[u8]) -> bool {
        match &self.routes[usize::from(i)].host {
            None => true,
            Some(h) => host.eq_ignore_ascii_case(h),
        }
    }

    /// Appends the answer of the route `q.choice` names. `q.draining`
    /// turns a health answer into 503 (`q.persistence` is then `Close`
    /// already); a status page is built now for an asker in its `allow`,
    /// else 403.
    pub fn answer(&self, out: &mut Vec<u8>, q: &Question) -> Answered {
        if let Choice::Route(i) = q.choice {
            if let Some(Ok(files)) = &self.routes[usize::from(i)].files {
                return self.answer_files(out, q, usize::from(i), files);
            }
        }
        Answered::bytes(self.answer_bytes(out, q))
    }

    /// A files route: the path after its prefix is looked up beneath its
    /// root (`http/files/serve.rs`).
    fn answer_files(
        &self,
        out: &mut Vec<u8>,
        q: &Question,
        i: usize,
        files: &FilesRoute,
    ) -> Answered {
        let Some(parts) = Parts::of(q.head, false) else {
            return Answered::bytes(self.answer_bytes(out, q));
        };
        let path = parts.path;
        let query = parts
            .after_path_start
            .get(parts.real_path_len..)
            .unwrap_or(&[]);
        // The prefix's trailing slash stays in what is looked up, so a
        // request for the prefix without it gets the redirect.
        let skip = self.routes[i].prefix_len.unwrap_or(path.len());
        let skip = if path.get(..skip).is_some_and(|p| p.ends_with(b"/")) {
            skip - 1
        } else {
            skip
        };
        let rest = path.get(skip..).unwrap_or(&[]);
        if !rest.is_empty() && !rest.starts_with(b"/") {
            // `/staticx` under the prefix `/static`: not beneath it.
            let served = files.not_found(out, q.request.method, q.persistence, &self.date);
            return Answered::bytes(served);
        }
        let served = files.answer(
            out,
            &Asked {
                method: q.request.method,
                head: q.head,
                rest,
                path,
                query,
                persistence: q.persistence,
                date: &self.date,
                now: self.now,
            },
        );
        Answered {
            status: served.status,
            file: served.file,
        }
    }

    fn answer_bytes(&self, out: &mut Vec<u8>, q: &Question) -> u16 {
        let (p, head_only, draining, asker) = (q.persistence, q.head_only(), q.draining, q.asker);
        let t = match q.choice {
            Choice::Default => return 0,
            Choice::Route(i) => {
                let route = &self.routes[usize::from(i)];
                if route.health && draining {
                    &self.draining
                } else if let Some((page, allow)) = &route.status {
                    if asker.client.is_some_and(|ip| cidr::any_contains(allow, ip)) {
                        let mut t = status_page(*page, p, asker.board);
                        t.set_date(&self.date);
                        t.push(out, head_only);
                        return t.status();
                    }
                    &route.answer[p as usize]
                } else if route.keep_path {
                    let t = &route.answer[p as usize];
                    t.push_with(out, q.tail, head_only);
                    return t.status();
                } else {
                    &route.answer[p as usize]
                }
            }
            Choice::Options(i) => {
                let t = &self.routes[usize::from(i)].options[p as usize];
                t.push(out, false);
                return t.status();
            }
            Choice::NotAllowed(i) => &self.routes[usize::from(i)].not_allowed[p as usize],
        };
        t.push(out, head_only);
        t.status()
    }

    /// The route that answers, as the access log names it: its path, or
    /// its prefix followed by `*`; None for the configured `[response]`.
    pub fn name(&self, choice: Choice) -> Option<&str> {
        match choice {
            Choice::Route(i) | Choice::NotAllowed(i) | Choice::Options(i) => {
                Some(&self.routes[usize::from(i)].name)
            }
            Choice::Default => None,
        }
    }

    /// A health or status route answers here: maintenance leaves it
    /// alone (a balancer's check and a scrape must still see the truth).
    pub fn bypasses_maintenance(&self, choice: Choice) -> bool {
        match choice {
            Choice::Route(i) | Choice::NotAllowed(i) | Choice::Options(i) => {
                let r = &self.routes[usize::from(i)];
                r.health || r.status.is_some()
            }
            Choice::Default => false,
        }
    }

    pub fn set_date(&mut self, date: &[u8; DATE_LEN]) {
        self.date = *date;
        self.now = std::str::from_utf8(date)
            .ok()
            .and_then(crate::obs::clock::parse_http_date)
            .unwrap_or(self.now);
        self.draining.set_date(date);
        for r in &mut self.routes {
            for t in r
                .answer
                .iter_mut()
                .chain(r.options.iter_mut())
                .chain(r.not_allowed.iter_mut())
            {
                t.set_date(date);
            }
        }
    }
}

impl Route {
    fn new(spec: &RouteSpec) -> Route {
        let allow = spec.methods.allow_header();
        let per = |f: &dyn Fn(Persistence) -> Template| Persistence::ALL.map(f);
        let (answer, keep_path) = match &spec.answer {
            Answer::Static(s) => {
                let extra = header_lines(&s.headers);
                (
                    per(&|p| Template::new(s.status, &extra, p, &s.content_type, &s.body)),
                    false,
                )
            }
            Answer::Health => (
                per(&|p| Template::new(200, "Cache-Control: no-store\r\n", p, TEXT, b"ok\n")),
                false,
            ),
            Answer::Status { .. } => (
                per(&|p| Template::new(403, "", p, TEXT, b"Forbidden\n")),
                false,
            ),
            // Answered per request; this is the answer while its root
            // cannot be opened.
            Answer::Files(_) => (
                per(&|p| Template::new(500, "", p, TEXT, b"Internal Server Error\n")),
                false,
            ),
            Answer::Redirect {
                status,
                location,
                keep_path,
                headers,
            } => {
                let extra = format!("{}Location: {location}", header_lines(headers));
                let body = format!("{}\n", reason(*status));
                (
                    per(&|p| {
                        Template::new(*status, &format!("{extra}\r\n"), p, TEXT, body.as_bytes())
                            .open_last_header(p)
                    }),
                    *keep_path,
                )
            }
        };
        Route {
            host: spec.host.as_ref().map(|h| h.as_bytes().into()),
            methods: spec.methods,
            health: spec.answer == Answer::Health,
            status: match &spec.answer {
                Answer::Status { page, allow } => Some((*page, allow.as_slice().into())),
                _ => None,
            },
            answer,
            keep_path,
            prefix_len: match &spec.path {
                PathMatch::Prefix(p) => Some(p.len()),
                PathMatch::Exact(_) => None,
            },
            options: per(&|p| Template::options(&allow, p)),
            not_allowed: per(&|p| Template::new(405, &allow, p, TEXT, b"Method Not Allowed\n")),
            name: match &spec.path {
                PathMatch::Exact(p) => p.as_str().into(),
                PathMatch::Prefix(p) => format!("{p}*").into(),
            },
            files: match &spec.answer {
                Answer::Files(config) => Some(FilesRoute::new(config.clone()).inspect_err(|e| {
                    log::error!(
                        "files: cannot open root={}: {e} (answered 500 until a reload)",
                        config.root.display()
                    );
                })),
                _ => None,
            },
        }
    }
}

/// A status page as it is now (built per scrape; nothing of it is kept).
fn status_page(page: Page, p: Persistence, board: Option<Board>) -> Template {
    Template::new(
        200,
        "Cache-Control: no-store\r\n",
        p,
        page.content_type(),
        page.render(board).as_bytes(),
    )
}

fn header_lines(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect()
}

#[cfg(test)]
mod tests;
