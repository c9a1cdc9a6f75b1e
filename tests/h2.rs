//! HTTP/2 (issue 20) through the real binary: prior knowledge on an `h2c`
//! listener with a tiny client written here (preface, SETTINGS, HEADERS
//! with a static-table-only HPACK block, frames read back; the answer's
//! block decoded with the library's own HPACK decoder), HTTP/1.1 on the
//! same port, ALPN `h2` over TLS, real clients (curl, nghttp, h2load),
//! routes by `:authority`, draining, the access log, the metrics; a
//! conformance table after the RFC 9113 sections h2spec covers, each case
//! expecting the error code the RFC names; and the attacks (rapid reset,
//! CONTINUATION flood, PING flood, too many streams, a window never opened).
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
#[path = "h2/client.rs"]
mod client;
mod common;
#[path = "h2/conformance.rs"]
mod conformance;
#[path = "h2/files.rs"]
mod files;
#[path = "h2/limits.rs"]
mod limits;
#[path = "h2/load.rs"]
mod load;
#[path = "h2/peers.rs"]
mod peers;

use std::process::Command;
use std::time::{Duration, Instant};

use client::*;
use common::*;
use nix::sys::signal::Signal;

fn h2c(extra: &str) -> Server {
    Server::start(&format!(
        "listen = [\"{{addr}} h2c\"]\nworkers = 1\n{extra}"
    ))
}

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/tls/testdata");

/// A config with a `tls` listener: `top` (top-level keys, `workers`
/// among them), then `tables` after the `[tls]` table.
fn tls_config(top: &str, tables: &str) -> String {
    format!(
        "listen = [\"{{addr}} tls\"]\n{top}\n[tls]\ncertificate = \"{TESTDATA}/leaf.pem\"\nkey = \"{TESTDATA}/leaf.key\"\n{tables}\n"
    )
}

/// A `tls` listener; `tls_extra` goes into the `[tls]` table.
fn tls_server(tls_extra: &str) -> Server {
    Server::start(&tls_config("workers = 1", tls_extra))
}

/// A command's stdout (and stderr), run to completion within `WAIT`.
fn run(cmd: &mut Command) -> String {
    let out = output_within(cmd, b"", WAIT * 3);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn prior_knowledge_answers_and_http11_still_works_on_the_same_port() {
    let server = h2c("");
    let mut c = H2::connect(server.addr);
    let a = c.get(1, "/");
    assert_eq!((a.status, a.body.as_str()), (200, "Hello, World!\n"));
    assert!(
        a.fields
            .iter()
            .any(|(n, v)| n == "content-length" && v == "14"),
        "{a:?}"
    );
    assert!(!a.fields.iter().any(|(n, _)| n == "connection"), "{a:?}");
    let a = c.get(3, "/");
    assert_eq!(a.status, 200, "a second stream on the connection");
    // HTTP/1.1 on the same port; Upgrade: h2c is not acted on.
    assert!(server.get().starts_with("HTTP/1.1 200 "));
    let r = server.request(
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
    server.finish();
}

#[test]
fn the_preface_on_a_plain_listener_keeps_the_http11_answer() {
    let server = Server::start("workers = 1");
    let r = server.request(PREFACE);
    assert!(r.starts_with("HTTP/1.1 505 "), "{r}");
    server.finish();
}

#[test]
fn routes_by_authority_and_the_access_log_says_http2() {
    let server = h2c(
        "[access_log]\npath = \"access.log\"\nbuffer = \"0\"\n[[route]]\npath = \"/site\"\nhost = \"example.org\"\nbody = \"example.org\\n\"\n[[route]]\npath = \"/site\"\nbody = \"any host\\n\"\n",
    );
    let mut c = H2::connect(server.addr);
    c.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("/site", "example.org"),
    ));
    assert_eq!(c.response(1).body, "example.org\n");
    c.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request_block("/site", "other"),
    ));
    assert_eq!(c.response(3).body, "any host\n");
    let log = server.dir.path().join("access.log");
    let text = wait_until(WAIT, "two access log lines", || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        (t.lines().count() >= 2).then_some(t)
    });
    assert!(text.contains("\"GET /site HTTP/2.0\" 200 12 "), "{text}");
    server.finish();
}

#[test]
fn curl_nghttp_and_h2load_over_h2c() {
    let server = h2c("");
    let url = format!("http://{}/", server.addr);
    if tool("curl", "curl").is_some() {
        let out = run(Command::new("curl").args([
            "-s",
            "--http2-prior-knowledge",
            "-w",
            "|%{http_version}",
            &url,
        ]));
        assert_eq!(out, "Hello, World!\n|2");
    }
    if tool("nghttp", "nghttp2-client").is_some() {
        let out = run(Command::new("nghttp").args(["-nv", &url]));
        assert!(out.contains(":status: 200"), "{out}");
        assert!(
            out.contains("recv DATA frame <length=14, flags=0x01"),
            "{out}"
        );
    }
    if tool("h2load", "nghttp2-client").is_some() {
        let out = run(Command::new("h2load").args(["-n", "2000", "-c", "10", "-m", "10", &url]));
        assert!(out.contains("2000 succeeded, 0 failed, 0 errored"), "{out}");
    }
    server.finish();
}

#[test]
fn alpn_h2_over_tls_with_curl_and_h2load() {
    let server = tls_server("");
    let url = format!("https://{}/", server.addr);
    if tool("curl", "curl").is_some() {
        let out =
            run(Command::new("curl").args(["-sk", "--http2", "-w", "|%{http_version}", &url]));
        assert_eq!(out, "Hello, World!\n|2");
        let out =
            run(Command::new("curl").args(["-sk", "--http1.1", "-w", "|%{http_version}", &url]));
        assert_eq!(out, "Hello, World!\n|1.1");
    }
    if tool("h2load", "nghttp2-client").is_some() {
        let out = run(Command::new("h2load").args(["-n", "2000", "-c", "10", "-m", "10", &url]));
        assert!(out.contains("Application protocol: h2"), "{out}");
        assert!(out.contains("2000 succeeded, 0 failed, 0 errored"), "{out}");
    }
    server.finish();
}

#[test]
fn alpn_http11_only_turns_h2_off() {
    let server = tls_server("alpn = [\"http/1.1\"]");
    if tool("curl", "curl").is_some() {
        let url = format!("https://{}/", server.addr);
        let out =
            run(Command::new("curl").args(["-sk", "--http2", "-w", "|%{http_version}", &url]));
        assert_eq!(out, "Hello, World!\n|1.1");
    }
    server.finish();
}

#[test]
fn an_unknown_alpn_name_is_a_config_error_with_its_place() {
    let dir = TempDir::new();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        format!("[tls]\ncertificate = \"{TESTDATA}/leaf.pem\"\nkey = \"{TESTDATA}/leaf.key\"\nalpn = [\"h3\"]\n"),
    )
    .unwrap();
    let (code, out, err) = run_bin(&["-t", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("bad.toml:4:8: tls.alpn: unknown protocol \"h3\""),
        "{err}"
    );
}

#[test]
fn metrics_count_h2_streams_and_goaways() {
    let server = h2c("[[route]]\npath = \"/metrics\"\nkind = \"metrics\"\n");
    let mut c = H2::connect(server.addr);
    for id in [1, 3, 5] {
        assert_eq!(c.get(id, "/").status, 200);
    }
    c.send(&frame(PING, 0, 1, &[0; 8])); // PING on a stream: PROTOCOL_ERROR
    assert_eq!(c.goaway().code(), PROTOCOL_ERROR);
    let text = wait_until(WAIT, "the h2 counts", || {
        let r = server.ask(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let ok = sample(&r.body, "preforkd_h2_streams_total") == Some(3.0)
            && sample(&r.body, "preforkd_h2_goaways_sent_total") == Some(1.0);
        ok.then_some(r.body)
    });
    assert!(
        text.contains("preforkd_h2_defences_total{defence=\"rapid_reset\"} 0"),
        "{text}"
    );
    server.finish();
}

#[test]
fn draining_gives_notice_answers_health_503_then_goes_away() {
    let server = h2c(
        "drain_idle_grace = \"20s\"\nshutdown_timeout = \"20s\"\n[[route]]\npath = \"/healthz\"\nkind = \"health\"\n",
    );
    let mut c = H2::connect(server.addr);
    assert_eq!(c.get(1, "/healthz").status, 200);
    server.signal(Signal::SIGQUIT);
    let notice = c.goaway();
    assert_eq!(
        (notice.last_stream(), notice.code()),
        ((1 << 31) - 1, NO_ERROR)
    );
    // A request already on its way when draining began is answered.
    let a = c.get(3, "/healthz");
    assert_eq!((a.status, a.body.as_str()), (503, "draining\n"));
    let last = c.goaway();
    assert_eq!((last.last_stream(), last.code()), (3, NO_ERROR));
    assert!(c.closes_within(WAIT), "closed after the final GOAWAY");
    let mut server = server;
    assert!(server.wait_exit().success());
}

#[test]
fn keepalive_timeout_closes_an_idle_connection_with_goaway() {
    let server = h2c("keepalive_timeout = \"1s\"\n");
    let mut c = H2::connect(server.addr);
    assert_eq!(c.get(1, "/").status, 200);
    let g = c.goaway();
    assert_eq!((g.last_stream(), g.code()), (1, NO_ERROR));
    assert!(c.closes_within(WAIT));
    server.finish();
}

#[test]
fn rapid_reset_gets_enhance_your_calm() {
    let server = h2c("[[route]]\npath = \"/metrics\"\nkind = \"metrics\"\n");
    let mut c = H2::connect(server.addr);
    let mut burst = Vec::new();
    for i in 0..500u32 {
        let id = 2 * i + 1;
        burst.extend(frame(HEADERS, END_HEADERS, id, &request_block("/", "t")));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    c.send(&burst);
    assert_eq!(c.goaway().code(), ENHANCE_YOUR_CALM);
    assert_defence(&server, "rapid_reset");
    server.finish();
}

#[test]
fn continuation_flood_ends_the_connection_at_once() {
    let server = h2c("[[route]]\npath = \"/metrics\"\nkind = \"metrics\"\n");
    let mut c = H2::connect(server.addr);
    let mut flood = frame(HEADERS, 0, 1, &[0x82]);
    for _ in 0..10_000 {
        flood.extend(frame(CONTINUATION, 0, 1, &[0x86]));
    }
    c.send(&flood);
    assert_eq!(c.goaway().code(), ENHANCE_YOUR_CALM);
    assert_defence(&server, "continuation_flood");
    server.finish();
}

#[test]
fn ping_flood_gets_enhance_your_calm() {
    let server = h2c("[[route]]\npath = \"/metrics\"\nkind = \"metrics\"\n");
    let mut c = H2::connect(server.addr);
    let mut flood = Vec::new();
    for _ in 0..6_000 {
        flood.extend(frame(PING, 0, 0, &[7; 8]));
    }
    c.send(&flood);
    let g = c.until("GOAWAY", |f| (f.kind == GOAWAY).then(|| f.code()));
    assert_eq!(g, ENHANCE_YOUR_CALM);
    assert_defence(&server, "control_flood");
    server.finish();
}

#[test]
fn more_than_128_streams_are_refused() {
    let server = h2c("[[route]]\npath = \"/metrics\"\nkind = \"metrics\"\n");
    let mut c = H2::connect(server.addr);
    let mut burst = Vec::new();
    for i in 0..129u32 {
        // No END_STREAM: each stays open (a body would follow).
        burst.extend(frame(
            HEADERS,
            END_HEADERS,
            2 * i + 1,
            &request_block("/", "t"),
        ));
    }
    c.send(&burst);
    let refused = c.until("RST_STREAM", |f| {
        (f.kind == RST_STREAM).then(|| (f.stream, f.code()))
    });
    assert_eq!(refused, (257, REFUSED_STREAM));
    assert_defence(&server, "refused_stream");
    server.finish();
}

#[test]
fn a_peer_that_never_opens_its_window_is_closed_after_header_timeout() {
    let server =
        h2c("header_timeout = \"1s\"\n[[route]]\npath = \"/metrics\"\nkind = \"metrics\"\n");
    // SETTINGS_INITIAL_WINDOW_SIZE 0: no DATA may come.
    let mut c = H2::with_settings(server.addr, &settings(&[(4, 0)]));
    c.send(&get_frame(1, "/"));
    let started = Instant::now();
    assert_eq!(c.goaway().code(), ENHANCE_YOUR_CALM);
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert!(c.closes_within(WAIT));
    assert_defence(&server, "stalled_window");
    server.finish();
}

/// The metrics page counts one `defence` at least.
fn assert_defence(server: &Server, defence: &str) {
    let name = format!("preforkd_h2_defences_total{{defence=\"{defence}\"}}");
    wait_until(WAIT, &name, || {
        let r = server.ask(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        sample(&r.body, &name).filter(|&v| v >= 1.0)
    });
}
