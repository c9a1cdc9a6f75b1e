//! Live changes under load: reload (HUP), binary upgrade (USR2), worker
//! scaling (TTIN/TTOU/WINCH), worker recycling (`max_requests_per_worker`)
//! and `preforkd -s`. A background load generator runs through every change
//! and must see no failed request.
//!
//! The upgrade tests run a copy of the binary (`Options::copy_binary`), so
//! that they can replace the file the master was started from.
//!
//! Every test first blocks SIGCHLD in its thread (`quiet_sigchld`), before
//! its load threads start: see there why.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use common::*;

// ---------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------

/// Pause between two requests of one load thread: four threads then ask
/// for at most ~400 requests/s, which a 2-core machine shared with other
/// test binaries takes without starving anything.
const LOAD_PAUSE: Duration = Duration::from_millis(10);
/// A load thread stops by itself after this, whatever happens to the test.
const LOAD_LIMIT: Duration = Duration::from_secs(40);
/// Client-side socket timeouts of the load threads.
const LOAD_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const LOAD_IO_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Successes on a reused keep-alive connection.
    reused: AtomicU64,
    /// Answers with `Connection: close` to a keep-alive client.
    told_to_close: AtomicU64,
    /// The first failures, described (time since start, thread, what).
    failures: Mutex<Vec<String>>,
    /// Response body → how many times it was seen.
    bodies: Mutex<BTreeMap<String, u64>>,
}

/// What a load run saw.
#[derive(Debug)]
struct Report {
    ok: u64,
    failed: u64,
    reused: u64,
    told_to_close: u64,
    failures: Vec<String>,
    bodies: BTreeMap<String, u64>,
}

impl Report {
    /// Zero failed requests and at least `min_ok` good ones.
    fn assert_clean(&self, min_ok: u64) {
        assert!(
            self.failed == 0,
            "{} failed request(s) ({} ok); first ones:\n{}",
            self.failed,
            self.ok,
            self.failures.join("\n")
        );
        assert!(
            self.ok >= min_ok,
            "only {} successful requests (want >= {min_ok})",
            self.ok
        );
        assert!(
            self.reused > 0,
            "keep-alive never reused a connection: {self:?}"
        );
    }

    /// Workers drained under the keep-alive clients: they were told to
    /// close (and reconnected without a failure).
    fn assert_drained_keep_alive(&self) {
        assert!(
            self.told_to_close > 0,
            "no keep-alive client was told `Connection: close`: {self:?}"
        );
    }
}

/// Background GET load on one address: two keep-alive clients that reuse
/// their connection (reconnecting after `Connection: close` or after the
/// server closed an idle connection), and two that open a connection per
/// request. Stops on `stop()`, on drop, or after `LOAD_LIMIT`.
struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts the load on `addr` and waits until it has been served a few times.
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let started = Instant::now();
        let threads = [true, true, false, false]
            .into_iter()
            .enumerate()
            .map(|(i, keep_alive)| {
                let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
                let name = format!("load-{i}-{}", if keep_alive { "ka" } else { "fresh" });
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn(move || client(addr, keep_alive, &name, &stop, &tally, started))
                    .unwrap()
            })
            .collect();
        let load = Load {
            stop,
            tally,
            threads,
        };
        load.wait_more(20);
        load
    }

    fn ok(&self) -> u64 {
        self.tally.ok.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests have succeeded.
    fn wait_more(&self, n: u64) {
        let target = self.ok() + n;
        wait_until(WAIT, &format!("{n} more successful requests"), || {
            (self.ok() >= target).then_some(())
        });
    }

    /// Waits until `n` requests have succeeded in all (a run of the load
    /// long enough to mean something, whatever the machine's speed).
    fn wait_total(&self, n: u64) {
        wait_until(WAIT, &format!("{n} successful requests in all"), || {
            (self.ok() >= n).then_some(())
        });
    }

    fn saw_body(&self, body: &str) -> bool {
        self.tally.bodies.lock().unwrap().contains_key(body)
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Each thread ends within one request (bounded by its socket timeouts).
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn stop(mut self) -> Report {
        self.halt();
        Report {
            ok: self.tally.ok.load(Ordering::SeqCst),
            failed: self.tally.failed.load(Ordering::SeqCst),
            reused: self.tally.reused.load(Ordering::SeqCst),
            told_to_close: self.tally.told_to_close.load(Ordering::SeqCst),
            failures: self.tally.failures.lock().unwrap().clone(),
            bodies: self.tally.bodies.lock().unwrap().clone(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

fn client(
    addr: SocketAddr,
    keep_alive: bool,
    name: &str,
    stop: &AtomicBool,
    tally: &Tally,
    started: Instant,
) {
    let deadline = started + LOAD_LIMIT;
    let mut conn: Option<TcpStream> = None;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match load_request(addr, keep_alive, &mut conn) {
            Ok(Answer {
                body,
                reused,
                close,
            }) => {
                tally.ok.fetch_add(1, Ordering::SeqCst);
                if reused {
                    tally.reused.fetch_add(1, Ordering::SeqCst);
                }
                if keep_alive && close {
                    tally.told_to_close.fetch_add(1, Ordering::SeqCst);
                }
                *tally.bodies.lock().unwrap().entry(body).or_default() += 1;
            }
            Err(e) => {
                conn = None;
                tally.failed.fetch_add(1, Ordering::SeqCst);
                let mut failures = tally.failures.lock().unwrap();
                if failures.len() < 20 {
                    failures.push(format!(
                        "{:>6}ms {name}: {e}",
                        started.elapsed().as_millis()
                    ));
                }
            }
        }
        // Throttle (see LOAD_PAUSE); not a wait for anything.
        std::thread::sleep(LOAD_PAUSE);
    }
}

/// A complete 200 response to a load request.
struct Answer {
    body: String,
    /// It came on a connection used before.
    reused: bool,
    /// It said `Connection: close`.
    close: bool,
}

/// One GET; the answer if it is a complete 200, else what went wrong.
fn load_request(
    addr: SocketAddr,
    keep_alive: bool,
    conn: &mut Option<TcpStream>,
) -> Result<Answer, String> {
    match conn.as_ref().map(idle_state) {
        // The server closed the idle connection after a complete response:
        // a keep-alive client simply opens a new one.
        Some(Idle::Closed) => *conn = None,
        Some(Idle::Unsolicited) => return Err("bytes on an idle connection".into()),
        Some(Idle::Open) | None => {}
    }
    let reused = conn.is_some();
    let mut s = match conn.take() {
        Some(s) => s,
        None => {
            let s = TcpStream::connect_timeout(&addr, LOAD_CONNECT_TIMEOUT)
                .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(LOAD_IO_TIMEOUT)).unwrap();
            s.set_write_timeout(Some(LOAD_IO_TIMEOUT)).unwrap();
            s
        }
    };
    let request: &[u8] = if keep_alive {
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    } else {
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    };
    let on = if reused { "reused conn" } else { "new conn" };
    s.write_all(request)
        .map_err(|e| format!("write ({on}): {e}"))?;
    let r = try_read_response(&mut s).map_err(|e| format!("{e} ({on})"))?;
    if r.status != 200 {
        return Err(format!("status {} ({on})", r.status));
    }
    if keep_alive && !r.close {
        *conn = Some(s);
    }
    Ok(Answer {
        body: r.body,
        reused,
        close: r.close,
    })
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The signals `pid` blocks, from /proc.
fn blocked_signals(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .unwrap()
        .trim();
    u64::from_str_radix(mask, 16).unwrap()
}

/// The master runs with nothing blocked, as it would from a shell.
fn assert_clean_mask(master: i32) {
    assert_eq!(blocked_signals(master), 0, "master {master} blocks signals");
}

/// `Server::start_with`, with the master's signal mask checked clean.
fn start_with(opts: Options) -> Server {
    let server = Server::start_with(opts);
    assert_clean_mask(server.pid().as_raw());
    server
}

/// `Server::start`, with the master's signal mask checked clean.
fn start(toml: &str) -> Server {
    start_with(Options::toml(toml))
}

/// A server run from a copy of the binary, with a pid file (the upgrade
/// tests replace the binary).
fn start_copy(toml: &str) -> Server {
    start_with(Options {
        copy_binary: true,
        pid_file: true,
        ..Options::toml(toml)
    })
}

/// A GET on a new connection (`Connection: close`): (status, body).
fn get(addr: SocketAddr) -> (u16, String) {
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let response = read_until_close(&mut s);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status(&response), body)
}

/// Replaces the part of the harness' config before its `[log]` table.
fn rewrite_config(config_path: &Path, top: &str) {
    let text = std::fs::read_to_string(config_path).unwrap();
    let at = text.find("\n[log]\n").expect("the harness' [log] table");
    std::fs::write(config_path, format!("{top}{}", &text[at..])).unwrap();
}

/// The number right after `key` in a log line (`pid=` → 1234).
fn number_after(line: &str, key: &str) -> i32 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("{key} in {line:?}"))
        + key.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number after {key} in {line:?}"))
}

fn oldbin(pid_file: &Path) -> PathBuf {
    let mut name = pid_file.file_name().unwrap().to_owned();
    name.push(".oldbin");
    pid_file.with_file_name(name)
}

// ---------------------------------------------------------------------------
// HUP
// ---------------------------------------------------------------------------

// Proves: HUP with a changed response body switches to the new body within
// 5 s (room for a loaded 2-CPU machine), keeps the master, replaces every worker (same count, disjoint pids),
// and no request fails while it happens.
#[test]
fn hup_serves_the_new_body_with_new_workers_and_no_failures() {
    quiet_sigchld();
    let server = start("workers = 2\n[response]\nbody = \"old body\\n\"\n");
    let master = server.pid().as_raw();
    let old = server.wait_workers(2);
    let load = Load::start(server.addr);
    assert!(load.saw_body("old body\n"));

    rewrite_config(
        &server.config_path,
        "workers = 2\n[response]\nbody = \"new body\\n\"\n",
    );
    let hup = Instant::now();
    server.signal(Signal::SIGHUP);
    wait_until(
        Duration::from_secs(5),
        "the new body on a new connection",
        || (get(server.addr) == (200, "new body\n".to_owned())).then_some(()),
    );
    let switched = hup.elapsed();
    let done = server.wait_for_log("reload done generation=2");
    assert!(done.contains(&format!("[{master}]")), "{done}");

    let new = wait_until(WAIT, "only new workers", || {
        let pids = server.worker_pids();
        (pids.len() == old.len() && pids.iter().all(|p| !old.contains(p))).then_some(pids)
    });
    assert_eq!(new.len(), 2);
    assert!(alive(master), "master exited");
    // Only the new workers remain: every new connection gets the new body.
    for _ in 0..5 {
        assert_eq!(get(server.addr), (200, "new body\n".to_owned()));
    }
    wait_until(WAIT, "the load to see the new body", || {
        load.saw_body("new body\n").then_some(())
    });
    load.wait_more(40);
    load.wait_total(100);
    let report = load.stop();
    report.assert_clean(100);
    report.assert_drained_keep_alive();
    assert_eq!(
        report.bodies.keys().collect::<Vec<_>>(),
        ["new body\n", "old body\n"],
        "bodies seen: {:?}",
        report.bodies
    );
    eprintln!("new body served {switched:?} after HUP; load {report:?}");
    assert_eq!(server.pid().as_raw(), master);
    assert_eq!(count(&server.log_lines(), "master ready"), 1);
    server.finish();
}

// Proves: HUP with a bad config changes nothing (old body, same workers)
// and logs `reload failed: FILE:LINE:COL:` naming the bad key; `-s reload`
// reports the same reason with exit 1 (it needs only `pid_file` from the
// broken file); after a fix `-s reload` exits 0 and the fix is served. No
// request fails throughout.
#[test]
fn hup_with_a_broken_config_keeps_everything_and_reports_why() {
    quiet_sigchld();
    let pid_dir = TempDir::new();
    let pid_file = pid_dir.path().join("preforkd.pid");
    let top = |body: &str, extra: &str| {
        format!(
            "pid_file = \"{}\"\nworkers = 2\n{extra}[response]\nbody = \"{body}\\n\"\n",
            pid_file.display()
        )
    };
    let server = start(&top("good", ""));
    let before = server.wait_workers(2);
    let config = server.config_path.to_str().unwrap().to_owned();
    let load = Load::start(server.addr);

    // Line 3 holds the unknown key.
    rewrite_config(&server.config_path, &top("broken", "wokers = 3\n"));
    server.signal(Signal::SIGHUP);
    let line = server.wait_for_log("reload failed");
    assert!(
        line.contains(&format!(
            "reload failed: {config}:3:1: unknown key \"wokers\""
        )),
        "{line}"
    );
    assert_eq!(get(server.addr), (200, "good\n".to_owned()));
    assert_eq!(server.worker_pids(), before);

    let (code, out, err) = run_bin(&["-s", "reload", "-c", &config, "--wait", "5"]);
    assert_eq!(code, 1, "stdout {out:?} stderr {err:?}");
    assert!(
        err.contains("reload failed")
            && err.contains(&format!("{config}:3:1:"))
            && err.contains("wokers"),
        "stderr {err:?}"
    );
    server.wait_for_log_count("reload failed", 2);
    assert_eq!(get(server.addr), (200, "good\n".to_owned()));
    assert_eq!(
        server.worker_pids(),
        before,
        "a failed reload replaced workers"
    );
    assert!(!load.saw_body("broken\n"));

    rewrite_config(&server.config_path, &top("fixed", ""));
    let (code, out, err) = run_bin(&["-s", "reload", "-c", &config, "--wait", "5"]);
    assert_eq!(code, 0, "stdout {out:?} stderr {err:?}");
    assert!(out.contains("reloaded"), "{out:?}");
    server.wait_for_log("reload done generation=2");
    wait_until(WAIT, "the fixed body", || {
        (get(server.addr) == (200, "fixed\n".to_owned())).then_some(())
    });
    load.wait_more(30);
    load.wait_total(50);
    let report = load.stop();
    report.assert_clean(50);
    assert!(
        !report.bodies.contains_key("broken\n"),
        "{:?}",
        report.bodies
    );
    server.finish_with(&["reload failed"]);
}

// Proves: HUP adding a listen address serves it (the original keeps
// serving); HUP removing it closes it (connect refused within 5 s) while
// the original address serves throughout without a failed request.
#[test]
fn hup_adds_then_removes_a_listen_address() {
    quiet_sigchld();
    let server = start("workers = 2\n");
    let load = Load::start(server.addr);
    // A test of binding itself: preforkd binds the new address. The port
    // stays ours until the moment before the reload binds it.
    let (held, extra) = loopback_listener();

    rewrite_config(
        &server.config_path,
        &format!("listen = [\"{}\", \"{extra}\"]\nworkers = 2\n", server.addr),
    );
    drop(held);
    server.signal(Signal::SIGHUP);
    let line = server.wait_for_log("reload generation=2");
    assert!(
        line.contains(&format!("listen={},{extra}", server.addr)),
        "{line}"
    );
    server.wait_for_log("reload done generation=2");
    for _ in 0..5 {
        assert_eq!(get(extra).0, 200);
    }
    load.wait_more(30);

    rewrite_config(
        &server.config_path,
        &format!("listen = [\"{}\"]\nworkers = 2\n", server.addr),
    );
    server.signal(Signal::SIGHUP);
    server.wait_for_log("reload done generation=3");
    let removed = Instant::now();
    wait_until(
        Duration::from_secs(5),
        "the removed address to refuse",
        || match TcpStream::connect_timeout(&extra, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Some(()),
            _ => None,
        },
    );
    let refused_after = removed.elapsed();
    holds_for(
        Duration::from_millis(200),
        "refusing on the removed address",
        || {
            TcpStream::connect_timeout(&extra, Duration::from_secs(1))
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)
        },
    );
    assert_eq!(get(server.addr).0, 200);
    load.wait_more(30);
    load.wait_total(100);
    let report = load.stop();
    report.assert_clean(100);
    report.assert_drained_keep_alive();
    eprintln!("removed address refused {refused_after:?} after reload done; load {report:?}");
    server.finish();
}

// ---------------------------------------------------------------------------
// USR2
// ---------------------------------------------------------------------------

// Proves: a second USR2 during an upgrade is ignored (logged, no second new
// master); the new master takes over: the pid file names it, `.oldbin` is
// gone, the old master exits 0 and its workers are replaced by the new
// master's, with no failed request.
#[test]
fn usr2_twice_upgrades_once_and_the_new_master_takes_over() {
    quiet_sigchld();
    let mut server = start_copy("workers = 2\n");
    let old = server.pid().as_raw();
    assert_eq!(read_pid(&server.pid_file), Some(old));
    let old_workers = wait_workers_of(old, 2);
    // The "new binary": a script at the master's path that waits 300 ms and
    // then execs a fresh copy of preforkd. The wait keeps the upgrade in
    // progress long enough for the second USR2 to land inside it whatever
    // the machine's load (the sleep is part of the upgrade being tested).
    let new_exe = server.dir.path().join("new").join("preforkd");
    install_binary(&new_exe);
    install_script(
        &server.exe,
        &format!(
            "#!/bin/sh\nsleep 0.3\nexec '{}' \"$@\"\n",
            new_exe.display()
        ),
    );
    let load = Load::start(server.addr);

    server.signal(Signal::SIGUSR2);
    let line = server.wait_for_log("upgrade started new master pid=");
    let new = number_after(&line, "new master pid=");
    let _new_master = KillOnDrop(new);
    server.signal(Signal::SIGUSR2);
    let ignored = server.wait_for_log("upgrade already in progress");
    assert!(ignored.contains(&format!("pid={new}")), "{ignored}");
    assert_eq!(read_pid(&oldbin(&server.pid_file)), Some(old));

    let status = server.wait_exit();
    assert!(status.success(), "old master exit status {status}");
    server.wait_for_log(&format!("upgrade: telling old master pid={old} to drain"));
    assert_eq!(read_pid(&server.pid_file), Some(new));
    assert!(!oldbin(&server.pid_file).exists(), ".oldbin left behind");
    assert!(alive(new), "new master gone");
    let new_workers = wait_workers_of(new, 2);
    assert!(new_workers.iter().all(|p| !old_workers.contains(p)));
    wait_until(WAIT, "the old workers to exit", || {
        old_workers.iter().all(|&p| !alive(p)).then_some(())
    });
    assert_eq!(get(server.addr).0, 200);
    load.wait_more(40);
    load.wait_total(100);
    let report = load.stop();
    report.assert_clean(100);
    report.assert_drained_keep_alive();
    let lines = server.log_lines();
    assert_eq!(count(&lines, "upgrade started new master"), 1, "{lines:#?}");
    assert_eq!(count(&lines, "upgrade already in progress"), 1);

    // Stop the new master (not our child: watch its pid).
    kill(Pid::from_raw(new), Signal::SIGQUIT).unwrap();
    wait_until(WAIT, "the new master to exit", || {
        (!alive(new)).then_some(())
    });
    wait_until(WAIT, "the new workers to exit", || {
        new_workers.iter().all(|&p| !alive(p)).then_some(())
    });
    assert!(
        !server.pid_file.exists(),
        "the new master left its pid file"
    );
    let errors = unexpected_errors(&server.log_lines(), &[]);
    assert!(errors.is_empty(), "error lines in the log: {errors:#?}");
}

/// Waits until the pid file names `master` again and `.oldbin` is gone.
fn pid_file_restored(server: &Server, master: i32) {
    wait_until(WAIT, "the pid file to be restored", || {
        (read_pid(&server.pid_file) == Some(master) && !oldbin(&server.pid_file).exists())
            .then_some(())
    });
}

// Proves: when the new binary fails to start, the old master logs `upgrade
// failed`, takes its pid file back (no `.oldbin`) and keeps serving with
// the same workers and no failed request; `-s upgrade` in that state tries
// again and exits 1 with the reason.
#[test]
fn usr2_with_a_failing_binary_keeps_the_old_master() {
    quiet_sigchld();
    let mut server = start_copy("workers = 2\n");
    let master = server.pid().as_raw();
    let before = server.wait_workers(2);
    install_script(&server.exe, "#!/bin/sh\nexit 1\n");
    let load = Load::start(server.addr);

    server.signal(Signal::SIGUSR2);
    let line = server.wait_for_log("upgrade failed");
    assert!(
        line.contains("exited status=1") && line.contains("old master carries on"),
        "{line}"
    );
    // The line comes just before the master takes its pid file back.
    pid_file_restored(&server, master);
    assert_eq!(get(server.addr).0, 200);
    assert_eq!(children_of(master), before);

    let (code, out, err) = run_bin(&["-s", "upgrade", "-c", server.config(), "--wait", "5"]);
    assert_eq!(code, 1, "stdout {out:?} stderr {err:?}");
    assert!(err.contains("upgrade failed"), "stderr {err:?}");
    server.wait_for_log_count("upgrade failed", 2);
    pid_file_restored(&server, master);
    assert_eq!(children_of(master), before);
    load.wait_more(40);
    load.wait_total(60);
    let report = load.stop();
    report.assert_clean(60);

    server.signal(Signal::SIGQUIT);
    assert!(server.wait_exit().success());
    let errors = unexpected_errors(&server.log_lines(), &["upgrade failed"]);
    assert!(errors.is_empty(), "error lines in the log: {errors:#?}");
}

// Proves: after a failed upgrade, fixing the binary and running `-s upgrade`
// reports the new outcome (exit 0, the new master's pid), not the old
// failure. The master is stopped (SIGSTOP) while `-s` starts, so that `-s`
// cannot see any new outcome before the master has handled the USR2: an
// answer in that window can only be the stale one.
#[test]
fn s_upgrade_after_a_failed_upgrade_reports_the_new_outcome() {
    quiet_sigchld();
    let mut server = start_copy("workers = 1\n");
    let old = server.pid().as_raw();
    wait_workers_of(old, 1);
    install_script(&server.exe, "#!/bin/sh\nexit 1\n");
    server.signal(Signal::SIGUSR2);
    server.wait_for_log("upgrade failed");

    install_binary(&server.exe);
    server.signal(Signal::SIGSTOP);
    let config = server.config().to_owned();
    let s_upgrade =
        std::thread::spawn(move || run_bin(&["-s", "upgrade", "-c", &config, "--wait", "10"]));
    // An observation window (holds_for's kind: -s must NOT answer while the
    // master is stopped), by hand so that a failure can show what -s said.
    let answered_while_stopped = {
        let end = Instant::now() + Duration::from_millis(500);
        while !s_upgrade.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        s_upgrade.is_finished()
    };
    server.signal(Signal::SIGCONT);
    let (code, out, err) = s_upgrade.join().unwrap();
    // Whatever -s said, a second upgrade was started: clean its master up.
    let line = server.wait_for_log_count("upgrade started new master pid=", 2);
    let new = number_after(&line, "new master pid=");
    let _new_master = KillOnDrop(new);
    assert!(server.wait_exit().success(), "the upgrade itself works");
    assert_eq!(read_pid(&server.pid_file), Some(new));
    assert_eq!(get(server.addr).0, 200);
    assert!(
        !answered_while_stopped,
        "-s upgrade answered before the master could act: exit {code}, stdout {out:?}, stderr {err:?}"
    );
    assert_eq!(code, 0, "stdout {out:?} stderr {err:?}");
    assert!(out.contains(&format!("new master pid {new}")), "{out:?}");
    kill(Pid::from_raw(new), Signal::SIGQUIT).unwrap();
    wait_until(WAIT, "the new master to exit", || {
        (!alive(new)).then_some(())
    });
}

// Proves: when the new binary cannot be executed at all (here it is gone),
// the reason reaches the operator: `-s upgrade` exits 1 naming the exec
// failure, the log says the same, and the old master keeps serving. (A
// plain fork + exec would only have shown exit status 127 on a stderr
// that `-d` has closed.)
#[test]
fn an_upgrade_whose_binary_is_gone_reports_why() {
    quiet_sigchld();
    let server = start_copy("workers = 1\n");
    wait_workers_of(server.pid().as_raw(), 1);
    std::fs::remove_file(&server.exe).unwrap();
    let config = server.config().to_owned();
    let (code, out, err) = run_bin(&["-s", "upgrade", "-c", &config, "--wait", "10"]);
    assert_eq!(code, 1, "stdout {out:?} stderr {err:?}");
    assert!(
        err.contains("cannot execute the new binary") && err.contains("ENOENT"),
        "stderr {err:?}"
    );
    let line = server.wait_for_log("upgrade failed");
    assert!(line.contains("cannot execute the new binary"), "{line}");
    assert_eq!(get(server.addr), (200, "Hello, World!\n".to_owned()));
    install_binary(&server.exe);
    server.finish_with(&["upgrade failed"]);
}

// ---------------------------------------------------------------------------
// TTIN / TTOU / WINCH
// ---------------------------------------------------------------------------

// Proves: TTIN adds a worker, TTOU removes one at a time but never the last,
// WINCH drains every worker while the master stays (a request sent then
// waits in the listen queue and is answered once HUP brings the config's
// worker count back). Load runs in two phases, around the scaling and after
// the HUP; it is stopped for the WINCH window on purpose: with no workers,
// requests wait in the queue and would count as slow/failed, which is what
// WINCH means, not a fault.
#[test]
fn ttin_ttou_winch_and_hup_scale_workers() {
    quiet_sigchld();
    let mut server = start("workers = 2\n");
    server.wait_workers(2);
    let load = Load::start(server.addr);

    server.signal(Signal::SIGTTIN);
    server.wait_for_log("master command=add-worker");
    server.wait_workers(3);
    load.wait_more(20);
    server.signal(Signal::SIGTTOU);
    server.wait_for_log_count("master command=remove-worker", 1);
    server.wait_workers(2);
    load.wait_more(20);
    server.signal(Signal::SIGTTOU);
    server.wait_for_log_count("master command=remove-worker", 2);
    let last = server.wait_workers(1);
    load.wait_more(20);
    // One more TTOU must not take the last worker.
    let retiring_before = count(&server.log_lines(), "retiring generation=");
    server.signal(Signal::SIGTTOU);
    server.wait_for_log_count("master command=remove-worker", 3);
    holds_for(Duration::from_millis(300), "one worker left", || {
        server.worker_pids() == last
    });
    assert_eq!(
        count(&server.log_lines(), "retiring generation="),
        retiring_before
    );
    load.wait_more(20);
    load.wait_total(80);
    let report = load.stop();
    report.assert_clean(80);

    // WINCH: no load (see above).
    server.signal(Signal::SIGWINCH);
    server.wait_for_log("master command=stop-workers");
    server.wait_workers(0);
    assert!(server.child.try_wait().unwrap().is_none(), "master exited");
    let mut queued = server.connect();
    queued.set_read_timeout(Some(WAIT)).unwrap();
    queued
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    holds_for(Duration::from_millis(200), "no workers", || {
        server.worker_pids().is_empty()
    });

    server.signal(Signal::SIGHUP);
    server.wait_for_log("reload done generation=2");
    server.wait_workers(2);
    let answer = read_until_close(&mut queued);
    assert_eq!(status(&answer), 200, "{answer:?}");
    let load = Load::start(server.addr);
    load.wait_more(40);
    load.wait_total(60);
    let report = load.stop();
    report.assert_clean(60);
    server.finish();
}

// ---------------------------------------------------------------------------
// Recycling
// ---------------------------------------------------------------------------

// Proves: with max_requests_per_worker = 50, workers retire on their own
// under load and are replaced (new pids, count kept), not counted as
// crashes, and no request fails.
#[test]
fn max_requests_per_worker_recycles_workers_without_failures() {
    quiet_sigchld();
    let server = start("workers = 2\nmax_requests_per_worker = 50\n");
    let first = server.wait_workers(2);
    let load = Load::start(server.addr);
    let mut seen: BTreeSet<i32> = first.iter().copied().collect();
    wait_until(WAIT, "4 replacement workers", || {
        seen.extend(server.worker_pids());
        (seen.len() >= first.len() + 4).then_some(())
    });
    server.wait_for_log_count("retiring on its own", 2);
    load.wait_more(50);
    load.wait_total(200);
    let report = load.stop();
    report.assert_clean(200);
    report.assert_drained_keep_alive();
    server.wait_workers(2);
    let lines = server.log_lines();
    assert!(count(&lines, "draining") >= 4, "{lines:#?}");
    assert_eq!(count(&lines, "crashed"), 0, "{lines:#?}");
    eprintln!("{} worker pids seen; load {report:?}", seen.len());
    server.finish();
}

// Proves: a master started with a signal blocked (masks are inherited
// across fork and exec, so a parent decides) still obeys it: HUP reloads.
#[test]
fn a_master_started_with_hup_blocked_still_reloads() {
    quiet_sigchld();
    let mut hup = SigSet::empty();
    hup.add(Signal::SIGHUP);
    let server = unblocked_sigchld(|| {
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&hup), None).unwrap();
        let server = Server::spawn(Options {
            toml: "workers = 1\n[response]\nbody = \"old\\n\"\n".to_owned(),
            ..Options::default()
        });
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&hup), None).unwrap();
        server
    });
    server.wait_for_log("master ready");
    // The master starts with HUP blocked and must clear its mask itself.
    assert_eq!(
        blocked_signals(server.pid().as_raw()),
        0,
        "the master cleared its inherited mask"
    );
    rewrite_config(
        &server.config_path,
        "workers = 1\n[response]\nbody = \"new\\n\"\n",
    );
    server.signal(Signal::SIGHUP);
    // Ignored, HUP would never reload.
    wait_until(WAIT, "the new body", || {
        (get(server.addr) == (200, "new\n".to_owned())).then_some(())
    });
    server.finish();
}

// ---------------------------------------------------------------------------
// preforkd -s
// ---------------------------------------------------------------------------

// Proves: `-s` with no running master (pid file missing, or no pid_file
// at all) exits 1 with a clear message.
#[test]
fn s_without_a_master_exits_1_with_a_clear_message() {
    quiet_sigchld();
    let dir = TempDir::new();
    let pid_file = dir.path().join("missing.pid");
    let config = dir.path().join("preforkd.toml");
    std::fs::write(&config, format!("pid_file = \"{}\"\n", pid_file.display())).unwrap();
    for action in ["reload", "stop", "quit", "reopen", "upgrade"] {
        let (code, out, err) = run_bin(&["-s", action, "-c", config.to_str().unwrap()]);
        assert_eq!(code, 1, "-s {action}: stdout {out:?} stderr {err:?}");
        assert!(
            err.contains(&format!("pid file {} does not exist", pid_file.display()))
                && err.contains("is preforkd running?"),
            "-s {action}: stderr {err:?}"
        );
    }
    let (code, _, err) = run_bin(&["-s", "stop", "-p", pid_file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err:?}");

    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "workers = 1\n").unwrap();
    let (code, _, err) = run_bin(&["-s", "reload", "-c", bare.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("sets no pid_file"), "{err:?}");
}

// Proves: a stale pid file (a dead pid, a live process that is not
// preforkd, garbage) makes `-s` exit 1 saying so, and signals nobody.
#[test]
fn s_with_a_stale_pid_file_exits_1_and_signals_nobody() {
    quiet_sigchld();
    let dir = TempDir::new();
    let pid_file = dir.path().join("stale.pid");
    let p = pid_file.to_str().unwrap();

    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    std::fs::write(&pid_file, format!("{dead}\n")).unwrap();
    let (code, _, err) = run_bin(&["-s", "stop", "-p", p]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "names pid {dead}, which is not a running preforkd"
        )),
        "{err:?}"
    );

    // A live process of ours that is not preforkd: it must not be signalled.
    let mut bystander = ChildGuard(Command::new("sleep").arg("30").spawn().unwrap());
    std::fs::write(&pid_file, format!("{}\n", bystander.0.id())).unwrap();
    for action in ["stop", "quit", "reload", "reopen", "upgrade"] {
        let (code, _, err) = run_bin(&["-s", action, "-p", p, "--wait", "2"]);
        assert_eq!(code, 1, "-s {action}");
        assert!(err.contains("not a running preforkd"), "{err:?}");
    }
    assert!(
        bystander.0.try_wait().unwrap().is_none(),
        "the bystander was signalled"
    );
    drop(bystander);

    std::fs::write(&pid_file, "not a pid\n").unwrap();
    let (code, _, err) = run_bin(&["-s", "stop", "-p", p]);
    assert_eq!(code, 1);
    assert!(err.contains("holds no pid"), "{err:?}");
}

// Proves: `-s stop` needs only `pid_file` from the config: with the rest
// of the file unparsable it still stops the master (exit 0, master exits 0,
// pid file removed).
#[test]
fn s_stop_works_with_a_config_broken_elsewhere() {
    quiet_sigchld();
    let pid_dir = TempDir::new();
    let pid_file = pid_dir.path().join("preforkd.pid");
    let top = format!("pid_file = \"{}\"\nworkers = 1\n", pid_file.display());
    let mut server = start(&top);
    assert_eq!(read_pid(&pid_file), Some(server.pid().as_raw()));
    rewrite_config(&server.config_path, &format!("{top}backlog = [\n"));
    let config = server.config_path.to_str().unwrap().to_owned();
    let (code, out, err) = run_bin(&["-t", "-c", &config]);
    assert_eq!(code, 1, "the config must be broken: {out:?} {err:?}");

    let (code, out, err) = run_bin(&["-s", "stop", "-c", &config]);
    assert_eq!(code, 0, "stdout {out:?} stderr {err:?}");
    assert!(out.contains("sent SIGTERM"), "{out:?}");
    let status = server.wait_exit();
    assert!(status.success(), "master exit status {status}");
    server.wait_for_log("master stopping mode=fast");
    assert!(!pid_file.exists(), "pid file left behind");
}

// Proves: `-s quit` stops gracefully: a request already under way (head
// half sent) is still answered, with `Connection: close`, and the master
// exits 0 and removes its pid file.
#[test]
fn s_quit_stops_gracefully() {
    quiet_sigchld();
    let pid_dir = TempDir::new();
    let pid_file = pid_dir.path().join("preforkd.pid");
    let mut server = start(&format!(
        "pid_file = \"{}\"\nworkers = 1\n",
        pid_file.display()
    ));
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    // With one worker, a round trip on another connection shows that the
    // worker's loop has run since the half head was sent (it accepts every
    // queued connection at once and reads what is there).
    assert_eq!(get(server.addr).0, 200);
    let config = server.config_path.to_str().unwrap().to_owned();
    let (code, out, err) = run_bin(&["-s", "quit", "-c", &config]);
    assert_eq!(code, 0, "stdout {out:?} stderr {err:?}");
    assert!(out.contains("sent SIGQUIT"), "{out:?}");
    server.wait_for_log("master stopping mode=graceful");
    server.wait_for_log("draining");
    s.write_all(b"\r\n").unwrap();
    let answer = read_until_close(&mut s);
    assert_eq!(status(&answer), 200, "{answer:?}");
    assert!(answer.contains("Connection: close\r\n"), "{answer:?}");
    let status = server.wait_exit();
    assert!(status.success(), "master exit status {status}");
    assert!(!pid_file.exists(), "pid file left behind");
    let errors = unexpected_errors(&server.log_lines(), &[]);
    assert!(errors.is_empty(), "error lines in the log: {errors:#?}");
}
