//! Routes, health checks and the maintenance switch (issue 11), through the
//! real binary: `[[route]]` answers by path, host and method in file order;
//! redirects with and without `keep_path`; health routes turn 503 the
//! moment their worker drains (reload, TTOU, WINCH, QUIT,
//! max_requests_per_worker); `-s maintenance on|off` switches every worker
//! and survives reloads and upgrades; `-t` names every bad route with
//! `file:line:col`. Clients, servers and waits are the harness'
//! (`tests/common`).
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::net::TcpStream;

use common::*;
use nix::sys::signal::Signal;

/// The ingress default backend of the README, plus a route of each kind.
const ROUTES: &str = r#"
[response]
status = 404
body = "default backend - 404\n"

[[route]]
path = "/healthz"
kind = "health"

[[route]]
prefix = "/old/"
kind = "redirect"
location = "https://example.org/new/"
status = 308
keep_path = true

[[route]]
path = "/old/exact"
body = "never: the prefix above comes first\n"

[[route]]
path = "/exact"
body = "exact\n"
headers = { "X-Route" = "exact" }

[[route]]
prefix = "/exact"
body = "prefix after exact\n"

[[route]]
path = "/site"
host = "Example.ORG"
body = "example.org\n"

[[route]]
path = "/site"
body = "any host\n"

[[route]]
path = "/form"
methods = ["POST"]
status = 201
body = "posted\n"
content_type = "application/json"

[[route]]
path = "/moved"
kind = "redirect"
location = "/elsewhere"
"#;

/// `GET path` with `Connection: close`, on a new connection.
fn get(server: &Server, path: &str) -> Response {
    server.ask(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
}

#[test]
fn routes_answer_by_path_host_and_method_in_file_order() {
    let server = Server::start(ROUTES);

    // The default backend: 404 for anything no route takes.
    let r = get(&server, "/");
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "default backend - 404\n")
    );
    let r = get(&server, "/nothing/here?x=1");
    assert_eq!(r.status, 404);

    let r = get(&server, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"), "{}", r.text);
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    // The query is not part of the path.
    assert_eq!(get(&server, "/healthz?probe=1").status, 200);
    assert_eq!(get(&server, "/healthz/").status, 404, "exact means exact");

    // File order: the prefix route written first wins over a later exact one.
    let r = get(&server, "/old/exact");
    assert_eq!(r.status, 308, "{}", r.text);
    // ...and an exact route written first wins over a later prefix.
    let r = get(&server, "/exact");
    assert_eq!((r.status, r.body.as_str()), (200, "exact\n"));
    assert_eq!(r.header("X-Route"), Some("exact"));
    assert_eq!(get(&server, "/exactly").body, "prefix after exact\n");

    // Host: without its port, case-insensitively; absent or other: next route.
    let site = |host: &str| {
        server
            .ask(
                format!("GET /site HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .body
    };
    assert_eq!(site("example.org"), "example.org\n");
    assert_eq!(site("EXAMPLE.org:8080"), "example.org\n");
    assert_eq!(site("www.example.org"), "any host\n");
    let r = server.ask(b"GET /site HTTP/1.0\r\n\r\n");
    assert_eq!(r.body, "any host\n", "HTTP/1.0 without Host");

    // HEAD: the head alone, Content-Length of the GET answer.
    let mut s = server.open();
    send(
        &mut s,
        b"HEAD /exact HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let text = read_until_close(&mut s);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Content-Length: 6\r\n") && text.ends_with("\r\n\r\n"),
        "{text}"
    );

    server.finish();
}

#[test]
fn methods_get_405_with_allow_and_options_204() {
    let server = Server::start(ROUTES);
    // A GET route refuses POST, naming what it takes.
    let r = server.ask(
        b"POST /exact HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.header("Allow"), Some("GET, HEAD, OPTIONS"));
    // A POST route takes POST (its body is read and discarded)...
    let r = server.ask(
        b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!((r.status, r.body.as_str()), (201, "posted\n"), "{}", r.text);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    // ...and refuses GET with its own Allow.
    let r = get(&server, "/form");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("POST, OPTIONS"));
    // A method no route may list, on the default response: 405 as before.
    let r = server.ask(b"DELETE / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD, OPTIONS"));
    // OPTIONS: 204 with the route's Allow.
    let mut s = server.open();
    send(
        &mut s,
        b"OPTIONS /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let text = read_until_close(&mut s);
    assert!(text.starts_with("HTTP/1.1 204 "), "{text}");
    assert!(text.contains("\r\nAllow: POST, OPTIONS\r\n"), "{text}");
    server.finish();
}

#[test]
fn redirects_carry_location_and_keep_path_appends_path_and_query() {
    let server = Server::start(ROUTES);
    let r = get(&server, "/old/a/b.html?x=1&y=%20");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("Location"),
        Some("https://example.org/new/a/b.html?x=1&y=%20")
    );
    let r = get(&server, "/old/");
    assert_eq!(r.header("Location"), Some("https://example.org/new/"));
    let r = get(&server, "/moved?q=1");
    assert_eq!(r.status, 301, "default redirect status");
    assert_eq!(
        r.header("Location"),
        Some("/elsewhere"),
        "no keep_path: no query"
    );
    // absolute-form targets route by their path too.
    let r = server.ask(b"GET http://t/old/z?k HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.header("Location"), Some("https://example.org/new/z?k"));

    // A keep_path redirect whose request has a body (the head's bytes are
    // gone when the body ends), pipelined with others on one connection.
    let mut s = server.open();
    send(&mut s, b"GET /old/1 HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /old/2?two HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n12345\
          GET /exact HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /old/3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    let want = [
        "https://example.org/new/1",
        "https://example.org/new/2?two",
        "",
        "https://example.org/new/3",
    ];
    for w in want {
        let text = read_response(&mut s);
        if w.is_empty() {
            assert!(text.ends_with("\r\n\r\nexact\n"), "{text}");
        } else {
            assert!(text.starts_with("HTTP/1.1 308 "), "{text}");
            assert!(text.contains(&format!("\r\nLocation: {w}\r\n")), "{text}");
        }
    }
    drop(s);

    // Every redirect status the config takes.
    for status in [301, 302, 303, 307, 308] {
        let s = Server::start(&format!(
            "[[route]]\nprefix = \"/\"\nkind = \"redirect\"\nlocation = \"https://x.example/\"\nstatus = {status}\nkeep_path = true\n"
        ));
        let r = get(&s, "/p?q");
        assert_eq!(r.status, status);
        assert_eq!(r.header("Location"), Some("https://x.example/p?q"));
        s.finish();
    }
    server.finish();
}

// ---------------------------------------------------------------------------
// Health: 503 from the moment the worker drains
// ---------------------------------------------------------------------------

/// Health route; long keep-alive and idle grace, so that a kept connection
/// outlives a slow test step and the start of the drain.
fn health_config(extra: &str) -> String {
    format!(
        "drain_idle_grace = \"20s\"\nshutdown_timeout = \"20s\"\nkeepalive_timeout = \"60s\"\n{extra}\n[[route]]\npath = \"/healthz\"\nkind = \"health\"\n"
    )
}

/// A kept-alive connection that has seen one 200 from /healthz.
fn healthy_conn(server: &Server) -> TcpStream {
    let mut s = server.open();
    send(&mut s, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = try_read_response(&mut s).unwrap();
    assert_eq!((r.status, r.close), (200, false), "{}", r.text);
    s
}

/// On a connection whose worker drains: 503 `draining`, then the close.
fn assert_draining(mut s: TcpStream) {
    send(&mut s, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = try_read_response(&mut s).unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "draining\n"),
        "{}",
        r.text
    );
    assert!(r.close, "Connection: close expected: {}", r.text);
    assert_eq!(read_until_close(&mut s), "", "the connection closes");
}

#[test]
fn health_turns_503_on_reload_and_quit() {
    let mut server = Server::start(&health_config("workers = 1"));
    let s = healthy_conn(&server);
    server.signal(Signal::SIGHUP);
    server.wait_for_log("reload done");
    server.wait_for_log("draining");
    assert_draining(s);
    // The new generation is healthy.
    assert_eq!(get(&server, "/healthz").status, 200);

    // QUIT (graceful stop of the master): its workers drain too.
    let s = healthy_conn(&server);
    server.signal(Signal::SIGQUIT);
    server.wait_for_log("master stopping mode=graceful");
    server.wait_for_log_count("draining", 2);
    assert_draining(s);
    assert!(server.wait_exit().success());
}

#[test]
fn health_turns_503_on_ttou_and_winch() {
    let server = Server::start(&health_config("workers = 2"));
    let started = server.wait_for_log("worker=1 pid=");
    let pid1: i32 = started
        .split("pid=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    server.wait_workers(2);
    // Connections until each worker holds one: the others stay open, so
    // that balanced accepting hands the next ones to the other worker (a
    // client's connections one after the other would all go to one).
    let mut held = Vec::new();
    let mut by_worker = |want_worker_1: bool| {
        wait_until(WAIT, "a connection served by the other worker", || {
            let s = healthy_conn(&server);
            let on_1 = socket_inodes(pid1).contains(&server_side_inode(&s));
            if on_1 == want_worker_1 {
                return Some(s);
            }
            held.push(s);
            None
        })
    };
    let conn = by_worker(true);
    let other = by_worker(false);
    drop(held);
    server.signal(Signal::SIGTTOU);
    server.wait_for_log(&format!("worker=1 pid={pid1} retiring"));
    server.wait_for_log(&format!("worker pid={pid1} draining"));
    assert_draining(conn);
    // The worker that stays answers 200 on its kept connection.
    let mut other = other;
    send(&mut other, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(try_read_response(&mut other).unwrap().status, 200);

    // WINCH: every worker drains.
    server.signal(Signal::SIGWINCH);
    server.wait_for_log_count("draining", 2);
    assert_draining(other);
    server.finish();
}

#[test]
fn health_turns_503_when_max_requests_per_worker_is_reached() {
    let server = Server::start(&health_config("workers = 1\nmax_requests_per_worker = 2"));
    let mut s = healthy_conn(&server); // request 1
    send(&mut s, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(try_read_response(&mut s).unwrap().status, 200); // request 2
    server.wait_for_log("retiring on its own");
    assert_draining(s);
    server.finish();
}

// ---------------------------------------------------------------------------
// Maintenance
// ---------------------------------------------------------------------------

const MAINTENANCE: &str = r#"
[maintenance]
status = 503
retry_after = "120s"
body = "Down for maintenance\n"
headers = { "Cache-Control" = "no-store" }
"#;

/// [`Server::start`] with a pid file, and so a control socket.
fn start_with_pid_file(toml: &str) -> Server {
    Server::start_with(Options {
        pid_file: true,
        ..Options::toml(toml)
    })
}

fn assert_maintenance_page(r: &Response) {
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body, "Down for maintenance\n");
    assert_eq!(r.header("Retry-After"), Some("120"));
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
}

#[test]
fn maintenance_switches_every_worker_and_survives_reload() {
    let server = start_with_pid_file(&format!("workers = 2\n{MAINTENANCE}{ROUTES}"));
    let mode = std::fs::metadata(control_socket(&server)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o600,
        "control socket mode"
    );

    let (code, out, err) = server.ctl(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" maintenance=off "), "{out}");

    server.maintenance(true);
    // Every worker, every route but health, the default response too,
    // every method; HEAD gets the head alone.
    for _ in 0..20 {
        assert_maintenance_page(&get(&server, "/"));
        assert_maintenance_page(&get(&server, "/exact"));
        assert_maintenance_page(&get(&server, "/old/x"));
        assert_eq!(get(&server, "/healthz").body, "ok\n");
    }
    let r = server
        .ask(b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_maintenance_page(&r);
    let mut s = server.open();
    send(
        &mut s,
        b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let text = read_until_close(&mut s);
    assert!(
        text.starts_with("HTTP/1.1 503 ") && text.ends_with("\r\n\r\n"),
        "{text}"
    );
    let (_, out, _) = server.ctl(&["status"]);
    assert!(out.contains(" maintenance=on "), "{out}");

    // A reload with other routes: new workers, still in maintenance.
    std::fs::write(
        &server.config_path,
        std::fs::read_to_string(&server.config_path)
            .unwrap()
            .replace("path = \"/exact\"", "path = \"/renamed\""),
    )
    .unwrap();
    let (code, out, err) = server.ctl(&["reload", "--wait", "10"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_maintenance_page(&get(&server, "/renamed"));
    assert_eq!(get(&server, "/healthz").status, 200);

    // A reload that fails keeps the old config, and the switch.
    let good = std::fs::read_to_string(&server.config_path).unwrap();
    std::fs::write(
        &server.config_path,
        format!("{good}\n[[route]]\npath = \"nope\"\n"),
    )
    .unwrap();
    let (code, _, err) = server.ctl(&["reload", "--wait", "10"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("route.path: \"nope\" does not start with \"/\""),
        "{err}"
    );
    assert_maintenance_page(&get(&server, "/renamed"));
    std::fs::write(&server.config_path, good).unwrap();

    server.maintenance(false);
    for _ in 0..20 {
        assert_eq!(get(&server, "/renamed").body, "exact\n");
        assert_eq!(get(&server, "/exact").body, "prefix after exact\n");
        assert_eq!(get(&server, "/").status, 404);
    }
    // The failed reload above logged an error on purpose.
    server.finish_with(&["reload failed"]);
}

fn control_socket(server: &Server) -> std::path::PathBuf {
    preforkd::control::socket_path(&server.pid_file)
}

#[test]
fn maintenance_survives_an_upgrade() {
    let mut server = start_with_pid_file(&format!(
        "workers = 1\n{MAINTENANCE}[[route]]\npath = \"/healthz\"\nkind = \"health\"\n"
    ));
    let old = server.pid().as_raw();
    let (code, _, err) = server.ctl(&["maintenance", "on"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = server.ctl(&["upgrade", "--wait", "10"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(server.wait_exit().success(), "old master");
    let new = server.pid_file_pid().expect("the new master's pid file");
    assert_ne!(new, old);
    assert_maintenance_page(&get(&server, "/"));
    assert_eq!(get(&server, "/healthz").status, 200);
    let (code, out, err) = server.ctl(&["status"]);
    assert!(
        code == 0
            && out.contains(&format!("master pid={new} "))
            && out.contains(" maintenance=on "),
        "{out}{err}"
    );
    // Once from the old master, once from the new one that inherited it.
    server.wait_for_log_count("master maintenance=on", 2);
    let (code, _, _) = server.ctl(&["maintenance", "off"]);
    assert_eq!(code, 0);
    assert_eq!(get(&server, "/").body, "Hello, World!\n");
    // The new master is not our child: stop it by its pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(new), Signal::SIGQUIT).unwrap();
    wait_until(WAIT, "the new master to exit", || {
        (!alive(new)).then_some(())
    });
}

#[test]
fn maintenance_is_refused_to_other_users() {
    if !root("needs root to run -s as another user") {
        return;
    }
    let server = start_with_pid_file(MAINTENANCE);
    // Open the socket's mode, so that only SO_PEERCRED stands in the way.
    use std::os::unix::fs::PermissionsExt;
    let sock = control_socket(&server);
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(server.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("-s")
            .args(args)
            .arg("-p")
            .arg(&server.pid_file)
            .uid(65534)
            .gid(65534);
        let out = output_within(&mut cmd, b"", RUN_WITHIN);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = as_nobody(&["maintenance", "on"]);
    if err.contains("Permission denied (os error 13)") && err.contains("cannot connect") {
        skip(&format!("uid 65534 cannot reach the socket here: {err}"));
        server.finish();
        return;
    }
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("permission denied: only root or the master's user"),
        "{err}"
    );
    server.wait_for_log("control: maintenance on refused");
    assert_eq!(get(&server, "/").status, 200, "the switch did not move");
    // Reading the status stays open to whoever can reach the socket.
    let (code, out, err) = as_nobody(&["status"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(" maintenance=off "), "{out}");
    server.finish();
}

// ---------------------------------------------------------------------------
// Access log
// ---------------------------------------------------------------------------

#[test]
fn access_log_names_what_answered() {
    let server = start_with_pid_file(&format!(
        "workers = 1\n[access_log]\npath = \"a.json\"\nformat = \"json\"\nbuffer = \"0\"\n{MAINTENANCE}{ROUTES}"
    ));
    let log = server.dir.path().join("a.json");
    let mut want = Vec::new();
    let mut expect = |path: &str, status: u16, route: &str| {
        assert_eq!(get(&server, path).status, status, "{path}");
        want.push(format!("\"target\":\"{path}\"|{status}|\"route\":{route},"));
    };
    expect("/healthz", 200, "\"/healthz\"");
    expect("/old/x", 308, "\"/old/*\"");
    expect("/form", 405, "\"/form\"");
    expect("/nothing", 404, "null");
    let (code, _, err) = server.ctl(&["maintenance", "on"]);
    assert_eq!(code, 0, "{err}");
    expect("/exact", 503, "\"maintenance\"");
    expect("/healthz", 200, "\"/healthz\"");
    let lines = wait_until(WAIT, "an access log line per request", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= want.len()).then_some(lines)
    });
    assert_eq!(lines.len(), want.len(), "{lines:#?}");
    for (line, w) in lines.iter().zip(&want) {
        let [target, status, route] = [0, 1, 2].map(|i| w.split('|').nth(i).unwrap());
        assert!(
            line.contains(target)
                && line.contains(&format!("\"status\":{status},"))
                && line.contains(route),
            "{line}\nwant {w}"
        );
    }
    server.finish();
}

// ---------------------------------------------------------------------------
// -t
// ---------------------------------------------------------------------------

#[test]
fn bad_routes_fail_t_with_file_line_col() {
    let dir = TempDir::new();
    let many: String = (0..=1000)
        .map(|i| format!("[[route]]\npath = \"/{i}\"\n"))
        .collect();
    let cases: Vec<(String, &str)> = vec![
        ("[[route]]\npath = \"/a\"\nprefix = \"/b\"\n".into(), ":3:10: route.prefix: a route has a path or a prefix, not both"),
        ("[[route]]\nbody = \"x\"\n".into(), ":1:1: route: needs a path (exact) or a prefix"),
        ("[[route]]\npath = \"healthz\"\n".into(), ":2:8: route.path: \"healthz\" does not start with \"/\""),
        ("[[route]]\nprefix = \"old/\"\n".into(), ":2:10: route.prefix: \"old/\" does not start with \"/\""),
        ("[[route]]\npath = \"/a\"\nkind = \"proxy\"\n".into(), ":3:8: route.kind: unknown kind \"proxy\""),
        ("[[route]]\npath = \"/a\"\nkind = \"redirect\"\n".into(), ":1:1: route: a redirect needs a location"),
        ("[[route]]\npath = \"/a\"\nkind = \"redirect\"\nlocation = \"/b\"\nstatus = 304\n".into(), ":5:10: route.status: a redirect's status is 301, 302, 303, 307 or 308, not 304"),
        ("[[route]]\npath = \"/a\"\nhost = \"x\"\n[[route]]\npath = \"/a\"\nhost = \"X\"\nmethods = [\"HEAD\"]\n".into(), ":5:8: route.path: \"/a\" is already routed for this host and method at line 2"),
        (many, ":2001:1: route: more than 1000 routes"),
    ];
    assert_config_errors(&dir.path().join("bad.toml"), &cases);
    let path = dir.path().join("good.toml");
    std::fs::write(&path, format!("{ROUTES}{MAINTENANCE}")).unwrap();
    let (code, out, err) = run_bin(&["-t", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}
