//! The configuration: TOML file → validated [`Config`](crate::config::Config), with the built-in
//! defaults and the command-line overrides. Every error names the file, line,
//! column and key (`preforkd.toml:3:1: unknown key "wokers"`).
//!
//! Leaves sockets, logs and the response bytes to their own modules; reads
//! `response.body_file` here so that a bad path fails `-t` and reloads.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{de, Deserialize, Deserializer};

use crate::http::cidr::Cidr;
use crate::http::route::{Answer, Methods, PathMatch, RouteSpec, MAX_ROUTES};
use crate::http::template::ResponseSpec;
use crate::obs::access_log::{AccessLogConfig, Destination};
use crate::obs::log::{LogConfig, LogTarget};
use crate::obs::metrics::Page;
use crate::os::credentials::Credentials;
use crate::tls::TlsConfig;

/// One `listen` entry: an address and the flags that may follow it,
/// `"0.0.0.0:8443 tls"`, `"127.0.0.1:8889 proxy_protocol"`. A listener
/// gets its flags from the config by its address, whoever bound it (us,
/// systemd, the old master of an upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    /// Serve HTTPS with `[tls]`.
    pub tls: bool,
    /// Every connection starts with a PROXY protocol header (v1 or v2).
    pub proxy_protocol: bool,
    /// HTTP/2 with prior knowledge (RFC 9113 §3.3) besides HTTP/1.1: told
    /// apart by the connection preface.
    pub h2c: bool,
}

impl Listen {
    pub fn plain(addr: SocketAddr) -> Listen {
        Listen {
            addr,
            tls: false,
            proxy_protocol: false,
            h2c: false,
        }
    }
}

impl std::str::FromStr for Listen {
    type Err = String;

    /// `host:port` (IPv4 or `[IPv6]`), then flags separated by spaces.
    fn from_str(s: &str) -> Result<Listen, String> {
        let mut words = s.split_whitespace();
        let addr = words.next().unwrap_or("");
        let mut l = Listen::plain(addr.parse().map_err(|_| {
            format!(
                "invalid listen address \"{addr}\": expected \"host:port\" with an IPv4 address or [IPv6] address, then flags (\"tls\", \"proxy_protocol\", \"h2c\")"
            )
        })?);
        for flag in words {
            match flag {
                "tls" => l.tls = true,
                "proxy_protocol" => l.proxy_protocol = true,
                "h2c" => l.h2c = true,
                _ => {
                    return Err(format!(
                        "unknown listen flag \"{flag}\" after {addr}: expected \"tls\", \"proxy_protocol\" or \"h2c\""
                    ))
                }
            }
        }
        Ok(l)
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.tls {
            f.write_str(" tls")?;
        }
        if self.proxy_protocol {
            f.write_str(" proxy_protocol")?;
        }
        if self.h2c {
            f.write_str(" h2c")?;
        }
        Ok(())
    }
}

/// Read when no `-c` is given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/preforkd/preforkd.toml";

/// A configuration error, shown `path:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

impl std::error::Error for Error {}

/// The validated configuration the master and workers run with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// `listen` came from the file or `-l`, rather than the built-in default.
    pub listen_given: bool,
    pub listen: Vec<Listen>,
    /// Who may send a PROXY protocol header to a `proxy_protocol` listener.
    pub proxy_protocol_from: Vec<Cidr>,
    pub workers: usize,
    pub backlog: i32,
    pub worker_connections: usize,
    pub shutdown_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub header_timeout: Duration,
    pub drain_idle_grace: Duration,
    pub max_request_header_bytes: usize,
    pub max_request_body_bytes: u64,
    /// A worker drains and is replaced after this many requests (0: never).
    pub max_requests_per_worker: u64,
    /// Bytes per second a request head or body must keep up with after a
    /// short grace, else 408 (0: no minimum).
    pub min_request_rate: u64,
    /// Connections one client address may hold in a worker (0: no cap).
    pub max_connections_per_client: usize,
    /// Addresses the cap does not apply to (a local proxy, a health
    /// checker, a benchmark: one address that stands for many clients).
    pub max_connections_per_client_exempt: Vec<Cidr>,
    pub pid_file: Option<PathBuf>,
    /// A worker whose heartbeat is older than this is killed and replaced.
    pub worker_timeout: Duration,
    /// Who workers run as, when the master starts as root.
    pub user: Option<Credentials>,
    pub response: ResponseSpec,
    /// `[[route]]`s, in file order.
    pub routes: Vec<RouteSpec>,
    /// `[maintenance]`: the answer while `-s maintenance on`.
    pub maintenance: ResponseSpec,
    pub log: LogConfig,
    /// `[access_log]`; None: no access log.
    pub access_log: Option<AccessLogConfig>,
    /// `[tls]`, certificate and key loaded; None: no TLS.
    pub tls: Option<TlsConfig>,
}

impl Config {
    /// The addresses to listen on, in order.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listen.iter().map(|l| l.addr).collect()
    }

    /// The `listen` entry for a socket bound to `addr` (none: plain).
    pub fn listen_for(&self, addr: SocketAddr) -> Listen {
        self.listen
            .iter()
            .find(|l| l.addr == addr)
            .copied()
            .unwrap_or(Listen::plain(addr))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: None,
            listen_given: false,
            listen: vec![Listen::plain(SocketAddr::from(([0, 0, 0, 0], 8888)))],
            proxy_protocol_from: Cidr::loopback(),
            workers: cpu_count(),
            backlog: 1024,
            worker_connections: 1024,
            shutdown_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            drain_idle_grace: Duration::from_secs(1),
            max_request_header_bytes: 8192,
            max_request_body_bytes: 1024 * 1024,
            max_requests_per_worker: 0,
            min_request_rate: 512,
            max_connections_per_client: 256,
            max_connections_per_client_exempt: Cidr::localhost(),
            pid_file: None,
            worker_timeout: Duration::from_secs(30),
            user: None,
            response: ResponseSpec {
                status: 200,
                content_type: "text/plain; charset=utf-8".into(),
                headers: Vec::new(),
                body: b"Hello, World!\n".to_vec(),
            },
            routes: Vec::new(),
            maintenance: crate::http::answer::default_maintenance(),
            log: LogConfig::default(),
            access_log: None,
            tls: None,
        }
    }
}

fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().min(crate::obs::scoreboard::MAX_WORKERS))
}

/// What the command line sets over the config file (`cli.rs` fills it;
/// this file applies it, so the config never needs the command line's types).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Overrides {
    /// `-l`: replaces the file's listen list.
    pub listen: Vec<Listen>,
    /// `-w`.
    pub workers: Option<usize>,
    /// `-p`.
    pub pid_file: Option<PathBuf>,
    /// `--log-target`.
    pub log_target: Option<LogTarget>,
}

/// Loads the config the command line asks for: `-c FILE` (`path`), else
/// the default path if it exists, else the built-in defaults; then applies
/// the overrides.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, Error> {
    let path = match path {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
    };
    let mut config = match &path {
        Some(p) => from_file(p)?,
        None => Config::default(),
    };
    apply_overrides(&mut config, overrides);
    check_tls(&config)?;
    check_listen_flags(&config)?;
    Ok(config)
}

/// `tls` and `proxy_protocol` on one listener would need the PROXY header
/// read before the TLS handshake, which preforkd does not do (yet): refused
/// rather than failing every connection (checked after `-l` is applied).
fn check_listen_flags(config: &Config) -> Result<(), Error> {
    match config.listen.iter().find(|l| l.tls && l.proxy_protocol) {
        Some(l) => Err(whole_config_error(
            config,
            format!("listen \"{l}\": tls and proxy_protocol on one listener are not supported"),
        )),
        None => Ok(()),
    }
}

/// A `tls` listener needs `[tls]` (checked after `-l` is applied).
fn check_tls(config: &Config) -> Result<(), Error> {
    match config.listen.iter().find(|l| l.tls) {
        Some(l) if config.tls.is_none() => Err(whole_config_error(
            config,
            format!("listen \"{l}\": a tls listener needs [tls] with certificate and key"),
        )),
        _ => Ok(()),
    }
}

/// An error about the configuration as a whole (file and `-l` together),
/// so with no line to point at.
fn whole_config_error(config: &Config, message: String) -> Error {
    Error {
        path: config
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("built-in defaults")),
        line: 0,
        col: 0,
        message,
    }
}

fn apply_overrides(config: &mut Config, args: &Overrides) {
    if !args.listen.is_empty() {
        config.listen.clone_from(&args.listen);
        config.listen_given = true;
    }
    if let Some(w) = args.workers {
        config.workers = w;
    }
    if let Some(p) = &args.pid_file {
        config.pid_file = Some(p.clone());
    }
    if let Some(t) = args.log_target {
        config.log.target = t;
    }
}

/// Reads and validates one config file.
pub fn from_file(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error {
        path: path.to_owned(),
        line: 0,
        col: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, path)
}

/// Parses config text; `path` is only for messages and relative `body_file`s.
pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
    let mut c = Config {
        path: Some(path.to_owned()),
        ..Config::default()
    };
    if let Some(listen) = raw.listen {
        c.listen = listen.into_iter().map(|a| a.0).collect();
        c.listen_given = true;
    }
    if let Some(from) = raw.proxy_protocol_from {
        c.proxy_protocol_from = from.0;
    }
    if let Some(Workers(w)) = raw.workers {
        c.workers = w;
    }
    set(&mut c.backlog, raw.backlog.map(|b| b.0 as i32));
    set(
        &mut c.worker_connections,
        raw.worker_connections.map(|n| n.0 as usize),
    );
    set(&mut c.shutdown_timeout, raw.shutdown_timeout.map(|d| d.0));
    set(&mut c.keepalive_timeout, raw.keepalive_timeout.map(|d| d.0));
    set(&mut c.header_timeout, raw.header_timeout.map(|d| d.0));
    set(&mut c.drain_idle_grace, raw.drain_idle_grace.map(|d| d.0));
    set(
        &mut c.max_request_header_bytes,
        raw.max_request_header_bytes.map(|n| n.0 as usize),
    );
    set(
        &mut c.max_request_body_bytes,
        raw.max_request_body_bytes.map(|n| n.0),
    );
    set(
        &mut c.max_requests_per_worker,
        raw.max_requests_per_worker.map(|n| n.0),
    );
    set(&mut c.min_request_rate, raw.min_request_rate.map(|r| r.0));
    set(
        &mut c.max_connections_per_client,
        raw.max_connections_per_client.map(|n| n.0 as usize),
    );
    if let Some(exempt) = raw.max_connections_per_client_exempt {
        c.max_connections_per_client_exempt = exempt.0;
    }
    // Relative paths in a file mean relative to that file, wherever the
    // process runs (`-d` moves to /, an upgraded master may start there).
    let base = path.parent().unwrap_or(Path::new("."));
    c.pid_file = raw.pid_file.map(|p| base.join(p));
    set(&mut c.worker_timeout, raw.worker_timeout.map(|d| d.0));
    c.user =
        credentials(raw.user, raw.group).map_err(|(span, m)| span_error(text, path, span, m))?;
    if let Some(r) = raw.response {
        if let Some(s) = r.status {
            c.response.status = s.0;
        }
        if let Some(t) = r.content_type {
            c.response.content_type = t.0;
        }
        if let Some(h) = r.headers {
            c.response.headers = h.0;
        }
        match (r.body, r.body_file) {
            (Some(_), Some(file)) => {
                return Err(span_error(
                    text,
                    path,
                    file.span(),
                    "response.body and response.body_file exclude each other".into(),
                ))
            }
            (Some(body), None) => c.response.body = body.into_bytes(),
            (None, Some(file)) => {
                let file_path = base.join(file.get_ref());
                c.response.body = std::fs::read(&file_path).map_err(|e| {
                    span_error(
                        text,
                        path,
                        file.span(),
                        format!(
                            "response.body_file: cannot read {}: {e}",
                            file_path.display()
                        ),
                    )
                })?;
            }
            (None, None) => {}
        }
    }
    if let Some(routes) = raw.route {
        c.routes = parse_routes(text, path, base, routes)?;
    }
    if let Some(m) = raw.maintenance {
        c.maintenance = parse_maintenance(text, path, base, m)?;
    }
    if let Some(l) = raw.log {
        set(&mut c.log.target, l.target);
        set(&mut c.log.facility, l.facility.map(|f| f.0));
        set(&mut c.log.ident, l.ident);
        set(&mut c.log.level, l.level.map(|l| l.0));
        set(
            &mut c.log.syslog_socket,
            l.syslog_socket.map(|p| base.join(p)),
        );
    }
    if let Some(t) = raw.tls {
        c.tls = Some(tls(t, base).map_err(|e| match e {
            TlsError::Config(span, m) => span_error(text, path, span, m),
            TlsError::Load(e) => Error {
                path: e.path,
                line: 0,
                col: 0,
                message: e.reason,
            },
        })?);
    }
    if let Some(a) = raw.access_log {
        c.access_log =
            Some(access_log(a, base).map_err(|(span, m)| span_error(text, path, span, m))?);
    }
    Ok(c)
}

/// `body` or `body_file` (relative to the config file), not both.
fn read_body(
    text: &str,
    path: &Path,
    base: &Path,
    table: &str,
    body: Option<String>,
    body_file: Option<toml::Spanned<PathBuf>>,
) -> Result<Option<Vec<u8>>, Error> {
    match (body, body_file) {
        (Some(_), Some(file)) => Err(span_error(
            text,
            path,
            file.span(),
            format!("{table}.body and {table}.body_file exclude each other"),
        )),
        (Some(body), None) => Ok(Some(body.into_bytes())),
        (None, Some(file)) => {
            let file_path = base.join(file.get_ref());
            std::fs::read(&file_path).map(Some).map_err(|e| {
                span_error(
                    text,
                    path,
                    file.span(),
                    format!(
                        "{table}.body_file: cannot read {}: {e}",
                        file_path.display()
                    ),
                )
            })
        }
        (None, None) => Ok(None),
    }
}

/// `[maintenance]`: like `[response]`, 503 by default, with `Retry-After`
/// from `retry_after` (whole seconds, rounded up).
fn parse_maintenance(
    text: &str,
    path: &Path,
    base: &Path,
    m: RawMaintenance,
) -> Result<ResponseSpec, Error> {
    let mut spec = crate::http::answer::default_maintenance();
    set(&mut spec.status, m.status.map(|s| s.0));
    set(&mut spec.content_type, m.content_type.map(|t| t.0));
    if let Some(h) = m.headers {
        let span = h.span();
        spec.headers = h.into_inner().0;
        if m.retry_after.is_some()
            && spec
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
        {
            return Err(span_error(
                text,
                path,
                span,
                "maintenance.headers: Retry-After is set by maintenance.retry_after".into(),
            ));
        }
    }
    if let Some(d) = m.retry_after {
        let secs = d.0.as_millis().div_ceil(1000);
        spec.headers.push(("Retry-After".into(), secs.to_string()));
    }
    if let Some(body) = read_body(text, path, base, "maintenance", m.body, m.body_file)? {
        spec.body = body;
    }
    Ok(spec)
}

/// `[[route]]` tables, checked one by one and against each other.
fn parse_routes(
    text: &str,
    path: &Path,
    base: &Path,
    raw: Vec<toml::Spanned<RawRoute>>,
) -> Result<Vec<RouteSpec>, Error> {
    let err = |span: std::ops::Range<usize>, m: String| span_error(text, path, span, m);
    let mut out: Vec<RouteSpec> = Vec::with_capacity(raw.len().min(MAX_ROUTES));
    // Exact routes seen: (path, host, methods, line) for the duplicate check.
    let mut seen: Vec<(String, Option<String>, Methods, usize)> = Vec::new();
    for (n, spanned) in raw.into_iter().enumerate() {
        let table_span = spanned.span();
        if n == MAX_ROUTES {
            return Err(err(
                table_span,
                format!("route: more than {MAX_ROUTES} routes"),
            ));
        }
        let r = spanned.into_inner();
        let (matcher, match_span) = match (r.path, r.prefix) {
            (Some(_), Some(p)) => {
                return Err(err(
                    p.span(),
                    "route.prefix: a route has a path or a prefix, not both".into(),
                ))
            }
            (None, None) => {
                return Err(err(
                    table_span,
                    "route: needs a path (exact) or a prefix".into(),
                ))
            }
            (Some(p), None) => {
                let span = p.span();
                (PathMatch::Exact(p.into_inner()), span)
            }
            (None, Some(p)) => {
                let span = p.span();
                (PathMatch::Prefix(p.into_inner()), span)
            }
        };
        let (PathMatch::Exact(ref value) | PathMatch::Prefix(ref value)) = matcher;
        let key = if matches!(matcher, PathMatch::Exact(_)) {
            "path"
        } else {
            "prefix"
        };
        if !value.starts_with('/') {
            return Err(err(
                match_span,
                format!("route.{key}: {value:?} does not start with \"/\""),
            ));
        }
        if !value
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'?' && b != b'#')
        {
            return Err(err(
                match_span,
                format!("route.{key}: {value:?} holds a character a request path cannot (space, control, non-ASCII, '?' or '#')"),
            ));
        }
        let methods = match r.methods {
            None => Methods::DEFAULT,
            Some(m) => {
                let span = m.span();
                let names = m.into_inner();
                if names.is_empty() {
                    return Err(err(
                        span,
                        "route.methods: an empty list answers nothing".into(),
                    ));
                }
                Methods::parse(names.iter().map(String::as_str)).map_err(|bad| {
                    err(
                        span.clone(),
                        format!(
                            "route.methods: unknown method {bad:?}: expected {} (OPTIONS is always answered)",
                            crate::http::route::METHOD_NAMES.join(", ")
                        ),
                    )
                })?
            }
        };
        let host = match r.host {
            None => None,
            Some(h) => {
                let span = h.span();
                let h = h.into_inner();
                let ok = !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
                    && (h.starts_with('[') || !h.contains(':'));
                if !ok {
                    return Err(err(
                        span,
                        format!("route.host: {h:?} is not a host name or address (without a port)"),
                    ));
                }
                Some(h.to_ascii_lowercase())
            }
        };
        let kind_span = r.kind.as_ref().map(toml::Spanned::span);
        let kind = r
            .kind
            .map_or("static".to_owned(), toml::Spanned::into_inner);
        // Keys that mean nothing for this kind are refused, not ignored.
        let unused = |present: &[(&str, Option<std::ops::Range<usize>>)]| -> Result<(), Error> {
            match present.iter().find(|(_, s)| s.is_some()) {
                Some((name, Some(span))) => Err(err(
                    span.clone(),
                    format!("route.{name}: not used by a route of kind \"{kind}\""),
                )),
                _ => Ok(()),
            }
        };
        // What a health or status route answers is built in: the keys
        // that shape a static or redirect answer are refused there.
        let answer_keys = [
            ("status", r.status.as_ref().map(toml::Spanned::span)),
            ("body", r.body.as_ref().map(toml::Spanned::span)),
            ("body_file", r.body_file.as_ref().map(toml::Spanned::span)),
            (
                "content_type",
                r.content_type.as_ref().map(toml::Spanned::span),
            ),
            ("headers", r.headers.as_ref().map(toml::Spanned::span)),
            ("location", r.location.as_ref().map(toml::Spanned::span)),
            ("keep_path", r.keep_path.as_ref().map(toml::Spanned::span)),
        ];
        let answer = match kind.as_str() {
            "static" => {
                unused(&[
                    ("location", r.location.as_ref().map(toml::Spanned::span)),
                    ("keep_path", r.keep_path.as_ref().map(toml::Spanned::span)),
                    ("allow", r.allow.as_ref().map(toml::Spanned::span)),
                ])?;
                let mut spec = ResponseSpec {
                    status: 200,
                    ..Config::default().response
                };
                if let Some(s) = r.status {
                    let n = *s.get_ref();
                    match u16::try_from(n) {
                        Ok(v @ 200..=599) if v != 204 && v != 205 && v != 304 => spec.status = v,
                        _ => {
                            return Err(err(
                                s.span(),
                                format!("route.status: status {n} is not allowed: expected 200 to 599, except 204, 205 and 304 (they carry no body)"),
                            ))
                        }
                    }
                }
                set(&mut spec.content_type, r.content_type.map(|t| t.into_inner().0));
                set(&mut spec.headers, r.headers.map(|h| h.into_inner().0));
                let body = r.body.map(toml::Spanned::into_inner);
                set(&mut spec.body, read_body(text, path, base, "route", body, r.body_file)?);
                Answer::Static(spec)
            }
            "redirect" => {
                unused(&[
                    ("body", r.body.as_ref().map(toml::Spanned::span)),
                    ("body_file", r.body_file.as_ref().map(toml::Spanned::span)),
                    ("content_type", r.content_type.as_ref().map(toml::Spanned::span)),
                    ("allow", r.allow.as_ref().map(toml::Spanned::span)),
                ])?;
                let Some(location) = r.location else {
                    return Err(err(
                        table_span,
                        "route: a redirect needs a location".into(),
                    ));
                };
                if location.get_ref().0.is_empty() {
                    return Err(err(location.span(), "route.location: empty".into()));
                }
                let status = match r.status {
                    None => 301,
                    Some(s) => match *s.get_ref() {
                        n @ (301 | 302 | 303 | 307 | 308) => n as u16,
                        n => {
                            return Err(err(
                                s.span(),
                                format!("route.status: a redirect's status is 301, 302, 303, 307 or 308, not {n}"),
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
                            return Err(err(
                                span,
                                "route.headers: a redirect's Location is set by route.location"
                                    .into(),
                            ));
                        }
                        h
                    }
                };
                Answer::Redirect {
                    status,
                    location: location.into_inner().0,
                    keep_path: r.keep_path.is_some_and(toml::Spanned::into_inner),
                    headers,
                }
            }
            "health" => {
                unused(&answer_keys)?;
                unused(&[("allow", r.allow.as_ref().map(toml::Spanned::span))])?;
                Answer::Health
            }
            "stub_status" | "metrics" => {
                unused(&answer_keys)?;
                Answer::Status {
                    page: if kind == "metrics" {
                        Page::Metrics
                    } else {
                        Page::StubStatus
                    },
                    allow: r
                        .allow
                        .map_or_else(Cidr::localhost, |a| a.into_inner().0),
                }
            }
            other => {
                return Err(err(
                    kind_span.unwrap_or(table_span),
                    format!("route.kind: unknown kind {other:?}: expected \"static\", \"redirect\", \"health\", \"stub_status\" or \"metrics\""),
                ))
            }
        };
        if let PathMatch::Exact(p) = &matcher {
            let line = line_col(text, match_span.start).0;
            if let Some((_, _, _, first)) = seen
                .iter()
                .find(|(sp, sh, sm, _)| sp == p && *sh == host && sm.overlaps(methods))
            {
                return Err(err(
                    match_span,
                    format!("route.path: {p:?} is already routed for this host and method at line {first}"),
                ));
            }
            seen.push((p.clone(), host.clone(), methods, line));
        }
        out.push(RouteSpec {
            path: matcher,
            host,
            methods,
            answer,
        });
    }
    Ok(out)
}

/// `[access_log]`: `path` is required (a file, or "syslog"); a file's
/// directory must exist, as nginx -t checks that it can open its logs.
fn access_log(
    table: toml::Spanned<RawAccessLog>,
    base: &Path,
) -> Result<AccessLogConfig, (std::ops::Range<usize>, String)> {
    let span = table.span();
    let raw = table.into_inner();
    let Some(path) = raw.path else {
        return Err((
            span,
            "access_log.path is required: a file, or \"syslog\"".into(),
        ));
    };
    let destination = match path.get_ref().as_str() {
        "" => return Err((path.span(), "access_log.path: must not be empty".into())),
        "syslog" => Destination::Syslog,
        p => {
            // Absolute now: `-d` and an upgraded master may run elsewhere.
            let file = std::path::absolute(base.join(p)).unwrap_or_else(|_| base.join(p));
            if file.is_dir() {
                return Err((
                    path.span(),
                    format!("access_log.path: {} is a directory", file.display()),
                ));
            }
            match file.parent() {
                Some(dir) if !dir.is_dir() => {
                    return Err((
                        path.span(),
                        format!(
                            "access_log.path: directory {} does not exist",
                            dir.display()
                        ),
                    ))
                }
                _ => {}
            }
            Destination::File(file)
        }
    };
    Ok(AccessLogConfig {
        destination,
        format: raw
            .format
            .map_or(crate::obs::access_log::Format::Combined, |f| f.0),
        buffer: raw
            .buffer
            .map_or(crate::obs::access_log::DEFAULT_BUFFER, |b| b.0),
        flush: raw
            .flush
            .map_or(crate::obs::access_log::DEFAULT_FLUSH, |d| d.0),
    })
}

enum TlsError {
    Config(std::ops::Range<usize>, String),
    Load(crate::tls::LoadError),
}

/// `[tls]`: certificate and key are required and read now, so that `-t`
/// and a reload fail on a missing file, bad PEM or a key that does not
/// match (`file: reason`), and the master holds them before it forks.
fn tls(table: toml::Spanned<RawTls>, base: &Path) -> Result<TlsConfig, TlsError> {
    use crate::tls::Version;
    let span = table.span();
    let raw = table.into_inner();
    let (Some(certificate), Some(key)) = (raw.certificate, raw.key) else {
        return Err(TlsError::Config(
            span,
            "tls: certificate and key are both required".into(),
        ));
    };
    let protocols = match raw.protocols {
        None => vec![Version::Tls12, Version::Tls13],
        Some(p) => {
            let span = p.span();
            let mut out = Vec::new();
            for name in p.into_inner() {
                let v = Version::parse(&name).ok_or_else(|| {
                    TlsError::Config(
                        span.clone(),
                        format!("tls.protocols: unknown version \"{name}\": expected \"1.2\" or \"1.3\""),
                    )
                })?;
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            if out.is_empty() {
                return Err(TlsError::Config(
                    span,
                    "tls.protocols: at least one of \"1.2\", \"1.3\"".into(),
                ));
            }
            out
        }
    };
    // Absolute now: `-d` and an upgraded master may run elsewhere.
    let alpn = match raw.alpn {
        None => crate::tls::alpn::DEFAULT.to_vec(),
        Some(a) => alpn(a).map_err(|(span, m)| TlsError::Config(span, m))?,
    };
    let abs = |p: &Path| std::path::absolute(base.join(p)).unwrap_or_else(|_| base.join(p));
    crate::tls::load(&abs(&certificate), &abs(&key), &protocols)
        .map(|t| crate::tls::alpn::with_alpn(t, &alpn))
        .map_err(TlsError::Load)
}

/// `tls.alpn`: known names, at least one, in the order given.
fn alpn(
    list: toml::Spanned<Vec<String>>,
) -> Result<Vec<crate::tls::alpn::Alpn>, (std::ops::Range<usize>, String)> {
    let span = list.span();
    let mut out = Vec::new();
    for name in list.into_inner() {
        let p = crate::tls::alpn::Alpn::parse(&name).ok_or_else(|| {
            (
                span.clone(),
                format!("tls.alpn: unknown protocol \"{name}\": expected \"h2\" or \"http/1.1\""),
            )
        })?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err((
            span,
            "tls.alpn: at least one of \"h2\", \"http/1.1\"".into(),
        ));
    }
    Ok(out)
}

/// Resolves `user` and `group` to ids now, so that `-t` rejects names that
/// do not exist and workers need no lookups after fork.
fn credentials(
    user: Option<toml::Spanned<String>>,
    group: Option<toml::Spanned<String>>,
) -> Result<Option<Credentials>, (std::ops::Range<usize>, String)> {
    use nix::unistd::{Group, User};
    let group_id = match &group {
        Some(g) => match Group::from_name(g.get_ref()) {
            Ok(Some(found)) => Some(found.gid),
            _ => {
                return Err((
                    g.span(),
                    format!("group: no group named \"{}\"", g.get_ref()),
                ))
            }
        },
        None => None,
    };
    match user {
        Some(u) => match User::from_name(u.get_ref()) {
            Ok(Some(found)) => Ok(Some(Credentials {
                name: Some(found.name),
                uid: Some(found.uid),
                // group defaults to the user's primary group.
                gid: group_id.unwrap_or(found.gid),
            })),
            _ => Err((u.span(), format!("user: no user named \"{}\"", u.get_ref()))),
        },
        None => Ok(group_id.map(|gid| Credentials {
            name: None,
            uid: None,
            gid,
        })),
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Turns a TOML or validation error into `Error`, naming the key.
fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> Error {
    let message = e.message().trim().to_owned();
    let message = match message.strip_prefix("unknown field `") {
        Some(rest) => {
            let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let expected = expected.trim_start_matches(", ");
            format!("unknown key \"{key}\" ({})", expected.replace('`', "\""))
        }
        None => match e.span().and_then(|s| key_at(text, s.start)) {
            Some(key) if !message.contains(&key) => format!("{key}: {message}"),
            _ => message,
        },
    };
    match e.span() {
        Some(span) => span_error(text, path, span, message),
        None => Error {
            path: path.to_owned(),
            line: 0,
            col: 0,
            message,
        },
    }
}

fn span_error(text: &str, path: &Path, span: std::ops::Range<usize>, message: String) -> Error {
    let (line, col) = line_col(text, span.start);
    Error {
        path: path.to_owned(),
        line,
        col,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted key whose value sits at `offset`: the nearest `key =` at or
/// above that line (a multi-line array's elements have none), under the
/// last `[table]` header above it.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let this_line = text[line_start..].lines().next().unwrap_or("");
    let mut lines = std::iter::once(this_line).chain(before[..line_start].lines().rev());
    let key = lines.find_map(|line| {
        let line = line.trim();
        if line.starts_with('[') {
            return Some(None); // a table header: no key above it belongs to us
        }
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        plain.then(|| Some(key.to_owned()))
    })??;
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Vec<ListenAddr>>,
    proxy_protocol_from: Option<Cidrs>,
    workers: Option<Workers>,
    backlog: Option<Positive>,
    worker_connections: Option<Positive>,
    shutdown_timeout: Option<Dur>,
    keepalive_timeout: Option<Dur>,
    header_timeout: Option<Dur>,
    drain_idle_grace: Option<Dur>,
    max_request_header_bytes: Option<Positive>,
    max_request_body_bytes: Option<Positive>,
    max_requests_per_worker: Option<NonNegative>,
    min_request_rate: Option<Rate>,
    max_connections_per_client: Option<NonNegative>,
    max_connections_per_client_exempt: Option<Cidrs>,
    pid_file: Option<PathBuf>,
    worker_timeout: Option<Dur>,
    user: Option<toml::Spanned<String>>,
    group: Option<toml::Spanned<String>>,
    response: Option<RawResponse>,
    route: Option<Vec<toml::Spanned<RawRoute>>>,
    maintenance: Option<RawMaintenance>,
    log: Option<RawLog>,
    access_log: Option<toml::Spanned<RawAccessLog>>,
    tls: Option<toml::Spanned<RawTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: Option<toml::Spanned<String>>,
    prefix: Option<toml::Spanned<String>>,
    methods: Option<toml::Spanned<Vec<String>>>,
    host: Option<toml::Spanned<String>>,
    kind: Option<toml::Spanned<String>>,
    status: Option<toml::Spanned<i64>>,
    body: Option<toml::Spanned<String>>,
    body_file: Option<toml::Spanned<PathBuf>>,
    content_type: Option<toml::Spanned<FieldValue>>,
    headers: Option<toml::Spanned<Headers>>,
    location: Option<toml::Spanned<FieldValue>>,
    keep_path: Option<toml::Spanned<bool>>,
    allow: Option<toml::Spanned<Cidrs>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaintenance {
    status: Option<Status>,
    retry_after: Option<Dur>,
    body: Option<String>,
    body_file: Option<toml::Spanned<PathBuf>>,
    content_type: Option<FieldValue>,
    headers: Option<toml::Spanned<Headers>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    status: Option<Status>,
    body: Option<String>,
    body_file: Option<toml::Spanned<PathBuf>>,
    content_type: Option<FieldValue>,
    headers: Option<Headers>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    target: Option<LogTarget>,
    facility: Option<Facility>,
    ident: Option<String>,
    level: Option<Level>,
    syslog_socket: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    path: Option<toml::Spanned<String>>,
    format: Option<AccessFormat>,
    buffer: Option<Size>,
    flush: Option<Dur>,
}

/// `[tls]`: the certificate chain and key the master loads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: Option<PathBuf>,
    key: Option<PathBuf>,
    protocols: Option<toml::Spanned<Vec<String>>>,
    alpn: Option<toml::Spanned<Vec<String>>>,
}

/// combined, common or json.
struct AccessFormat(crate::obs::access_log::Format);

impl<'de> Deserialize<'de> for AccessFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, crate::obs::access_log::Format::parse, |s| {
            format!("unknown format \"{s}\": expected combined, common or json")
        })
        .map(AccessFormat)
    }
}

/// A size in bytes: `"0"`, `"4096"`, `"64k"`, `"1m"`, or an integer.
struct Size(usize);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum S {
            N(i64),
            S(String),
        }
        let bad = |shown: String| {
            de::Error::custom(format!(
                "invalid size {shown}: expected bytes, \"64k\" or \"1m\" (\"0\": no buffer), at most 64m"
            ))
        };
        match S::deserialize(d)? {
            S::N(n) => usize::try_from(n)
                .ok()
                .filter(|&n| n <= crate::obs::access_log::MAX_BUFFER)
                .map(Size)
                .ok_or_else(|| bad(n.to_string())),
            S::S(s) => crate::obs::access_log::parse_size(&s)
                .map(Size)
                .ok_or_else(|| bad(format!("\"{s}\""))),
        }
    }
}

/// `"host:port"`, IPv4 or `[IPv6]`, then flags: `"0.0.0.0:8443 tls"`.
struct ListenAddr(Listen);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(ListenAddr).map_err(de::Error::custom)
    }
}

/// A list of address ranges: `["10.0.0.0/8", "::1/128"]`.
struct Cidrs(Vec<Cidr>);

impl<'de> Deserialize<'de> for Cidrs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(de::Error::custom))
            .collect::<Result<_, _>>()
            .map(Cidrs)
    }
}

/// `"auto"` (the number of CPUs) or an integer from 1 to `MAX_WORKERS`.
struct Workers(usize);

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum W {
            N(i64),
            S(String),
        }
        let bad = || {
            de::Error::custom(format!(
                "workers must be \"auto\" or an integer from 1 to {}",
                crate::obs::scoreboard::MAX_WORKERS
            ))
        };
        match W::deserialize(d).map_err(|_: D::Error| bad())? {
            W::N(n) if (1..=crate::obs::scoreboard::MAX_WORKERS as i64).contains(&n) => {
                Ok(Workers(n as usize))
            }
            W::S(s) if s == "auto" => Ok(Workers(cpu_count())),
            _ => Err(bad()),
        }
    }
}

/// An integer >= 1 (sizes, counts).
struct Positive(u64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if n < 1 || n > i64::from(i32::MAX) {
            return Err(de::Error::custom(format!(
                "{n} is out of range: expected an integer from 1 to {}",
                i32::MAX
            )));
        }
        Ok(Positive(n as u64))
    }
}

/// An integer >= 0 (0 meaning "no limit").
struct NonNegative(u64);

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u64::try_from(n).map(NonNegative).map_err(|_| {
            de::Error::custom(format!("{n} is negative: expected 0 (no limit) or more"))
        })
    }
}

/// A string value read through `parse`, or the error `expected` words
/// for it (which names the value).
fn parsed<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: impl FnOnce(&str) -> Option<T>,
    expected: impl FnOnce(&str) -> String,
) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).ok_or_else(|| de::Error::custom(expected(&s)))
}

/// A minimum data rate written `"512/s"` (bytes per second), or `"off"`
/// (the same as `"0/s"`).
struct Rate(u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, parse_rate, |s| {
            format!("invalid rate \"{s}\": expected bytes per second as \"512/s\", or \"off\"")
        })
        .map(Rate)
    }
}

/// `"512/s"` → 512; `"off"` and `"0/s"` → 0.
pub fn parse_rate(s: &str) -> Option<u64> {
    if s == "off" {
        return Some(0);
    }
    let n = s.strip_suffix("/s")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// A duration written `"250ms"`, `"5s"`, `"2m"` or `"1h"`, above zero.
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, parse_duration, |s| {
            format!(
                "invalid duration \"{s}\": expected a positive number with a unit: ms, s, m or h (\"250ms\", \"5s\")"
            )
        })
        .map(Dur)
    }
}

pub fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..digits].parse().ok()?;
    let d = match &s[digits..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

/// A response status we can send with a body: 200..=599 but 204 and 304.
struct Status(u16);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u16::try_from(n) {
            Ok(s @ 200..=599) if s != 204 && s != 205 && s != 304 => Ok(Status(s)),
            _ => Err(de::Error::custom(format!(
                "status {n} is not allowed: expected 200 to 599, except 204, 205 and 304 (they carry no body)"
            ))),
        }
    }
}

/// A header field value: visible characters, spaces and tabs, no CR or LF.
struct FieldValue(String);

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !valid_field_value(&s) {
            return Err(de::Error::custom(format!(
                "invalid header value {s:?}: control characters are not allowed"
            )));
        }
        Ok(FieldValue(s.trim().to_owned()))
    }
}

fn valid_field_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80)
}

/// Extra response headers: `{ "Name" = "value" }`.
struct Headers(Vec<(String, String)>);

/// Headers the server writes itself; configuring them would break framing
/// or duplicate a field.
const RESERVED_HEADERS: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "content-type",
    "server",
];

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        let mut out = Vec::new();
        for (name, value) in map {
            if name.is_empty() || !name.bytes().all(crate::http::parse::is_tchar) {
                return Err(de::Error::custom(format!("invalid header name {name:?}")));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(de::Error::custom(format!(
                    "header {name:?} is set by the server (use content_type for Content-Type)"
                )));
            }
            if !valid_field_value(&value) {
                return Err(de::Error::custom(format!(
                    "invalid value for header {name:?}: control characters are not allowed"
                )));
            }
            out.push((name, value.trim().to_owned()));
        }
        Ok(Headers(out))
    }
}

/// A syslog facility name (`daemon`, `local0`…).
struct Facility(String);

impl<'de> Deserialize<'de> for Facility {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if crate::obs::log::valid_facility(&s) {
            Ok(Facility(s))
        } else {
            Err(de::Error::custom(format!(
                "unknown syslog facility \"{s}\" (daemon, user, local0 to local7…)"
            )))
        }
    }
}

/// A log level: error, warn, info, debug or trace.
struct Level(::log::LevelFilter);

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.parse() {
            Ok(l) if l != ::log::LevelFilter::Off => Ok(Level(l)),
            _ => Err(de::Error::custom(format!(
                "unknown log level \"{s}\": expected error, warn, info, debug or trace"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_entries_take_flags_after_the_address() {
        let l: Listen = "127.0.0.1:8443 tls".parse().unwrap();
        assert_eq!(l.addr, "127.0.0.1:8443".parse().unwrap());
        assert!(l.tls);
        assert_eq!(l.to_string(), "127.0.0.1:8443 tls");
        let l: Listen = "[::1]:80".parse().unwrap();
        assert!(!l.tls);
        assert_eq!(l.to_string().parse::<Listen>().unwrap(), l);
        let e = "127.0.0.1:1 tsl".parse::<Listen>().unwrap_err();
        assert!(e.contains("unknown listen flag \"tsl\""), "{e}");
        assert!("tls".parse::<Listen>().is_err());
        assert!("".parse::<Listen>().is_err());
    }

    fn parse_str(text: &str) -> Result<Config, Error> {
        parse(text, Path::new("test.toml"))
    }

    fn error(text: &str) -> String {
        parse_str(text)
            .expect_err("config must be rejected")
            .to_string()
    }

    /// `text` fails to load with an error starting with `prefix`.
    fn expect_error(text: &str, prefix: &str) {
        let e = error(text);
        assert!(e.starts_with(prefix), "{e}");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse_str("").unwrap();
        assert_eq!(c.listen, Config::default().listen);
        assert!(!c.listen_given);
        assert_eq!(c.response.body, b"Hello, World!\n");
        assert_eq!(c.keepalive_timeout, Duration::from_secs(5));
    }

    #[test]
    fn every_key_parses() {
        let c = parse_str(
            r#"
listen = ["127.0.0.1:1", "[::1]:2"]
workers = 3
backlog = 10
worker_connections = 20
shutdown_timeout = "2m"
keepalive_timeout = "250ms"
header_timeout = "3s"
drain_idle_grace = "1h"
max_request_header_bytes = 100
max_request_body_bytes = 200
max_requests_per_worker = 1000
pid_file = "/run/x.pid"
worker_timeout = "2s"
user = "root"
group = "root"
[response]
status = 404
body = "nope"
content_type = "text/html"
headers = { "X-A" = "b" }
[log]
target = "both"
facility = "local3"
ident = "web"
level = "debug"
syslog_socket = "/tmp/log.sock"
"#,
        )
        .unwrap();
        assert_eq!(c.listen.len(), 2);
        assert!(c.listen_given);
        assert_eq!(c.workers, 3);
        assert_eq!(c.backlog, 10);
        assert_eq!(c.worker_connections, 20);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(120));
        assert_eq!(c.keepalive_timeout, Duration::from_millis(250));
        assert_eq!(c.header_timeout, Duration::from_secs(3));
        assert_eq!(c.drain_idle_grace, Duration::from_secs(3600));
        assert_eq!(c.max_request_header_bytes, 100);
        assert_eq!(c.max_request_body_bytes, 200);
        assert_eq!(c.max_requests_per_worker, 1000);
        assert_eq!(c.worker_timeout, Duration::from_secs(2));
        let user = c.user.as_ref().unwrap();
        assert_eq!(user.uid, Some(nix::unistd::Uid::from_raw(0)));
        assert_eq!(user.gid, nix::unistd::Gid::from_raw(0));
        assert_eq!(c.pid_file, Some(PathBuf::from("/run/x.pid")));
        assert_eq!(c.response.status, 404);
        assert_eq!(c.response.body, b"nope");
        assert_eq!(c.response.content_type, "text/html");
        assert_eq!(c.response.headers, vec![("X-A".to_owned(), "b".to_owned())]);
        assert_eq!(c.log.target, LogTarget::Both);
        assert_eq!(c.log.ident, "web");
        assert_eq!(c.log.level, ::log::LevelFilter::Debug);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        assert_eq!(
            error("workers = 2\n\nwokers = 3\n"),
            "test.toml:3:1: unknown key \"wokers\" (expected one of \"listen\", \"proxy_protocol_from\", \"workers\", \"backlog\", \"worker_connections\", \"shutdown_timeout\", \"keepalive_timeout\", \"header_timeout\", \"drain_idle_grace\", \"max_request_header_bytes\", \"max_request_body_bytes\", \"max_requests_per_worker\", \"min_request_rate\", \"max_connections_per_client\", \"max_connections_per_client_exempt\", \"pid_file\", \"worker_timeout\", \"user\", \"group\", \"response\", \"route\", \"maintenance\", \"log\", \"access_log\", \"tls\")"
        );
        assert!(
            error("[log]\nlevle = \"info\"\n").starts_with("test.toml:2:1: unknown key \"levle\"")
        );
    }

    #[test]
    fn pressure_keys_parse_and_default() {
        let c = parse_str("").unwrap();
        assert_eq!(c.min_request_rate, 512);
        assert_eq!(c.max_connections_per_client, 256);
        let c =
            parse_str("min_request_rate = \"100/s\"\nmax_connections_per_client = 0\n").unwrap();
        assert_eq!(c.min_request_rate, 100);
        assert_eq!(c.max_connections_per_client, 0);
        assert_eq!(
            parse_str("min_request_rate = \"off\"\n")
                .unwrap()
                .min_request_rate,
            0
        );
        assert_eq!(parse_rate("0/s"), Some(0));
        for bad in ["512", "/s", "-1/s", "5 /s", "1.5/s", "512/m"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
        expect_error(
            "\nmin_request_rate = \"fast\"\n",
            "test.toml:2:20: min_request_rate: invalid rate \"fast\"",
        );
        expect_error(
            "max_connections_per_client = -1\n",
            "test.toml:1:30: max_connections_per_client",
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        expect_error("workers = 0\n", "test.toml:1:11: workers");
        expect_error(
            "\nkeepalive_timeout = \"5x\"\n",
            "test.toml:2:21: keepalive_timeout: invalid duration \"5x\"",
        );
        let e = error("listen = [\"localhost:80\"]\n");
        assert!(
            e.starts_with("test.toml:1:") && e.contains("listen") && e.contains("localhost:80"),
            "{e}"
        );
        expect_error(
            "[response]\nstatus = 100\n",
            "test.toml:2:10: response.status",
        );
        let e = error("listen = [\n  \"127.0.0.1:80\",\n  5,\n]\n");
        assert!(e.starts_with("test.toml:3:") && e.contains("listen"), "{e}");
        let e = error("backlog = -1\n");
        assert!(e.contains("backlog"), "{e}");
        let e = error("[response]\nheaders = { \"Content-Length\" = \"1\" }\n");
        assert!(
            e.contains("response.headers") && e.contains("Content-Length"),
            "{e}"
        );
        expect_error(
            "[response]\nbody = \"a\"\nbody_file = \"b\"\n",
            "test.toml:3:13: response.body and response.body_file",
        );
        expect_error(
            "user = \"no-such-user-here\"\n",
            "test.toml:1:8: user: no user named \"no-such-user-here\"",
        );
        expect_error(
            "group = \"no-such-group-here\"\n",
            "test.toml:1:9: group: no group",
        );
        expect_error("[log]\ntarget = \"file\"\n", "test.toml:2:10: log.target");
    }

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
    fn access_log_table() {
        let c = parse_str("").unwrap();
        assert_eq!(c.access_log, None);
        let dir = std::env::temp_dir();
        let c = parse_str(&format!(
            "[access_log]\npath = \"{}/a.log\"\n",
            dir.display()
        ))
        .unwrap();
        let a = c.access_log.unwrap();
        assert_eq!(a.destination, Destination::File(dir.join("a.log")));
        assert_eq!(a.format, crate::obs::access_log::Format::Combined);
        assert_eq!(a.buffer, 64 * 1024);
        assert_eq!(a.flush, Duration::from_secs(1));
        let c = parse_str(
            "[access_log]\npath = \"syslog\"\nformat = \"json\"\nbuffer = \"0\"\nflush = \"250ms\"\n",
        )
        .unwrap();
        let a = c.access_log.unwrap();
        assert_eq!(a.destination, Destination::Syslog);
        assert_eq!(a.format, crate::obs::access_log::Format::Json);
        assert_eq!(a.buffer, 0);
        assert_eq!(a.flush, Duration::from_millis(250));
        assert_eq!(
            parse_str("[access_log]\npath = \"syslog\"\nbuffer = 4096\n")
                .unwrap()
                .access_log
                .unwrap()
                .buffer,
            4096
        );
        // Relative to the config file's directory, made absolute.
        let c = parse("[access_log]\npath = \"x.log\"\n", &dir.join("p.toml")).unwrap();
        assert_eq!(
            c.access_log.unwrap().destination,
            Destination::File(dir.join("x.log"))
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

    #[test]
    fn access_log_errors_name_file_line_and_key() {
        expect_error(
            "[access_log]\nformat = \"json\"\n",
            "test.toml:1:1: access_log.path is required",
        );
        expect_error(
            "[access_log]\npath = \"syslog\"\nformat = \"apache\"\n",
            "test.toml:3:10: access_log.format: unknown format \"apache\"",
        );
        expect_error(
            "[access_log]\npath = \"syslog\"\nbuffer = \"1g\"\n",
            "test.toml:3:10: access_log.buffer: invalid size \"1g\"",
        );
        expect_error(
            "[access_log]\npath = \"syslog\"\nflush = \"0s\"\n",
            "test.toml:3:9: access_log.flush",
        );
        expect_error(
            "[access_log]\npath = \"/no/such/dir/a.log\"\n",
            "test.toml:2:8: access_log.path: directory /no/such/dir does not exist",
        );
        expect_error(
            "[access_log]\npath = \"syslog\"\nbufer = 1\n",
            "test.toml:3:1: unknown key \"bufer\"",
        );
        expect_error(
            "[access_log]\npath = \"\"\n",
            "test.toml:2:8: access_log.path: must not be empty",
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["0s", "5", "s", "-1s", "1.5s", " 5s", "5 s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn overrides_win() {
        let mut c = parse_str("workers = 2\nlisten = [\"127.0.0.1:1\"]\n").unwrap();
        let args = Overrides {
            listen: vec!["127.0.0.1:9".parse().unwrap()],
            workers: Some(5),
            pid_file: Some("/tmp/p".into()),
            log_target: Some(LogTarget::Stderr),
        };
        apply_overrides(&mut c, &args);
        assert_eq!(c.listen, vec!["127.0.0.1:9".parse().unwrap()]);
        assert_eq!(c.workers, 5);
        assert_eq!(c.pid_file, Some(PathBuf::from("/tmp/p")));
        assert_eq!(c.log.target, LogTarget::Stderr);
    }
}
