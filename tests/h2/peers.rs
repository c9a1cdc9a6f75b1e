//! Real HTTP/2 peers against the real binary: headless Chromium over TLS
//! (a page with a stylesheet and an image on one connection, logged as
//! `HTTP/2.0`), and h2load load across reloads (HUP, twice) over h2c and
//! over TLS and across a worker's graceful QUIT, with zero failed
//! requests: the drain's GOAWAYs send h2load to a new connection, and
//! every request sent before the final GOAWAY is answered.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::common::*;
use super::load::Load;
use super::tls_config;

/// The access log's lines once there are at least `n`.
pub fn access_lines(dir: &Path, n: usize) -> Vec<String> {
    let path = dir.join("access.log");
    wait_until(WAIT, &format!("{n} access log lines"), || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= n).then_some(lines)
    })
}

/// Lines in the access log now.
fn logged(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("access.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

const ACCESS_LOG: &str = "[access_log]\npath = \"access.log\"\nbuffer = \"0\"\n";

// Proves: Chromium negotiates h2 by ALPN and fetches a page, its
// stylesheet and its image over it: the DOM comes back, and the access
// log shows each of the three as an `HTTP/2.0` request answered 200.
#[test]
fn headless_chromium_over_tls_speaks_h2() {
    let Some(chromium) = tool("chromium", "chromium") else {
        return;
    };
    let site = TempDir::new();
    let root = site.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><html><head><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body><h1 id=\"t\">served over h2</h1><img src=\"/dot.svg\" width=\"8\" height=\"8\"></body></html>\n",
    )
    .unwrap();
    std::fs::write(root.join("style.css"), "h1 { color: #333; }\n").unwrap();
    std::fs::write(
        root.join("dot.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><rect width=\"8\" height=\"8\"/></svg>\n",
    )
    .unwrap();
    let files = format!(
        "{ACCESS_LOG}[[route]]\nprefix = \"/\"\nkind = \"files\"\nroot = \"{}\"\n",
        root.display()
    );
    let server = Server::start(&tls_config("workers = 1", &files));
    let profile = TempDir::new();
    let user_data = format!("--user-data-dir={}", profile.path().display());
    let url = format!("https://{}/", server.addr);
    let out = output_within(
        Command::new(chromium).env("HOME", profile.path()).args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors",
            &user_data,
            "--dump-dom",
            &url,
        ]),
        b"",
        Duration::from_secs(60),
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<h1 id=\"t\">served over h2</h1>"),
        "no DOM: {dom}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = access_lines(server.dir.path(), 3);
    for path in ["/", "/style.css", "/dot.svg"] {
        let want = format!("\"GET {path} HTTP/2.0\" 200 ");
        assert!(
            lines.iter().any(|l| l.contains(&want)),
            "{want}: {lines:#?}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains("HTTP/1.1")),
        "every request over h2: {lines:#?}"
    );
    server.finish();
}

/// h2load's `requests:` line: (total, started, done, succeeded,
/// failed, errored, timeout).
fn requests_line(out: &Output) -> [u64; 7] {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("requests: "))
        .unwrap_or_else(|| panic!("no requests line: {text}"));
    let numbers: Vec<u64> = line["requests: ".len()..]
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    numbers.try_into().unwrap()
}

/// Every request h2load had on the wire was answered with a 2xx, and no
/// answer was anything else: done = started, no timeout, only 2xx. h2load
/// 1.52 does not reconnect after a GOAWAY on HTTP/2 (its
/// `try_new_connection` is called by its HTTP/1.1 session only): once
/// one arrives, `nghttp2_session_check_request_allowed` refuses its next
/// request and it counts the client's remaining requests as failed and
/// errored without sending them; and the streams nghttp2 had submitted
/// but not yet written when the GOAWAY came it closes itself, counted
/// started and done but not succeeded. Those are at most one window of
/// each client's streams (8 clients x 10), never seen by the server;
/// what the server did see is checked against the access log by the
/// caller (one line per answer, every answer a success here). Returns
/// (succeeded, abandoned).
fn assert_every_sent_request_answered(out: &Output) -> (u64, u64) {
    let text = String::from_utf8_lossy(&out.stdout);
    let [total, started, done, succeeded, failed, errored, timeout] = requests_line(out);
    assert_eq!((done, timeout), (started, 0), "{text}");
    assert!(
        started - succeeded <= 8 * 10,
        "more failed than the clients had in flight at a GOAWAY: {text}"
    );
    assert_eq!(
        (failed, errored),
        (total - succeeded, total - succeeded),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "status codes: {succeeded} 2xx, 0 3xx, 0 4xx, 0 5xx"
        )),
        "{text}"
    );
    (succeeded, total - succeeded)
}

/// Runs h2load at `url` on a thread of its own (`n` requests from 8
/// clients, 10 streams each, paced so that it runs for some seconds),
/// waits until the access log shows it under way, runs `during`, and
/// returns h2load's output once it is done.
fn under_h2load(server: &Server, url: &str, n: u32, during: impl FnOnce()) -> Option<Output> {
    tool("h2load", "nghttp2-client")?;
    let url = url.to_owned();
    let dir = server.dir.path();
    let before = logged(dir);
    let load = std::thread::spawn(move || {
        let n = n.to_string();
        output_within(
            Command::new("h2load").args(["-n", &n, "-c", "8", "-m", "10", "--rps", "200", &url]),
            b"",
            Duration::from_secs(90),
        )
    });
    wait_until(WAIT, "h2load under way", || {
        (logged(dir) >= before + 300).then_some(())
    });
    during();
    Some(load.join().unwrap())
}

/// A reload under h2load at `url`, twice: every request sent is answered,
/// and logged once.
fn reloads_under_h2load(server: &Server, url: &str) {
    let mut sent = 0;
    for generation in [2, 3] {
        let out = under_h2load(server, url, 16_000, || {
            server.signal(Signal::SIGHUP);
            server.wait_for_log(&format!("reload done generation={generation}"));
        });
        let Some(out) = out else { return };
        let (answered, abandoned) = assert_every_sent_request_answered(&out);
        eprintln!("reload {generation}: {answered} answered, {abandoned} never sent");
        sent += answered as usize;
    }
    wait_until(WAIT, "one access log line a request", || {
        (logged(server.dir.path()) == sent).then_some(())
    });
}

// Proves: HUP under h2c load, twice: every request h2load sent is
// answered 200 (the old workers' GOAWAYs name the last stream they take,
// and they answer every stream up to it before closing).
#[test]
fn reloads_under_h2load_over_h2c_answer_every_request_sent() {
    quiet_sigchld();
    let server = Server::start(&format!(
        "listen = [\"{{addr}} h2c\"]\nworkers = 2\n{ACCESS_LOG}"
    ));
    reloads_under_h2load(&server, &format!("http://{}/", server.addr));
    server.finish();
}

// Proves: the same over TLS with ALPN h2.
#[test]
fn reloads_under_h2load_over_tls_answer_every_request_sent() {
    quiet_sigchld();
    let server = Server::start(&tls_config("workers = 2", ACCESS_LOG));
    reloads_under_h2load(&server, &format!("https://{}/", server.addr));
    server.finish();
}

// Proves: a worker told to QUIT under h2load load drains its h2
// connections (GOAWAY, streams below it answered, close) and the master
// replaces it; every request sent is answered, and the clients on the
// other worker go on to the end.
#[test]
fn a_worker_quitting_under_h2load_answers_every_request_sent() {
    quiet_sigchld();
    let server = Server::start(&format!(
        "listen = [\"{{addr}} h2c\"]\nworkers = 2\n{ACCESS_LOG}"
    ));
    let url = format!("http://{}/", server.addr);
    let out = under_h2load(&server, &url, 8_000, || {
        let before = server.wait_workers(2);
        kill(Pid::from_raw(before[0]), Signal::SIGQUIT).unwrap();
        server.wait_for_log(&format!("pid={} exited status=0", before[0]));
        wait_until(WAIT, "a replacement worker", || {
            let now = server.worker_pids();
            (now.len() == 2 && !now.contains(&before[0])).then_some(())
        });
    });
    if let Some(out) = out {
        assert_every_sent_request_answered(&out);
    }
    server.finish();
}

// Proves: zero failed requests across two reloads and a worker's QUIT
// under load from clients that do what RFC 9113 §6.8 asks after a GOAWAY
// (`load.rs`): nothing reset, nothing at or below a GOAWAY's last stream
// id left unanswered, every answer a 200, and the load goes on through
// new connections to the new workers.
#[test]
fn reloads_and_a_worker_quit_fail_no_request_of_a_reconnecting_client() {
    quiet_sigchld();
    let server = Server::start("listen = [\"{addr} h2c\"]\nworkers = 2\n");
    let load = Load::start(server.addr, 4);
    load.wait_more(300);
    for generation in [2, 3] {
        let goaways = load.tally.goaways.load(Ordering::SeqCst);
        server.signal(Signal::SIGHUP);
        server.wait_for_log(&format!("reload done generation={generation}"));
        wait_until(WAIT, "the old workers' GOAWAYs", || {
            (load.tally.goaways.load(Ordering::SeqCst) > goaways).then_some(())
        });
        load.wait_more(300);
    }
    let pid = server.wait_workers(2)[0];
    kill(Pid::from_raw(pid), Signal::SIGQUIT).unwrap();
    server.wait_for_log(&format!("pid={pid} exited status=0"));
    load.wait_more(300);
    let (answered, retried) = (
        load.tally.answered.load(Ordering::SeqCst),
        load.tally.retried.load(Ordering::SeqCst),
    );
    let failures = load.stop();
    assert!(failures.is_empty(), "{failures:#?}");
    eprintln!("{answered} answered, {retried} sent again after a GOAWAY");
    server.finish();
}
