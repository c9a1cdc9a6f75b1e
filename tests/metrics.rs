//! Status routes (issue 13) through the real binary: `kind = "stub_status"`
//! answers nginx's text byte for byte (and prometheus-nginx-exporter reads
//! it), `kind = "metrics"` answers Prometheus text that `promtool check
//! metrics` finds clean, both only to clients in `allow` (403 to others),
//! and the counters never go down while the master lives: a killed
//! worker's and a reloaded generation's counts stay in the totals. Real
//! peers are skipped with a message when they are not installed.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const STATUS_ROUTES: &str = r#"
[[route]]
path = "/basic_status"
kind = "stub_status"

[[route]]
path = "/metrics"
kind = "metrics"
"#;

fn scrape(server: &Server, path: &str) -> Response {
    server.ask(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
}

fn metrics(server: &Server) -> String {
    let r = scrape(server, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.body
}

/// The value of one sample of a scrape; fails naming the sample.
fn value(text: &str, name: &str) -> u64 {
    sample(text, name).unwrap_or_else(|| panic!("no sample {name} in\n{text}")) as u64
}

#[test]
fn stub_status_is_nginx_text_with_reading_writing_and_waiting() {
    let server = Server::start(&format!("workers = 1\n{STATUS_ROUTES}"));
    for _ in 0..3 {
        assert!(server.get().starts_with("HTTP/1.1 200 "));
    }
    // Two idle keep-alive connections, and one with half a request head.
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut s = server.open();
        send(&mut s, GET);
        assert_eq!(try_read_response(&mut s).unwrap().status, 200);
        idle.push(s);
    }
    let mut partial = server.open();
    send(&mut partial, b"GET / HTTP/1.1\r\nHost: t\r\n");
    // The worker may accept the partial connection before its bytes
    // arrive (waiting), and read them later (reading): scrape until then.
    let mut scrapes = 0;
    let r = wait_until(WAIT, "the partial head to be read", || {
        scrapes += 1;
        let r = scrape(&server, "/basic_status");
        r.body.contains("Reading: 1 ").then_some(r)
    });
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    // 3 answered and closed, 3 held, and the scrape itself (writing, and
    // counted among the requests as nginx counts it).
    assert_eq!(
        r.body,
        format!(
            "Active connections: 4 \nserver accepts handled requests\n {a} {a} {r} \nReading: 1 Writing: 1 Waiting: 2 \n",
            a = 6 + scrapes,
            r = 5 + scrapes
        )
    );
    drop(idle);
    drop(partial);
    server.finish();
}

#[test]
fn status_routes_answer_403_outside_allow_and_bypass_maintenance() {
    let server = Server::start_with(Options {
        pid_file: true,
        ..Options::toml(
            r#"
workers = 1

[[route]]
path = "/basic_status"
kind = "stub_status"
allow = ["10.0.0.0/8"]

[[route]]
path = "/metrics"
kind = "metrics"
"#,
        )
    });
    let forbidden = scrape(&server, "/basic_status");
    assert_eq!(forbidden.status, 403, "{}", forbidden.text);
    assert_eq!(forbidden.body, "Forbidden\n");
    assert!(!forbidden.text.contains("Active connections"));
    // The default allow is 127.0.0.1/32 and ::1/128: 127.0.0.2 is outside.
    let mut s = open_from(IpAddr::from([127, 0, 0, 2]), server.addr);
    send(&mut s, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = try_read_response(&mut s).unwrap();
    assert_eq!(r.status, 403, "{}", r.text);
    let body = metrics(&server);
    assert_eq!(value(&body, "preforkd_maintenance"), 0);
    // Maintenance answers every other route, not a scrape.
    let (code, out, err) = server.ctl(&["maintenance", "on"]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(status(&server.get()), 503);
    let body = metrics(&server);
    assert_eq!(value(&body, "preforkd_maintenance"), 1);
    // 2 answered 403 and one 503 so far.
    assert_eq!(value(&body, "preforkd_responses_total{code=\"4xx\"}"), 2);
    assert_eq!(value(&body, "preforkd_responses_total{code=\"5xx\"}"), 1);
    server.finish();
}

#[test]
fn promtool_finds_the_metrics_clean() {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let server = Server::start(&format!("workers = 2\n{STATUS_ROUTES}"));
    server.get();
    server.request(b"GET / HTTP/1.1\r\n\r\n"); // 400: no Host
    let body = metrics(&server);
    let out = output_within(
        Command::new(promtool).args(["check", "metrics"]),
        body.as_bytes(),
        Duration::from_secs(60),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {said}\n{body}");
    assert_eq!(said, "", "promtool warns:\n{body}");
    // And what the issue asks for is there.
    for family in [
        "build_info",
        "start_time_seconds",
        "requests_total",
        "responses_total",
        "connections_accepted_total",
        "connections",
        "workers",
        "worker_restarts_total",
        "generation",
        "reloads_total",
        "upgrades_total",
        "maintenance",
        "access_log_lost_lines_total",
        "evictions_total",
        "tls_handshakes_total",
    ] {
        assert!(
            body.contains(&format!("\n# TYPE preforkd_{family} ")),
            "{family} missing:\n{body}"
        );
    }
    assert_eq!(value(&body, "preforkd_responses_total{code=\"4xx\"}"), 1);
    assert_eq!(value(&body, "preforkd_workers{state=\"accepting\"}"), 2);
    server.finish();
}

/// `requests=N` of the `total` line of `-s status` (live workers only).
fn live_requests(server: &Server) -> u64 {
    let out = server.control("status");
    let total = out.lines().find(|l| l.starts_with("total ")).unwrap();
    total
        .split(' ')
        .find_map(|kv| kv.strip_prefix("requests="))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn counters_survive_a_killed_worker_and_reloads() {
    let mut server = Server::start_with(Options {
        pid_file: true,
        ..Options::toml(&format!("workers = 2\n{STATUS_ROUTES}"))
    });
    let workers = server.wait_workers(2);
    for _ in 0..10 {
        assert_eq!(status(&server.get()), 200);
    }
    // Every answer is in the slots before a worker is killed.
    wait_until(WAIT, "10 requests in -s status", || {
        (live_requests(&server) == 10).then_some(())
    });
    let first = metrics(&server);
    // The scrape counts itself, as nginx does.
    assert_eq!(value(&first, "preforkd_requests_total"), 11);
    assert_eq!(value(&first, "preforkd_responses_total{code=\"2xx\"}"), 10);
    assert_eq!(value(&first, "preforkd_connections_accepted_total"), 11);
    assert_eq!(value(&first, "preforkd_generation"), 1);

    // Kill both workers, one after the other: whichever served, its
    // counts must stay.
    for (n, victim) in workers.iter().enumerate() {
        kill(Pid::from_raw(*victim), Signal::SIGKILL).unwrap();
        server.wait_for_log(&format!("pid={victim} killed signal=SIGKILL"));
        wait_until(WAIT, "a replacement worker", || {
            let now = server.worker_pids();
            (now.len() == 2 && !now.contains(victim)).then_some(())
        });
        let after = metrics(&server);
        assert_eq!(value(&after, "preforkd_requests_total"), 12 + n as u64);
        assert_eq!(
            value(&after, "preforkd_responses_total{code=\"2xx\"}"),
            11 + n as u64
        );
        assert_eq!(
            value(&after, "preforkd_worker_restarts_total{cause=\"signal\"}"),
            n as u64 + 1
        );
    }

    // A reload: the old generation drains and exits; its counts stay.
    let before_reload = server.worker_pids();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("reload done generation=2");
    wait_until(WAIT, "the old generation to exit", || {
        let now = server.worker_pids();
        (now.len() == 2 && !now.iter().any(|p| before_reload.contains(p))).then_some(())
    });
    let reloaded = metrics(&server);
    assert_eq!(value(&reloaded, "preforkd_requests_total"), 14);
    assert_eq!(value(&reloaded, "preforkd_generation"), 2);
    assert_eq!(value(&reloaded, "preforkd_reloads_total{result=\"ok\"}"), 1);
    assert_eq!(
        value(
            &reloaded,
            "preforkd_worker_restarts_total{cause=\"signal\"}"
        ),
        2,
        "workers retired by a reload are no restarts"
    );

    // A reload that fails changes nothing but its counter.
    let good = std::fs::read_to_string(&server.config_path).unwrap();
    std::fs::write(&server.config_path, format!("{good}\nwokers = 3\n")).unwrap();
    server.signal(Signal::SIGHUP);
    server.wait_for_log("reload failed");
    let failed = metrics(&server);
    assert_eq!(value(&failed, "preforkd_requests_total"), 15);
    assert_eq!(
        value(&failed, "preforkd_reloads_total{result=\"failed\"}"),
        1
    );
    assert_eq!(value(&failed, "preforkd_generation"), 2);
    std::fs::write(&server.config_path, good).unwrap();
    server.stop_checked(&["reload failed", "killed signal=SIGKILL"]);
}

#[test]
fn prometheus_nginx_exporter_reads_stub_status() {
    let Some(exporter) = tool("prometheus-nginx-exporter", "prometheus-nginx-exporter") else {
        return;
    };
    let server = Server::start_with(Options {
        pid_file: true,
        ..Options::toml(&format!("workers = 1\n{STATUS_ROUTES}"))
    });
    const SENT: u64 = 5;
    for _ in 0..SENT {
        assert_eq!(status(&server.get()), 200);
    }
    let web = loopback_listener().1;
    let mut cmd = Command::new(exporter);
    cmd.arg("-nginx.scrape-uri")
        .arg(format!("http://{}/basic_status", server.addr))
        .arg("-web.listen-address")
        .arg(web.to_string());
    let _exporter = Peer::spawn(cmd, &server.dir.path().join("exporter.log"));
    let text = wait_until(WAIT, "the exporter to scrape preforkd", || {
        http_get(web, "/metrics").filter(|t| t.contains("\nnginx_up 1\n"))
    });
    let seen = value(&text, "nginx_http_requests_total");
    // Every request preforkd answered: the ones sent and the exporter's
    // scrapes of stub_status, the last of them counting itself.
    assert_eq!(seen, live_requests(&server), "{text}");
    assert!(
        (SENT + 1..=SENT + 3).contains(&seen),
        "{seen} requests: {SENT} sent and one to three scrapes\n{text}"
    );
    assert_eq!(
        value(&text, "nginx_connections_active"),
        1,
        "the scrape itself"
    );
    server.finish();
}

#[test]
fn restarts_are_counted_by_cause() {
    let mut server = Server::start(&format!(
        "workers = 1\nworker_timeout = \"1s\"\nmax_requests_per_worker = 3\n{STATUS_ROUTES}"
    ));
    let first = server.wait_workers(1)[0];
    // Three requests recycle the worker (max_requests_per_worker).
    for _ in 0..3 {
        assert_eq!(status(&server.get()), 200);
    }
    let second = wait_until(WAIT, "the recycled worker's replacement", || {
        let now = server.worker_pids();
        (now.len() == 1 && now[0] != first).then(|| now[0])
    });
    // A stopped worker is killed by the watchdog: a restart of its own
    // cause, not also one by signal.
    kill(Pid::from_raw(second), Signal::SIGSTOP).unwrap();
    server.wait_for_log(&format!("pid={second} hung"));
    wait_until(WAIT, "the hung worker's replacement", || {
        let now = server.worker_pids();
        (now.len() == 1 && now[0] != second).then_some(())
    });
    let body = metrics(&server);
    for (cause, n) in [("exit", 0), ("signal", 0), ("watchdog", 1), ("recycled", 1)] {
        assert_eq!(
            value(
                &body,
                &format!("preforkd_worker_restarts_total{{cause=\"{cause}\"}}")
            ),
            n,
            "{cause}\n{body}"
        );
    }
    assert_eq!(value(&body, "preforkd_requests_total"), 4);
    assert_eq!(value(&body, "preforkd_workers{state=\"accepting\"}"), 1);
    server.stop_checked(&["hung", "killed signal=SIGKILL"]);
}
