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
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use crate::http::cidr::{self, Cidr};
use crate::http::parse::{Method, Request};
use crate::http::template::{reason, Persistence, ResponseSpec, Template, DATE_LEN};
use crate::http::transport::FileBody;
use crate::obs::metrics::Page;
use crate::obs::scoreboard::Board;

/// The most routes one configuration may hold.
pub const MAX_ROUTES: usize = 1000;

/// The methods a route may list (OPTIONS is always answered, with `Allow`).
pub const METHOD_NAMES: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

/// A set of [`METHOD_NAMES`], one bit each in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Methods(u8);

impl Methods {
    /// GET and HEAD: what a route answers unless it says otherwise.
    pub const DEFAULT: Methods = Methods(0b11);

    /// The set from names; `None` names the first unknown one. GET brings
    /// HEAD with it (RFC 9110 9.1: a server that has GET has HEAD).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Methods, &'a str> {
        let mut bits = 0u8;
        for name in names {
            let i = METHOD_NAMES.iter().position(|m| *m == name).ok_or(name)?;
            bits |= 1 << i;
        }
        if bits & 1 != 0 {
            bits |= 0b10;
        }
        Ok(Methods(bits))
    }

    pub fn overlaps(self, other: Methods) -> bool {
        self.0 & other.0 != 0
    }

    fn contains(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// `Allow: GET, HEAD, OPTIONS\r\n`, in [`METHOD_NAMES`] order.
    fn allow_header(self) -> String {
        let mut names: Vec<&str> = METHOD_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, m)| *m)
            .collect();
        names.push("OPTIONS");
        format!("Allow: {}\r\n", names.join(", "))
    }
}

/// The bit of a request's method in a [`Methods`] set (0: none; OPTIONS
/// is decided apart).
fn method_bit(method: Method, token: &[u8]) -> u8 {
    match method {
        Method::Get => 1,
        Method::Head => 2,
        Method::Options => 0,
        Method::Other => match token {
            b"POST" => 4,
            b"PUT" => 8,
            b"DELETE" => 16,
            b"PATCH" => 32,
            _ => 0,
        },
    }
}

/// Which paths a route answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// The path (before any `?`) is exactly this.
    Exact(String),
    /// The path starts with this.
    Prefix(String),
}

/// What a route answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A fixed response, configured like `[response]`.
    Static(ResponseSpec),
    /// `Location` to `location`; with `keep_path`, the rest of the path
    /// after the prefix and the query are appended.
    Redirect {
        status: u16,
        location: String,
        keep_path: bool,
        headers: Vec<(String, String)>,
    },
    /// 200 `ok` while the worker serves, 503 `draining` once it drains.
    Health,
    /// A status page built per request from the scoreboard, for clients
    /// in `allow` (others get 403).
    Status { page: Page, allow: Vec<Cidr> },
}

/// One validated `[[route]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub path: PathMatch,
    /// Lower case, without a port.
    pub host: Option<String>,
    pub methods: Methods,
    pub answer: Answer,
}

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

/// FNV-1a: the keys are a few short paths fixed by the config, and the
/// lookup cannot add any, so a DoS-resistant hash buys nothing here.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
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
}

const TEXT: &str = "text/plain; charset=utf-8";

/// The prefix routes as a byte trie: node 0 is the empty prefix; a node
/// lists the routes whose prefix ends there, in file order.
#[derive(Default)]
struct Trie {
    nodes: Vec<Node>,
}

#[derive(Default)]
struct Node {
    /// (byte, node), few per node: searched in order.
    next: Vec<(u8, u32)>,
    ends: Vec<u16>,
}

impl Trie {
    fn insert(&mut self, key: &[u8], index: u16) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = 0usize;
        for &b in key {
            let found = self.nodes[at].next.iter().find(|(k, _)| *k == b);
            at = match found {
                Some(&(_, n)) => n as usize,
                None => {
                    let n = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[at].next.push((b, n as u32));
                    n
                }
            };
        }
        self.nodes[at].ends.push(index);
    }

    /// Calls `f` with the routes of every prefix of `path`, shortest first.
    fn walk(&self, path: &[u8], mut f: impl FnMut(&[u16])) {
        let Some(mut node) = self.nodes.first() else {
            return;
        };
        for &b in path {
            match node.next.iter().find(|(k, _)| *k == b) {
                Some(&(_, n)) => node = &self.nodes[n as usize],
                None => return,
            }
            if !node.ends.is_empty() {
                f(&node.ends);
            }
        }
    }
}

impl Router {
    pub fn new(specs: &[RouteSpec]) -> Router {
        let mut r = Router {
            routes: Vec::with_capacity(specs.len()),
            exact: HashMap::default(),
            prefixes: Trie::default(),
            any_host: false,
            any_status: false,
            date: *b"Thu, 01 Jan 1970 00:00:00 GMT",
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
        Answered::bytes(self.answer_bytes(out, q))
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

/// What routing needs from a request head already checked by the parser.
struct Parts<'h> {
    method: &'h [u8],
    /// The path of the target ("/" for an absolute-form target without one).
    path: &'h [u8],
    /// The target from the start of its path to its end (query included).
    after_path_start: &'h [u8],
    /// How long the path really is in `after_path_start`.
    real_path_len: usize,
    /// The Host field's host, without port (empty when absent or not asked for).
    host: &'h [u8],
}

impl<'h> Parts<'h> {
    /// None for a target without a path (`*`, authority-form).
    fn of(head: &'h [u8], want_host: bool) -> Option<Parts<'h>> {
        let mut head = head;
        while let [b'\r', b'\n', rest @ ..] = head {
            head = rest;
        }
        let line_end = head.iter().position(|&b| b == b'\r')?;
        let line = &head[..line_end];
        let sp1 = line.iter().position(|&b| b == b' ')?;
        let method = &line[..sp1];
        let rest = &line[sp1 + 1..];
        let sp2 = rest.iter().position(|&b| b == b' ')?;
        let target = &rest[..sp2];
        let from = if target.first() == Some(&b'/') {
            0
        } else {
            // absolute-form: scheme "://" authority, then the path.
            let scheme_end = target.windows(3).position(|w| w == b"://")? + 3;
            scheme_end
                + target[scheme_end..]
                    .iter()
                    .position(|&b| b == b'/' || b == b'?')
                    .unwrap_or(target.len() - scheme_end)
        };
        let after_path_start = &target[from..];
        let real_path_len = after_path_start
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(after_path_start.len());
        let path: &[u8] = if real_path_len == 0 {
            b"/"
        } else {
            &after_path_start[..real_path_len]
        };
        let host = if want_host {
            host_field(&head[line_end..])
        } else {
            &[]
        };
        Some(Parts {
            method,
            path,
            after_path_start,
            real_path_len,
            host,
        })
    }
}

/// The host of the Host field (without its port), or empty.
fn host_field(fields: &[u8]) -> &[u8] {
    for line in fields.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() < 5 || !line[..5].eq_ignore_ascii_case(b"host:") {
            continue;
        }
        let mut v = &line[5..];
        while let [b' ' | b'\t', rest @ ..] = v {
            v = rest;
        }
        while let [rest @ .., b' ' | b'\t'] = v {
            v = rest;
        }
        let end = if v.first() == Some(&b'[') {
            v.iter().position(|&b| b == b']').map_or(v.len(), |i| i + 1)
        } else {
            v.iter().position(|&b| b == b':').unwrap_or(v.len())
        };
        return &v[..end];
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::Body;

    /// `Router::answer` for a GET, as a status.
    fn ask(
        r: &Router,
        out: &mut Vec<u8>,
        choice: Choice,
        tail: &[u8],
        persistence: Persistence,
        draining: bool,
        asker: Asker,
    ) -> u16 {
        let request = Request {
            method: Method::Get,
            http10: false,
            keep_alive: true,
            body: Body::None,
            expect_continue: false,
        };
        let q = Question {
            request: &request,
            choice,
            tail,
            head: &[],
            persistence,
            maintenance: false,
            draining,
            asker,
        };
        r.answer(out, &q).status
    }
    use crate::http::parse::{parse_head, Limits, Parsed};

    fn stat(body: &str) -> Answer {
        Answer::Static(ResponseSpec {
            status: 200,
            content_type: TEXT.into(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        })
    }

    fn route(path: PathMatch, answer: Answer) -> RouteSpec {
        RouteSpec {
            path,
            host: None,
            methods: Methods::DEFAULT,
            answer,
        }
    }

    fn exact(p: &str) -> PathMatch {
        PathMatch::Exact(p.into())
    }

    fn prefix(p: &str) -> PathMatch {
        PathMatch::Prefix(p.into())
    }

    fn choose(r: &Router, req: &str) -> (Choice, String) {
        let limits = Limits {
            max_header_bytes: 8192,
            max_body_bytes: 1 << 20,
        };
        let Ok(Parsed::Complete(request, n)) = parse_head(req.as_bytes(), &limits) else {
            panic!("not a request: {req:?}");
        };
        let (c, tail) = r.choose(&request, &req.as_bytes()[..n]);
        (c, String::from_utf8(tail.to_vec()).unwrap())
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: a.example\r\n\r\n")
    }

    #[test]
    fn file_order_decides_between_prefix_and_exact() {
        let r = Router::new(&[
            route(prefix("/a"), stat("p")),
            route(exact("/a/b"), stat("e")),
            route(exact("/x"), stat("x")),
            route(prefix("/x"), stat("px")),
        ]);
        assert_eq!(choose(&r, &get("/a/b")).0, Choice::Route(0));
        assert_eq!(choose(&r, &get("/x")).0, Choice::Route(2));
        assert_eq!(choose(&r, &get("/x/y")).0, Choice::Route(3));
        assert_eq!(choose(&r, &get("/y")).0, Choice::Default);
        // "/" as a prefix is met by every path, in its file place.
        let r2 = Router::new(&[
            route(exact("/"), stat("root")),
            route(prefix("/b"), stat("b")),
            route(prefix("/"), stat("all")),
            route(prefix("/a"), stat("a: never")),
        ]);
        assert_eq!(choose(&r2, &get("/")).0, Choice::Route(0));
        assert_eq!(choose(&r2, &get("/b/c")).0, Choice::Route(1));
        assert_eq!(choose(&r2, &get("/a")).0, Choice::Route(2));
        assert_eq!(choose(&r2, &get("/zz")).0, Choice::Route(2));
        assert_eq!(choose(&r, &get("/x?q=1")).0, Choice::Route(2));
        assert_eq!(
            choose(
                &r,
                "GET http://h.example/x?q HTTP/1.1\r\nHost: h.example\r\n\r\n"
            )
            .0,
            Choice::Route(2)
        );
        assert_eq!(
            choose(&r, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").0,
            Choice::Default
        );
    }

    #[test]
    fn methods_and_hosts_take_part_in_matching() {
        let mut post = route(exact("/p"), stat("post"));
        post.methods = Methods::parse(["POST"]).unwrap();
        let mut hosted = route(exact("/p"), stat("host"));
        hosted.host = Some("b.example".into());
        let r = Router::new(&[post, hosted, route(exact("/p"), stat("get"))]);
        let req = |m: &str, host: &str| format!("{m} /p HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(choose(&r, &req("POST", "x")).0, Choice::Route(0));
        assert_eq!(
            choose(&r, &req("GET", "B.Example:8080")).0,
            Choice::Route(1)
        );
        assert_eq!(choose(&r, &req("GET", "a.example")).0, Choice::Route(2));
        assert_eq!(
            choose(&r, &req("PUT", "a.example")).0,
            Choice::NotAllowed(0)
        );
        assert_eq!(
            choose(&r, &req("OPTIONS", "a.example")).0,
            Choice::Options(0)
        );
    }

    #[test]
    fn keep_path_tail_and_bytes() {
        let redirect = |keep_path| Answer::Redirect {
            status: 308,
            location: "https://new.example/n".into(),
            keep_path,
            headers: Vec::new(),
        };
        let mut r = Router::new(&[
            route(prefix("/old/"), redirect(true)),
            route(exact("/e"), redirect(true)),
            route(exact("/plain"), redirect(false)),
        ]);
        r.set_date(b"Sun, 06 Nov 1994 08:49:37 GMT");
        let (c, tail) = choose(&r, &get("/old/a/b?x=1"));
        assert_eq!((c, tail.as_str()), (Choice::Route(0), "a/b?x=1"));
        let (c, tail) = choose(&r, &get("/e?q"));
        assert_eq!((c, tail.as_str()), (Choice::Route(1), "?q"));
        let (c, tail) = choose(&r, &get("/plain?q"));
        assert_eq!((c, tail.as_str()), (Choice::Route(2), ""));
        let mut out = Vec::new();
        ask(
            &r,
            &mut out,
            Choice::Route(0),
            b"a/b?x=1",
            Persistence::KeepAlive,
            false,
            Asker::default(),
        );
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with(
                "HTTP/1.1 308 Permanent Redirect\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("\r\nLocation: https://new.example/na/b?x=1\r\n\r\n"),
            "{s}"
        );
    }

    #[test]
    fn health_drains_and_methods_parse() {
        let r = Router::new(&[route(exact("/healthz"), Answer::Health)]);
        let mut out = Vec::new();
        ask(
            &r,
            &mut out,
            Choice::Route(0),
            &[],
            Persistence::KeepAlive,
            false,
            Asker::default(),
        );
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n") && out.ends_with(b"\r\n\r\nok\n"));
        out.clear();
        ask(
            &r,
            &mut out,
            Choice::Route(0),
            &[],
            Persistence::Close,
            true,
            Asker::default(),
        );
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("HTTP/1.1 503 ")
                && s.contains("Connection: close\r\n")
                && s.ends_with("draining\n"),
            "{s}"
        );
        assert!(r.bypasses_maintenance(Choice::Route(0)));
        assert_eq!(Methods::parse(["GET"]), Ok(Methods::DEFAULT));
        assert_eq!(Methods::parse(["GET", "TRACE"]), Err("TRACE"));
        assert_eq!(
            Methods::parse(["POST", "GET"]).unwrap().allow_header(),
            "Allow: GET, HEAD, POST, OPTIONS\r\n"
        );
    }

    #[test]
    fn a_status_route_answers_its_allow_list_and_403_to_others() {
        let allow = vec!["10.0.0.0/8".parse().unwrap()];
        let r = Router::new(&[
            route(
                exact("/status"),
                Answer::Status {
                    page: Page::StubStatus,
                    allow,
                },
            ),
            route(
                exact("/metrics"),
                Answer::Status {
                    page: Page::Metrics,
                    allow: crate::http::cidr::Cidr::localhost(),
                },
            ),
        ]);
        assert!(r.has_status());
        assert!(r.bypasses_maintenance(Choice::Route(1)));
        let answer = |i: u16, client: Option<&str>| {
            let mut out = Vec::new();
            let status = ask(
                &r,
                &mut out,
                Choice::Route(i),
                &[],
                Persistence::KeepAlive,
                false,
                Asker {
                    client: client.map(|c| c.parse().unwrap()),
                    board: None,
                },
            );
            (status, String::from_utf8(out).unwrap())
        };
        let (status, s) = answer(0, Some("10.1.2.3"));
        assert_eq!(status, 200);
        assert!(s.contains("\r\nContent-Type: text/plain\r\n"), "{s}");
        assert!(s.contains("\r\n\r\nActive connections: "), "{s}");
        assert!(s.ends_with(" \n"), "{s}");
        for client in [Some("11.0.0.1"), Some("127.0.0.1"), None] {
            let (status, s) = answer(0, client);
            assert_eq!(status, 403, "{client:?}");
            assert!(s.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{s}");
        }
        let (status, s) = answer(1, Some("::1"));
        assert_eq!(status, 200);
        assert!(
            s.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{s}"
        );
        assert!(
            s.contains("# TYPE preforkd_requests_total counter\n"),
            "{s}"
        );
        assert_eq!(answer(1, Some("127.0.0.2")).0, 403);
    }
}
