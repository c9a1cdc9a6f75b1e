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
//! is decided by `conn.rs` and handed over as an [`Exchange`](crate::obs::exchange::Exchange); this
//! module only turns it into a line.
//!
//! Lines tests match: `access log: cannot write PATH: ERR` (error, once per
//! episode), `access log: writing PATH again, N lines lost` (warn).

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::obs::exchange::{Exchange, Observer};
use crate::obs::log::LogConfig;
use crate::os::credentials::Credentials;

/// Line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// nginx's `combined`: `$remote_addr - $remote_user [$time_local]
    /// "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`.
    Combined,
    /// The first seven fields of `combined` (up to `$body_bytes_sent`).
    Common,
    /// One JSON object per line.
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "combined" => Some(Format::Combined),
            "common" => Some(Format::Common),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Where lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A file, opened `O_APPEND`, created mode 0640.
    File(PathBuf),
    /// The `[log]` syslog socket, facility and ident, severity info; one
    /// datagram per line.
    Syslog,
}

/// The `[access_log]` table of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogConfig {
    pub destination: Destination,
    pub format: Format,
    /// Bytes buffered per worker before a write; 0 writes each line at once.
    pub buffer: usize,
    /// A buffered line is written within this.
    pub flush: Duration,
}

/// Default `buffer`: nginx's usual `buffer=64k`.
pub const DEFAULT_BUFFER: usize = 64 * 1024;
/// Default `flush`.
pub const DEFAULT_FLUSH: Duration = Duration::from_secs(1);
/// The largest `buffer` accepted.
pub const MAX_BUFFER: usize = 64 * 1024 * 1024;

/// `"0"`, `"4096"`, `"64k"`, `"1m"` → bytes (up to [`MAX_BUFFER`]).
pub fn parse_size(s: &str) -> Option<usize> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return None;
    }
    let n: usize = s[..digits].parse().ok()?;
    let unit = match &s[digits..] {
        "" => 1,
        "k" | "K" => 1024,
        "m" | "M" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(unit).filter(|&b| b <= MAX_BUFFER)
}

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

enum Sink {
    File {
        path: PathBuf,
        file: Option<File>,
        /// A reopen failed: keep writing to the file we have (nothing is
        /// lost) and try again at every write.
        reopen_due: bool,
        /// We said so once.
        reopen_warned: bool,
    },
    Syslog {
        socket_path: PathBuf,
        socket: Option<UnixDatagram>,
        /// `<PRI>`, e.g. `<30>` for daemon.info.
        priority: Vec<u8>,
        /// `ident[pid]: `
        tag: Vec<u8>,
    },
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
        let sink = match &config.destination {
            Destination::File(path) => {
                let file = match open_file(path) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        log::error!(
                            "access log: cannot open {}: {e}; lines are lost until it can be opened",
                            path.display()
                        );
                        None
                    }
                };
                Sink::File {
                    path: path.clone(),
                    file,
                    reopen_due: false,
                    reopen_warned: false,
                }
            }
            Destination::Syslog => {
                let facility = setup
                    .syslog
                    .facility
                    .parse::<syslog::Facility>()
                    .unwrap_or(syslog::Facility::LOG_DAEMON);
                let priority = facility as u8 | syslog::Severity::LOG_INFO as u8;
                Sink::Syslog {
                    socket_path: setup.syslog.syslog_socket.clone(),
                    socket: connect_syslog(&setup.syslog.syslog_socket),
                    priority: format!("<{priority}>").into_bytes(),
                    tag: format!("{}[{pid}]: ", setup.syslog.ident).into_bytes(),
                }
            }
        };
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
        match &mut s.sink {
            Sink::File {
                reopen_due,
                reopen_warned,
                ..
            } => {
                *reopen_due = true;
                *reopen_warned = false;
            }
            Sink::Syslog {
                socket_path,
                socket,
                ..
            } => *socket = connect_syslog(socket_path),
        }
        s.try_reopen();
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
        let fields = Fields::of(head);
        let buf = &mut self.buf;
        let start = buf.len();
        if let Sink::Syslog { priority, tag, .. } = &self.sink {
            buf.extend_from_slice(priority);
            buf.extend_from_slice(&self.clock.syslog);
            buf.push(b' ');
            buf.extend_from_slice(tag);
        }
        match self.format {
            Format::Combined | Format::Common => {
                push_addr(buf, e.peer);
                buf.extend_from_slice(b" - - [");
                buf.extend_from_slice(&self.clock.local);
                buf.extend_from_slice(b"] \"");
                push_nginx(buf, fields.line);
                buf.extend_from_slice(b"\" ");
                push_u64(buf, u64::from(e.status));
                buf.push(b' ');
                push_u64(buf, e.body_bytes);
                if self.format == Format::Combined {
                    buf.extend_from_slice(b" \"");
                    push_nginx(buf, fields.referer);
                    buf.extend_from_slice(b"\" \"");
                    push_nginx(buf, fields.user_agent);
                    buf.push(b'"');
                }
            }
            Format::Json => {
                let ms = e
                    .now
                    .saturating_duration_since(self.clock.second_start)
                    .as_millis()
                    .min(999) as u64;
                buf.extend_from_slice(b"{\"time\":\"");
                buf.extend_from_slice(&self.clock.iso);
                buf.push(b'.');
                push_padded(buf, ms, 3);
                buf.extend_from_slice(&self.clock.iso_offset);
                buf.extend_from_slice(b"\",\"remote_addr\":");
                match e.peer {
                    Some(_) => {
                        buf.push(b'"');
                        push_addr(buf, e.peer);
                        buf.push(b'"');
                    }
                    None => buf.extend_from_slice(b"null"),
                }
                let [method, target, protocol] = fields.request_parts();
                buf.extend_from_slice(b",\"method\":");
                push_json(buf, method);
                buf.extend_from_slice(b",\"target\":");
                push_json(buf, target);
                buf.extend_from_slice(b",\"protocol\":");
                push_json(buf, protocol);
                buf.extend_from_slice(b",\"status\":");
                push_u64(buf, u64::from(e.status));
                buf.extend_from_slice(b",\"body_bytes\":");
                push_u64(buf, e.body_bytes);
                buf.extend_from_slice(b",\"referer\":");
                push_json(buf, fields.referer);
                buf.extend_from_slice(b",\"user_agent\":");
                push_json(buf, fields.user_agent);
                // What answered: a route, the maintenance page, or null
                // (before the timing, so that `pid` stays the last field).
                buf.extend_from_slice(b",\"route\":");
                push_json(buf, e.route.map(str::as_bytes));
                buf.extend_from_slice(b",\"request_time_us\":");
                let us = e.now.saturating_duration_since(e.started).as_micros();
                push_u64(buf, u64::try_from(us).unwrap_or(u64::MAX));
                buf.extend_from_slice(b",\"pid\":");
                push_u64(buf, u64::from(self.pid));
                buf.push(b'}');
            }
        }
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
        self.try_reopen();
        let result = match &mut self.sink {
            Sink::File { file: Some(f), .. } => {
                if self.torn {
                    // The last write stopped mid-line: end that line first
                    // so this buffer's lines stay whole.
                    let _ = write_all_counted(f, b"\n");
                }
                write_all_counted(f, &self.buf)
            }
            Sink::File { file: None, .. } => {
                Err((io::Error::new(io::ErrorKind::NotFound, "not open"), 0))
            }
            Sink::Syslog {
                socket_path,
                socket,
                ..
            } => send_lines(socket, socket_path, &self.buf),
        };
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

    /// After USR1 (or a failed open): open the path again; on failure keep
    /// the file we have and try again at the next write.
    fn try_reopen(&mut self) {
        let Sink::File {
            path,
            file,
            reopen_due,
            reopen_warned,
        } = &mut self.sink
        else {
            return;
        };
        if !*reopen_due && file.is_some() {
            return;
        }
        // Unprivileged by now: what we create belongs to the workers' user.
        match open_file(path) {
            Ok(f) => {
                if *reopen_warned {
                    log::warn!("access log: opened {} again", path.display());
                }
                *file = Some(f);
                *reopen_due = false;
                *reopen_warned = false;
            }
            Err(e) => {
                if !*reopen_warned {
                    *reopen_warned = true;
                    let what = if file.is_some() {
                        "writing to the file open before"
                    } else {
                        "lines are lost until it can be opened"
                    };
                    log::error!("access log: cannot open {}: {e}; {what}", path.display());
                }
                *reopen_due = true;
            }
        }
    }
}

impl Sink {
    fn name(&self) -> String {
        match self {
            Sink::File { path, .. } => path.display().to_string(),
            Sink::Syslog { socket_path, .. } => format!("syslog {}", socket_path.display()),
        }
    }
}

/// Writes `data` with as few `write`s as the kernel allows (one, for a
/// regular file opened `O_APPEND`: the whole buffer lands at the end in one
/// piece). On failure returns how many bytes were written.
fn write_all_counted(f: &mut File, data: &[u8]) -> Result<(), (io::Error, usize)> {
    let mut done = 0;
    while done < data.len() {
        match f.write(&data[done..]) {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), done)),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, done)),
        }
    }
    Ok(())
}

/// Sends each line of `data` as one datagram (without its newline). A
/// socket gone (syslog restarted) is reconnected once.
fn send_lines(
    socket: &mut Option<UnixDatagram>,
    path: &Path,
    data: &[u8],
) -> Result<(), (io::Error, usize)> {
    let mut done = 0;
    let mut reconnected = false;
    let mut first_error = None;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        loop {
            let Some(s) = socket.as_ref() else {
                if !reconnected {
                    reconnected = true;
                    *socket = connect_syslog(path);
                    continue;
                }
                first_error.get_or_insert_with(|| io::Error::from(io::ErrorKind::NotConnected));
                break;
            };
            match s.send(body) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    // A reader that does not keep up: this line is lost.
                    first_error.get_or_insert(e);
                    break;
                }
                Err(e) => {
                    *socket = None;
                    if reconnected {
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        if first_error.is_none() {
            done += line.len();
        } else {
            break;
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err((e, done)),
    }
}

fn connect_syslog(path: &Path) -> Option<UnixDatagram> {
    let s = UnixDatagram::unbound().ok()?;
    s.connect(path).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

/// (uid, gid) a file created by root is handed to, if we are root and the
/// workers run as someone else.
fn owner_ids(creds: Option<&Credentials>) -> Option<(Option<u32>, u32)> {
    let c = creds?;
    nix::unistd::geteuid()
        .is_root()
        .then(|| (c.uid.map(|u| u.as_raw()), c.gid.as_raw()))
}

/// Opens (creating it mode 0640 if missing) `path` for appending, with the
/// caller's own rights: a worker calls it after it dropped its privileges,
/// so it follows a symlink or opens a FIFO or `/dev/stdout` only as far as
/// the workers' user may, and changes no owner. The open does not block
/// on a FIFO without a reader (`ENXIO`, retried at the next write); the
/// file is then put back in blocking mode, writes are whole buffers.
pub fn open_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) - nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    Ok(file)
}

/// For root: creates `path` (mode 0640) if, and only if, nothing is there
/// yet, and hands it to `owner`. `O_CREAT|O_EXCL` (and `O_NOFOLLOW`) never
/// follows a symlink, not even a dangling one, and never opens what
/// exists: whatever already sits at the path (a file, a symlink a worker
/// planted, a FIFO) is left untouched, neither opened nor chowned by root
/// (CVE-2016-1247's pattern: root chowning the target of a symlink in a
/// directory the workers' user can write). Returns whether it created it.
pub fn create_owned(path: &Path, owner: (Option<u32>, u32)) -> io::Result<bool> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match created {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    let (uid, gid) = owner;
    if let Err(e) = std::os::unix::fs::fchown(&file, uid, Some(gid)) {
        // A root-owned empty file would keep the workers out for good;
        // without it a worker may still create the file itself.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(true)
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

/// The parts of a request head a line shows.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields<'a> {
    /// The request line as read (up to the first CR or LF), `None` if not
    /// even one byte of it arrived.
    line: Option<&'a [u8]>,
    referer: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// Picks the request line and the first Referer and User-Agent from
    /// whole header lines of `head` (as nginx 1.22 does: the first of each).
    fn of(head: &'a [u8]) -> Fields<'a> {
        // Empty lines before the request line are skipped (RFC 9112 2.2).
        let start = head
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(head.len());
        let head = &head[start..];
        if head.is_empty() {
            return Fields::default();
        }
        let line_end = head
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(head.len());
        let mut fields = Fields {
            line: Some(&head[..line_end]),
            ..Fields::default()
        };
        let mut rest = &head[line_end..];
        // Skip the line's end, then take each whole header line.
        rest = rest.strip_prefix(b"\r").unwrap_or(rest);
        let Some(after) = rest.strip_prefix(b"\n") else {
            return fields;
        };
        rest = after;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            rest = &rest[nl + 1..];
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"referer") {
                fields.referer.get_or_insert(value);
            } else if name.eq_ignore_ascii_case(b"user-agent") {
                fields.user_agent.get_or_insert(value);
            }
        }
        fields
    }

    /// method, target, protocol: the request line split at its first two
    /// spaces; what is not there is `None`.
    fn request_parts(&self) -> [Option<&'a [u8]>; 3] {
        let Some(line) = self.line else {
            return [None; 3];
        };
        let mut parts = line.splitn(3, |&b| b == b' ');
        [parts.next(), parts.next(), parts.next()]
    }
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// nginx's log escaping: `"`, `\` and every byte outside 0x20-0x7e as
/// `\xHH` (upper case); `-` for a missing field.
fn push_nginx(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    let Some(v) = field else {
        buf.push(b'-');
        return;
    };
    let mut plain = 0;
    for (i, &b) in v.iter().enumerate() {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            continue;
        }
        buf.extend_from_slice(&v[plain..i]);
        buf.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]);
        plain = i + 1;
    }
    buf.extend_from_slice(&v[plain..]);
}

/// A JSON string (or `null`): `"` and `\` escaped, control characters as
/// `\n`, `\r`, `\t` or `\u00XX`, valid UTF-8 kept, and each byte that is
/// not part of valid UTF-8 as `\u00XX` (its Latin-1 reading), so that every
/// line is valid JSON whatever the client sent.
fn push_json(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    let Some(mut v) = field else {
        buf.extend_from_slice(b"null");
        return;
    };
    buf.push(b'"');
    loop {
        let (valid, bad) = match std::str::from_utf8(v) {
            Ok(s) => (s.as_bytes(), None),
            Err(e) => (
                &v[..e.valid_up_to()],
                Some(e.error_len().unwrap_or(v.len() - e.valid_up_to())),
            ),
        };
        let mut plain = 0;
        for (i, &b) in valid.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f | 0x7f => b"",
                _ => continue,
            };
            buf.extend_from_slice(&valid[plain..i]);
            if esc.is_empty() {
                push_u00(buf, b);
            } else {
                buf.extend_from_slice(esc);
            }
            plain = i + 1;
        }
        buf.extend_from_slice(&valid[plain..]);
        let Some(n) = bad else { break };
        let from = valid.len();
        for &b in &v[from..from + n] {
            push_u00(buf, b);
        }
        v = &v[from + n..];
    }
    buf.push(b'"');
}

fn push_u00(buf: &mut Vec<u8>, b: u8) {
    buf.extend_from_slice(&[
        b'\\',
        b'u',
        b'0',
        b'0',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// `n` with at least `width` digits, zero-padded.
fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut m = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    let start = i.min(digits.len() - width.min(20));
    buf.extend_from_slice(&digits[start..]);
}

/// `$remote_addr`, `-` when unknown.
fn push_addr(buf: &mut Vec<u8>, peer: Option<IpAddr>) {
    match peer {
        None => buf.push(b'-'),
        Some(IpAddr::V4(a)) => {
            for (i, o) in a.octets().iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                push_u64(buf, u64::from(*o));
            }
        }
        Some(IpAddr::V6(a)) => {
            // std's formatting, into a stack buffer: no allocation.
            let mut text = [0u8; 64];
            let mut w = &mut text[..];
            let _ = write!(w, "{a}");
            let left = w.len();
            buf.extend_from_slice(&text[..text.len() - left]);
        }
    }
}

/// The time strings of the current second.
struct Clock {
    /// The `Instant` at which this wall-clock second began (for JSON's ms).
    second_start: Instant,
    /// `10/Oct/2000:13:55:36 -0700`
    local: [u8; 26],
    /// `2000-10-10T13:55:36`
    iso: [u8; 19],
    /// `-07:00`
    iso_offset: [u8; 6],
    /// `Oct 10 20:55:36` (UTC, as the daemon's own syslog lines)
    syslog: [u8; 15],
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            second_start: Instant::now(),
            local: *b"01/Jan/1970:00:00:00 +0000",
            iso: *b"1970-01-01T00:00:00",
            iso_offset: *b"+00:00",
            syslog: *b"Jan  1 00:00:00",
        }
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl Clock {
    fn set(&mut self, wall: SystemTime, now: Instant) {
        let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() as i64;
        self.second_start = now
            .checked_sub(Duration::from_nanos(u64::from(since.subsec_nanos())))
            .unwrap_or(now);
        let offset = crate::os::sys::utc_offset(secs).unwrap_or(0);
        self.fill(secs, offset);
    }

    /// Builds every string for `secs` since the epoch in a zone `offset`
    /// seconds east of UTC.
    fn fill(&mut self, secs: i64, offset: i32) {
        let local = Civil::of(secs + i64::from(offset));
        let sign = if offset < 0 { b'-' } else { b'+' };
        let off = offset.unsigned_abs();
        let (oh, om) = ((off / 3600) as u64, (off % 3600 / 60) as u64);
        let mut b = Vec::with_capacity(32);
        push_padded(&mut b, local.day, 2);
        b.push(b'/');
        b.extend_from_slice(MONTHS[local.month as usize - 1]);
        b.push(b'/');
        push_padded(&mut b, local.year, 4);
        b.push(b':');
        local.push_hms(&mut b, b':');
        b.push(b' ');
        b.push(sign);
        push_padded(&mut b, oh, 2);
        push_padded(&mut b, om, 2);
        copy_into(&mut self.local, &b);

        b.clear();
        push_padded(&mut b, local.year, 4);
        b.push(b'-');
        push_padded(&mut b, local.month, 2);
        b.push(b'-');
        push_padded(&mut b, local.day, 2);
        b.push(b'T');
        local.push_hms(&mut b, b':');
        copy_into(&mut self.iso, &b);

        b.clear();
        b.push(sign);
        push_padded(&mut b, oh, 2);
        b.push(b':');
        push_padded(&mut b, om, 2);
        copy_into(&mut self.iso_offset, &b);

        let utc = Civil::of(secs);
        b.clear();
        b.extend_from_slice(MONTHS[utc.month as usize - 1]);
        b.push(b' ');
        if utc.day < 10 {
            b.push(b' ');
        }
        push_u64(&mut b, utc.day);
        b.push(b' ');
        utc.push_hms(&mut b, b':');
        copy_into(&mut self.syslog, &b);
    }
}

fn copy_into<const N: usize>(dst: &mut [u8; N], src: &[u8]) {
    let n = N.min(src.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// A broken-down proleptic Gregorian date and time.
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Civil {
    /// From seconds since 1970-01-01 00:00:00 (Howard Hinnant's
    /// days-to-civil algorithm); times before 1970 are shown as 1970.
    fn of(secs: i64) -> Civil {
        let secs = secs.max(0) as u64;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    fn push_hms(&self, b: &mut Vec<u8>, sep: u8) {
        push_padded(b, self.hour, 2);
        b.push(sep);
        push_padded(b, self.minute, 2);
        b.push(sep);
        push_padded(b, self.second, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx(v: &[u8]) -> String {
        let mut b = Vec::new();
        push_nginx(&mut b, Some(v));
        String::from_utf8(b).unwrap()
    }

    fn json(v: &[u8]) -> String {
        let mut b = Vec::new();
        push_json(&mut b, Some(v));
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn nginx_escaping() {
        assert_eq!(nginx(b"GET / HTTP/1.1"), "GET / HTTP/1.1");
        assert_eq!(nginx(b"a\"b\\c"), "a\\x22b\\x5Cc");
        assert_eq!(
            nginx(b"\x16\x03\x01\x00\xa5\t\x7f\xff~ "),
            "\\x16\\x03\\x01\\x00\\xA5\\x09\\x7F\\xFF~ "
        );
        let mut b = Vec::new();
        push_nginx(&mut b, None);
        assert_eq!(b, b"-");
    }

    #[test]
    fn json_escaping_is_always_valid_json() {
        assert_eq!(json(b"plain"), "\"plain\"");
        assert_eq!(
            json(b"a\"b\\c\n\t\x01\x7f"),
            "\"a\\\"b\\\\c\\n\\t\\u0001\\u007F\""
        );
        assert_eq!(json("é".as_bytes()), "\"é\"");
        assert_eq!(json(b"a\xffb\xc3"), "\"a\\u00FFb\\u00C3\"");
        let mut b = Vec::new();
        push_json(&mut b, None);
        assert_eq!(b, b"null");
    }

    #[test]
    fn numbers() {
        let mut b = Vec::new();
        push_u64(&mut b, 0);
        b.push(b' ');
        push_u64(&mut b, 18_446_744_073_709_551_615);
        b.push(b' ');
        push_padded(&mut b, 7, 3);
        b.push(b' ');
        push_padded(&mut b, 1234, 2);
        assert_eq!(b, b"0 18446744073709551615 007 1234");
    }

    #[test]
    fn fields_of_a_head() {
        let f = Fields::of(
            b"\r\nGET /x HTTP/1.1\r\nHost: a\r\nreferer:  http://r/ \r\nUser-Agent: \tua 1\r\nReferer: second\r\nUSER-AGENT: u2\r\n\r\n",
        );
        assert_eq!(f.line, Some(&b"GET /x HTTP/1.1"[..]));
        assert_eq!(f.referer, Some(&b"http://r/"[..]));
        assert_eq!(f.user_agent, Some(&b"ua 1"[..]));
        assert_eq!(
            f.request_parts(),
            [Some(&b"GET"[..]), Some(&b"/x"[..]), Some(&b"HTTP/1.1"[..])]
        );
        // What of a refused request arrived: part of a line, no headers.
        let f = Fields::of(b"GET / HT");
        assert_eq!(f.line, Some(&b"GET / HT"[..]));
        assert_eq!(f.referer, None);
        // A header line not yet complete is not read.
        let f = Fields::of(b"GET / HTTP/1.1\r\nUser-Agent: x\r\nReferer: r");
        assert_eq!((f.user_agent, f.referer), (Some(&b"x"[..]), None));
        // Empty values are there, but empty ("" in the line, not -).
        let f = Fields::of(b"GET / HTTP/1.1\r\nReferer:\r\n\r\n");
        assert_eq!(f.referer, Some(&b""[..]));
        assert_eq!(Fields::of(b"\r\n"), Fields::default());
        assert_eq!(
            Fields::of(b"\x16\x03").request_parts(),
            [Some(&b"\x16\x03"[..]), None, None]
        );
    }

    #[test]
    fn time_strings() {
        let mut c = Clock::default();
        // 2000-10-10 20:55:36 UTC, shown at -07:00 like Apache's example.
        c.fill(971_211_336, -7 * 3600);
        assert_eq!(&c.local, b"10/Oct/2000:13:55:36 -0700");
        assert_eq!(&c.iso, b"2000-10-10T13:55:36");
        assert_eq!(&c.iso_offset, b"-07:00");
        assert_eq!(&c.syslog, b"Oct 10 20:55:36");
        c.fill(951_782_400, 5 * 3600 + 30 * 60); // 2000-02-29 00:00:00 UTC
        assert_eq!(&c.local, b"29/Feb/2000:05:30:00 +0530");
        assert_eq!(&c.syslog, b"Feb 29 00:00:00");
        c.fill(0, 0);
        assert_eq!(&c.local, b"01/Jan/1970:00:00:00 +0000");
        assert_eq!(&c.syslog, b"Jan  1 00:00:00");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        for bad in ["", "k", "-1", "1g", "1.5k", " 1k", "100m"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

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

    // Root's creation never goes through what is at the path: a symlink
    // (dangling or not) or a FIFO is left alone and its target untouched;
    // only a path with nothing there is created, mode 0640.
    #[test]
    fn create_owned_touches_nothing_that_exists() {
        let dir = std::env::temp_dir().join(format!("preforkd-al-unit2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        struct Dir(PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _guard = Dir(dir.clone());
        let me = (
            Some(nix::unistd::geteuid().as_raw()),
            nix::unistd::getegid().as_raw(),
        );
        let target = dir.join("target");
        let link = dir.join("link");
        let dangling = dir.join("dangling");
        std::fs::write(&target, "x").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
        assert!(!create_owned(&link, me).unwrap());
        assert!(!create_owned(&dangling, me).unwrap());
        assert!(!dir.join("nowhere").exists(), "followed a dangling symlink");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
        let fresh = dir.join("access.log");
        assert!(create_owned(&fresh, me).unwrap());
        let meta = std::fs::symlink_metadata(&fresh).unwrap();
        assert!(meta.file_type().is_file());
        // 0640, less what the umask takes away, never more.
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        assert_eq!((mode & !0o640, mode & 0o600), (0, 0o600), "mode {mode:o}");
        assert!(!create_owned(&fresh, me).unwrap());
        // A FIFO without a reader: the worker's open fails at once
        // instead of hanging the worker.
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(!create_owned(&fifo, me).unwrap());
        let err = open_file(&fifo).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENXIO));
    }
}
