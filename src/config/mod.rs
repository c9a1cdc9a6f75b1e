//! The configuration: TOML file → validated [`Config`](crate::config::Config), with the built-in
//! defaults and the command-line overrides. Every error names the file, line,
//! column and key (`preforkd.toml:3:1: unknown key "wokers"`).
//!
//! This file holds the model, its defaults, `load` and the overrides, and
//! the top-level keys; the tables, routes, value types and errors have
//! their own files. Leaves sockets, logs and the response bytes to their
//! own modules; reads `response.body_file` here so that a bad path fails
//! `-t` and reloads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http::cidr::Cidr;
use crate::http::route::RouteSpec;
use crate::http::template::ResponseSpec;
use crate::obs::access_log::AccessLogConfig;
use crate::obs::log::{LogConfig, LogTarget};
use crate::os::credentials::Credentials;
use crate::tls::TlsConfig;

/// `Error` with `file:line:col`, and the span helpers that make it.
mod error;
/// The file's tables as serde reads them.
mod raw;
/// `[[route]]` tables: the common part and one function per kind.
mod routes;
/// `[response]`, `[maintenance]`, `[log]`, `[access_log]`, `[tls]`, user and group.
mod tables;
/// Value types: `listen` entries, durations, sizes, rates, header fields.
mod values;

pub use error::Error;
pub use values::{parse_duration, parse_rate, Listen};

use error::Source;
use raw::RawConfig;
use tables::set;

/// Read when no `-c` is given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/preforkd/preforkd.toml";

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
            workers: values::cpu_count(),
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
            response: tables::default_response(),
            routes: Vec::new(),
            maintenance: crate::http::answer::default_maintenance(),
            log: LogConfig::default(),
            access_log: None,
            tls: None,
        }
    }
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
    let path = config.path.clone();
    Error::whole(
        path.unwrap_or_else(|| PathBuf::from("built-in defaults")),
        message,
    )
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
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::whole(path.to_owned(), format!("cannot read: {e}")))?;
    parse(&text, path)
}

/// Parses config text; `path` is only for messages and relative `body_file`s.
pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
    let src = Source { text, path };
    let raw: RawConfig = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    // Relative paths in a file mean relative to that file, wherever the
    // process runs (`-d` moves to /, an upgraded master may start there).
    let base = path.parent().unwrap_or(Path::new("."));
    let mut c = Config {
        path: Some(path.to_owned()),
        ..Config::default()
    };
    top_level_keys(&mut c, &raw, base);
    c.user = tables::credentials(src, raw.user, raw.group)?;
    if let Some(r) = raw.response {
        tables::response(src, base, &mut c.response, r)?;
    }
    if let Some(routes) = raw.route {
        c.routes = routes::parse_routes(src, base, routes)?;
    }
    if let Some(m) = raw.maintenance {
        c.maintenance = tables::maintenance(src, base, m)?;
    }
    if let Some(l) = raw.log {
        tables::log(&mut c.log, l, base);
    }
    if let Some(t) = raw.tls {
        c.tls = Some(tables::tls(src, t, base)?);
    }
    if let Some(a) = raw.access_log {
        c.access_log = Some(tables::access_log(src, a, base)?);
    }
    Ok(c)
}

/// The keys outside any table: listeners, workers, timeouts and limits.
fn top_level_keys(c: &mut Config, raw: &RawConfig, base: &Path) {
    if let Some(listen) = &raw.listen {
        c.listen = listen.iter().map(|a| a.0).collect();
        c.listen_given = true;
    }
    if let Some(from) = &raw.proxy_protocol_from {
        c.proxy_protocol_from.clone_from(&from.0);
    }
    set(&mut c.workers, raw.workers.map(|w| w.0));
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
    if let Some(exempt) = &raw.max_connections_per_client_exempt {
        c.max_connections_per_client_exempt.clone_from(&exempt.0);
    }
    c.pid_file = raw.pid_file.as_ref().map(|p| base.join(p));
    set(&mut c.worker_timeout, raw.worker_timeout.map(|d| d.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` as `test.toml`.
    pub(super) fn parse_str(text: &str) -> Result<Config, Error> {
        parse(text, Path::new("test.toml"))
    }

    /// The error `text` gives, as shown.
    pub(super) fn error(text: &str) -> String {
        parse_str(text)
            .expect_err("config must be rejected")
            .to_string()
    }

    /// `text` fails to load with an error starting with `prefix`.
    pub(super) fn expect_error(text: &str, prefix: &str) {
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
