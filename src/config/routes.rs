//! `[[route]]` tables → `RouteSpec`s: the part every route shares (path or
//! prefix, methods, host, the duplicate check) and one function per kind
//! for its answer. Adding a kind is one function and one row in `KINDS`.
//!
//! Leaves matching requests and building answers to `http/route/` and
//! `http/answer.rs`.

use std::ops::Range;
use std::path::Path;

use super::error::{Error, Source};
use super::raw::RawRoute;
use super::tables::{default_response, read_body, set};
use crate::http::cidr::Cidr;
use crate::http::files::config::{FilesConfig, FilesKeys};
use crate::http::route::{Answer, Methods, PathMatch, RouteSpec, MAX_ROUTES};
use crate::obs::metrics::Page;

/// What a kind's function is given besides the table: where the table
/// is, for errors, and the config file's folder, for relative paths.
pub(super) struct Table<'a> {
    pub src: Source<'a>,
    pub base: &'a Path,
    /// The whole `[[route]]` table, for errors about a missing key.
    pub span: Range<usize>,
    /// The route's `kind`, for "not used by a route of kind" errors.
    pub kind: &'a str,
}

impl Table<'_> {
    fn err(&self, span: Range<usize>, message: String) -> Error {
        self.src.at(span, message)
    }

    /// Keys that mean nothing for this kind are refused, not ignored.
    fn refuse(&self, present: &[(&str, Option<Range<usize>>)]) -> Result<(), Error> {
        match present.iter().find(|(_, s)| s.is_some()) {
            Some((name, Some(span))) => Err(self.err(
                span.clone(),
                format!(
                    "route.{name}: not used by a route of kind \"{}\"",
                    self.kind
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// A kind's answer from the route's table.
type KindFn = fn(&Table<'_>, RawRoute) -> Result<Answer, Error>;

/// The kinds of route, by the name `kind` gives; the first is the default.
const KINDS: [(&str, KindFn); 6] = [
    ("static", static_answer),
    ("redirect", redirect),
    ("health", health),
    ("stub_status", stub_status),
    ("metrics", metrics),
    ("files", files),
];

fn span<T>(value: &Option<toml::Spanned<T>>) -> Option<Range<usize>> {
    value.as_ref().map(toml::Spanned::span)
}

/// What a health or status route answers is built in: the keys that
/// shape a static or redirect answer are refused there.
fn answer_keys(r: &RawRoute) -> [(&'static str, Option<Range<usize>>); 7] {
    [
        ("status", span(&r.status)),
        ("body", span(&r.body)),
        ("body_file", span(&r.body_file)),
        ("content_type", span(&r.content_type)),
        ("headers", span(&r.headers)),
        ("location", span(&r.location)),
        ("keep_path", span(&r.keep_path)),
    ]
}

/// The keys only a files route takes.
fn file_keys(r: &RawRoute) -> [(&'static str, Option<Range<usize>>); 7] {
    [
        ("root", span(&r.root)),
        ("index", span(&r.index)),
        ("precompressed", span(&r.precompressed)),
        ("cache_control", span(&r.cache_control)),
        ("dotfiles", span(&r.dotfiles)),
        ("listing", span(&r.listing)),
        ("fallback", span(&r.fallback)),
    ]
}

/// `kind = "files"`: a directory served beneath `root` (`http/files/`).
/// `index` is `["index.html"]` unless given; the values are checked by
/// `FilesConfig::from_keys`, whose errors are shown at their key.
fn files(t: &Table<'_>, r: RawRoute) -> Result<Answer, Error> {
    t.refuse(&answer_keys(&r))?;
    t.refuse(&[("allow", span(&r.allow))])?;
    let spans = file_keys(&r);
    let keys = FilesKeys {
        root: r.root.map(toml::Spanned::into_inner),
        index: r
            .index
            .map_or_else(|| vec!["index.html".to_owned()], toml::Spanned::into_inner),
        precompressed: r.precompressed.map(toml::Spanned::into_inner),
        cache_control: r.cache_control.map(toml::Spanned::into_inner),
        dotfiles: r.dotfiles.map(toml::Spanned::into_inner),
        listing: r.listing.map(toml::Spanned::into_inner),
        fallback: r.fallback.map(toml::Spanned::into_inner),
    };
    // Absolute now: `-d` and an upgraded master may run elsewhere.
    let base = std::path::absolute(t.base).unwrap_or_else(|_| t.base.to_path_buf());
    match FilesConfig::from_keys(keys, &base) {
        Ok(config) => Ok(Answer::Files(config)),
        Err(e) => {
            let at = spans
                .iter()
                .find(|(name, _)| *name == e.key)
                .and_then(|(_, s)| s.clone())
                .unwrap_or_else(|| t.span.clone());
            Err(t.err(at, format!("route.{e}")))
        }
    }
}

/// `kind = "static"` (the default): a fixed answer, 200 unless `status`.
fn static_answer(t: &Table<'_>, r: RawRoute) -> Result<Answer, Error> {
    t.refuse(&file_keys(&r))?;
    t.refuse(&[
        ("location", span(&r.location)),
        ("keep_path", span(&r.keep_path)),
        ("allow", span(&r.allow)),
    ])?;
    let mut spec = default_response();
    if let Some(s) = r.status {
        let n = *s.get_ref();
        match u16::try_from(n) {
            Ok(v @ 200..=599) if v != 204 && v != 205 && v != 304 => spec.status = v,
            _ => {
                return Err(t.err(
                    s.span(),
                    format!("route.status: status {n} is not allowed: expected 200 to 599, except 204, 205 and 304 (they carry no body)"),
                ))
            }
        }
    }
    set(
        &mut spec.content_type,
        r.content_type.map(|t| t.into_inner().0),
    );
    set(&mut spec.headers, r.headers.map(|h| h.into_inner().0));
    let body = r.body.map(toml::Spanned::into_inner);
    set(
        &mut spec.body,
        read_body(t.src, t.base, "route", body, r.body_file)?,
    );
    Ok(Answer::Static(spec))
}

/// `kind = "redirect"`: `location` required, 301 unless `status`.
fn redirect(t: &Table<'_>, r: RawRoute) -> Result<Answer, Error> {
    t.refuse(&file_keys(&r))?;
    t.refuse(&[
        ("body", span(&r.body)),
        ("body_file", span(&r.body_file)),
        ("content_type", span(&r.content_type)),
        ("allow", span(&r.allow)),
    ])?;
    let Some(location) = r.location else {
        return Err(t.err(t.span.clone(), "route: a redirect needs a location".into()));
    };
    if location.get_ref().0.is_empty() {
        return Err(t.err(location.span(), "route.location: empty".into()));
    }
    let status = match r.status {
        None => 301,
        Some(s) => match *s.get_ref() {
            n @ (301 | 302 | 303 | 307 | 308) => n as u16,
            n => {
                return Err(t.err(
                    s.span(),
                    format!(
                        "route.status: a redirect's status is 301, 302, 303, 307 or 308, not {n}"
                    ),
                ))
            }
        },
    };
    let headers = match r.headers {
        None => Vec::new(),
        Some(h) => {
            let span = h.span();
            let h = h.into_inner().0;
            if h.iter().any(|(n, _)| n.eq_ignore_ascii_case("location")) {
                return Err(t.err(
                    span,
                    "route.headers: a redirect's Location is set by route.location".into(),
                ));
            }
            h
        }
    };
    Ok(Answer::Redirect {
        status,
        location: location.into_inner().0,
        keep_path: r.keep_path.is_some_and(toml::Spanned::into_inner),
        headers,
    })
}

/// `kind = "health"`: the built-in health answer.
fn health(t: &Table<'_>, r: RawRoute) -> Result<Answer, Error> {
    t.refuse(&answer_keys(&r))?;
    t.refuse(&file_keys(&r))?;
    t.refuse(&[("allow", span(&r.allow))])?;
    Ok(Answer::Health)
}

/// `kind = "stub_status"`: nginx's status page.
fn stub_status(t: &Table<'_>, r: RawRoute) -> Result<Answer, Error> {
    status_page(t, r, Page::StubStatus)
}

/// `kind = "metrics"`: the Prometheus page.
fn metrics(t: &Table<'_>, r: RawRoute) -> Result<Answer, Error> {
    status_page(t, r, Page::Metrics)
}

/// A status page, for `allow` (localhost by default).
fn status_page(t: &Table<'_>, r: RawRoute, page: Page) -> Result<Answer, Error> {
    t.refuse(&answer_keys(&r))?;
    t.refuse(&file_keys(&r))?;
    Ok(Answer::Status {
        page,
        allow: r.allow.map_or_else(Cidr::localhost, |a| a.into_inner().0),
    })
}

/// An exact route already taken: its path, host, methods and line.
struct Seen {
    path: String,
    host: Option<String>,
    methods: Methods,
    line: usize,
}

/// `[[route]]` tables, checked one by one and against each other.
pub(super) fn parse_routes(
    src: Source<'_>,
    base: &Path,
    raw: Vec<toml::Spanned<RawRoute>>,
) -> Result<Vec<RouteSpec>, Error> {
    let mut out: Vec<RouteSpec> = Vec::with_capacity(raw.len().min(MAX_ROUTES));
    let mut seen: Vec<Seen> = Vec::new();
    for (n, spanned) in raw.into_iter().enumerate() {
        let table_span = spanned.span();
        if n == MAX_ROUTES {
            return Err(src.at(table_span, format!("route: more than {MAX_ROUTES} routes")));
        }
        let (route, match_span) = parse_route(src, base, table_span, spanned.into_inner())?;
        if let PathMatch::Exact(p) = &route.path {
            let clash = seen.iter().find(|s| {
                s.path == *p && s.host == route.host && s.methods.overlaps(route.methods)
            });
            if let Some(first) = clash {
                return Err(src.at(
                    match_span,
                    format!(
                        "route.path: {p:?} is already routed for this host and method at line {}",
                        first.line
                    ),
                ));
            }
            seen.push(Seen {
                path: p.clone(),
                host: route.host.clone(),
                methods: route.methods,
                line: src.line(match_span.start),
            });
        }
        out.push(route);
    }
    Ok(out)
}

/// One route, and the span of its path or prefix.
fn parse_route(
    src: Source<'_>,
    base: &Path,
    table_span: Range<usize>,
    mut r: RawRoute,
) -> Result<(RouteSpec, Range<usize>), Error> {
    let (matcher, match_span) = path_match(src, &table_span, r.path.take(), r.prefix.take())?;
    let methods_span = span(&r.methods);
    let methods = methods(src, r.methods.take())?;
    let host = host(src, r.host.take())?;
    let kind_span = span(&r.kind);
    let kind = r
        .kind
        .take()
        .map_or(KINDS[0].0.to_owned(), toml::Spanned::into_inner);
    let Some((_, answer)) = KINDS.iter().find(|(name, _)| *name == kind) else {
        let names: Vec<String> = KINDS.iter().map(|(name, _)| format!("{name:?}")).collect();
        let (last, rest) = names.split_last().expect("KINDS is not empty");
        return Err(src.at(
            kind_span.unwrap_or(table_span),
            format!(
                "route.kind: unknown kind {kind:?}: expected {} or {last}",
                rest.join(", ")
            ),
        ));
    };
    let table = Table {
        src,
        base,
        span: table_span.clone(),
        kind: &kind,
    };
    let route = RouteSpec {
        path: matcher,
        host,
        methods,
        answer: answer(&table, r)?,
    };
    if let Answer::Files(_) = route.answer {
        // The path after the prefix names the file; only GET and HEAD read one.
        if let PathMatch::Exact(p) = &route.path {
            return Err(src.at(
                match_span,
                format!(
                    "route.path: a files route takes a prefix (prefix = {p:?}), not an exact path"
                ),
            ));
        }
        if !route.methods.within(Methods::DEFAULT) {
            return Err(src.at(
                methods_span.unwrap_or(table_span),
                "route.methods: a files route answers GET and HEAD only".into(),
            ));
        }
    }
    Ok((route, match_span))
}

/// `path` (exact) or `prefix`, not both: starts with "/", holds only what
/// a request path can.
fn path_match(
    src: Source<'_>,
    table_span: &Range<usize>,
    path: Option<toml::Spanned<String>>,
    prefix: Option<toml::Spanned<String>>,
) -> Result<(PathMatch, Range<usize>), Error> {
    let (matcher, match_span, key) = match (path, prefix) {
        (Some(_), Some(p)) => {
            return Err(src.at(
                p.span(),
                "route.prefix: a route has a path or a prefix, not both".into(),
            ))
        }
        (None, None) => {
            return Err(src.at(
                table_span.clone(),
                "route: needs a path (exact) or a prefix".into(),
            ))
        }
        (Some(p), None) => {
            let span = p.span();
            (PathMatch::Exact(p.into_inner()), span, "path")
        }
        (None, Some(p)) => {
            let span = p.span();
            (PathMatch::Prefix(p.into_inner()), span, "prefix")
        }
    };
    let (PathMatch::Exact(ref value) | PathMatch::Prefix(ref value)) = matcher;
    if !value.starts_with('/') {
        return Err(src.at(
            match_span,
            format!("route.{key}: {value:?} does not start with \"/\""),
        ));
    }
    if !value
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && b != b'?' && b != b'#')
    {
        return Err(src.at(
            match_span,
            format!("route.{key}: {value:?} holds a character a request path cannot (space, control, non-ASCII, '?' or '#')"),
        ));
    }
    Ok((matcher, match_span))
}

/// `methods`: a non-empty list of known names (GET and HEAD by default).
fn methods(src: Source<'_>, m: Option<toml::Spanned<Vec<String>>>) -> Result<Methods, Error> {
    let Some(m) = m else {
        return Ok(Methods::DEFAULT);
    };
    let span = m.span();
    let names = m.into_inner();
    if names.is_empty() {
        return Err(src.at(span, "route.methods: an empty list answers nothing".into()));
    }
    Methods::parse(names.iter().map(String::as_str)).map_err(|bad| {
        src.at(
            span.clone(),
            format!(
                "route.methods: unknown method {bad:?}: expected {} (OPTIONS is always answered)",
                crate::http::route::METHOD_NAMES.join(", ")
            ),
        )
    })
}

/// `host`: a name or address without a port, kept lower-case.
fn host(src: Source<'_>, h: Option<toml::Spanned<String>>) -> Result<Option<String>, Error> {
    let Some(h) = h else {
        return Ok(None);
    };
    let span = h.span();
    let h = h.into_inner();
    let ok = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
        && (h.starts_with('[') || !h.contains(':'));
    if !ok {
        return Err(src.at(
            span,
            format!("route.host: {h:?} is not a host name or address (without a port)"),
        ));
    }
    Ok(Some(h.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{error, expect_error, parse_str};

    #[test]
    fn routes_and_maintenance_parse() {
        let c = parse_str(
            r#"
[[route]]
path = "/healthz"
kind = "health"

[[route]]
prefix = "/old/"
kind = "redirect"
location = "https://example.org/new/"
status = 308
keep_path = true

[[route]]
path = "/"
host = "Example.ORG"
methods = ["GET", "POST"]
status = 404
body = "no\n"
headers = { "X-A" = "b" }

[maintenance]
retry_after = "1500ms"
body = "closed\n"
"#,
        )
        .unwrap();
        assert_eq!(c.routes.len(), 3);
        assert_eq!(c.routes[0].answer, Answer::Health);
        assert_eq!(c.routes[0].path, PathMatch::Exact("/healthz".into()));
        assert_eq!(
            c.routes[1].answer,
            Answer::Redirect {
                status: 308,
                location: "https://example.org/new/".into(),
                keep_path: true,
                headers: Vec::new()
            }
        );
        assert_eq!(c.routes[2].host.as_deref(), Some("example.org"));
        assert_eq!(
            c.routes[2].methods,
            Methods::parse(["GET", "HEAD", "POST"]).unwrap()
        );
        let Answer::Static(s) = &c.routes[2].answer else {
            panic!("static")
        };
        assert_eq!((s.status, s.body.as_slice()), (404, &b"no\n"[..]));
        assert_eq!(c.maintenance.status, 503);
        assert_eq!(c.maintenance.body, b"closed\n");
        assert_eq!(
            c.maintenance.headers,
            vec![("Retry-After".to_owned(), "2".to_owned())]
        );
    }

    #[test]
    fn bad_routes_name_file_line_and_col() {
        let cases: &[(&str, &str)] = &[
            (
                "[[route]]\npath = \"/a\"\nprefix = \"/b\"\n",
                "test.toml:3:10: route.prefix: a route has a path or a prefix, not both",
            ),
            ("[[route]]\nkind = \"health\"\n", "test.toml:1:1: route: needs a path"),
            (
                "[[route]]\npath = \"a\"\n",
                "test.toml:2:8: route.path: \"a\" does not start with \"/\"",
            ),
            (
                "[[route]]\nprefix = \"x/\"\n",
                "test.toml:2:10: route.prefix: \"x/\" does not start",
            ),
            (
                "[[route]]\npath = \"/a\"\nkind = \"proxy\"\n",
                "test.toml:3:8: route.kind: unknown kind \"proxy\"",
            ),
            (
                "[[route]]\npath = \"/a\"\nkind = \"redirect\"\n",
                "test.toml:1:1: route: a redirect needs a location",
            ),
            (
                "[[route]]\npath = \"/a\"\nkind = \"redirect\"\nlocation = \"/b\"\nstatus = 200\n",
                "test.toml:5:10: route.status: a redirect's status is 301, 302, 303, 307 or 308, not 200",
            ),
            (
                "[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/a\"\n",
                "test.toml:5:8: route.path: \"/a\" is already routed for this host and method at line 2",
            ),
            (
                "[[route]]\npath = \"/a\"\nmethods = [\"TRACE\"]\n",
                "test.toml:3:11: route.methods: unknown method \"TRACE\"",
            ),
            (
                "[[route]]\npath = \"/a\"\nkind = \"health\"\nbody = \"x\"\n",
                "test.toml:4:8: route.body: not used by a route of kind \"health\"",
            ),
            (
                "[[route]]\npath = \"/a\"\nhost = \"a.example:80\"\n",
                "test.toml:3:8: route.host:",
            ),
            (
                "[[route]]\npath = \"/a\"\nwhat = 1\n",
                "test.toml:3:1: unknown key \"what\"",
            ),
            (
                "[[route]]\npath = \"/a\"\nstatus = 99\n",
                "test.toml:3:10: route.status: status 99 is not allowed",
            ),
            (
                "[[route]]\npath = \"/a\"\nkind = \"redirect\"\nlocation = \"/b\"\nheaders = { \"location\" = \"/c\" }\n",
                "test.toml:5:11: route.headers: a redirect's Location is set by route.location",
            ),
            (
                "[maintenance]\nretry_after = \"soon\"\n",
                "test.toml:2:15: maintenance.retry_after: invalid duration",
            ),
        ];
        for (text, want) in cases {
            let e = error(text);
            assert!(e.starts_with(want), "{text:?}\n got: {e}\nwant: {want}");
        }
        // Same path, other host or other methods: no conflict.
        parse_str("[[route]]\npath = \"/a\"\n[[route]]\npath = \"/a\"\nhost = \"b\"\n[[route]]\npath = \"/a\"\nmethods = [\"POST\"]\n").unwrap();
        let many: String = (0..=MAX_ROUTES)
            .map(|i| format!("[[route]]\npath = \"/{i}\"\n"))
            .collect();
        expect_error(&many, "test.toml:2001:1: route: more than 1000 routes");
        let ok: String = (0..MAX_ROUTES)
            .map(|i| format!("[[route]]\npath = \"/{i}\"\n"))
            .collect();
        assert_eq!(parse_str(&ok).unwrap().routes.len(), MAX_ROUTES);
    }
}
