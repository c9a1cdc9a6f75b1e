//! Crash accounting, against the real binary: a worker that served and is
//! then killed from outside is replaced at once, however many times in a
//! row; a worker that fails before it accepts backs its slot off (100 ms
//! doubling), and the master sleeps through the backoff.
mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The delay announced in a `crashed, respawn in Nms` line.
fn announced_delay(line: &str) -> u64 {
    line.rsplit_once("respawn in ")
        .and_then(|(_, d)| d.trim_end().strip_suffix("ms"))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no delay in {line}"))
}

// Proves: with one worker, SIGKILLing it right after it served, six times in
// a row, never leaves the server without a worker for long: each time the
// next request is served by a new worker well within 2 s, and no kill counts
// as a crash. (Counted as crashes, the kills would back off 100, 200, 400,
// 800, 1600, 3200 ms: the last ones would miss the 2 s.)
#[test]
fn sigkill_of_a_serving_worker_is_replaced_at_once() {
    let server = Server::start("workers = 1\n");
    let mut victim = server.wait_workers(1)[0];
    let mut slowest = Duration::ZERO;
    for round in 0..6 {
        // The worker serves: it is ready, whatever its age.
        let answer = server.get();
        assert_eq!(status(&answer), 200, "round {round}: {answer}");
        kill(Pid::from_raw(victim), Signal::SIGKILL).expect("SIGKILL the worker");
        let killed = Instant::now();
        // The connection waits in the listen queue until a worker takes it.
        let answer = server.get();
        let took = killed.elapsed();
        slowest = slowest.max(took);
        assert_eq!(
            status(&answer),
            200,
            "round {round}: no answer {took:?} after the kill: {answer:?}\n{}",
            server.log_lines().join("\n")
        );
        assert!(
            took < Duration::from_secs(2),
            "round {round}: served {took:?} after the kill"
        );
        let next = wait_until(WAIT, "the replacement worker", || {
            let pids = server.worker_pids();
            (pids.len() == 1 && pids[0] != victim).then(|| pids[0])
        });
        server.wait_for_log(&format!("worker=0 pid={victim} killed signal=SIGKILL"));
        victim = next;
    }
    eprintln!("respawn: slowest answer after a kill {slowest:?}");
    let lines = server.log_lines();
    let crashes: Vec<&String> = lines.iter().filter(|l| l.contains("crashed")).collect();
    assert!(
        crashes.is_empty(),
        "a kill counted as a crash: {crashes:#?}"
    );
    let death = lines
        .iter()
        .find(|l| l.contains("killed signal=SIGKILL"))
        .expect("a death line");
    // daemon.info = 3 * 8 + 6: an outside kill is logged, not an error.
    assert!(death.starts_with("<30>"), "{death}");
    server.finish();
}

/// Starts the server with the lowest RLIMIT_NOFILE at which the master
/// runs; its workers then cannot set up their own descriptors (signal
/// pipe, epoll) and exit before they ever accept. Found by trying limits
/// upwards, so the test does not depend on the exact count of descriptors.
fn start_with_workers_that_cannot_start() -> Server {
    for nofile in 6..32 {
        let server = Server::spawn(Options {
            toml: "workers = 1\n".to_owned(),
            nofile: Some(nofile),
            ..Options::default()
        });
        let mut server = server;
        if !server.wait_ready_or_exit() {
            continue;
        }
        server.wait_for_log("crashed, respawn in ");
        return server;
    }
    panic!("no descriptor limit lets the master start while its workers fail");
}

// Proves: a worker that exits before it first accepts counts as a crash,
// logged at error level with its exit status, and its slot backs off
// 100 ms, 200 ms, 400 ms, 800 ms… so in 2.5 s only a handful of workers are
// forked (replaced at once, it would be about 25), and no worker serves.
#[test]
fn a_worker_that_fails_before_accepting_backs_off() {
    let mut server = start_with_workers_that_cannot_start();
    let t0 = Instant::now();
    // 100 + 200 + 400 + 800 ms: the fifth crash comes after about 1.5 s.
    server.wait_for_log_count("crashed, respawn in ", 5);
    let lines = server.log_lines();
    let crashes: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("crashed, respawn in "))
        .collect();
    for l in &crashes {
        // daemon.err = 3 * 8 + 3.
        assert!(l.starts_with("<27>"), "a crash is logged as an error: {l}");
        assert!(
            l.contains("worker=0 pid=") && l.contains(" exited status="),
            "{l}"
        );
    }
    let delays: Vec<u64> = crashes.iter().map(|l| announced_delay(l)).collect();
    assert_eq!(&delays[..5], &[100, 200, 400, 800, 1600], "{lines:#?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(1300),
        "five crashes in {:?}: the backoff was not waited out",
        t0.elapsed()
    );
    let spawns = lines
        .iter()
        .filter(|l| l.contains(" started generation="))
        .count();
    assert!(spawns <= 6, "{spawns} workers forked: {lines:#?}");
    server.signal(Signal::SIGQUIT);
    assert!(server.wait_exit().success());
}

// Proves: while a slot backs off (here 800 ms and more after four crashes)
// the master sleeps: a passed backoff deadline once made every poll return
// at once. A spinning master uses about 100 ticks a second; the bound leaves
// room for a loaded 2-CPU machine.
#[test]
fn master_sleeps_through_a_crash_backoff() {
    let mut server = start_with_workers_that_cannot_start();
    let master = server.pid().as_raw();
    server.wait_for_log_count("crashed, respawn in ", 4);
    let before = cpu_ticks(master);
    let since = Instant::now();
    // The window being measured: the master waits out 800 then 1600 ms.
    wait_until(WAIT, "a second to pass", || {
        (since.elapsed() >= Duration::from_secs(1)).then_some(())
    });
    let ticks = cpu_ticks(master) - before;
    assert!(
        ticks <= 20,
        "the master used {ticks} clock ticks in a second of backoff"
    );
    server.signal(Signal::SIGQUIT);
    assert!(server.wait_exit().success());
}
