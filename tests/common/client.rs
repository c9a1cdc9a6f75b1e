//! The client side of the harness: raw TCP on loopback. Open a connection,
//! send bytes, read one response or everything up to the server's close
//! (each read bounded by a deadline), redact the `Date` value so that whole
//! answers can be compared byte for byte, and probe with a GET; and wait,
//! by the socket queues of both ends, until the server has read what was
//! sent ([`wait_peer_read_all`]) or its write has blocked
//! ([`wait_peer_write_blocked`]), instead of pausing and hoping. Processes,
//! logs and the /proc readers are `process.rs`'s job.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use super::process::tcp_rows;
use super::{wait_until, wait_until_every, WAIT};

/// The longest a single expected answer may take.
pub const ANSWER: Duration = Duration::from_secs(5);

pub const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
pub const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
/// The body of the default configured response.
pub const HELLO: &str = "Hello, World!\n";

/// A new connection with read/write timeouts (reads 2 s, as `request`
/// expects; see [`open`] for reads bounded by [`ANSWER`]).
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// A new connection to `addr`, reads and writes bounded by [`ANSWER`].
pub fn open(addr: SocketAddr) -> TcpStream {
    let s = connect(addr);
    s.set_read_timeout(Some(ANSWER)).unwrap();
    s
}

/// A new connection to `addr` from `source` (any of 127.0.0.0/8, so that
/// a test can be a client whose address differs from another's), reads
/// and writes bounded by [`ANSWER`].
pub fn open_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage};
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    let src = SockaddrStorage::from(SocketAddr::new(source, 0));
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &src).expect("bind the source address");
    socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )
    .expect("connect");
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(ANSWER)).unwrap();
    s.set_write_timeout(Some(ANSWER)).unwrap();
    s
}

pub fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).expect("send to the server");
}

/// Waits (bounded) until the peer has read every byte sent on `s` so far:
/// all are acknowledged (`s`'s send queue is empty: they are in the peer's
/// kernel) and the peer's receive queue is empty (its process has read
/// them). What `s` sends next then reaches the peer in a read of its own.
/// A peer side that is gone has nothing left to read. From /proc/net/tcp:
/// IPv4 only. Polled every millisecond: a test may wait once per byte.
pub fn wait_peer_read_all(s: &TcpStream) {
    let every = Duration::from_millis(1);
    wait_until_every(every, WAIT, "the peer to read every byte sent", || {
        let (me, peer) = tcp_rows(s);
        let Some(peer) = peer else {
            return Some(());
        };
        let me = me.expect("our own side of the connection in /proc/net/tcp");
        (me.tx_queue == 0 && peer.rx_queue == 0).then_some(())
    });
}

/// Sends `bytes` on `s` and waits until the peer has read them
/// ([`wait_peer_read_all`]): the next send is a read of its own for it.
pub fn send_read(s: &mut TcpStream, bytes: &[u8]) {
    send(s, bytes);
    wait_peer_read_all(s);
}

/// How long the queues must stand still for [`wait_peer_write_blocked`].
const STILL: Duration = Duration::from_millis(100);

/// Waits (bounded) until the peer's writes to `s`, which the caller does
/// not read meanwhile, are held up: the peer's send queue holds bytes, it
/// and `s`'s receive queue have not changed for 100 ms, and the two hold
/// less than `total`, all that the peer has to send. The rest is still in
/// the peer's process, which has stopped writing: its socket has no room,
/// so its write would block (WouldBlock). Returns (`s`'s receive queue,
/// the peer's send queue). IPv4 only (/proc/net/tcp).
pub fn wait_peer_write_blocked(s: &TcpStream, total: u64) -> (u64, u64) {
    let mut last: Option<((u64, u64), Instant)> = None;
    wait_until(WAIT, "the peer's write to block", || {
        let (me, peer) = tcp_rows(s);
        let now = (me?.rx_queue, peer?.tx_queue);
        match last {
            Some((was, since)) if was == now => {
                let held = now.1 > 0 && now.0 + now.1 < total;
                (held && since.elapsed() >= STILL).then_some(now)
            }
            _ => {
                last = Some((now, Instant::now()));
                None
            }
        }
    })
}

/// Checks that `date` is an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`,
/// not one of the obsolete forms `parse_http_date` also takes).
pub fn imf_fixdate(date: &str) -> SystemTime {
    let t = httpdate::parse_http_date(date)
        .unwrap_or_else(|e| panic!("Date {date:?} does not parse: {e}"));
    assert_eq!(
        httpdate::fmt_http_date(t),
        date,
        "Date {date:?} is not in IMF-fixdate form"
    );
    t
}

/// Replaces the value of every `Date` header by `D`, after checking that it
/// is an IMF-fixdate.
pub fn redact_dates(raw: &str) -> String {
    const KEY: &str = "\r\nDate: ";
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find(KEY) {
        let start = i + KEY.len();
        out.push_str(&rest[..start]);
        let date = rest
            .get(start..start + 29)
            .unwrap_or_else(|| panic!("a 29-byte Date value in {raw:?}"));
        imf_fixdate(date);
        out.push('D');
        rest = &rest[start + 29..];
        assert!(rest.starts_with("\r\n"), "Date line ends after 29 bytes");
    }
    out.push_str(rest);
    out
}

/// Reads until EOF, or until the socket's read timeout passes without
/// data; a reset ends it too. For answers that need no clean close.
pub fn read_until_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What became of a kept-alive connection between two requests.
pub enum Idle {
    Open,
    /// The peer closed (or reset) it.
    Closed,
    /// The peer sent something nobody asked for.
    Unsolicited,
}

/// [`Idle`] of `s`, by a non-blocking peek.
pub fn idle_state(s: &TcpStream) -> Idle {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    s.set_nonblocking(false).unwrap();
    match r {
        Ok(0) => Idle::Closed,
        Ok(_) => Idle::Unsolicited,
        Err(e) if e.kind() == ErrorKind::WouldBlock => Idle::Open,
        Err(_) => Idle::Closed,
    }
}

/// Sets the read timeout to what is left until `deadline`; `None` once it
/// has passed.
fn until(s: &TcpStream, deadline: Instant) -> Option<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    s.set_read_timeout(Some(left)).unwrap();
    Some(())
}

fn is_retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Everything until the server closes, which must be a clean close (EOF,
/// not a reset) within `within`. Raw bytes, as text.
pub fn read_to_eof(s: &mut TcpStream, within: Duration) -> Result<String, String> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if until(s, deadline).is_none() {
            return Err(format!(
                "not closed within {within:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ));
        }
        match s.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if is_retry(&e) => {}
            Err(e) => {
                return Err(format!(
                    "{e} instead of a clean close; got {:?}",
                    String::from_utf8_lossy(&out)
                ))
            }
        }
    }
}

/// Reads exactly one response (head, then Content-Length bytes unless the
/// status has no body) within `within`; raw.
pub fn read_one(s: &mut TcpStream, within: Duration) -> Result<String, String> {
    read_one_of(s, within, false)
}

/// [`read_one`] for the answer to HEAD: the head only, whatever
/// Content-Length says.
pub fn read_one_head(s: &mut TcpStream, within: Duration) -> Result<String, String> {
    read_one_of(s, within, true)
}

fn read_one_of(s: &mut TcpStream, within: Duration, head_only: bool) -> Result<String, String> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 1];
    let mut need: Option<usize> = None;
    loop {
        if need == Some(out.len()) {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        if until(s, deadline).is_none() {
            return Err(format!(
                "no complete response within {within:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ));
        }
        match s.read(&mut buf) {
            Ok(0) => {
                return Err(format!(
                    "EOF mid-response after {:?}",
                    String::from_utf8_lossy(&out)
                ))
            }
            Ok(_) => out.push(buf[0]),
            Err(e) if is_retry(&e) => {}
            Err(e) => return Err(format!("{e} after {:?}", String::from_utf8_lossy(&out))),
        }
        if need.is_none() && out.ends_with(b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out).into_owned();
            let len = head
                .split("\r\n")
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().expect("a numeric Content-Length"))
                })
                .unwrap_or(0);
            let bodiless = head_only
                || head.starts_with("HTTP/1.1 1")
                || head.starts_with("HTTP/1.1 204 ")
                || head.starts_with("HTTP/1.1 304 ");
            need = Some(out.len() + if bodiless { 0 } else { len });
        }
    }
}

/// The next response on `s` (within [`ANSWER`]), Date redacted; panics
/// saying what came instead.
pub fn answer(s: &mut TcpStream) -> String {
    redact_dates(&read_one(s, ANSWER).unwrap_or_else(|e| panic!("{e}")))
}

/// [`answer`] to a HEAD request.
pub fn answer_to_head(s: &mut TcpStream) -> String {
    redact_dates(&read_one_head(s, ANSWER).unwrap_or_else(|e| panic!("{e}")))
}

/// Everything up to a clean close within `within`, Date redacted; panics
/// otherwise.
pub fn answers_to_eof(s: &mut TcpStream, within: Duration) -> String {
    redact_dates(&read_to_eof(s, within).unwrap_or_else(|e| panic!("{e}")))
}

// ---------------------------------------------------------------------------
// Expected responses, as the server lays them out (with `Date: D`)

/// The parts, one after the other.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub const TEXT: &str = "text/plain; charset=utf-8";
pub const ALLOW: &str = "Allow: GET, HEAD, OPTIONS\r\n";

/// How a response says whether the connection stays open.
#[derive(Clone, Copy, Debug)]
pub enum Persist {
    /// HTTP/1.1 default: no `Connection` header.
    KeepAlive,
    /// HTTP/1.0 keep-alive.
    KeepAlive10,
    Close,
}

impl Persist {
    pub fn header(self) -> &'static str {
        match self {
            Persist::KeepAlive => "",
            Persist::KeepAlive10 => "Connection: keep-alive\r\n",
            Persist::Close => "Connection: close\r\n",
        }
    }
}

/// A response with a body, as the server lays it out.
pub fn response(status: &str, content_type: &str, extra: &str, body: &str, p: Persist) -> String {
    format!(
        "{}{body}",
        response_head(status, content_type, extra, body.len(), p)
    )
}

pub fn response_head(
    status: &str,
    content_type: &str,
    extra: &str,
    len: usize,
    p: Persist,
) -> String {
    format!(
        "HTTP/1.1 {status}\r\nDate: D\r\nServer: preforkd\r\nContent-Type: {content_type}\r\n\
         Content-Length: {len}\r\n{extra}{}\r\n",
        p.header()
    )
}

/// The default configured response.
pub fn ok(p: Persist) -> String {
    response("200 OK", TEXT, "", HELLO, p)
}

/// The default configured response to HEAD: the same head, no body.
pub fn ok_head(p: Persist) -> String {
    response_head("200 OK", TEXT, "", HELLO.len(), p)
}

/// 204 to OPTIONS: no body, no Content-Length.
pub fn no_content(p: Persist) -> String {
    format!(
        "HTTP/1.1 204 No Content\r\nDate: D\r\nServer: preforkd\r\n{ALLOW}{}\r\n",
        p.header()
    )
}

/// 405 to any method but GET, HEAD and OPTIONS.
pub fn not_allowed(p: Persist) -> String {
    response(
        "405 Method Not Allowed",
        TEXT,
        ALLOW,
        "Method Not Allowed\n",
        p,
    )
}

/// An error answer: always `Connection: close`, the reason as body.
pub fn rejection(status: u16) -> String {
    let reason = match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => panic!("no error status {status}"),
    };
    response(
        &format!("{status} {reason}"),
        TEXT,
        "",
        &format!("{reason}\n"),
        Persist::Close,
    )
}

/// One GET with `Connection: close` on a new connection: Ok(how long it
/// took) for exactly the default 200 and a clean close.
pub fn get_ok(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, ANSWER).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(ANSWER)).unwrap();
    s.write_all(GET_CLOSE).map_err(|e| format!("write: {e}"))?;
    let answer = read_to_eof(&mut s, ANSWER)?;
    if redact_dates(&answer) == ok(Persist::Close) {
        Ok(start.elapsed())
    } else {
        Err(format!("bad answer {answer:?}"))
    }
}

/// A GET on a kept-alive connection is answered with the default 200
/// within `within`: Ok(how long it took).
pub fn get_on(s: &mut TcpStream, within: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    s.write_all(GET).map_err(|e| format!("write: {e}"))?;
    let answer = read_one(s, within)?;
    if redact_dates(&answer) == ok(Persist::KeepAlive) {
        Ok(start.elapsed())
    } else {
        Err(format!("bad answer {answer:?}"))
    }
}

/// Reads exactly one response (head and Content-Length body) from `s`,
/// within the socket's read timeout; panics otherwise.
pub fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => out.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            other => panic!(
                "connection ended mid-head ({other:?}) after {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    let head = String::from_utf8_lossy(&out).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let head_only = head.starts_with("HTTP/1.1 204") || head.starts_with("HTTP/1.1 100");
    let mut body = vec![0u8; if head_only { 0 } else { len }];
    s.read_exact(&mut body).expect("read body");
    head + &String::from_utf8_lossy(&body)
}

/// The status code of a response text.
pub fn status(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"))
}

/// One response as read by [`try_read_response`].
pub struct Response {
    pub status: u16,
    pub close: bool,
    /// The whole response, head and body.
    pub text: String,
    pub body: String,
}

impl Response {
    /// The value of the first `name` field of the head (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        let head = self.text.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one complete response (head, then Content-Length bytes), within
/// the socket's read timeout; a signal (EINTR) is read through, anything
/// else (EOF, reset, timeout, no Content-Length, bytes after the body) is
/// an error saying how far it got.
pub fn try_read_response(s: &mut TcpStream) -> Result<Response, String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let mut fill = |buf: &mut Vec<u8>, what: &str| -> Result<(), String> {
        loop {
            return match s.read(&mut chunk) {
                Ok(0) => Err(format!("EOF {what} after {} bytes", buf.len())),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(format!("read {what} after {} bytes: {e}", buf.len())),
            };
        }
    };
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(&mut buf, "before a complete head")?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut len = None;
    let mut close = false;
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse::<usize>().ok(),
                "connection" => close = v.trim().eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let head_only = status == 204 || (100..200).contains(&status);
    let len = if head_only {
        0
    } else {
        len.ok_or_else(|| format!("no Content-Length in {head:?}"))?
    };
    while buf.len() < head_end + len {
        fill(&mut buf, "before the end of the body")?;
    }
    if buf.len() > head_end + len {
        return Err(format!(
            "{} bytes after the body",
            buf.len() - head_end - len
        ));
    }
    Ok(Response {
        status,
        close,
        body: String::from_utf8_lossy(&buf[head_end..]).into_owned(),
        text: String::from_utf8_lossy(&buf).into_owned(),
    })
}
