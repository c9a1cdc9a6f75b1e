//! Logging: the `log` facade's backend, writing RFC 3164 syslog datagrams
//! with the `syslog` crate, to stderr, or both. A message syslog cannot take
//! is written to stderr instead of being lost; a failed send reconnects and
//! retries once (the crate never reconnects by itself). Re-initialised after
//! fork so that each line carries the pid of the process that wrote it.
//!
//! Log lines are lower-case, stable `key=value` text. Tests match these:
//! - `master ready pid=P workers=N`
//! - `worker=SLOT pid=P started`
//! - `worker=SLOT pid=P exited status=N` / `worker=SLOT pid=P killed signal=SIG`
//! - `worker=SLOT pid=P ... after Nms: crashed, respawn in MSms` (error level)
//! - `worker=SLOT pid=P hung: no heartbeat for Nms ...` (error level)
//! - `reload failed: FILE:LINE:COL: reason` (error level), `reload done generation=N`
//! - `upgrade failed: ...`, `upgrade already in progress ...`
//! - `master stopping mode=fast|graceful`, `master exiting`
//! - `worker pid=P draining`
//! - `worker pid=P pressure: full at worker_connections=N; ...`,
//!   `worker pid=P pressure: client=IP at max_connections_per_client=N; ...`,
//!   `worker pid=P pressure: requests arriving below min_request_rate=N/s; ...`
//!   (warn level, once per cause and episode; tests/flood.rs)
//! - `master maintenance=on|off` (also from a new master that inherited it)
//! - `control: maintenance on|off refused: peer is neither root nor our user`
//!   (warn level); `master maintenance=on|off refused: upgrade to pid=P in
//!   progress` (warn level)

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Deserialize;
use syslog::LoggerBackend;

use crate::obs::rfc3164::Header;

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    Syslog,
    Stderr,
    Both,
}

impl std::str::FromStr for LogTarget {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "syslog" => Ok(LogTarget::Syslog),
            "stderr" => Ok(LogTarget::Stderr),
            "both" => Ok(LogTarget::Both),
            _ => Err(()),
        }
    }
}

/// The `[log]` table of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub target: LogTarget,
    /// A syslog facility name, validated by the config.
    pub facility: String,
    pub ident: String,
    pub level: log::LevelFilter,
    pub syslog_socket: PathBuf,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            target: LogTarget::Syslog,
            facility: "daemon".into(),
            ident: "preforkd".into(),
            level: log::LevelFilter::Info,
            syslog_socket: PathBuf::from("/dev/log"),
        }
    }
}

impl LogConfig {
    /// The configured facility (validated by the config; daemon if not).
    pub fn syslog_facility(&self) -> syslog::Facility {
        self.facility
            .parse()
            .unwrap_or(syslog::Facility::LOG_DAEMON)
    }
}

/// Checks a facility name the way `init` will use it.
pub fn valid_facility(name: &str) -> bool {
    name.parse::<syslog::Facility>().is_ok()
}

type Syslog = syslog::Logger<LoggerBackend, Rfc3164>;

/// RFC 3164 lines: `<PRI>Mmm dd hh:mm:ss ident[pid]: message`, framed by
/// `obs::rfc3164` (the crate's formatter pads the day with a zero).
#[derive(Clone, Debug)]
struct Rfc3164(Header);

impl syslog::LogFormat<&str> for Rfc3164 {
    fn format<W: Write>(
        &self,
        w: &mut W,
        severity: syslog::Severity,
        message: &str,
    ) -> syslog::Result<()> {
        let mut line = Vec::with_capacity(64 + message.len());
        let now = crate::obs::clock::syslog_timestamp(std::time::SystemTime::now());
        self.0.push(&mut line, severity, &now);
        line.extend_from_slice(message.as_bytes());
        w.write_all(&line).map_err(syslog::Error::Write)
    }
}

struct Backend {
    config: LogConfig,
    pid: u32,
    syslog: Option<Syslog>,
    /// stderr is a terminal: show syslog-bound lines there too.
    echo: bool,
    /// We already said on stderr that syslog is unreachable.
    warned: bool,
}

impl Backend {
    fn connect(&mut self) {
        let header = Header::new(self.config.syslog_facility(), &self.config.ident, self.pid);
        let formatter = Rfc3164(header);
        self.syslog = syslog::unix_custom(formatter, &self.config.syslog_socket).ok();
        // Non-blocking: a log reader that stops reading (a datagram queue
        // holds a handful of lines) must not stall the master or a worker;
        // a full socket is retried briefly, then the line goes to stderr.
        if let Some(logger) = &self.syslog {
            let nonblocking = match &logger.backend {
                LoggerBackend::Unix(sock) => sock.set_nonblocking(true),
                LoggerBackend::UnixStream(stream) => stream.get_ref().set_nonblocking(true),
                _ => Ok(()),
            };
            if nonblocking.is_err() {
                self.syslog = None;
            }
        }
    }

    fn emit(&mut self, level: log::Level, message: &str) {
        let mut to_stderr = self.config.target != LogTarget::Syslog || self.echo;
        if self.config.target != LogTarget::Stderr {
            if self.send(level, message) {
                self.warned = false;
            } else {
                if !self.warned {
                    self.warned = true;
                    let _ = writeln!(
                        std::io::stderr(),
                        "{}[{}]: warning: syslog socket {} is unreachable, logging to stderr",
                        self.config.ident,
                        self.pid,
                        self.config.syslog_socket.display()
                    );
                }
                to_stderr = true;
            }
        }
        if to_stderr {
            let _ = writeln!(
                std::io::stderr(),
                "{}[{}]: {}: {message}",
                self.config.ident,
                self.pid,
                level.as_str().to_ascii_lowercase()
            );
        }
    }

    /// Sends to syslog. A full socket buffer (ENOBUFS, EAGAIN) is retried
    /// briefly; any other failure (the log daemon restarted: ECONNREFUSED,
    /// ENOTCONN, EPIPE, ENOENT) reconnects and retries once.
    fn send(&mut self, level: log::Level, message: &str) -> bool {
        let mut reconnected = false;
        let mut busy_retries = 0;
        loop {
            if self.syslog.is_none() {
                self.connect();
            }
            let Some(s) = self.syslog.as_mut() else {
                return false;
            };
            let result = match level {
                log::Level::Error => s.err(message),
                log::Level::Warn => s.warning(message),
                log::Level::Info => s.info(message),
                log::Level::Debug | log::Level::Trace => s.debug(message),
            };
            let err = match result {
                Ok(()) => return true,
                Err(syslog::Error::Io(e) | syslog::Error::Write(e)) => e,
                Err(syslog::Error::Initialization(_)) => return false,
            };
            let busy = err.raw_os_error() == Some(libc::ENOBUFS)
                || err.kind() == std::io::ErrorKind::WouldBlock;
            if busy && busy_retries < BUSY_RETRIES {
                busy_retries += 1;
                std::thread::sleep(BUSY_PAUSE);
                continue;
            }
            self.syslog = None;
            if reconnected || busy {
                return false;
            }
            reconnected = true;
        }
    }
}

/// How often, and how long apart, a send to a full syslog socket is retried.
const BUSY_RETRIES: u32 = 3;
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

struct Logger(Mutex<Option<Backend>>);

static LOGGER: Logger = Logger(Mutex::new(None));

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        if let Ok(mut guard) = self.0.lock() {
            if let Some(b) = guard.as_mut() {
                b.emit(record.level(), &message);
            }
        }
    }

    fn flush(&self) {}
}

/// Installs (or, on reload, reconfigures) the logger.
pub fn init(config: &LogConfig) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(config.level);
    let mut backend = Backend {
        config: config.clone(),
        pid: std::process::id(),
        syslog: None,
        echo: std::io::stderr().is_terminal(),
        warned: false,
    };
    if config.target != LogTarget::Stderr {
        backend.connect();
    }
    if let Ok(mut guard) = LOGGER.0.lock() {
        *guard = Some(backend);
    }
}

/// Sends a line to syslog only, if it is configured and reachable: for a
/// startup error that is also printed on stderr, so that it appears once
/// there but still reaches the system log.
pub fn syslog_only(level: log::Level, message: &str) {
    if let Ok(mut guard) = LOGGER.0.lock() {
        if let Some(b) = guard.as_mut() {
            if b.config.target != LogTarget::Stderr {
                b.send(level, message);
            }
        }
    }
}

/// In a freshly forked child: take the new pid and a socket of its own.
pub fn reinit_after_fork() {
    if let Ok(mut guard) = LOGGER.0.lock() {
        if let Some(b) = guard.as_mut() {
            b.pid = std::process::id();
            if b.config.target != LogTarget::Stderr {
                b.connect();
            }
        }
    }
}

/// Reconnects to syslog (USR1).
pub fn reopen() {
    reinit_after_fork();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let f = Rfc3164(Header::new(syslog::Facility::LOG_LOCAL0, "web", 42));
        let mut out = Vec::new();
        syslog::LogFormat::format(&f, &mut out, syslog::Severity::LOG_INFO, "hello").unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("<134>"), "{s}");
        assert!(s.ends_with(" web[42]: hello"), "{s}");
    }
}
