//! The access log, through the real binary: nginx's `combined` byte for
//! byte (against a live nginx when it is installed), error answers and cut
//! requests, JSON, syslog, buffering with no line lost on graceful stop,
//! reload, TTOU and upgrade, USR1/`-s reopen` in every worker with the
//! file's owner and mode, logrotate with the shipped config under wrk load,
//! goaccess reading the log, and a full disk that neither stops nor slows
//! serving. Tests that need a real peer (nginx, logrotate, wrk, goaccess,
//! python3) or root skip that part through the harness' `skip` (a failure
//! under `PREFORKD_REQUIRE_ALL=1`, as in CI).
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::*;

/// Requests whose combined lines nginx 1.22 and preforkd must write alike:
/// (what the client sends, the line expected after the timestamp). Each
/// goes on its own connection, whose write side is closed after it.
/// Recorded from nginx 1.22.1 with the config of `start_nginx`.
const CASES: &[(&[u8], &str)] = &[
    (
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        r#""GET / HTTP/1.1" 200 14 "-" "-""#,
    ),
    (
        b"GET /a?b=c%20d HTTP/1.1\r\nHost: t\r\nReferer: http://x/\"q\\\r\nUser-Agent: a\tb\xff\xc3\xa9\r\nConnection: close\r\n\r\n",
        r#""GET /a?b=c%20d HTTP/1.1" 200 14 "http://x/\x22q\x5C" "a\x09b\xFF\xC3\xA9""#,
    ),
    (b"HEAD / HTTP/1.0\r\n\r\n", r#""HEAD / HTTP/1.0" 200 0 "-" "-""#),
    (
        b"OPTIONS / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        r#""OPTIONS / HTTP/1.1" 204 0 "-" "-""#,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        r#""POST / HTTP/1.1" 405 19 "-" "-""#,
    ),
    // A TLS ClientHello on the HTTP port.
    (
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        r#""\x16\x03\x01\x00\xA5\x01\x00\x00\xA1\x03\x03" 400 12 "-" "-""#,
    ),
    (
        b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
        r#""GET / HTTP/2.0" 505 27 "-" "-""#,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: t\r\nReferer:\r\nUser-Agent: \r\nConnection: close\r\n\r\n",
        r#""GET / HTTP/1.1" 200 14 "" """#,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: t\r\nReferer: a\r\nReferer: b\r\nUser-Agent: u1\r\nUser-Agent: u2\r\nConnection: close\r\n\r\n",
        r#""GET / HTTP/1.1" 200 14 "a" "u1""#,
    ),
    // The client closes in the middle of the request line.
    (b"GET / HT", r#""GET / HT" 400 0 "-" "-""#),
    (
        b"\r\n\r\nGET /lead HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        r#""GET /lead HTTP/1.1" 200 14 "-" "-""#,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: t\r\nX: \x00\r\n\r\n",
        r#""GET / HTTP/1.1" 400 12 "-" "-""#,
    ),
    (b"GET / HTTP/1.1\r\n\r\n", r#""GET / HTTP/1.1" 400 12 "-" "-""#),
    (
        b"G\x01T / HTTP/1.1\r\nHost: t\r\n\r\n",
        r#""G\x01T / HTTP/1.1" 400 12 "-" "-""#,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: x\r\nReferer: r\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        r#""GET / HTTP/1.1" 400 12 "r" "x""#,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        r#""GET / HTTP/1.1" 400 12 "-" "-""#,
    ),
    // Two pipelined requests: two lines.
    (
        b"GET /p1 HTTP/1.1\r\nHost: t\r\n\r\nGET /p2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "\"GET /p1 HTTP/1.1\" 200 14 \"-\" \"-\"\n\"GET /p2 HTTP/1.1\" 200 14 \"-\" \"-\"",
    ),
    // A connection that never sends a byte: no line.
    (b"", ""),
];

/// Sends each case on a connection of its own and reads until the server
/// closes it.
fn send_cases(addr: std::net::SocketAddr) {
    for (bytes, _) in CASES {
        let mut s = connect(addr);
        s.write_all(bytes).unwrap();
        let _ = s.shutdown(Shutdown::Write);
        read_until_close(&mut s);
    }
}

fn expected_lines() -> Vec<String> {
    CASES
        .iter()
        .flat_map(|(_, l)| l.lines())
        .map(|l| format!("127.0.0.1 - - [T] {l}"))
        .collect()
}

/// Lines of a log file, which must be ASCII (everything else escaped).
fn read_lines(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    assert!(
        bytes
            .iter()
            .all(|&b| b == b'\n' || (0x20..0x7f).contains(&b)),
        "unescaped bytes in {}: {:?}",
        path.display(),
        String::from_utf8_lossy(&bytes)
    );
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `[$time_local]` → `[T]`, after checking its shape
/// (`[30/Nov/2026:13:32:04 +0000]`).
fn redact(line: &str) -> String {
    let (Some(a), Some(b)) = (line.find('['), line.find(']')) else {
        panic!("no timestamp in {line:?}");
    };
    let t = &line.as_bytes()[a + 1..b];
    let shape = t.len() == 26
        && t[2] == b'/'
        && t[6] == b'/'
        && t[11] == b':'
        && t[20] == b' '
        && (t[21] == b'+' || t[21] == b'-')
        && [0, 1, 7, 8, 9, 10, 12, 13, 15, 16, 18, 19, 22, 23, 24, 25]
            .iter()
            .all(|&i| t[i].is_ascii_digit());
    assert!(shape, "bad $time_local in {line:?}");
    format!("{}[T]{}", &line[..a], &line[b + 1..])
}

/// How long a tool run to completion may take (python3, logrotate and its
/// postrotate `-s reopen`, goaccess on a few thousand lines, mount).
const TOOL_WITHIN: Duration = Duration::from_secs(60);

/// `requests=N` summed from the `total` line of `-s status`.
fn status_total_requests(server: &Server) -> u64 {
    let out = server.control("status");
    let total = out
        .lines()
        .find(|l| l.starts_with("total "))
        .unwrap_or_else(|| panic!("no total line in {out:?}"));
    field(total, "requests").parse().unwrap()
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

// ---------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------

/// nginx answering as preforkd's default config does (its error bodies as
/// files), writing the combined format to `{dir}/access.log`.
fn start_nginx() -> (Nginx, std::net::SocketAddr) {
    let (nginx, addr) = Nginx::start_with(
        "access_log {dir}/access.log combined;",
        r#"listen {addr};
    error_page 400 /e400.txt;
    error_page 505 /e505.txt;
    location ~ ^/e\d+\.txt$ { root {dir}; }
    location / {
      if ($request_method = OPTIONS) { return 204; }
      if ($request_method !~ ^(GET|HEAD)$) { return 405 "Method Not Allowed\n"; }
      return 200 "Hello, World!\n";
    }"#,
    );
    // preforkd's error bodies, as files nginx sends for its errors (read
    // when an error is answered, so written now is in time).
    std::fs::write(nginx.dir().join("e400.txt"), "Bad Request\n").unwrap();
    std::fs::write(nginx.dir().join("e505.txt"), "HTTP Version Not Supported\n").unwrap();
    (nginx, addr)
}

// Proves: for a fixed set of requests (escaping of `"`, `\`, control and
// non-ASCII bytes; empty and repeated Referer/User-Agent; HEAD, OPTIONS,
// 405; 400s for a TLS hello, a bad method, a NUL, a missing Host, a
// repeated Content-Length, a bad chunk; 505; a request line cut by the
// client; leading empty lines; pipelining; a silent connection) preforkd's
// combined lines are the recorded nginx 1.22 lines, and, when nginx is
// installed, byte for byte the lines a live nginx writes for the same bytes
// (timestamps aside).
#[test]
fn combined_lines_equal_nginx() {
    quiet_sigchld();
    let mut server = Server::start("workers = 1\n[access_log]\npath = \"access.log\"\n");
    send_cases(server.addr);
    server.stop_checked(&[]);
    let ours: Vec<String> = read_lines(&server.dir.path().join("access.log"))
        .iter()
        .map(|l| redact(l))
        .collect();
    assert_eq!(ours, expected_lines());

    // The comparison with a live nginx.
    if tool("nginx", "nginx-light").is_none() {
        return;
    }
    let (nginx, addr) = start_nginx();
    send_cases(addr);
    let path = nginx.dir().join("access.log");
    // nginx writes each line as the request ends; wait for all of them.
    let theirs: Vec<String> = wait_until(WAIT, "nginx's access log lines", || {
        let l = read_lines(&path);
        (l.len() >= ours.len()).then_some(l)
    })
    .iter()
    .map(|l| redact(l))
    .collect();
    assert_eq!(ours, theirs, "preforkd (left) and nginx (right) differ");
}

// Proves: answers to errors found while reading (408 after header_timeout,
// also in a body; 413, 414, 431, 501) are logged with the request line as
// far as it was read, the error's status and body bytes; a request whose
// body arrives in a later read keeps its Referer/User-Agent; the time is
// nginx's `$time_local`.
#[test]
fn error_answers_are_logged_with_what_was_read() {
    quiet_sigchld();
    let mut server = Server::start(
        "workers = 1\nheader_timeout = \"1s\"\nmax_request_header_bytes = 1024\nmax_request_body_bytes = 10\n[access_log]\npath = \"access.log\"\nbuffer = \"0\"\n",
    );
    let exchange = |bytes: &[u8]| -> String {
        let mut s = server.connect();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(bytes).unwrap();
        read_until_close(&mut s)
    };
    let long_target = format!("GET /{}", "a".repeat(2000));
    let long_header = format!(
        "GET /h HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "b".repeat(2000)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GET /slow HTTP/1.1\r\nHost: t\r\n".to_vec(), 408),
        (
            b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n".to_vec(),
            413,
        ),
        (long_target.clone().into_bytes(), 414),
        (long_header.into_bytes(), 431),
        (
            b"POST /te HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            501,
        ),
        (
            b"POST /part HTTP/1.1\r\nHost: t\r\nUser-Agent: slow\r\nContent-Length: 5\r\n\r\nab"
                .to_vec(),
            408,
        ),
    ];
    for (bytes, status) in &cases {
        let answer = exchange(bytes);
        assert_eq!(common::status(&answer), *status, "{answer}");
    }
    // A chunked body sent after the head (once the server has read it, so
    // in a read of its own): answered (405) once it is read.
    let mut s = server.connect();
    send_read(&mut s, b"POST /c HTTP/1.1\r\nHost: t\r\nUser-Agent: c\r\nReferer: r\r\nTransfer-Encoding: chunked\r\n\r\n");
    s.write_all(b"3\r\nabc\r\n0\r\n\r\n").unwrap();
    assert_eq!(common::status(&read_response(&mut s)), 405);
    drop(s);
    // Nothing sent at all: nothing logged.
    drop(server.connect());
    let path = server.dir.path().join("access.log");
    let lines = wait_until(WAIT, "7 lines", || {
        let l = read_lines(&path);
        (l.len() >= 7).then_some(l)
    });
    server.stop_checked(&[]);
    let lines: Vec<String> = lines.iter().map(|l| redact(l)).collect();
    let p = "127.0.0.1 - - [T] ";
    assert_eq!(
        lines[0],
        format!("{p}\"GET /slow HTTP/1.1\" 408 16 \"-\" \"-\"")
    );
    assert_eq!(
        lines[1],
        format!("{p}\"POST /big HTTP/1.1\" 413 18 \"-\" \"-\"")
    );
    // What was read of the line, up to max_request_header_bytes.
    assert_eq!(
        lines[2],
        format!("{p}\"{}\" 414 13 \"-\" \"-\"", &long_target[..1024])
    );
    assert_eq!(
        lines[3],
        format!("{p}\"GET /h HTTP/1.1\" 431 32 \"-\" \"-\"")
    );
    assert_eq!(
        lines[4],
        format!("{p}\"POST /te HTTP/1.1\" 501 16 \"-\" \"-\"")
    );
    assert_eq!(
        lines[5],
        format!("{p}\"POST /part HTTP/1.1\" 408 16 \"-\" \"slow\"")
    );
    assert_eq!(
        lines[6],
        format!("{p}\"POST /c HTTP/1.1\" 405 19 \"r\" \"c\"")
    );
    assert_eq!(lines.len(), 7, "{lines:#?}");
}

// Proves: `format = "json"` writes one valid JSON object per line with the
// named fields (time in RFC 3339 with milliseconds and the zone, remote
// address, method, target, protocol, numbers as numbers, null for what is
// missing, the worker's pid), `common` the first seven combined fields, and
// `path = "syslog"` sends each line as one datagram with the [log] ident at
// severity info.
#[test]
fn json_common_and_syslog_lines() {
    quiet_sigchld();
    let get = b"GET /j?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: q\"\\\r\nConnection: close\r\n\r\n";

    let mut server =
        Server::start("workers = 1\n[access_log]\npath = \"a.json\"\nformat = \"json\"\n");
    server.request(get);
    server.request(b"\x16\x03\r\n\r\n");
    let worker = server.worker_pids()[0];
    server.stop_checked(&[]);
    let lines = read_lines(&server.dir.path().join("a.json"));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let l = &lines[0];
    // {"time":"2026-11-30T13:29:19.123+00:00",...
    let t = &l.as_bytes()[9..38];
    assert!(
        l.starts_with("{\"time\":\"")
            && t[4] == b'-'
            && t[10] == b'T'
            && t[19] == b'.'
            && (t[23] == b'+' || t[23] == b'-')
            && t[26] == b':',
        "{l}"
    );
    let rest = &l[38..];
    let (body, us) = rest
        .split_once(",\"request_time_us\":")
        .unwrap_or_else(|| panic!("{l}"));
    assert_eq!(
        body,
        r#"","remote_addr":"127.0.0.1","method":"GET","target":"/j?x=1","protocol":"HTTP/1.1","status":200,"body_bytes":14,"referer":null,"user_agent":"q\"\\","route":null"#
    );
    let (us, pid) = us.split_once(",\"pid\":").unwrap();
    assert!(us.parse::<u64>().is_ok(), "{l}");
    assert_eq!(pid, format!("{worker}}}"));
    assert!(
        lines[1].contains(
            r#""method":"\u0016\u0003","target":null,"protocol":null,"status":400,"body_bytes":12"#
        ),
        "{}",
        lines[1]
    );
    if tool("python3", "python3").is_some() {
        // Every line is JSON a strict parser takes.
        let out = output_within(
            Command::new("python3")
                .arg("-c")
                .arg("import json,sys\nfor l in open(sys.argv[1]): json.loads(l)")
                .arg(server.dir.path().join("a.json")),
            b"",
            TOOL_WITHIN,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut server =
        Server::start("workers = 1\n[access_log]\npath = \"a.log\"\nformat = \"common\"\n");
    server.request(get);
    server.stop_checked(&[]);
    let lines: Vec<String> = read_lines(&server.dir.path().join("a.log"))
        .iter()
        .map(|l| redact(l))
        .collect();
    assert_eq!(lines, ["127.0.0.1 - - [T] \"GET /j?x=1 HTTP/1.1\" 200 14"]);

    let server = Server::start("workers = 1\n[access_log]\npath = \"syslog\"\nbuffer = \"0\"\n");
    server.request(get);
    let line = server.wait_for_log("\"GET /j?x=1 HTTP/1.1\"");
    // daemon.info = <30>, the [log] ident, the worker's pid.
    assert!(line.starts_with("<30>"), "{line}");
    let (head, entry) = line.split_once("]: ").unwrap();
    assert!(
        head.ends_with(&format!("preforkd[{}", server.worker_pids()[0])),
        "{line}"
    );
    assert_eq!(
        redact(entry),
        r#"127.0.0.1 - - [T] "GET /j?x=1 HTTP/1.1" 200 14 "-" "q\x22\x5C""#
    );
    server.finish();
}

// Proves: with a large buffer and a long flush nothing is written while
// serving, and no line is lost when workers go: a reload (HUP) writes the
// old workers' lines, TTOU the retired worker's (exactly as many as
// `-s status` counted for it), an upgrade (USR2) the old master's workers',
// and the new master's workers theirs on graceful stop; and a buffered line
// is written within `flush`.
#[test]
fn buffered_lines_survive_reload_ttou_upgrade_and_stop() {
    quiet_sigchld();
    let mut server = Server::start(
        "workers = 2\npid_file = \"preforkd.pid\"\n[access_log]\npath = \"access.log\"\nformat = \"json\"\nbuffer = \"1m\"\nflush = \"1h\"\n",
    );
    let path = server.dir.path().join("access.log");
    let mut sent = 0;
    let send = |server: &Server, sent: &mut usize, n: usize| {
        for _ in 0..n {
            assert_eq!(common::status(&server.get()), 200);
        }
        *sent += n;
        *sent
    };
    let total = send(&server, &mut sent, 10);
    assert_eq!(
        read_lines(&path).len(),
        0,
        "written before any flush was due"
    );

    // Reload: the old generation drains and exits, writing every line.
    let old = server.wait_workers(2);
    server.signal(Signal::SIGHUP);
    wait_until(WAIT, "the old workers to exit", || {
        let now = server.worker_pids();
        (now.len() == 2 && now.iter().all(|p| !old.contains(p))).then_some(())
    });
    assert_eq!(read_lines(&path).len(), total);

    // TTOU: the retired worker writes exactly what it served.
    let total = send(&server, &mut sent, 12);
    let status = server.control("status");
    let served = |pid: i32| -> usize {
        status
            .lines()
            .find(|l| l.starts_with("worker=") && field(l, "pid") == pid.to_string())
            .map_or(0, |l| field(l, "requests").parse().unwrap())
    };
    let before = server.wait_workers(2);
    server.signal(Signal::SIGTTOU);
    let after = server.wait_workers(1);
    let gone = *before.iter().find(|p| !after.contains(p)).unwrap();
    let needle = format!("\"pid\":{gone}}}");
    let lines = read_lines(&path);
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(&needle)).count(),
        served(gone),
        "lines of the retired worker pid={gone}"
    );
    assert!(lines.len() < total || served(after[0]) == 0);

    // Upgrade: the new master QUITs the old one, whose worker writes its lines.
    let total = send(&server, &mut sent, 5);
    server.signal(Signal::SIGUSR2);
    let status = server.wait_exit();
    assert!(status.success(), "old master exit status {status}");
    assert_eq!(read_lines(&path).len(), total);
    let new_master: i32 = wait_until(WAIT, "the new master's pid file", || {
        std::fs::read_to_string(server.dir.path().join("preforkd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    wait_until(WAIT, "the new master's workers", || {
        // The config's two, whatever TTOU did to the old master.
        (children_of(new_master).len() == 2).then_some(())
    });
    let total = send(&server, &mut sent, 4);
    kill(Pid::from_raw(new_master), Signal::SIGQUIT).unwrap();
    wait_until(WAIT, "the new master to exit", || {
        (!alive(new_master)).then_some(())
    });
    assert_eq!(read_lines(&path).len(), total);

    // flush: a line is written within it.
    let mut server =
        Server::start("workers = 1\n[access_log]\npath = \"access.log\"\nflush = \"300ms\"\n");
    let path = server.dir.path().join("access.log");
    server.get();
    let t = Instant::now();
    wait_until(WAIT, "the line after flush", || {
        (read_lines(&path).len() == 1).then_some(())
    });
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // A request answered while draining (after the drain's own write) is
    // written at exit.
    let mut late = server.connect();
    late.write_all(b"GET /late HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    server.signal(Signal::SIGQUIT);
    server.wait_for_log("draining");
    late.write_all(b"\r\n").unwrap();
    let r = read_response(&mut late);
    assert!(r.contains("Connection: close"), "{r}");
    assert!(server.wait_exit().success());
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[1].contains("\"GET /late HTTP/1.1\" 200 14"),
        "{}",
        lines[1]
    );

    // A fast stop (TERM) loses no line either.
    let mut server =
        Server::start("workers = 2\n[access_log]\npath = \"access.log\"\nflush = \"1h\"\n");
    let path = server.dir.path().join("access.log");
    for _ in 0..6 {
        server.get();
    }
    server.signal(Signal::SIGTERM);
    server.wait_exit();
    assert_eq!(read_lines(&path).len(), 6);
}

// Proves: `-s reopen` (USR1 to the master, passed on to every worker) makes
// each worker write its buffer to the old file and continue in a new one at
// the same path; no line is lost or doubled. The file is created mode 0640;
// as root with `user = "nobody"`, owned by the workers' user both when the
// master (root) creates it before forking and at the reopen.
#[test]
fn reopen_in_every_worker_with_owner_and_mode() {
    quiet_sigchld();
    let logs = TempDir::new();
    let user = if root("the owner is checked as the current user, without user = \"nobody\"") {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        nix::unistd::chown(logs.path(), Some(nobody.uid), None).unwrap();
        std::fs::set_permissions(logs.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
        Some(nobody.uid.as_raw())
    } else {
        None
    };
    let path = logs.path().join("access.log");
    let mut server = Server::start(&format!(
        "workers = 2\npid_file = \"preforkd.pid\"\n{}[access_log]\npath = \"{}\"\nformat = \"json\"\nbuffer = \"0\"\n",
        if user.is_some() { "user = \"nobody\"\n" } else { "" },
        path.display()
    ));
    let owner = user.unwrap_or_else(|| nix::unistd::geteuid().as_raw());
    // The master creates the file and hands it over: wait for both.
    let check = |p: &Path| {
        let what = format!("{} with mode 0640 and owner {owner}", p.display());
        wait_until(WAIT, &what, || {
            let m = std::fs::metadata(p).ok()?;
            (m.mode() & 0o777 == 0o640 && m.uid() == owner).then_some(())
        });
    };
    check(&path);
    let workers = server.wait_workers(2);
    let mut sent = 0;
    for _ in 0..10 {
        assert_eq!(common::status(&server.get()), 200);
        sent += 1;
    }
    let rotated = logs.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    server.control("reopen");
    server.wait_for_log("master command=reopen-logs");
    // Until both workers have reopened, a line may still go to the old file.
    // Connections are held open (keep-alive) so that balanced accepting
    // hands some to each worker: one client's connections one after the
    // other would all go to the same one.
    let mut held = Vec::new();
    wait_until(WAIT, "lines of both workers in the new file", || {
        let mut s = server.open();
        send(&mut s, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(common::status(&answer(&mut s)), 200);
        held.push(s);
        sent += 1;
        let lines = read_lines(&path);
        workers
            .iter()
            .all(|w| lines.iter().any(|l| l.ends_with(&format!("\"pid\":{w}}}"))))
            .then_some(())
    });
    drop(held);
    check(&path);
    let old = read_lines(&rotated).len();
    for _ in 0..20 {
        assert_eq!(common::status(&server.get()), 200);
        sent += 1;
    }
    server.stop_checked(&[]);
    assert_eq!(
        read_lines(&rotated).len(),
        old,
        "written to the old file after the reopen"
    );
    assert_eq!(read_lines(&rotated).len() + read_lines(&path).len(), sent);
}

// Proves the fix of root following a symlink the workers' user planted at
// the log path (CVE-2016-1247's pattern): with `user = "nobody"` and a log
// directory nobody can write (as a compromised worker could), an
// `access.log` symlink to a root-owned 0600 file is neither followed by
// root nor its target chowned, at a worker's start nor at `-s reopen`: the
// target keeps its owner, mode and bytes. The server goes on serving: the
// worker (as nobody) cannot open the target, says so, counts the lines as
// lost (`access_log_lost` in `-s status`) and, once the symlink is gone and
// the master has created a fresh file at the next reopen, writes there.
#[test]
fn a_planted_symlink_is_never_followed_or_chowned_by_root() {
    quiet_sigchld();
    if !root("no privileges to drop, nothing root could chown") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let logs = TempDir::new();
    nix::unistd::chown(logs.path(), Some(nobody.uid), None).unwrap();
    std::fs::set_permissions(logs.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
    // The file the attacker wants: root's, 0600, in a directory of root's.
    let vault = TempDir::new();
    let target = vault.path().join("shadow");
    std::fs::write(&target, "root:secret\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let untouched = |when: &str| {
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, 0, 0o600),
            "{when}: root chowned or chmodded the symlink's target"
        );
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "root:secret\n",
            "{when}: lines were written to the symlink's target"
        );
    };
    // The symlink, planted by nobody before the server starts.
    let path = logs.path().join("access.log");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    std::os::unix::fs::lchown(&path, Some(nobody.uid.as_raw()), None).unwrap();
    let mut server = Server::start(&format!(
        "workers = 1\npid_file = \"preforkd.pid\"\nuser = \"nobody\"\n[access_log]\npath = \"{}\"\nbuffer = \"0\"\n",
        path.display()
    ));
    server.wait_workers(1);
    // The worker's start: its open fails (as nobody), or, as root, it
    // would have chowned the target: wait for either, then judge.
    let refused = "access log: cannot open";
    let settled = |n: usize| {
        wait_until(WAIT, "the worker's open of the log", || {
            let meta = std::fs::metadata(&target).unwrap();
            (meta.uid() != 0 || count(&server.log_lines(), refused) >= n).then_some(())
        })
    };
    settled(1);
    untouched("after the worker's start");
    assert_eq!(common::status(&server.get()), 200);
    untouched("after a request");
    let lost = |server: &Server| {
        let out = server.control("status");
        let total = out
            .lines()
            .find(|l| l.starts_with("total "))
            .unwrap()
            .to_owned();
        field(&total, "access_log_lost").parse::<u64>().unwrap()
    };
    wait_until(WAIT, "the request's line counted as lost", || {
        (lost(&server) >= 1).then_some(())
    });

    // Logrotate's reopen with the symlink still there: the master (root)
    // leaves the path alone, the worker's reopen (as nobody) is refused.
    server.control("reopen");
    server.wait_for_log("master command=reopen-logs");
    settled(2);
    untouched("after -s reopen");
    assert_eq!(common::status(&server.get()), 200);
    untouched("after a request following the reopen");

    // The symlink removed: the next reopen has the master create the file
    // for nobody, mode 0640, and the worker writes to it again.
    std::fs::remove_file(&path).unwrap();
    server.control("reopen");
    wait_until(WAIT, "a line in the new file", || {
        assert_eq!(common::status(&server.get()), 200);
        (!read_lines(&path).is_empty()).then_some(())
    });
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (nobody.uid.as_raw(), 0o640)
    );
    untouched("at the end");
    server.stop_checked(&[refused, "access log: cannot write"]);
    untouched("after the stop");
}

// Proves: rotating with the shipped logrotate config (`logrotate -f`, its
// postrotate running `preforkd -s reopen`) under `wrk -c 64` against 2
// workers loses no line and doubles none: the rotated file plus the new one
// hold exactly as many lines as the workers answered requests (`-s status`),
// which is at least what wrk counted; both files got lines, every one whole.
#[test]
fn logrotate_under_load_loses_no_line() {
    quiet_sigchld();
    if tool("logrotate", "logrotate").is_none() || tool("wrk", "wrk").is_none() {
        return;
    }
    let mut server = Server::start(
        "workers = 2\npid_file = \"preforkd.pid\"\n[access_log]\npath = \"access.log\"\n",
    );
    let dir = server.dir.path().to_owned();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/preforkd.logrotate"
    ))
    .unwrap();
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap();
    let group = nix::unistd::Group::from_gid(nix::unistd::getegid())
        .unwrap()
        .unwrap();
    let mut conf = shipped
        .replace("/var/log/preforkd/", &format!("{}/", dir.display()))
        .replace(
            "/run/preforkd/preforkd.pid",
            &format!("{}/preforkd.pid", dir.display()),
        )
        .replace("/usr/sbin/preforkd", BIN)
        .replace(
            "create 0640 preforkd adm",
            &format!("create 0640 {} {}", me.name, group.name),
        );
    // The postrotate output goes to a file the test can show.
    conf = conf.replace(
        " -s reopen >/dev/null",
        &format!(" -s reopen >{}/reopen.out 2>&1", dir.display()),
    );
    assert!(conf.contains(BIN) && !conf.contains("/var/log"), "{conf}");
    let conf_path = dir.join("logrotate.conf");
    std::fs::write(&conf_path, &conf).unwrap();
    std::fs::set_permissions(&conf_path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let url = format!("http://{}/", server.addr);
    let wrk = unblocked_sigchld(|| {
        Command::new("wrk")
            .args(["-t", "1", "-c", "64", "-d", "4s", "--timeout", "2s", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    })
    .unwrap();
    let mut wrk = ChildGuard(wrk);
    let path = dir.join("access.log");
    wait_until(WAIT, "lines in the log under load", || {
        (!read_lines(&path).is_empty()).then_some(())
    });
    let out = output_within(
        Command::new("logrotate")
            .arg("-f")
            .arg("-s")
            .arg(dir.join("logrotate.state"))
            .arg(&conf_path),
        b"",
        TOOL_WITHIN,
    );
    assert!(
        out.status.success(),
        "logrotate: {}{}\npostrotate: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("reopen.out")).unwrap_or_default()
    );
    let rotated = dir.join("access.log.1");
    assert!(
        rotated.exists(),
        "no access.log.1 (delaycompress keeps it plain)"
    );
    let status = wait_until(Duration::from_secs(20), "wrk to finish", || {
        wrk.0.try_wait().unwrap()
    });
    let mut report = String::new();
    wrk.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    assert!(status.success(), "wrk: {report}");
    // "  123456 requests in 4.00s, ..."
    let counted: u64 = report
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.to_owned())
        })
        .unwrap_or_else(|| panic!("no request count in {report}"))
        .parse()
        .unwrap();
    assert!(!report.contains("Non-2xx"), "{report}");
    let answered = status_total_requests(&server);
    server.stop_checked(&[]);
    let old = read_lines(&rotated);
    let new = read_lines(&path);
    assert!(
        !old.is_empty() && !new.is_empty(),
        "rotated {} new {}",
        old.len(),
        new.len()
    );
    for l in old.iter().chain(&new) {
        assert_eq!(
            redact(l),
            "127.0.0.1 - - [T] \"GET / HTTP/1.1\" 200 14 \"-\" \"-\""
        );
    }
    assert_eq!(
        old.len() as u64 + new.len() as u64,
        answered,
        "wrk counted {counted}"
    );
    assert!(
        answered >= counted && answered <= counted + 64,
        "answered {answered}, wrk {counted}"
    );
    assert!(counted > 100, "too little load to mean anything: {report}");
}

// Proves: goaccess, reading a preforkd log with `--log-format=COMBINED`,
// takes every line as valid: ordinary requests, escapes, HEAD, OPTIONS,
// errors with odd request lines, cut requests.
#[test]
fn goaccess_reads_every_line() {
    quiet_sigchld();
    if tool("goaccess", "goaccess").is_none() {
        return;
    }
    let mut server = Server::start("workers = 2\n[access_log]\npath = \"access.log\"\n");
    for _ in 0..20 {
        server.get();
    }
    send_cases(server.addr);
    server.stop_checked(&[]);
    let log = server.dir.path().join("access.log");
    let lines = read_lines(&log).len();
    let report = server.dir.path().join("report.json");
    let out = output_within(
        Command::new("goaccess")
            .arg(&log)
            .args(["--log-format=COMBINED", "--no-global-config", "-o"])
            .arg(&report),
        b"",
        TOOL_WITHIN,
    );
    assert!(
        out.status.success(),
        "goaccess: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(&report).unwrap();
    let number = |key: &str| -> u64 {
        let at = json
            .find(&format!("\"{key}\""))
            .unwrap_or_else(|| panic!("no {key} in report"));
        json[at..]
            .split_once(':')
            .unwrap()
            .1
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(number("failed_requests"), 0, "goaccess found invalid lines");
    assert_eq!(number("valid_requests"), lines as u64);
}

/// Unmounts on drop (lazily, so that a failed test never leaves a mount).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        // In a Drop: a failure (or a hang, killed) is not a second panic.
        let mut cmd = Command::new("umount");
        cmd.arg("-l").arg(&self.0);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            output_within(&mut cmd, b"", TOOL_WITHIN)
        }));
    }
}

// Proves: with the log on a full tmpfs the server keeps answering, no
// slower than once there is room again (within a generous factor), logs
// one error for the whole episode, counts every lost line, and writes again
// as soon as there is room ("writing ... again, N lines lost").
#[test]
fn a_full_disk_neither_stops_nor_slows_serving() {
    quiet_sigchld();
    if !root("cannot mount a tmpfs for the full-disk test") {
        return;
    }
    let tmp = TempDir::new();
    let mnt = tmp.path().join("full");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = output_within(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs"])
            .arg(&mnt),
        b"",
        TOOL_WITHIN,
    );
    if !mounted.status.success() {
        skip(&format!(
            "cannot mount a tmpfs here ({}) for the full-disk test",
            String::from_utf8_lossy(&mounted.stderr).trim()
        ));
        return;
    }
    let _mount = Mount(mnt.clone());
    let log = mnt.join("access.log");
    std::fs::File::create(&log).unwrap();
    // Fill the rest: the log file holds no page yet, so every write fails.
    let filler = mnt.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = [b'x'; 4096];
    while f.write_all(&chunk).is_ok() {}
    drop(f);

    let mut server = Server::start(&format!(
        "workers = 1\n[access_log]\npath = \"{}\"\nbuffer = \"0\"\n",
        log.display()
    ));
    const N: usize = 300;
    let run = |server: &Server| -> Duration {
        let mut s = server.connect();
        let t = Instant::now();
        for _ in 0..N {
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let r = try_read_response(&mut s).unwrap();
            assert_eq!(r.status, 200);
        }
        t.elapsed()
    };
    let failing = run(&server);
    let error = server.wait_for_log("access log: cannot write");
    assert!(error.starts_with("<27>"), "{error}");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);

    std::fs::remove_file(&filler).unwrap();
    let working = run(&server);
    let back = server.wait_for_log("access log: writing");
    assert!(back.contains(&format!("again, {N} lines lost")), "{back}");
    let lines = read_lines(&log);
    assert_eq!(lines.len(), N, "lines written once there was room");
    let errors = server
        .log_lines()
        .iter()
        .filter(|l| l.contains("access log: cannot write"))
        .count();
    assert_eq!(errors, 1, "one error per episode");
    assert!(
        failing <= working * 3 + Duration::from_secs(1),
        "serving slowed down: {failing:?} with the disk full, {working:?} with room"
    );
    server.signal(Signal::SIGQUIT);
    assert!(server.wait_exit().success());
}
