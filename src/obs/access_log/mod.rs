//! The access log: one line per answered request, in nginx's `combined`
//! format (byte for byte, escaping included), `common` (its first seven
//! fields) or `json`; buffered per worker and appended with `O_APPEND` in
//! whole buffers, so that lines of several workers never interleave or tear.
//!
//! A buffered line is written within `flush`, when the buffer fills, when
//! the worker drains and when it exits (`Drop`). USR1 reopens the file.
//! Root never opens the file: the master (root) only creates a missing one
//! with `O_CREAT|O_EXCL|O_NOFOLLOW` and hands it to the workers' user
//! ([`prepare`](crate::obs::access_log::prepare), before forking and at USR1);
//! the workers open it after dropping their privileges. A symlink or anything else planted at the
//! path is never followed or chowned by root.
//!
//! When the file cannot be written the worker goes on serving: the lines
//! are counted as lost in its scoreboard slot (`-s status`), one error is
//! logged per episode, and writing resumes as soon as a write succeeds.
//!
//! Formatting allocates nothing: fields are escaped straight into the
//! buffer, whose capacity covers the buffer size plus the longest line a
//! request head can give, and the time strings are built once a second
//! (like `Date`). What a request was (its head bytes, status, body bytes)
//! is decided by `http/conn/` and handed over as an [`Exchange`](crate::obs::exchange::Exchange); this
//! module only turns it into a line.
//!
//! Lines tests match: `access log: cannot write PATH: ERR` (error, once per
//! episode), `access log: writing PATH again, N lines lost` (warn).

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use crate::obs::clock::Clock;
use crate::obs::exchange::{Exchange, Observer};
use crate::obs::log::LogConfig;
use crate::os::credentials::Credentials;

/// The access log's config types and their limits.
mod config;
/// Root-safe creation of a missing log file; the workers' open.
mod create;
/// Line formats: escaping, fields of a head, `combined`/`common`/`json`.
mod format;
/// Where lines go: a file or syslog, with reopening and reconnecting.
mod sink;

pub use config::{parse_size, AccessLogConfig, Destination, Format};
pub use config::{DEFAULT_BUFFER, DEFAULT_FLUSH, MAX_BUFFER};
pub use create::{create_owned, open_file};

use create::owner_ids;
use format::push_line;
use sink::Sink;

/// What the worker gives the log when it opens it.
pub struct Setup<'a> {
    /// Facility, ident and socket for `path = "syslog"`.
    pub syslog: &'a LogConfig,
    /// The longest request head: bounds the longest line.
    pub max_header_bytes: usize,
    /// Where lost lines are counted (the worker's scoreboard slot).
    pub lost: &'static AtomicU64,
}

/// One worker's access log. The state sits in a `RefCell` so that
/// connections can record through a shared [`Observer`] reference while the
/// worker owns the log.
pub struct AccessLog {
    state: RefCell<State>,
}

struct State {
    format: Format,
    /// Write once the buffer holds this much (0: every line).
    threshold: usize,
    flush: Duration,
    /// Raw request bytes looked at per line (a refused head may be longer).
    max_raw: usize,
    buf: Vec<u8>,
    /// Complete lines in `buf`.
    lines: u64,
    /// When the oldest line in `buf` was added.
    oldest: Option<Instant>,
    clock: Clock,
    pid: u32,
    sink: Sink,
    /// Lines are being lost (a write failed); logged once when an episode
    /// starts and once when it ends.
    failing: bool,
    lost_in_episode: u64,
    lost: &'static AtomicU64,
    /// The last write ended inside a line: the next starts on a new line.
    torn: bool,
}

impl AccessLog {
    /// Opens the log for a worker. Called after the worker dropped its
    /// privileges: the file is opened (and, if missing, created) as the
    /// workers' user, never by root; as root the master has created a
    /// missing file for it beforehand ([`prepare`]). Never fails: a file
    /// that cannot be opened is retried at every write, its lines counted
    /// as lost meanwhile.
    pub fn open(config: &AccessLogConfig, setup: &Setup) -> AccessLog {
        let pid = std::process::id();
        let sink = Sink::open(&config.destination, setup.syslog, pid);
        // Escaping turns a byte into at most 6 (JSON's \u00XX); the fixed
        // parts, addresses and numbers fit in the rest.
        let max_raw = setup.max_header_bytes.max(1024);
        let max_line = 6 * max_raw + 512;
        let mut state = State {
            format: config.format,
            threshold: config.buffer,
            flush: config.flush,
            max_raw,
            buf: Vec::with_capacity(config.buffer + max_line),
            lines: 0,
            oldest: None,
            clock: Clock::default(),
            pid,
            sink,
            failing: false,
            lost_in_episode: 0,
            lost: setup.lost,
            torn: false,
        };
        state.clock.set(SystemTime::now(), Instant::now());
        AccessLog {
            state: RefCell::new(state),
        }
    }

    /// The wall clock turned a second (`now` is the loop's `Instant` for
    /// the same moment): rebuild the time strings.
    pub fn set_time(&mut self, wall: SystemTime, now: Instant) {
        self.state.get_mut().clock.set(wall, now);
    }

    /// When the buffered lines must be written, if any are buffered.
    pub fn deadline(&self) -> Option<Instant> {
        let s = self.state.borrow();
        s.oldest.map(|t| t + s.flush)
    }

    /// Writes the buffer if its deadline passed.
    pub fn tick(&mut self, now: Instant) {
        let s = self.state.get_mut();
        if s.oldest.is_some_and(|t| now >= t + s.flush) {
            s.write_out();
        }
    }

    /// Writes whatever is buffered (draining, exiting, before a reopen).
    pub fn flush(&mut self) {
        self.state.get_mut().write_out();
    }

    /// USR1: write what is buffered to the file we have, then open the
    /// path anew (logrotate moved the old file away).
    pub fn reopen(&mut self) {
        let s = self.state.get_mut();
        s.write_out();
        s.sink.reopen_requested();
        s.sink.try_reopen();
    }

    /// Records one line directly (for tests and tools that have no
    /// connection); the worker's connections use [`Observer`].
    pub fn record(&self, e: &Exchange) {
        self.state.borrow_mut().record(e);
    }
}

impl Observer for AccessLog {
    fn answered(&self, e: &Exchange) {
        self.state.borrow_mut().record(e);
    }
}

impl Drop for AccessLog {
    /// A worker that exits (graceful stop, reload, TTOU, upgrade, recycling)
    /// writes what it buffered: no line is lost.
    fn drop(&mut self) {
        self.state.get_mut().write_out();
    }
}

impl State {
    fn record(&mut self, e: &Exchange) {
        let head = &e.head[..e.head.len().min(self.max_raw)];
        let buf = &mut self.buf;
        let start = buf.len();
        self.sink.push_prefix(buf, &self.clock.syslog);
        push_line(buf, self.format, &self.clock, self.pid, e, head);
        buf.push(b'\n');
        debug_assert!(buf.len() > start);
        self.lines += 1;
        if self.oldest.is_none() {
            self.oldest = Some(e.now);
        }
        if self.buf.len() >= self.threshold {
            self.write_out();
        }
    }

    /// Writes the whole buffer; on failure counts its lines as lost.
    fn write_out(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        self.sink.try_reopen();
        let result = self.sink.write(&self.buf, self.torn);
        match result {
            Ok(()) => {
                self.torn = false;
                if self.failing {
                    self.failing = false;
                    log::warn!(
                        "access log: writing {} again, {} lines lost",
                        self.sink.name(),
                        self.lost_in_episode
                    );
                    self.lost_in_episode = 0;
                }
            }
            Err((e, done)) => {
                let rest = &self.buf[done.min(self.buf.len())..];
                let lost = rest.iter().filter(|&&b| b == b'\n').count() as u64;
                if matches!(self.sink, Sink::File { .. }) {
                    self.torn = done > 0 && self.buf.get(done - 1) != Some(&b'\n');
                }
                self.lost.fetch_add(lost, Relaxed);
                self.lost_in_episode += lost;
                if !self.failing {
                    self.failing = true;
                    log::error!(
                        "access log: cannot write {}: {e}; lines are lost (counted in -s status) until a write succeeds",
                        self.sink.name()
                    );
                }
            }
        }
        self.buf.clear();
        self.lines = 0;
        self.oldest = None;
    }
}

/// For the master, as root, before it forks workers and before it signals
/// them to reopen (`-s reopen`, USR1): creates the access log file if it is
/// missing, owned by the workers' user, so that the unprivileged workers
/// can open it even when its directory is not writable by them (nginx's
/// master creates the file too). An existing path is left alone: its owner
/// must let the workers' user append (logrotate's `create 0640 preforkd
/// adm`). Nothing to do without a file log, or when not root, or when the
/// workers run as root (they create the file themselves).
pub fn prepare(config: Option<&AccessLogConfig>, user: Option<&Credentials>) -> io::Result<()> {
    let Some(AccessLogConfig {
        destination: Destination::File(path),
        ..
    }) = config
    else {
        return Ok(());
    };
    match owner_ids(user) {
        Some(owner) => create_owned(path, owner).map(drop),
        None => Ok(()),
    }
}

/// Lines lost by every worker that ever ran in this scoreboard (for the
/// total line of `-s status`).
pub fn lost_lines(board: &crate::obs::scoreboard::Scoreboard) -> u64 {
    board.log_lost_total()
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use std::path::{Path, PathBuf};

    fn lost() -> &'static AtomicU64 {
        Box::leak(Box::new(AtomicU64::new(0)))
    }

    struct TempFile(PathBuf);
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn log_to(path: &Path, format: Format, buffer: usize) -> AccessLog {
        let config = AccessLogConfig {
            destination: Destination::File(path.to_owned()),
            format,
            buffer,
            flush: Duration::from_secs(1),
        };
        AccessLog::open(
            &config,
            &Setup {
                syslog: &LogConfig::default(),
                max_header_bytes: 8192,
                lost: lost(),
            },
        )
    }

    fn exchange<'a>(head: &'a [u8], status: u16, body: u64, now: Instant) -> Exchange<'a> {
        Exchange {
            peer: Some("127.0.0.1".parse().unwrap()),
            head,
            status,
            body_bytes: body,
            started: now,
            now,
            route: None,
        }
    }

    #[test]
    fn lines_in_each_format() {
        let path = std::env::temp_dir().join(format!("preforkd-al-unit-{}", std::process::id()));
        let _guard = TempFile(path.clone());
        let now = Instant::now();
        let head: &[u8] =
            b"GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: \"x\"\\\xff\r\nReferer: http://r/\r\n\r\n";
        for format in [Format::Combined, Format::Common, Format::Json] {
            let _ = std::fs::remove_file(&path);
            let mut log = log_to(&path, format, 64 * 1024);
            log.set_time(UNIX_EPOCH + Duration::from_secs(971_211_336), now);
            log.record(&exchange(head, 200, 14, now));
            log.record(&exchange(b"\x16\x03", 400, 12, now));
            assert!(log.deadline().is_some(), "buffered, not written yet");
            assert_eq!(std::fs::read(&path).unwrap(), b"", "{format:?}");
            log.flush();
            let text = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&text);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{text}");
            // Redact the local time (the zone of this machine).
            let redact = |l: &str| match (l.find('['), l.find(']')) {
                (Some(a), Some(b)) => format!("{}[T]{}", &l[..a], &l[b + 1..]),
                _ => l.to_owned(),
            };
            match format {
                Format::Combined => {
                    assert_eq!(
                        redact(lines[0]),
                        r#"127.0.0.1 - - [T] "GET /a HTTP/1.1" 200 14 "http://r/" "\x22x\x22\x5C\xFF""#
                    );
                    assert_eq!(
                        redact(lines[1]),
                        r#"127.0.0.1 - - [T] "\x16\x03" 400 12 "-" "-""#
                    );
                }
                Format::Common => {
                    assert_eq!(
                        redact(lines[0]),
                        r#"127.0.0.1 - - [T] "GET /a HTTP/1.1" 200 14"#
                    );
                }
                Format::Json => {
                    let l = lines[0];
                    assert!(l.starts_with("{\"time\":\"2000-10-1"), "{l}");
                    let rest = &l[l.find("\",\"remote_addr\"").unwrap()..];
                    assert_eq!(
                        rest,
                        format!(
                            "\",\"remote_addr\":\"127.0.0.1\",\"method\":\"GET\",\"target\":\"/a\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"body_bytes\":14,\"referer\":\"http://r/\",\"user_agent\":\"\\\"x\\\"\\\\\\u00FF\",\"route\":null,\"request_time_us\":0,\"pid\":{}}}",
                            std::process::id()
                        )
                    );
                    assert!(lines[1].contains("\"method\":\"\\u0016\\u0003\",\"target\":null,\"protocol\":null,\"status\":400"), "{}", lines[1]);
                }
            }
        }
    }

    #[test]
    fn buffer_zero_writes_each_line_and_a_full_buffer_is_written() {
        let path = std::env::temp_dir().join(format!("preforkd-al-unit0-{}", std::process::id()));
        let _guard = TempFile(path.clone());
        let now = Instant::now();
        let log = log_to(&path, Format::Common, 0);
        log.record(&exchange(b"GET / HTTP/1.1\r\n\r\n", 200, 14, now));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        let line_len = std::fs::read(&path).unwrap().len();
        drop(log);
        let _ = std::fs::remove_file(&path);
        // Room for two lines and a byte: the third fills it.
        let mut log = log_to(&path, Format::Common, 2 * line_len + 1);
        for _ in 0..2 {
            log.record(&exchange(b"GET / HTTP/1.1\r\n\r\n", 200, 14, now));
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        log.record(&exchange(b"GET / HTTP/1.1\r\n\r\n", 200, 14, now));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
        log.record(&exchange(b"GET / HTTP/1.1\r\n\r\n", 200, 14, now));
        log.tick(now + Duration::from_millis(999));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
        log.tick(now + Duration::from_secs(1));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
        assert_eq!(log.deadline(), None);
    }

    #[test]
    fn a_failed_write_counts_lost_lines_and_recovers() {
        // /dev/full: every write fails with ENOSPC.
        if !Path::new("/dev/full").exists() {
            return;
        }
        let counter = lost();
        let config = AccessLogConfig {
            destination: Destination::File("/dev/full".into()),
            format: Format::Combined,
            buffer: 1 << 20,
            flush: Duration::from_secs(1),
        };
        let mut log = AccessLog::open(
            &config,
            &Setup {
                syslog: &LogConfig::default(),
                max_header_bytes: 8192,
                lost: counter,
            },
        );
        let now = Instant::now();
        for _ in 0..3 {
            log.record(&exchange(b"GET / HTTP/1.1\r\n\r\n", 200, 14, now));
        }
        log.flush();
        assert_eq!(counter.load(Relaxed), 3);
        log.record(&exchange(b"GET / HTTP/1.1\r\n\r\n", 200, 14, now));
        log.flush();
        assert_eq!(counter.load(Relaxed), 4);
        assert!(log.state.borrow().failing);
        // Writing works again once the sink does.
        let path = std::env::temp_dir().join(format!("preforkd-al-unit1-{}", std::process::id()));
        let _guard = TempFile(path.clone());
        if let Sink::File { path: p, .. } = &mut log.state.get_mut().sink {
            *p = path.clone();
        }
        log.reopen();
        log.record(&exchange(b"GET / HTTP/1.1\r\n\r\n", 200, 14, now));
        log.flush();
        assert!(!log.state.borrow().failing);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
