//! The PROXY protocol (issue 13) through the real binary: a
//! `"ADDR proxy_protocol"` listener takes the client's address from a v1
//! or v2 header (split across reads or not), and that address is the
//! client everywhere: the access log and a status route's `allow`. A v2
//! `LOCAL` header keeps the real peer. A connection without a valid
//! header, one whose header does not come within header_timeout, and one
//! from outside `proxy_protocol_from` are closed without an answer. Then
//! HAProxy (Debian `haproxy`, skipped with a message when absent) with
//! `send-proxy` and `send-proxy-v2` in front of preforkd, its clients
//! bound to 127.0.0.3 and 127.0.0.4 so that their addresses differ from
//! HAProxy's own.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// One proxy_protocol listener (the handed-over socket), an access log
/// written at once, and a metrics route for 192.0.2.0/24 and 127.0.0.3.
const PROXIED: &str = r#"
workers = 1
listen = ["{addr} proxy_protocol"]
header_timeout = "1s"

[access_log]
path = "access.log"
buffer = "0"

[[route]]
path = "/metrics"
kind = "metrics"
allow = ["192.0.2.0/24", "127.0.0.3/32"]
"#;

const GET_CLOSE_BYTES: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn v2_header(command: u8, source: [u8; 4]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | command);
    if command == 0 {
        h.extend_from_slice(&[0x00, 0, 0]);
        return h;
    }
    h.extend_from_slice(&[0x11, 0, 12]);
    h.extend_from_slice(&source);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&4321u16.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h
}

/// Lines of the access log, once it holds at least `n`.
fn access_lines(dir: &Path, n: usize) -> Vec<String> {
    let path = dir.join("access.log");
    wait_until(WAIT, &format!("{n} access log lines"), || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= n).then_some(lines)
    })
}

/// Sends `parts` one write at a time, each once the server has read the
/// one before (so that each is a read of its own), and reads to EOF.
fn exchange(addr: SocketAddr, from: IpAddr, parts: &[&[u8]]) -> String {
    let mut s = open_from(from, addr);
    for p in parts {
        send_read(&mut s, p);
    }
    read_to_eof(&mut s, ANSWER).unwrap()
}

/// The connection is closed (FIN, or a reset for input left unread) with
/// not one byte of answer, within `within` (and a sweep's slack).
fn closed_silently(s: &mut TcpStream, within: Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(within + Duration::from_secs(2)))
        .unwrap();
    let mut buf = Vec::new();
    let result = s.read_to_end(&mut buf);
    assert!(
        buf.is_empty(),
        "answered: {:?}",
        String::from_utf8_lossy(&buf)
    );
    match result {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed within {within:?}: {e}"),
    }
    assert!(started.elapsed() < within + Duration::from_secs(2));
}

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[test]
fn v1_and_v2_headers_name_the_client_in_the_log_and_allow() {
    let server = Server::start(PROXIED);
    let addr = server.addr;
    let v1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n";
    let answer = exchange(addr, LOOPBACK, &[&cat(&[v1, GET_CLOSE_BYTES])]);
    assert_eq!(status(&answer), 200, "{answer}");
    // Split: the header in two reads, then the request.
    let answer = exchange(addr, LOOPBACK, &[&v1[..9], &v1[9..], GET_CLOSE_BYTES]);
    assert_eq!(status(&answer), 200, "{answer}");
    let v2 = v2_header(1, [198, 51, 100, 9]);
    let answer = exchange(
        addr,
        LOOPBACK,
        &[&v2[..10], &cat(&[&v2[10..], GET_CLOSE_BYTES])],
    );
    assert_eq!(status(&answer), 200, "{answer}");
    // A v2 LOCAL header (a balancer's health check): the real peer.
    let local = v2_header(0, [0; 4]);
    let answer = exchange(
        addr,
        IpAddr::from([127, 0, 0, 5]),
        &[&cat(&[&local, GET_CLOSE_BYTES])],
    );
    assert_eq!(status(&answer), 200, "{answer}");
    // allow sees the header's address, not the socket's 127.0.0.1.
    let scrape = b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let answer = exchange(addr, LOOPBACK, &[&cat(&[v1, scrape])]);
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(answer.contains("preforkd_requests_total"));
    let outside = b"PROXY TCP4 198.51.100.1 127.0.0.1 5555 80\r\n";
    let answer = exchange(addr, LOOPBACK, &[&cat(&[outside, scrape])]);
    assert_eq!(status(&answer), 403, "{answer}");

    let lines = access_lines(server.dir.path(), 6);
    let clients: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        clients,
        [
            "192.0.2.7",
            "192.0.2.7",
            "198.51.100.9",
            "127.0.0.5",
            "192.0.2.7",
            "198.51.100.1"
        ],
        "{lines:#?}"
    );
    assert!(
        lines[5].contains("\"GET /metrics HTTP/1.1\" 403 "),
        "{}",
        lines[5]
    );
    server.finish();
}

#[test]
fn no_header_a_bad_one_or_a_late_one_closes_without_an_answer() {
    let server = Server::start(PROXIED);
    // HTTP straight to the listener: refused at the first bytes.
    let mut s = server.open();
    send(&mut s, GET_CLOSE_BYTES);
    closed_silently(&mut s, Duration::from_secs(1));
    // A broken header.
    let mut s = server.open();
    send(
        &mut s,
        b"PROXY TCP4 192.0.2.777 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\n\r\n",
    );
    closed_silently(&mut s, Duration::from_secs(1));
    // Half a header, then nothing: closed at header_timeout (1s).
    let mut s = server.open();
    send(&mut s, b"PROXY TCP4 192.0");
    closed_silently(&mut s, Duration::from_secs(1));
    // Nothing at all: the same.
    let mut s = server.open();
    closed_silently(&mut s, Duration::from_secs(1));
    // The worker lives on and still serves a good one.
    let answer = exchange(
        server.addr,
        LOOPBACK,
        &[&cat(&[
            b"PROXY TCP4 192.0.2.8 127.0.0.1 1 80\r\n",
            GET_CLOSE_BYTES,
        ])],
    );
    assert_eq!(status(&answer), 200, "{answer}");
    let lines = access_lines(server.dir.path(), 1);
    assert_eq!(
        lines.len(),
        1,
        "nothing logged for refused connections: {lines:#?}"
    );
    assert!(lines[0].starts_with("192.0.2.8 "), "{}", lines[0]);
    server.finish();
}

#[test]
fn only_proxy_protocol_from_may_send_a_header() {
    let server = Server::start(&PROXIED.replace(
        "header_timeout = \"1s\"",
        "header_timeout = \"1s\"\nproxy_protocol_from = [\"10.0.0.0/8\", \"127.0.0.7\"]",
    ));
    let request = cat(&[
        b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n",
        GET_CLOSE_BYTES,
    ]);
    let mut s = open_from(LOOPBACK, server.addr);
    send(&mut s, &request);
    closed_silently(&mut s, Duration::from_secs(1));
    let answer = exchange(server.addr, IpAddr::from([127, 0, 0, 7]), &[&request]);
    assert_eq!(status(&answer), 200, "{answer}");
    server.finish();
}

#[test]
fn max_connections_per_client_counts_the_header_address() {
    let server = Server::start(
        "workers = 1\nlisten = [\"{addr} proxy_protocol\"]\nmax_connections_per_client = 2\n\
         keepalive_timeout = \"30s\"\nmin_request_rate = \"off\"\n",
    );
    let keep_alive = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let connect = |client: &str| {
        let mut s = server.open();
        let header = format!("PROXY TCP4 {client} 127.0.0.1 5555 80\r\n");
        send(&mut s, &cat(&[header.as_bytes(), keep_alive]));
        assert_eq!(try_read_response(&mut s).unwrap().status, 200, "{client}");
        s
    };
    // All from HAProxy's one address (127.0.0.1), two clients by header.
    let mut first = connect("192.0.2.9");
    let mut second = connect("192.0.2.9");
    let mut other = connect("192.0.2.10");
    // The third of 192.0.2.9 is past the cap of 2: its idle-longest goes.
    let mut third = connect("192.0.2.9");
    server.wait_for_log("client=192.0.2.9 at max_connections_per_client=2");
    closed_silently(&mut first, Duration::from_secs(1));
    for (name, s) in [
        ("second", &mut second),
        ("third", &mut third),
        ("other", &mut other),
    ] {
        send(s, keep_alive);
        assert_eq!(try_read_response(s).unwrap().status, 200, "{name}");
    }
    drop((second, third, other));
    server.finish_with(&[]);
}

#[test]
fn bad_listen_flags_and_ranges_fail_the_config_test() {
    let dir = TempDir::new();
    for (toml, want) in [
        (
            "listen = [\"127.0.0.1:1 proxy\"]\n",
            (
                ":1:10:",
                "unknown listen flag \"proxy\" after 127.0.0.1:1: expected \"tls\", \"proxy_protocol\" or \"h2c\"",
            ),
        ),
        (
            "proxy_protocol_from = [\"10.0.0.1/8\"]\n",
            (
                ":1:23:",
                "\"10.0.0.1/8\": address bits are set past the /8 prefix",
            ),
        ),
        (
            "[[route]]\npath = \"/s\"\nkind = \"stub_status\"\nallow = [\"any\"]\n",
            (":4:9:", "\"any\" is not an address range"),
        ),
        (
            "[[route]]\npath = \"/s\"\nallow = [\"10.0.0.0/8\"]\n",
            (
                ":3:9:",
                "route.allow: not used by a route of kind \"static\"",
            ),
        ),
    ] {
        let path = write_file(&dir, "bad.toml", toml);
        let (code, _, err) = run_bin(&["-t", "-c", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{toml}: {err}");
        let (at, message) = want;
        assert!(
            err.contains(&format!("{}{at} ", path.display())) && err.contains(message),
            "{toml}: {err}"
        );
    }
    let (code, _, err) = run_bin(&["-t", "-l", "127.0.0.1:1 proxy_protocol", "-c", "/dev/null"]);
    assert_eq!(code, 0, "{err}");
    // Both flags on one listener: refused (the header would come before
    // the TLS handshake).
    let pem = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tls/testdata");
    let path = write_file(
        &dir,
        "both.toml",
        &format!(
            "listen = [\"127.0.0.1:1 tls proxy_protocol\"]\n[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            pem.join("leaf.pem").display(),
            pem.join("leaf.key").display()
        ),
    );
    let (code, _, err) = run_bin(&["-t", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("tls and proxy_protocol on one listener are not supported"),
        "{err}"
    );
}

// --- HAProxy in front -----------------------------------------------------

struct Haproxy {
    _peer: Peer,
    v1: SocketAddr,
    v2: SocketAddr,
}

impl Haproxy {
    fn start(exe: &Path, dir: &Path, backend: SocketAddr) -> Haproxy {
        let (v1, v2) = (loopback_listener().1, loopback_listener().1);
        let conf = format!(
            "defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s

frontend v1
    bind {v1}
    default_backend preforkd_v1

backend preforkd_v1
    server s1 {backend} send-proxy

frontend v2
    bind {v2}
    default_backend preforkd_v2

backend preforkd_v2
    option httpchk GET /healthz
    server s1 {backend} send-proxy-v2 check inter 200
"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, conf).unwrap();
        let mut cmd = Command::new(exe);
        cmd.arg("-f").arg(&path).arg("-db");
        let peer = Peer::spawn(cmd, &dir.join("haproxy.log"));
        for port in [v1, v2] {
            wait_until(WAIT, "haproxy to listen", || {
                TcpStream::connect_timeout(&port, Duration::from_millis(200))
                    .ok()
                    .map(drop)
            });
        }
        Haproxy {
            _peer: peer,
            v1,
            v2,
        }
    }
}

#[test]
fn haproxy_send_proxy_and_v2_pass_the_clients_address() {
    let Some(exe) = tool("haproxy", "haproxy") else {
        return;
    };
    let server = Server::start(&format!(
        "{PROXIED}\n[[route]]\npath = \"/healthz\"\nkind = \"health\"\n"
    ));
    let haproxy = Haproxy::start(&exe, server.dir.path(), server.addr);
    let client = IpAddr::from([127, 0, 0, 3]);
    let stranger = IpAddr::from([127, 0, 0, 4]);
    let scrape = b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut expected = Vec::new();
    for front in [haproxy.v1, haproxy.v2] {
        // HAProxy's probe connections (to see it listen) never reach
        // preforkd: it connects to the backend per client.
        let answer = exchange(front, client, &[GET_CLOSE_BYTES]);
        assert_eq!(status(&answer), 200, "{answer}");
        // allow = 127.0.0.3: the client, not HAProxy (127.0.0.1).
        let answer = exchange(front, client, &[scrape]);
        assert_eq!(status(&answer), 200, "{answer}");
        let answer = exchange(front, stranger, &[scrape]);
        assert_eq!(status(&answer), 403, "{answer}");
        expected.extend(["127.0.0.3", "127.0.0.3", "127.0.0.4"]);
    }
    // HAProxy's health checks (send-proxy-v2: a LOCAL header) are its
    // own, and logged with its own address.
    let checks = wait_until(WAIT, "a health check in the access log", || {
        let text = std::fs::read_to_string(server.dir.path().join("access.log")).unwrap();
        let checks: Vec<String> = text
            .lines()
            .filter(|l| l.contains("GET /healthz"))
            .map(str::to_owned)
            .collect();
        (!checks.is_empty()).then_some(checks)
    });
    assert!(
        checks
            .iter()
            .all(|l| l.starts_with("127.0.0.1 ") && l.contains("\" 200 ")),
        "{checks:#?}"
    );
    let text = std::fs::read_to_string(server.dir.path().join("access.log")).unwrap();
    let clients: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("GET /healthz"))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(clients, expected, "{text}");
    server.finish();
}
