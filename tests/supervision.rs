//! Supervision: the hung-worker watchdog, `-s status`, workers dying with
//! their master (PDEATHSIG), the privilege drop, `-t` on unknown users and
//! groups, `-d` (detach, report, pid file), sd_notify (READY, RELOADING,
//! STOPPING), socket activation (`LISTEN_FDS` / `LISTEN_PID`), and logging
//! that survives a syslog socket going away, coming back and USR1.
//!
//! Tests that need an environment the harness does not give (their own
//! syslog socket, `NOTIFY_SOCKET`, `-d`, a foreign `LISTEN_PID`) spawn the
//! binary themselves; every process they start is SIGKILLed by pid (or by
//! its own process group) in a `Drop` guard.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

// ---------------------------------------------------------------------------
// Helpers of this file.

/// Waits (bounded) until the file at `path` contains `needle`.
fn wait_file_contains(path: &Path, needle: &str) -> String {
    let what = format!("{} to contain {needle:?}", path.display());
    wait_until(WAIT, &what, || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.contains(needle).then_some(text)
    })
}

/// A plain GET to `addr`; returns the whole response.
fn get(addr: SocketAddr) -> String {
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_until_close(&mut s)
}

/// GET must answer 200.
fn assert_serves(addr: SocketAddr) {
    let r = get(addr);
    assert_eq!(status(&r), 200, "response: {r:?}");
}

/// The four ids of a `Uid:` or `Gid:` line of `/proc/PID/status`.
fn proc_ids(pid: i32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line for pid {pid}"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// `key=value` pairs of one status line.
fn fields(line: &str) -> std::collections::HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `-s status -c CONFIG`: the worker lines and the total line.
fn status_report(server: &Server) -> (Vec<String>, String) {
    let out = server.control("status");
    let workers: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("worker="))
        .map(str::to_owned)
        .collect();
    let totals: Vec<&str> = out.lines().filter(|l| l.starts_with("total ")).collect();
    assert_eq!(totals.len(), 1, "one total line in {out:?}");
    (workers, totals[0].to_owned())
}

fn num(map: &std::collections::HashMap<String, String>, key: &str) -> u64 {
    map.get(key)
        .unwrap_or_else(|| panic!("no {key}= in {map:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key}= is not a number in {map:?}"))
}

// ---------------------------------------------------------------------------
// 1. Watchdog.

// A SIGSTOPped worker stops beating: the master SIGKILLs it within
// worker_timeout plus a tick, says so at error level with its pid, replaces
// it, and the other worker serves all along.
#[test]
fn watchdog_kills_and_replaces_a_stopped_worker() {
    let server = Server::start("workers = 2\nworker_timeout = \"2s\"\n");
    let before = server.wait_workers(2);
    assert_serves(server.addr);
    let victim = before[0];
    kill(Pid::from_raw(victim), Signal::SIGSTOP).unwrap();
    let stopped = Instant::now();
    // Answers that came while the victim was still there, stopped (not yet
    // killed), and when the last of them came.
    let mut served_while_stopped = 0;
    let mut last_while_stopped = Duration::ZERO;
    let after = wait_until(
        // worker_timeout plus a tick, with room for a loaded machine.
        Duration::from_secs(10),
        "the stopped worker to be replaced",
        || {
            // Served throughout: every request is answered while we wait.
            assert_serves(server.addr);
            if alive(victim) {
                served_while_stopped += 1;
                last_while_stopped = stopped.elapsed();
            }
            let pids = server.worker_pids();
            (pids.len() == 2 && !pids.contains(&victim) && !alive(victim)).then_some(pids)
        },
    );
    let took = stopped.elapsed();
    // The other worker served while the victim hung, up to late in the
    // hang (it is killed at worker_timeout, 2 s, at the earliest 1.5 s):
    // not merely once the replacement came.
    assert!(
        served_while_stopped > 0 && last_while_stopped >= Duration::from_secs(1),
        "{served_while_stopped} answers while the victim was stopped, the last \
         {last_while_stopped:?} after the stop; replaced after {took:?}"
    );
    // Heartbeats come every 250 ms at most, so the last one may predate the
    // SIGSTOP by that much.
    assert!(
        took >= Duration::from_millis(1500),
        "killed after {took:?}, well before worker_timeout"
    );
    assert!(after.contains(&before[1]), "the healthy worker stays");
    let hung = server.wait_for_log(&format!("pid={victim} hung"));
    assert!(hung.starts_with("<27>"), "an error-level line: {hung}");
    let silent: u64 = hung
        .split_once("no heartbeat for ")
        .and_then(|(_, r)| r.split_once("ms"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no silence in {hung}"));
    assert!(silent > 2000, "killed after {silent}ms of silence: {hung}");
    server.wait_for_log(&format!("pid={victim} killed signal=SIGKILL"));
    let replacement = after.iter().find(|p| **p != before[1]).unwrap();
    server.wait_for_log(&format!("pid={replacement} started"));
    for _ in 0..4 {
        assert_serves(server.addr);
    }
    // The hung line is an expected error line.
    server.finish_with(&[&format!("pid={victim} hung")]);
}

// Proves: a worker that cannot run (SIGSTOPped, far from its
// worker_timeout) does not strand new connections. EPOLLEXCLUSIVE may hand
// an arrival's wake-up to the stopped worker alone; the running one finds
// such a connection at its next deadline sweep (250 ms), so every request
// is answered well within a second.
#[test]
fn a_stopped_worker_does_not_strand_new_connections() {
    let server = Server::start("workers = 2\nworker_timeout = \"60s\"\n");
    let pids = server.wait_workers(2);
    // Both in the listeners' wait queue before one is stopped.
    for _ in 0..4 {
        assert_serves(server.addr);
    }
    kill(Pid::from_raw(pids[0]), Signal::SIGSTOP).unwrap();
    for i in 0..20 {
        let t = Instant::now();
        assert_serves(server.addr);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "request {i} waited {:?} with one worker stopped",
            t.elapsed()
        );
    }
    kill(Pid::from_raw(pids[0]), Signal::SIGCONT).unwrap();
    server.finish();
}

// ---------------------------------------------------------------------------
// 2. -s status.

// `-s status -c CONFIG` lists each worker (pid, state, age, requests, open)
// with the pids the master really runs, and a total line whose request count
// follows the requests served.
#[test]
fn status_lists_workers_and_counts_requests() {
    let piddir = TempDir::new();
    let pid_file = piddir.path().join("p.pid");
    let server = Server::start(&format!(
        "workers = 2\npid_file = \"{}\"\n",
        pid_file.display()
    ));
    let pids = server.wait_workers(2);
    // Workers report "accepting" once their listeners are in their epoll set.
    let (workers, total) = wait_until(WAIT, "both workers accepting", || {
        let (w, t) = status_report(&server);
        w.iter()
            .all(|l| l.contains("state=accepting"))
            .then_some((w, t))
    });
    assert_eq!(workers.len(), 2, "one line per worker: {workers:#?}");
    let mut listed = Vec::new();
    for line in &workers {
        let f = fields(line);
        listed.push(num(&f, "pid") as i32);
        assert!(f["age"].ends_with('s'), "{line}");
        f["age"].trim_end_matches('s').parse::<u64>().unwrap();
        num(&f, "requests");
        assert_eq!(num(&f, "open"), 0, "{line}");
    }
    listed.sort_unstable();
    assert_eq!(listed, pids, "status pids vs the master's children");
    let t = fields(&total);
    assert_eq!(num(&t, "workers"), 2, "{total}");
    let before = num(&t, "requests");

    for _ in 0..5 {
        assert_serves(server.addr);
    }
    let (workers, total) = status_report(&server);
    let t = fields(&total);
    assert_eq!(num(&t, "requests"), before + 5, "{total}");
    let sum: u64 = workers.iter().map(|l| num(&fields(l), "requests")).sum();
    assert_eq!(
        sum,
        before + 5,
        "worker lines add up to the total: {workers:#?}"
    );
    assert!(num(&t, "accepted") >= 5, "{total}");
    server.finish();
}

// ---------------------------------------------------------------------------
// 3. PDEATHSIG.

// When the master is SIGKILLed, its workers (PR_SET_PDEATHSIG) go too,
// within 5 s (at once, with room for a loaded machine).
#[test]
fn workers_die_with_a_killed_master() {
    let mut server = Server::start("workers = 3\n");
    let pids = server.wait_workers(3);
    assert_serves(server.addr);
    server.signal(Signal::SIGKILL);
    server.wait_exit();
    // PDEATHSIG acts at once; 5 s is room for a loaded machine.
    wait_until(Duration::from_secs(5), "every worker to be gone", || {
        pids.iter().all(|p| !alive(*p)).then_some(())
    });
}

// ---------------------------------------------------------------------------
// 4. Privilege drop.

// As root with `user = "nobody"`: every worker runs with nobody's uid and gid
// (real, effective, saved, fs) and none of root's groups; the master stays
// root; requests are served.
#[test]
fn workers_drop_privileges_to_nobody() {
    if !root("workers_drop_privileges_to_nobody needs root") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a user named nobody");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let server = Server::start("workers = 2\nuser = \"nobody\"\n");
    let pids = server.wait_workers(2);
    wait_until(WAIT, "both workers to run as nobody", || {
        pids.iter()
            .all(|p| proc_ids(*p, "Uid:") == vec![uid; 4])
            .then_some(())
    });
    for p in &pids {
        assert_eq!(proc_ids(*p, "Gid:"), vec![gid; 4], "worker {p}");
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
        let groups = status
            .lines()
            .find_map(|l| l.strip_prefix("Groups:"))
            .unwrap();
        assert!(
            !groups.split_whitespace().any(|g| g == "0"),
            "worker {p} keeps root's group: {groups:?}"
        );
    }
    let master = server.pid().as_raw();
    assert_eq!(
        proc_ids(master, "Uid:"),
        vec![0; 4],
        "the master stays root"
    );
    for _ in 0..4 {
        assert_serves(server.addr);
    }
    server.finish();
}

// ---------------------------------------------------------------------------
// 5. -t with unknown user or group.

// `-t` rejects a user or group that does not exist, with file:line:col and
// the key; a real one passes.
#[test]
fn test_config_rejects_unknown_user_and_group() {
    let dir = TempDir::new();
    let bad_user = write_file(&dir, "u.toml", "workers = 1\nuser = \"no-such-user-xyz\"\n");
    let (code, out, err) = run_bin(&["-t", "-c", bad_user.to_str().unwrap()]);
    assert_eq!(code, 1, "stdout {out:?} stderr {err:?}");
    let want = format!(
        "{}:2:8: user: no user named \"no-such-user-xyz\"",
        bad_user.display()
    );
    assert!(err.contains(&want), "stderr {err:?} lacks {want:?}");
    assert!(out.is_empty(), "{out:?}");

    let bad_group = write_file(
        &dir,
        "g.toml",
        "workers = 1\n\ngroup = \"no-such-group-xyz\"\n",
    );
    let (code, out, err) = run_bin(&["-t", "-c", bad_group.to_str().unwrap()]);
    assert_eq!(code, 1, "stdout {out:?} stderr {err:?}");
    let want = format!(
        "{}:3:9: group: no group named \"no-such-group-xyz\"",
        bad_group.display()
    );
    assert!(err.contains(&want), "stderr {err:?} lacks {want:?}");
    assert!(out.is_empty(), "{out:?}");

    let good = write_file(&dir, "ok.toml", "user = \"nobody\"\n");
    let (code, out, err) = run_bin(&["-t", "-c", good.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout {out:?} stderr {err:?}");
    assert!(out.contains("is ok"), "{out:?}");
}

// ---------------------------------------------------------------------------
// 6. -d.

// `-d` returns 0 only once the daemon serves; the pid file names a detached
// process (another parent, another session, no session leader, no tty);
// `-s stop` ends it, its workers and its pid file.
#[test]
fn daemon_returns_once_serving_and_stops() {
    // A test of binding itself (-d forks before it adopts any socket): the
    // port stays ours until just before preforkd binds it.
    let (held, addr) = loopback_listener();
    let started = Instant::now();
    drop(held);
    let mut server = Server::spawn(Options {
        daemon: true,
        socket: false,
        args: vec!["-l".into(), addr.to_string()],
        ..Options::toml("workers = 2\n")
    });
    let status = server.wait_exit();
    assert!(
        status.success(),
        "-d failed: {status}: {:?}",
        server.stderr()
    );
    // Right away, no retry: it serves.
    assert_serves(addr);
    let took = started.elapsed();
    let (pid_file, config) = (server.pid_file.clone(), server.config_path.clone());

    let pid = pidfile_pid(&pid_file);
    assert!(alive(pid), "pid file names a dead process {pid}");
    let f = stat_fields(pid);
    let me = std::process::id() as i32;
    let (ppid, session, tty): (i32, i32, i32) = (
        f[1].parse().unwrap(),
        f[3].parse().unwrap(),
        f[4].parse().unwrap(),
    );
    assert_ne!(ppid, me, "still our child");
    let my_session: i32 = stat_fields(me)[3].parse().unwrap();
    assert_ne!(session, my_session, "still in our session");
    assert_ne!(session, pid, "a session leader (could get a tty)");
    assert_eq!(tty, 0, "has a controlling terminal");
    let workers = children_of(pid);
    assert_eq!(workers.len(), 2, "workers {workers:?}");
    server.wait_for_log(&format!("master ready pid={pid}"));

    let (code, out, err) = run_bin(&["-s", "stop", "-p", pid_file.to_str().unwrap()]);
    assert_eq!(code, 0, "-s stop: {out:?} {err:?}");
    assert!(out.contains(&format!("master pid {pid}")), "{out:?}");
    wait_until(WAIT, "the daemon and its workers to exit", || {
        (!alive(pid) && workers.iter().all(|w| !alive(*w))).then_some(())
    });
    wait_until(WAIT, "the pid file to go", || {
        (!pid_file.exists()).then_some(())
    });
    server.wait_for_log("master exiting");
    assert!(procs_with_arg(&config).is_empty());
    eprintln!("daemon ready after {took:?}");
}

// A daemon started with relative paths can be upgraded: the new master gets
// absolute paths and no `-d` (it is detached already), the pid file (relative
// to the config file) names it, and the old master goes.
#[test]
fn a_daemon_with_relative_paths_can_be_upgraded() {
    let dir = TempDir::new();
    let sock = dir.path().join("log.sock");
    let log = LogSink::bind(&sock);
    let config = write_file(
        &dir,
        "d.toml",
        &format!("workers = 1\npid_file = \"d.pid\"\n{}", log_table(&sock)),
    );
    let pid_file = dir.path().join("d.pid");
    let _guard = ConfigProcs(config.clone());
    // A test of binding itself (-d forks before it adopts any socket): the
    // port stays ours until just before preforkd binds it.
    let (held, addr) = loopback_listener();
    let mut cmd = bin_command(&dir.path().join("stderr"));
    cmd.current_dir(dir.path())
        .args(["-d", "-c", "d.toml", "-l", &addr.to_string()]);
    drop(held);
    let (code, err) = run_to_exit(cmd, &dir.path().join("stderr"));
    assert_eq!(code, 0, "-d failed: {err:?}");
    let old = pidfile_pid(&pid_file);
    log.wait_for(&format!("master ready pid={old}"));

    let (code, out, err) = run_bin(&["-s", "upgrade", "-c", config.to_str().unwrap()]);
    assert_eq!(code, 0, "-s upgrade: {out:?} {err:?}");
    let new = pidfile_pid(&pid_file);
    assert_ne!(new, old, "the pid file names the new master");
    wait_until(WAIT, "the old master to exit", || {
        (!alive(old)).then_some(())
    });
    assert_serves(addr);
    let argv = std::fs::read(format!("/proc/{new}/cmdline")).unwrap();
    let argv: Vec<&[u8]> = argv.split(|b| *b == 0).collect();
    assert!(
        !argv.contains(&&b"-d"[..]),
        "the new master was not told to detach again"
    );
    assert!(
        argv.contains(&config.as_os_str().as_encoded_bytes()),
        "an absolute -c"
    );

    let (code, out, err) = run_bin(&["-s", "stop", "-c", config.to_str().unwrap()]);
    assert_eq!(code, 0, "-s stop: {out:?} {err:?}");
    wait_until(WAIT, "the new master to exit", || {
        (!alive(new)).then_some(())
    });
    assert!(!pid_file.exists(), "the pid file is removed on exit");
}

fn pidfile_pid(path: &Path) -> i32 {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read pid file {}: {e}", path.display()));
    text.trim().parse().unwrap()
}

// `-d` on a port in use exits 1 naming the address, leaving no process and
// no pid file behind.
#[test]
fn daemon_reports_a_bind_failure() {
    let dir = TempDir::new();
    let sock = dir.path().join("log.sock");
    let log = LogSink::bind(&sock);
    let pid_file = dir.path().join("d.pid");
    let config = write_file(
        &dir,
        "d.toml",
        &format!(
            "workers = 1\npid_file = \"{}\"\n{}",
            pid_file.display(),
            log_table(&sock)
        ),
    );
    let _guard = ConfigProcs(config.clone());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = bin_command(&dir.path().join("stderr"));
    cmd.arg("-d").arg("-c").arg(&config).arg("-l").arg(&addr);
    let (code, err) = run_to_exit(cmd, &dir.path().join("stderr"));
    assert_eq!(code, 1, "stderr {err:?}");
    assert!(
        err.contains(&format!("cannot listen on {addr}")),
        "stderr {err:?} does not name {addr}"
    );
    wait_until(WAIT, "no process left with this config", || {
        procs_with_arg(&config).is_empty().then_some(())
    });
    assert!(!pid_file.exists(), "a pid file was left");
    log.wait_for(&format!("cannot listen on {addr}"));
}

// `-d` without any pid file exits 1 and says why, starting nothing.
#[test]
fn daemon_needs_a_pid_file() {
    let dir = TempDir::new();
    let config = write_file(&dir, "d.toml", "workers = 1\n[log]\ntarget = \"stderr\"\n");
    let _guard = ConfigProcs(config.clone());
    // Refused before anything is bound: no port is taken.
    let addr = "127.0.0.1:0";
    let mut cmd = bin_command(&dir.path().join("stderr"));
    cmd.arg("-d").arg("-c").arg(&config).arg("-l").arg(addr);
    let (code, err) = run_to_exit(cmd, &dir.path().join("stderr"));
    assert_eq!(code, 1, "stderr {err:?}");
    assert!(err.contains("-d needs a pid file"), "stderr {err:?}");
    assert!(procs_with_arg(&config).is_empty(), "a process was left");
}

// ---------------------------------------------------------------------------
// 7. sd_notify.

// With NOTIFY_SOCKET: READY=1 with a STATUS once it serves; HUP gives
// RELOADING=1 with MONOTONIC_USEC (now, on CLOCK_MONOTONIC) then READY=1;
// TERM gives STOPPING=1; exit 0.
#[test]
fn sd_notify_ready_reloading_stopping() {
    let mut server = Server::spawn(Options {
        notify: true,
        ..Options::toml("workers = 2\n")
    });
    let addr = server.addr;
    let notify = server.notify.take().unwrap();

    let got = recv_notify_until(&notify, "READY=1", |m| m.lines().any(|l| l == "READY=1"));
    let ready = got.last().unwrap();
    assert!(
        ready.lines().any(|l| l.starts_with("STATUS=workers=2")),
        "{ready:?}"
    );
    for m in &got {
        assert!(
            !m.contains("RELOADING") && !m.contains("STOPPING"),
            "{got:?}"
        );
    }
    assert_serves(addr);

    server.signal(Signal::SIGHUP);
    let got = recv_notify_until(&notify, "RELOADING=1", |m| {
        m.lines().any(|l| l == "RELOADING=1")
    });
    let reloading = got.last().unwrap();
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("MONOTONIC_USEC not digits in {reloading:?}"));
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    let now_usec = now.tv_sec() as u64 * 1_000_000 + now.tv_nsec() as u64 / 1000;
    assert!(
        usec <= now_usec && now_usec - usec < WAIT.as_micros() as u64,
        "MONOTONIC_USEC={usec} is not a recent CLOCK_MONOTONIC (now {now_usec})"
    );
    let got = recv_notify_until(&notify, "READY=1 after the reload", |m| {
        m.lines().any(|l| l == "READY=1")
    });
    assert!(
        got.last()
            .unwrap()
            .contains("STATUS=workers=2 generation=2"),
        "{got:?}"
    );
    server.wait_for_log("reload done generation=2");
    assert_serves(addr);

    server.signal(Signal::SIGTERM);
    recv_notify_until(&notify, "STOPPING=1", |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status}");
}

// ---------------------------------------------------------------------------
// 8. Socket activation.

// A socket handed over as fd 3 (LISTEN_FDS=1, LISTEN_PID right) with no
// `listen` in the config is all the server listens on: it serves there and
// binds no 0.0.0.0:8888 of its own.
#[test]
fn socket_activation_uses_only_the_inherited_socket() {
    let server = Server::start("workers = 2\n");
    let pids = server.wait_workers(2);
    assert_serves(server.addr);
    let started = server.wait_for_log("master started");
    assert!(
        started.contains(&format!("listen={} ", server.addr)),
        "listens on the inherited socket only: {started}"
    );
    let mut held = socket_inodes(server.pid().as_raw());
    for p in &pids {
        held.extend(socket_inodes(*p));
    }
    // The check can see the server's listener: the inherited one is there.
    let inherited = listening_inodes(server.addr.port());
    assert!(
        !inherited.is_disjoint(&held),
        "the inherited listener {inherited:?} is not among the server's sockets {held:?}"
    );
    let default = listening_inodes(8888);
    assert!(
        default.is_disjoint(&held),
        "the server listens on port 8888: {default:?} in {held:?}"
    );
    server.finish();
}

// LISTEN_FDS with a LISTEN_PID that is not the server's: the fd is ignored,
// the server binds what `-l` says and serves there, and never accepts from
// the handed-over socket.
#[test]
fn socket_activation_ignores_fds_for_another_pid() {
    let dir = TempDir::new();
    let sock = dir.path().join("log.sock");
    let log = LogSink::bind(&sock);
    let config = write_file(
        &dir,
        "a.toml",
        &format!("workers = 1\n{}", log_table(&sock)),
    );
    let handed = TcpListener::bind("127.0.0.1:0").unwrap();
    let handed_addr = handed.local_addr().unwrap();
    // preforkd binds `-l` itself here: the port stays ours until just
    // before it starts.
    let (held, addr) = loopback_listener();
    let mut cmd = bin_command(&dir.path().join("stderr"));
    cmd.arg("-c")
        .arg(&config)
        .arg("-l")
        .arg(addr.to_string())
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", std::process::id().to_string());
    pass_as_fd_3(&mut cmd, handed.as_raw_fd());
    drop(held);
    let server = Proc::spawn(cmd);
    let started = log.wait_for("master started");
    assert!(
        started.contains(&format!("listen={addr} ")),
        "listens on -l only: {started}"
    );
    log.wait_for("master ready");
    wait_until(WAIT, "a worker", || {
        (!children_of(server.pid()).is_empty()).then_some(())
    });
    assert_serves(addr);

    // A request to the handed-over socket is not answered: it waits in the
    // backlog for us to accept it.
    let mut client = connect(handed_addr);
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Long enough for a worker to take it if it polled this socket.
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    match client.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the ignored socket answered: {other:?}"),
    }
    handed.set_nonblocking(true).unwrap();
    handed
        .accept()
        .expect("the connection is still queued on the handed-over socket");
    assert_serves(addr);
}

// ---------------------------------------------------------------------------
// 9. Logging that survives the syslog socket.

// The syslog socket restarts (closed, removed, bound anew): the next lines
// reach the new socket. While it is absent, lines go to stderr with one
// warning. When it is back, lines reach it again, from the master, from old
// workers and from new ones; no line is lost or doubled.
#[test]
fn logging_survives_syslog_restart_and_absence() {
    let dir = TempDir::new();
    let sock = dir.path().join("log.sock");
    let stderr = dir.path().join("stderr");
    let sink1 = LogSink::bind(&sock);
    let config = write_file(
        &dir,
        "l.toml",
        &format!("workers = 1\n{}", log_table(&sock)),
    );
    let (listener, addr) = loopback_listener();
    let mut cmd = bin_command_on(&stderr, &listener);
    cmd.arg("-c").arg(&config);
    let mut server = Proc::spawn(cmd);
    sink1.wait_for("master ready");
    let w0 = wait_until(WAIT, "worker 0", || {
        children_of(server.pid()).first().copied()
    });
    assert_serves(addr);

    // Restart: the old socket closes, a new one takes the path.
    drop(sink1);
    std::fs::remove_file(&sock).unwrap();
    let sink2 = LogSink::bind(&sock);
    server.signal(Signal::SIGTTIN);
    let started = sink2.wait_for("worker=1 pid=");
    let w1: i32 = fields(&started)["pid"].parse().unwrap();
    assert_eq!(sink2.count("master command=add-worker"), 1);

    // Absent: lines go to stderr.
    drop(sink2);
    std::fs::remove_file(&sock).unwrap();
    server.signal(Signal::SIGTTOU);
    let text = wait_file_contains(&stderr, &format!("worker=1 pid={w1} exited status=0"));
    for want in [
        format!(
            "syslog socket {} is unreachable, logging to stderr",
            sock.display()
        ),
        "master command=remove-worker".to_owned(),
        format!("worker=1 pid={w1} retiring"),
        format!("preforkd[{w1}]: info: worker pid={w1} draining"),
    ] {
        assert!(text.contains(&want), "stderr lacks {want:?}:\n{text}");
    }

    // Back: lines reach the new socket, and no longer stderr.
    let sink3 = LogSink::bind(&sock);
    let stderr_before = std::fs::read_to_string(&stderr).unwrap();
    server.signal(Signal::SIGTTIN);
    let started = sink3.wait_for("worker=1 pid=");
    let w2: i32 = fields(&started)["pid"].parse().unwrap();
    wait_until(WAIT, "two workers", || {
        (children_of(server.pid()).len() == 2).then_some(())
    });
    assert_serves(addr);
    server.signal(Signal::SIGQUIT);
    let status = server.wait_exit_reading(&sink3);
    assert!(status.success(), "exit status {status}");
    for want in [
        "master command=add-worker".to_owned(),
        "master command=graceful-stop".to_owned(),
        format!("worker pid={w0} draining"),
        format!("worker pid={w2} draining"),
        "master exiting".to_owned(),
    ] {
        sink3.wait_for(&want);
    }
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(
        text, stderr_before,
        "lines went to stderr although the socket is back"
    );
    // Every command line once, where it belongs.
    let in_stderr = text.matches("master command=").count();
    assert_eq!(in_stderr, 1, "{text}");
    assert_eq!(sink3.count("master command="), 2, "{:#?}", sink3.lines());
}

// ---------------------------------------------------------------------------
// 10. USR1.

// The syslog socket is rebound at the same path while the old one still
// exists (log rotation style): after USR1, the master and every worker log
// to the new socket, and nothing more to the old one.
#[test]
fn usr1_reconnects_master_and_workers_to_the_rebound_socket() {
    let dir = TempDir::new();
    let sock = dir.path().join("log.sock");
    let stderr = dir.path().join("stderr");
    let old = LogSink::bind(&sock);
    let config = write_file(
        &dir,
        "r.toml",
        &format!("workers = 2\n{}", log_table(&sock)),
    );
    let (listener, addr) = loopback_listener();
    let mut cmd = bin_command_on(&stderr, &listener);
    cmd.arg("-c").arg(&config);
    let mut server = Proc::spawn(cmd);
    old.wait_for("master ready");
    let workers = wait_until(WAIT, "two workers", || {
        let c = children_of(server.pid());
        (c.len() == 2).then_some(c)
    });
    assert_serves(addr);

    // The old socket stays open; a new one takes its path.
    std::fs::remove_file(&sock).unwrap();
    let new = LogSink::bind(&sock);
    server.signal(Signal::SIGUSR1);
    // Logged before the reopen, so still to the old socket; once seen, the
    // master has signalled every worker too.
    old.wait_for("master command=reopen-logs");
    server.signal(Signal::SIGQUIT);
    let status = server.wait_exit_reading(&new);
    assert!(status.success(), "exit status {status}");
    new.wait_for("master stopping mode=graceful");
    for w in &workers {
        new.wait_for(&format!("worker pid={w} draining"));
    }
    new.wait_for("master exiting");
    let stale: Vec<String> = old
        .lines()
        .into_iter()
        .filter(|l| l.contains("stopping") || l.contains("draining") || l.contains("exiting"))
        .collect();
    assert!(stale.is_empty(), "went to the old socket: {stale:#?}");
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(text.is_empty(), "stderr: {text}");
}

// A syslog daemon that stops reading (its socket queue holds 10 datagrams)
// must not stall the server: the master keeps supervising, it obeys
// TTIN/TTOU and QUIT, and lines syslog cannot take go to stderr, none lost.
#[test]
fn a_stalled_syslog_reader_does_not_stall_the_server() {
    let dir = TempDir::new();
    let sock = dir.path().join("log.sock");
    // Bound, never read until the server is gone: a hung syslog daemon.
    let sink = LogSink::bind(&sock);
    let mut server = Server::spawn(Options {
        syslog: false,
        ..Options::toml(&format!("workers = 1\n{}", log_table(&sock)))
    });
    let (master, addr) = (server.pid().as_raw(), server.addr);
    wait_until(WAIT, "worker 0", || {
        (children_of(master).len() == 1).then_some(())
    });
    assert_serves(addr);
    // Each round logs 6 lines (2 for TTIN, 4 for TTOU); startup logged 4.
    for round in 1..=3 {
        server.signal(Signal::SIGTTIN);
        wait_until(
            WAIT,
            &format!("round {round}: 2 workers after TTIN"),
            || (children_of(master).len() == 2).then_some(()),
        );
        server.signal(Signal::SIGTTOU);
        wait_until(WAIT, &format!("round {round}: 1 worker after TTOU"), || {
            (children_of(master).len() == 1).then_some(())
        });
        assert_serves(addr);
    }
    server.signal(Signal::SIGQUIT);
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status}");
    // 3 TTIN + 3 TTOU + QUIT, each logged once, to syslog or to stderr.
    let text = server.stderr();
    let commands = sink.count("master command=") + text.matches("master command=").count();
    assert_eq!(commands, 7, "syslog {:#?}\nstderr {text}", sink.lines());
}

// After a USR2 upgrade the new master tells systemd it is the main process
// (MAINPID= with READY=1) before the old one goes, and the old master, which
// is being replaced, does not say STOPPING.
#[test]
fn sd_notify_mainpid_after_an_upgrade() {
    let mut old = Server::spawn(Options {
        notify: true,
        pid_file: true,
        ..Options::toml("workers = 1\n")
    });
    let (addr, pid_file) = (old.addr, old.pid_file.clone());
    let notify = old.notify.take().unwrap();
    recv_notify_until(&notify, "READY=1", |m| m.lines().any(|l| l == "READY=1"));
    let old_pid = old.pid().as_raw();

    old.signal(Signal::SIGUSR2);
    let got = recv_notify_until(&notify, "MAINPID= from the new master", |m| {
        m.lines().any(|l| l.starts_with("MAINPID="))
    });
    let msg = got.last().unwrap();
    let main_pid: i32 = msg
        .lines()
        .find_map(|l| l.strip_prefix("MAINPID="))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(main_pid, old_pid, "MAINPID names the new master");
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    let status = old.wait_exit();
    assert!(status.success(), "old master exit status {status}");
    // Everything the old master said on its way out: no STOPPING.
    let mut buf = [0u8; 4096];
    while let Ok(n) = notify.recv(&mut buf) {
        let m = String::from_utf8_lossy(&buf[..n]);
        assert!(!m.contains("STOPPING=1"), "the replaced master said {m:?}");
    }
    assert_serves(addr);
    assert_eq!(pidfile_pid(&pid_file), main_pid);
    let _ = kill(Pid::from_raw(main_pid), Signal::SIGTERM);
    wait_until(WAIT, "the new master to exit", || {
        (!alive(main_pid)).then_some(())
    });
}
