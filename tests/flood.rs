//! Connection pressure (issue 16) against the real binary, over loopback:
//! a worker at `worker_connections` makes room by closing an idle
//! connection before an unfinished head, and never one being served; a
//! head trickling below `min_request_rate` is answered 408 well before
//! `header_timeout`; `max_connections_per_client` closes a client's idle
//! connections first, else its new one; and a legit client gets through a
//! worker that a flood of idle connections or slow heads keeps full.
//!
//! Connections are told apart by the client address they come from
//! (127.0.0.1 and 127.0.0.2). Every wait is bounded; the order in which the
//! worker has seen the connections is made sure of by an answer it sent
//! (a 100 Continue, a response on another connection), never by sleeping.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::socket::{
    bind, connect as nix_connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn,
};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
/// A head cut short: the worker holds it as an unfinished head.
const PART_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHo";
/// A body announced, not sent: once the worker answers 100 Continue it is
/// reading the body, a connection being served.
const POST_EXPECT: &[u8] =
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n";

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const LEGIT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// A connection to `to` from the loopback address `from`, with timeouts.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let SocketAddr::V4(to) = to else {
        panic!("an IPv4 listener")
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(from, 0)),
    )
    .unwrap();
    nix_connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to)).unwrap();
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).unwrap();
}

/// One response within the read timeout; panics saying what came instead.
fn response(s: &mut TcpStream, what: &str) -> Response {
    try_read_response(s).unwrap_or_else(|e| panic!("{what}: no response: {e}"))
}

/// The server closed `s` without a byte of answer: EOF or a reset, within
/// the read timeout.
fn closed_unanswered(s: &mut TcpStream) -> Result<(), String> {
    let mut buf = [0u8; 512];
    loop {
        return match s.read(&mut buf) {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!(
                "got an answer: {:?}",
                String::from_utf8_lossy(&buf[..n])
            )),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
            Err(e) => Err(format!("still open ({e})")),
        };
    }
}

/// `s` is still open and unanswered: a read times out after `for_`.
fn still_open(s: &mut TcpStream, for_: Duration) -> bool {
    s.set_read_timeout(Some(for_)).unwrap();
    let mut buf = [0u8; 64];
    let open = matches!(s.read(&mut buf), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    open
}

/// A connection reading a body: sends a head with `Expect: 100-continue`
/// and waits for the 100, proof that the worker is reading its body.
fn busy(server: &Server) -> TcpStream {
    let mut s = connect_from(LEGIT, server.addr);
    send(&mut s, POST_EXPECT);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("no 100 Continue ({other:?}) after {head:?}"),
        }
    }
    assert_eq!(head, b"HTTP/1.1 100 Continue\r\n\r\n");
    s
}

/// Sockets a worker holds (its listeners and connections).
fn sockets(worker: i32) -> usize {
    socket_inodes(worker).len()
}

// Proves the order of eviction at worker_connections: an idle connection
// goes before an unfinished head even when the head is older; then the
// head; a connection whose body is being read is never closed.
#[test]
fn idle_goes_before_an_unfinished_head_and_a_busy_connection_never() {
    quiet_sigchld();
    let server = Server::start_with(Options {
        pid_file: true,
        ..Options::toml(
            "workers = 1\nworker_connections = 3\nheader_timeout = \"30s\"\n\
             keepalive_timeout = \"30s\"\nmin_request_rate = \"off\"\n\
             max_connections_per_client = 0\n",
        )
    });
    // Oldest first: an unfinished head, a connection reading a body, an
    // idle keep-alive connection (its answer shows the worker has read
    // everything sent before it).
    let mut head = connect_from(ATTACKER, server.addr);
    send(&mut head, PART_HEAD);
    let mut body = busy(&server);
    let mut idle = connect_from(LEGIT, server.addr);
    send(&mut idle, GET);
    assert_eq!(response(&mut idle, "the idle one's request").status, 200);

    // Full: a new connection is served, the idle one closed for it.
    let mut new = connect_from(LEGIT, server.addr);
    send(&mut new, GET_CLOSE);
    assert_eq!(response(&mut new, "a request to a full worker").status, 200);
    closed_unanswered(&mut idle).expect("the idle connection closed");
    assert!(
        still_open(&mut head, Duration::from_millis(300)),
        "the head went before the idle connection"
    );

    // Full again with the head and two bodies being read: the head goes.
    let mut body2 = busy(&server);
    let mut new = connect_from(LEGIT, server.addr);
    send(&mut new, GET_CLOSE);
    assert_eq!(response(&mut new, "a request to a full worker").status, 200);
    closed_unanswered(&mut head).expect("the unfinished head closed");
    // `-s status` counts both, by kind, per worker and in the totals.
    let status = server.control("status");
    let total = status.lines().find(|l| l.starts_with("total ")).unwrap();
    assert!(
        total.contains(" evicted_idle=1 ") && total.contains(" evicted_head=1 "),
        "{status}"
    );

    // Full with only connections being served: nothing is closed; the new
    // one waits until one finishes.
    let mut third = busy(&server);
    let mut waiting = connect_from(LEGIT, server.addr);
    send(&mut waiting, GET_CLOSE);
    assert!(
        still_open(&mut waiting, Duration::from_millis(500)),
        "a connection was answered while every one was being served"
    );
    for (s, name) in [(&mut body, "body"), (&mut body2, "body2")] {
        send(s, b"0123456789");
        let r = response(s, name);
        assert_eq!(r.status, 405, "{name}: {}", r.text);
    }
    drop(body);
    assert_eq!(
        response(&mut waiting, "the waiting request once room was made").status,
        200
    );
    send(&mut third, b"0123456789");
    assert_eq!(response(&mut third, "third").status, 405);

    let log = server.wait_for_log("pressure: full at worker_connections=3");
    assert!(log.starts_with("<28>"), "a warning: {log}");
    drop((body2, third));
    server.finish();
}

// Proves min_request_rate: a head trickling one byte per 100 ms (10 B/s,
// under the default 512/s) is answered 408 after the 2 s grace, well
// before header_timeout (10 s, the default); a head sent in three parts
// over 600 ms is answered 200.
#[test]
fn a_trickling_head_gets_408_well_before_header_timeout() {
    quiet_sigchld();
    let server = Server::start("workers = 1\n");
    let mut slow = connect_from(LEGIT, server.addr);
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let head = b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut answer = Vec::new();
    for &b in head.iter().cycle().take(100) {
        if slow.write_all(&[b]).is_err() {
            break;
        }
        // The pace: a read that waits up to 100 ms for an answer.
        let mut buf = [0u8; 1024];
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let took = started.elapsed();
    slow.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    answer.extend_from_slice(read_until_close(&mut slow).as_bytes());
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 408 "),
        "a 408 for the trickle, got {answer:?} after {took:?}"
    );
    assert!(
        took < Duration::from_secs(6),
        "the 408 came after {took:?}, not well before header_timeout (10s)"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "the 408 came after {took:?}, within the 2 s grace"
    );
    let log = server.wait_for_log("below min_request_rate=512/s");
    assert!(log.starts_with("<28>"), "a warning: {log}");

    // A head in three parts, 300 ms apart, keeps well above the rate.
    let mut ok = connect_from(LEGIT, server.addr);
    for (i, part) in [&b"GET / HT"[..], b"TP/1.1\r\nHost:", b" t\r\n\r\n"]
        .iter()
        .enumerate()
    {
        if i > 0 {
            assert!(still_open(&mut ok, Duration::from_millis(300)));
        }
        send(&mut ok, part);
    }
    assert_eq!(response(&mut ok, "a head in parts").status, 200);
    drop(ok);
    server.finish();
}

// Proves max_connections_per_client: a client at the cap with only
// unfinished heads has its new connection closed unanswered while another
// client is served; once one of its connections is idle, that one is
// closed instead and the new one served.
#[test]
fn a_client_past_its_cap_loses_its_idle_connections_then_its_new_ones() {
    quiet_sigchld();
    let server = Server::start(
        "workers = 1\nworker_connections = 50\nmax_connections_per_client = 3\n\
         min_request_rate = \"off\"\nheader_timeout = \"30s\"\nkeepalive_timeout = \"30s\"\n",
    );
    let mut heads: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = connect_from(ATTACKER, server.addr);
            send(&mut s, PART_HEAD);
            s
        })
        .collect();
    // The answer to another client shows the worker has read the heads.
    let mut other = connect_from(LEGIT, server.addr);
    send(&mut other, GET);
    assert_eq!(response(&mut other, "the other client").status, 200);

    let mut fourth = connect_from(ATTACKER, server.addr);
    // The worker may have closed it already.
    let _ = fourth.write_all(GET);
    closed_unanswered(&mut fourth).expect("the client's 4th connection closed");
    let log = server.wait_for_log("client=127.0.0.2 at max_connections_per_client=3");
    assert!(log.starts_with("<28>"), "a warning: {log}");
    // The other client is not affected, nor are the client's three.
    send(&mut other, GET);
    assert_eq!(response(&mut other, "the other client again").status, 200);
    for h in heads.iter_mut() {
        assert!(still_open(h, Duration::from_millis(100)));
    }

    // One of its three becomes idle (answered, keep-alive): a new one from
    // the client is served and that idle one closed.
    send(&mut heads[0], b"st: t\r\n\r\n");
    assert_eq!(response(&mut heads[0], "the completed head").status, 200);
    let mut fifth = connect_from(ATTACKER, server.addr);
    send(&mut fifth, GET_CLOSE);
    assert_eq!(
        response(&mut fifth, "the client's new connection").status,
        200
    );
    closed_unanswered(&mut heads[0]).expect("the client's idle connection closed");
    for h in heads[1..].iter_mut() {
        assert!(still_open(h, Duration::from_millis(100)));
    }
    drop((heads, other));
    server.finish();
}

// Proves max_connections_per_client_exempt: 127.0.0.1 (a local proxy,
// health checker or benchmark: one address for many clients) is not capped
// by default, 127.0.0.2 is; an empty list caps 127.0.0.1 too. Unfinished
// heads, so that no connection is idle (an idle one would make room).
#[test]
fn the_local_host_is_exempt_from_the_per_client_cap_unless_configured() {
    quiet_sigchld();
    let cfg = "workers = 1\nmax_connections_per_client = 2\nmin_request_rate = \"off\"\n";
    let kept = |server: &Server, from: Ipv4Addr| {
        let mut conns: Vec<TcpStream> = (0..4)
            .map(|_| {
                let mut s = connect_from(from, server.addr);
                send(&mut s, PART_HEAD);
                s
            })
            .collect();
        conns
            .iter_mut()
            .map(|s| still_open(s, Duration::from_millis(300)))
            .filter(|&open| open)
            .count()
    };
    let server = Server::start(cfg);
    assert_eq!(kept(&server, LEGIT), 4, "127.0.0.1 is exempt by default");
    assert_eq!(kept(&server, ATTACKER), 2, "127.0.0.2 is capped");
    server.finish();
    let server = Server::start(&format!("{cfg}max_connections_per_client_exempt = []\n"));
    assert_eq!(kept(&server, LEGIT), 2, "an empty list exempts nobody");
    server.finish();
}

/// A worker of `worker_connections = 8` kept full by `fill` connections
/// from the attacker; a legit client's fresh connections are answered
/// within a second each.
fn legit_gets_through(fill: impl Fn(&mut TcpStream)) {
    quiet_sigchld();
    let server = Server::start(
        "workers = 1\nworker_connections = 8\nheader_timeout = \"30s\"\n\
         keepalive_timeout = \"30s\"\nmin_request_rate = \"off\"\n",
    );
    let worker = server.wait_workers(1)[0];
    // Once it has answered, the worker has closed what only the master holds.
    assert_eq!(status(&server.get()), 200);
    let base = sockets(worker);
    let mut flood: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = connect_from(ATTACKER, server.addr);
            fill(&mut s);
            s
        })
        .collect();
    wait_until(WAIT, "the worker to hold the 8 connections", || {
        (sockets(worker) >= base + 8).then_some(())
    });
    for i in 0..3 {
        let started = Instant::now();
        let mut s = connect_from(LEGIT, server.addr);
        send(&mut s, GET_CLOSE);
        let r = response(&mut s, &format!("legit request {i}"));
        assert_eq!(r.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "legit request {i} took {:?}",
            started.elapsed()
        );
        // The attacker takes the room back.
        let mut s = connect_from(ATTACKER, server.addr);
        fill(&mut s);
        flood.push(s);
    }
    server.wait_for_log("pressure: full at worker_connections=8");
    drop(flood);
    server.finish();
}

#[test]
fn a_legit_request_gets_through_a_worker_full_of_idle_connections() {
    legit_gets_through(|_| {});
}

#[test]
fn a_legit_request_gets_through_a_worker_full_of_unfinished_heads() {
    legit_gets_through(|s| send(s, PART_HEAD));
}
