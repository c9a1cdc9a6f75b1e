//! Resource exhaustion and faults, against the real binary:
//! - a worker out of file descriptors (RLIMIT_NOFILE 64): accept4 fails
//!   with EMFILE; one warning for the episode, no busy loop, the
//!   connections it has are served, and it accepts again once some close;
//! - chaos: workers SIGKILLed at random under load; service never stops,
//!   only requests in flight on a killed worker fail, the count comes back;
//! - a pid file that cannot be written: exit 1, one clear line, nothing left;
//! - the master SIGSTOPped longer than worker_timeout: workers serve on, and
//!   after SIGCONT the watchdog kills nobody and the master obeys signals.
//!
//! (The syslog socket going away and coming back is tests/supervision.rs'.)
//! Every wait has a deadline; processes are signalled by pid only.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// /proc reports CPU times in USER_HZ, which is 100 on Linux (an ABI
/// constant, whatever the kernel's own tick rate).
const USER_HZ: f64 = 100.0;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Open file descriptors of `pid` numbered below `limit` (RLIMIT_NOFILE
/// bounds the numbers of new descriptors; one inherited above it, such as
/// cargo's jobserver pipe, does not count against it).
fn fds_below(pid: i32, limit: usize) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n < limit)
        })
        .count()
}

// ---------------------------------------------------------------------------
// 8. Out of file descriptors
// ---------------------------------------------------------------------------

// Proves: a worker whose accept4 fails with EMFILE logs one warning for the
// whole episode (not one per failure), goes on serving the connections it
// holds, does not spin (well under a third of a CPU while new connections
// keep arriving), and accepts again, saying so, once connections close.
#[test]
fn emfile_is_logged_once_does_not_spin_and_recovers() {
    quiet_sigchld();
    const NOFILE: usize = 64;
    let server = Server::start_with(Options {
        toml: "workers = 1\nworker_connections = 1000\nheader_timeout = \"60s\"\n\
               keepalive_timeout = \"60s\"\n"
            .to_owned(),
        nofile: Some(NOFILE as u32),
        ..Options::default()
    });
    let worker = server.wait_workers(1)[0];
    let addr = server.addr;
    // A keep-alive connection accepted before the episode.
    let mut kept = open(addr);
    get_on(&mut kept, ANSWER).unwrap();
    let room = NOFILE - fds_below(worker, NOFILE);
    eprintln!("emfile: worker {worker} has room for {room} more descriptors");

    // More connections than descriptors left: the rest wait in the queue.
    let conns: Vec<TcpStream> = (0..room + 20).map(|_| connect(addr)).collect();
    let warning = server.wait_for_log("accept4 failed");
    assert!(
        warning.starts_with("<28>")
            && warning.contains(&format!("worker pid={worker} "))
            && warning.contains("Too many open files"),
        "a warning naming the worker and EMFILE: {warning}"
    );
    wait_until(WAIT, "the worker to use all its descriptors", || {
        (fds_below(worker, NOFILE) == NOFILE).then_some(())
    });
    get_on(&mut kept, ANSWER).unwrap();

    // Two seconds of the episode, new connections arriving all along.
    let ticks = cpu_ticks(worker);
    let since = Instant::now();
    let mut extra = Vec::new();
    while since.elapsed() < Duration::from_secs(2) {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            extra.push(s);
        }
        // Pacing of the arrivals: one every 50 ms.
        std::thread::sleep(Duration::from_millis(50));
    }
    let used = (cpu_ticks(worker) - ticks) as f64 / USER_HZ;
    let share = used / since.elapsed().as_secs_f64();
    eprintln!(
        "emfile: {} more connections arrived; worker used {used:.2} s of CPU in {:?} ({:.0}%)",
        extra.len(),
        since.elapsed(),
        share * 100.0
    );
    // A worker that sleeps between arrivals uses a few percent; one that
    // spins on EMFILE never sleeps and takes what a CPU it can get. Half a
    // CPU leaves room for a loaded 2-CPU machine (CPU time is not inflated
    // by load, but tick accounting is coarse) and still catches the spin.
    assert!(
        share < 0.5,
        "the worker spun: {:.0}% of a CPU",
        share * 100.0
    );
    assert_eq!(
        fds_below(worker, NOFILE),
        NOFILE,
        "still out of descriptors"
    );
    assert_eq!(
        count(&server.log_lines(), "accept4 failed"),
        1,
        "one warning for the episode"
    );
    // Still serving what it has, during the episode.
    get_on(&mut kept, ANSWER).unwrap();

    // Connections close: the worker accepts again (the queued ones, then
    // new ones) and says so.
    drop(conns);
    drop(extra);
    let again = server.wait_for_log("accepting again");
    assert!(
        again.contains(&format!("worker pid={worker} accepting again")),
        "{again}"
    );
    for _ in 0..3 {
        get_ok(addr).unwrap();
    }
    get_on(&mut kept, ANSWER).unwrap();
    assert_eq!(server.worker_pids(), vec![worker]);
    drop(kept);
    let (lines, stderr) = server.finish_with(&[]);
    assert_eq!(
        count(&lines, "accept4 failed") + stderr.matches("accept4 failed").count(),
        1,
        "accept4 warnings in the log and on stderr; stderr: {stderr}"
    );
    assert_eq!(count(&lines, "accepting again"), 1);
}

// ---------------------------------------------------------------------------
// 9. Chaos: workers killed at random under load
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// ms since the start at the latest success.
    last_ok_ms: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// One load thread: GETs until `stop`, on a kept-alive connection
/// (reopened whenever the server closed it) or a new one per request.
fn load(addr: SocketAddr, keep_alive: bool, stop: &AtomicBool, tally: &Tally, t0: Instant) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conn: Option<TcpStream> = None;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let result = if keep_alive {
            if conn
                .as_ref()
                .is_some_and(|s| !matches!(idle_state(s), Idle::Open))
            {
                conn = None;
            }
            let s = match conn.take() {
                Some(s) => Ok(s),
                None => TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                    .map_err(|e| format!("connect: {e}"))
                    .inspect(|s| {
                        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
                    }),
            };
            s.and_then(|mut s| {
                get_on(&mut s, ANSWER)?;
                conn = Some(s);
                Ok(())
            })
        } else {
            get_ok(addr).map(drop)
        };
        match result {
            Ok(()) => {
                tally.ok.fetch_add(1, Ordering::SeqCst);
                tally
                    .last_ok_ms
                    .fetch_max(t0.elapsed().as_millis() as u64, Ordering::SeqCst);
            }
            Err(e) => {
                conn = None;
                tally.failed.fetch_add(1, Ordering::SeqCst);
                let mut f = tally.failures.lock().unwrap();
                if f.len() < 30 {
                    f.push(format!("{:>6}ms: {e}", t0.elapsed().as_millis()));
                }
            }
        }
        // Throttle: four threads ask for at most ~400 requests/s, which two
        // cores shared with other tests take without starving anything.
        std::thread::sleep(Duration::from_millis(10));
    }
}

// Proves: with a worker SIGKILLed at random every 300 ms for 30 s under load
// from four client threads, service never stops (no 2 s without a success),
// the only failures are requests in flight on a killed worker (at most one
// per client thread per kill), no kill counts as a crash, and the worker
// count is back to W at the end.
//
// Only workers alive for 1.5 s (long enough to have served) are killed: a
// worker dying before it is ready counts as a crash and backs off, which is
// crash-loop protection (tested in tests/respawn.rs), not this test.
#[test]
fn chaos_random_worker_kills_under_load() {
    quiet_sigchld();
    const W: usize = 3;
    const THREADS: u64 = 4;
    const RUN: Duration = Duration::from_secs(30);
    let server = Server::start_with(Options::toml("workers = 3\nkeepalive_timeout = \"30s\"\n"));
    server.wait_workers(W);
    let addr = server.addr;
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let t0 = Instant::now();
    let mut rng = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut first_seen: HashMap<i32, Instant> = HashMap::new();
    let (kills, longest_gap) = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for i in 0..THREADS {
            let (stop, tally) = (&stop, &tally);
            scope.spawn(move || load(addr, i < 2, stop, tally, t0));
        }
        wait_until(WAIT, "the load to be served", || {
            (tally.ok.load(Ordering::SeqCst) >= 20).then_some(())
        });
        let (mut kills, mut longest_gap) = (0u64, Duration::ZERO);
        let mut next_kill = Instant::now();
        while t0.elapsed() < RUN {
            let now = Instant::now();
            let pids = server.worker_pids();
            for p in &pids {
                first_seen.entry(*p).or_insert(now);
            }
            let last = Duration::from_millis(tally.last_ok_ms.load(Ordering::SeqCst));
            longest_gap = longest_gap.max(t0.elapsed().saturating_sub(last));
            if now >= next_kill {
                let old: Vec<i32> = pids
                    .iter()
                    .copied()
                    .filter(|p| now.duration_since(first_seen[p]) > Duration::from_millis(1500))
                    .collect();
                if !old.is_empty() {
                    // xorshift64: a random victim among the old enough.
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let victim = old[(rng % old.len() as u64) as usize];
                    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
                    kills += 1;
                }
                next_kill = now + Duration::from_millis(300);
            }
            // The killer's poll interval (also how often the gap is sampled).
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        (kills, longest_gap)
    });
    let ok = tally.ok.load(Ordering::SeqCst);
    let failed = tally.failed.load(Ordering::SeqCst);
    let failures = tally.failures.lock().unwrap().clone();
    eprintln!(
        "chaos: {kills} workers killed in {RUN:?}; {ok} requests ok, {failed} failed; \
         longest time without a success {longest_gap:?}; first failures: {failures:#?}"
    );
    assert!(kills >= 20, "only {kills} kills");
    assert!(ok >= 1000, "only {ok} requests served");
    assert!(
        failed <= kills * THREADS,
        "{failed} failures for {kills} kills of {THREADS} threads' requests"
    );
    // A stopped service shows as a gap of many seconds (the rest of the
    // run); 4 s leaves room for a loaded machine's respawns.
    assert!(
        longest_gap < Duration::from_secs(4),
        "no request succeeded for {longest_gap:?}"
    );
    let pids = wait_until(WAIT, "W workers", || {
        let pids = server.worker_pids();
        (pids.len() == W).then_some(pids)
    });
    for p in pids {
        assert!(alive(p));
    }
    get_ok(addr).unwrap();
    let (lines, _) = server.finish_with(&[]);
    assert_eq!(count(&lines, "crashed"), 0, "a kill counted as a crash");
    assert!(count(&lines, "killed signal=SIGKILL") as u64 >= kills.min(5));
}

// ---------------------------------------------------------------------------
// 10. A pid file that cannot be written
// ---------------------------------------------------------------------------

// Proves: a pid file in a directory that does not exist (one under /proc
// cannot be created even by root) makes the server exit 1 at startup with
// one stderr line naming the path, starting no worker and leaving no
// process, pid file or listening socket behind.
#[test]
fn unwritable_pid_file_directory_exits_1_with_one_clear_line() {
    quiet_sigchld();
    let scratch = TempDir::new();
    let missing = scratch.path().join("no/such/dir/x.pid");
    for path in [
        std::path::PathBuf::from("/proc/preforkd-test/x.pid"),
        missing,
    ] {
        let mut server = Server::spawn(Options::toml(&format!(
            "workers = 1\npid_file = \"{}\"\n",
            path.display()
        )));
        let status = server.wait_exit();
        assert_eq!(status.code(), Some(1), "exit status for {}", path.display());
        let stderr = server.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {stderr:?}");
        assert!(
            lines[0].starts_with("preforkd: ")
                && lines[0].contains(&path.display().to_string())
                && lines[0].contains("pid file"),
            "a line naming the pid file: {stderr:?}"
        );
        assert!(
            killpg(server.pid(), None).is_err(),
            "processes left in the master's process group"
        );
        let log = server.log_lines();
        assert_eq!(count(&log, "started generation"), 0, "a worker was started");
        assert_eq!(count(&log, "cannot write pid file"), 1, "{log:#?}");
        assert!(!path.exists(), "{} exists", path.display());
        // Its socket was the only copy once the harness handed it over.
        let refused = TcpStream::connect_timeout(&server.addr, Duration::from_secs(1));
        assert!(
            refused.is_err(),
            "something still listens on {}",
            server.addr
        );
    }
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "files left in the scratch dir"
    );
}

// ---------------------------------------------------------------------------
// 11. The master stopped
// ---------------------------------------------------------------------------

// Proves: with the master SIGSTOPped for 5 s (worker_timeout 2 s), the
// workers serve every request meanwhile; after SIGCONT the watchdog kills
// nobody (no `hung` line, same workers), and the master obeys signals again
// (TTIN adds a worker).
#[test]
fn stopped_master_kills_no_worker_after_sigcont() {
    quiet_sigchld();
    let server = Server::start_with(Options::toml("workers = 2\nworker_timeout = \"2s\"\n"));
    let workers = server.wait_workers(2);
    let master = server.pid().as_raw();
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for i in 0..2 {
            let (stop, tally) = (&stop, &tally);
            scope.spawn(move || load(server.addr, i == 0, stop, tally, t0));
        }
        wait_until(WAIT, "the load to be served", || {
            (tally.ok.load(Ordering::SeqCst) >= 20).then_some(())
        });

        server.signal(Signal::SIGSTOP);
        wait_until(WAIT, "the master to stop", || {
            (stat_fields(master)[0] == "T").then_some(())
        });
        let before = tally.ok.load(Ordering::SeqCst);
        // The stop itself: 5 s, more than twice worker_timeout, watched.
        holds_for(
            Duration::from_secs(5),
            "stopped master, same workers",
            || stat_fields(master)[0] == "T" && server.worker_pids() == workers,
        );
        let during = tally.ok.load(Ordering::SeqCst) - before;
        server.signal(Signal::SIGCONT);
        wait_until(WAIT, "the master to run again", || {
            (stat_fields(master)[0] != "T").then_some(())
        });
        // The watchdog looks at least once a second: give it three looks
        // past worker_timeout.
        holds_for(Duration::from_secs(3), "the same workers", || {
            server.worker_pids() == workers
        });
        stop.store(true, Ordering::SeqCst);
        eprintln!("stopped master: {during} requests served while it was stopped");
        assert!(
            during >= 50,
            "only {during} requests while the master was stopped"
        );
    });
    let failed = tally.failed.load(Ordering::SeqCst);
    assert_eq!(
        failed,
        0,
        "failed requests: {:#?}",
        tally.failures.lock().unwrap()
    );
    let lines = server.log_lines();
    assert_eq!(count(&lines, "hung"), 0, "{lines:#?}");
    assert_eq!(count(&lines, "killed signal"), 0, "{lines:#?}");

    server.signal(Signal::SIGTTIN);
    server.wait_for_log("master command=add-worker");
    let now = wait_until(WAIT, "3 workers", || {
        let pids = server.worker_pids();
        (pids.len() == 3).then_some(pids)
    });
    assert!(
        workers.iter().all(|w| now.contains(w)),
        "{workers:?} -> {now:?}"
    );
    get_ok(server.addr).unwrap();
    server.finish_with(&[]);
}
