//! Live changes under load: reload (HUP), binary upgrade (USR2), worker
//! scaling (TTIN/TTOU/WINCH), worker recycling (`max_requests_per_worker`)
//! and `preforkd -s`. A background load generator runs through every change
//! and must see no failed request.
//!
//! The servers log to a unix datagram socket the test binds. Its queue
//! holds only `net.unix.max_dgram_qlen` datagrams (10 by default) and the
//! server's sends block when it is full, so a test that waits without
//! reading the log stalls the master (see
//! `a_stalled_syslog_reader_does_not_stall_the_server`). Every wait here
//! therefore keeps the log drained: `CopiedServer` drains it in a
//! background thread, and waits on the harness' `Server` read it as they
//! poll.
//!
//! Every test first blocks SIGCHLD in its thread (`quiet_sigchld`), see
//! there why.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
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
    fn start(logs: &impl Logs, addr: SocketAddr) -> Load {
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
        load.wait_more(logs, 20);
        load
    }

    fn ok(&self) -> u64 {
        self.tally.ok.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests have succeeded.
    fn wait_more(&self, logs: &impl Logs, n: u64) {
        let target = self.ok() + n;
        pumped_wait(logs, WAIT, &format!("{n} more successful requests"), || {
            (self.ok() >= target).then_some(())
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

enum Idle {
    Open,
    /// The peer closed (or reset) it.
    Closed,
    /// The peer sent something nobody asked for.
    Unsolicited,
}

/// What became of a kept-alive connection between two requests: a
/// non-blocking peek.
fn idle_state(s: &TcpStream) -> Idle {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    s.set_nonblocking(false).unwrap();
    match r {
        Ok(0) => Idle::Closed,
        Ok(_) => Idle::Unsolicited,
        Err(e) if e.kind() == ErrorKind::WouldBlock => Idle::Open,
        Err(_) => Idle::Closed,
    }
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

/// `Server::start`, with the master's signal mask kept clean.
fn start(toml: &str) -> Server {
    let server = Server::start(toml);
    assert_clean_mask(server.pid().as_raw());
    server
}

/// A server whose syslog lines can be read (which also drains its socket).
trait Logs {
    fn lines(&self) -> Vec<String>;
}

impl Logs for Server {
    fn lines(&self) -> Vec<String> {
        self.log_lines()
    }
}

/// `wait_until` that keeps the server's log drained while it polls.
fn pumped_wait<T>(
    logs: &impl Logs,
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> Option<T>,
) -> T {
    wait_until(timeout, what, || {
        logs.lines();
        cond()
    })
}

/// Waits until exactly `n` workers run (log drained meanwhile).
fn workers(server: &Server, n: usize) -> Vec<i32> {
    pumped_wait(server, WAIT, &format!("{n} workers"), || {
        let pids = server.worker_pids();
        (pids.len() == n).then_some(pids)
    })
}

/// `run_bin` on a thread while this one keeps the log drained (`-s reload`
/// waits for an outcome the master publishes after logging).
fn run_bin_pumped(logs: &impl Logs, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let handle = std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_bin(&args)
    });
    pumped_wait(logs, WAIT + WAIT, "preforkd -s to finish", || {
        handle.is_finished().then_some(())
    });
    handle.join().unwrap()
}

/// `Server::finish` after draining the log (a stop logs several lines).
fn finish(server: Server) {
    server.log_lines();
    server.finish();
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

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// Error-level syslog lines (facility daemon: <27> err, <26> crit, <25> alert)
/// that contain none of `expected`.
fn unexpected_errors(lines: &[String], expected: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("<27>") || l.starts_with("<26>") || l.starts_with("<25>"))
        .filter(|l| !expected.iter().any(|e| l.contains(e)))
        .cloned()
        .collect()
}

/// Like `Server::finish`, for tests that provoke error lines on purpose:
/// QUIT, exit 0, empty process group, no error lines but the `expected`.
fn finish_allowing(mut server: Server, expected: &[&str]) {
    server.signal(Signal::SIGQUIT);
    let status = server.wait_exit();
    assert!(status.success(), "master exit status {status}");
    let pgid = server.pid();
    wait_until(WAIT, "the process group to empty", || {
        killpg(pgid, None).is_err().then_some(())
    });
    let errors = unexpected_errors(&server.log_lines(), expected);
    assert!(errors.is_empty(), "error lines in the log: {errors:#?}");
}

/// Asserts that `cond` holds at every look for `window` (an observation
/// period: something must NOT happen).
fn holds_for(logs: &impl Logs, window: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + window;
    while Instant::now() < end {
        logs.lines();
        assert!(cond(), "{what} stopped holding");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn oldbin(pid_file: &Path) -> PathBuf {
    let mut name = pid_file.file_name().unwrap().to_owned();
    name.push(".oldbin");
    pid_file.with_file_name(name)
}

/// SIGKILLs, by pid, a process this test caused to exist but does not
/// own as a child (the new master of an upgrade), if it is still there.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}

/// Runs `script` with sh (args `$1`…), which must succeed. Files that will
/// be executed are written by a child process and renamed into place: a
/// descriptor open for writing in this multi-threaded test process could be
/// inherited by a concurrent fork elsewhere and make exec fail (ETXTBSY).
fn sh(script: &str, args: &[&Path]) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "sh -c {script:?} failed: {status}");
}

/// Copies the real binary to `to` (atomically).
fn install_binary(to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    sh(
        "cp \"$1\" \"$2.tmp\" && mv -f \"$2.tmp\" \"$2\"",
        &[Path::new(BIN), to],
    );
}

/// Replaces the file at `to` with an executable shell script (atomically;
/// a running process started from the old file keeps its inode).
fn install_script(to: &Path, text: &str) {
    let script = to.with_extension("script-src");
    std::fs::write(&script, text).unwrap();
    sh(
        "cp \"$1\" \"$2.tmp\" && chmod 755 \"$2.tmp\" && mv -f \"$2.tmp\" \"$2\"",
        &[&script, to],
    );
}

// ---------------------------------------------------------------------------
// A server run from a copy of the binary (the upgrade tests replace it)
// ---------------------------------------------------------------------------

/// The harness' `Server` always runs the shared binary; the upgrade tests
/// must replace the file the master was started from, so they run a copy
/// in their own temp dir. Same conventions as the harness: a pre-bound
/// socket as fd 3 (`LISTEN_FDS`), syslog captured on a datagram socket
/// (drained by a background thread, so that old and new masters never block
/// on it), a pid file, and `Drop` SIGKILLs the whole process group.
struct CopiedServer {
    child: Child,
    dir: TempDir,
    addr: SocketAddr,
    config_path: PathBuf,
    /// The path the master was started from.
    exe: PathBuf,
    pid_file: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    stop_drain: Arc<AtomicBool>,
    drain: Option<JoinHandle<()>>,
}

impl Logs for CopiedServer {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl CopiedServer {
    /// `toml`: top-level keys and tables other than `[log]`; `pid_file` is
    /// set here.
    fn start(toml: &str) -> CopiedServer {
        let dir = TempDir::new();
        let exe = dir.path().join("bin").join("preforkd");
        install_binary(&exe);
        let log_path = dir.path().join("log.sock");
        let syslog = UnixDatagram::bind(&log_path).unwrap();
        syslog
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop_drain = Arc::new(AtomicBool::new(false));
        let drain = {
            let (lines, stop) = (Arc::clone(&lines), Arc::clone(&stop_drain));
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while !stop.load(Ordering::SeqCst) {
                    match syslog.recv(&mut buf) {
                        Ok(n) => lines
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock
                                    | ErrorKind::TimedOut
                                    | ErrorKind::Interrupted
                            ) => {}
                        Err(e) => panic!("syslog recv: {e}"),
                    }
                }
            })
        };
        let pid_file = dir.path().join("preforkd.pid");
        let config_path = dir.path().join("preforkd.toml");
        std::fs::write(
            &config_path,
            format!(
                "pid_file = \"{}\"\n{toml}\n[log]\ntarget = \"syslog\"\nsyslog_socket = \"{}\"\nlevel = \"debug\"\n",
                pid_file.display(),
                log_path.display()
            ),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr.txt")).unwrap();
        // The socket comes in as stdin; the shell moves it to fd 3 (exec
        // keeps it) and sets LISTEN_PID to its own pid, which the server
        // keeps as it is exec'd in the same process.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("exec 3<&0 </dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
            .arg(&exe)
            .arg("-c")
            .arg(&config_path)
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_FDNAMES")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("PREFORKD_UPGRADE_FROM")
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        let child = unblocked_sigchld(|| cmd.spawn().unwrap());
        drop(cmd); // our copy of the listening socket
        let server = CopiedServer {
            child,
            dir,
            addr,
            config_path,
            exe,
            pid_file,
            lines,
            stop_drain,
            drain: Some(drain),
        };
        server.wait_for_log("master ready");
        assert_clean_mask(server.pid());
        server
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).unwrap();
    }

    fn wait_for_log(&self, needle: &str) -> String {
        self.wait_for_log_count(needle, 1)
    }

    fn wait_for_log_count(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = self.lines();
            let found: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {n} log line(s) with {needle:?} within {WAIT:?}; stderr: {:?}; log:\n{}",
                std::fs::read_to_string(self.dir.path().join("stderr.txt")).unwrap_or_default(),
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_workers(&self, master: i32, n: usize) -> Vec<i32> {
        wait_until(WAIT, &format!("{n} workers of {master}"), || {
            let pids = children_of(master);
            (pids.len() == n).then_some(pids)
        })
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        wait_until(WAIT, "the master to exit", || child.try_wait().unwrap())
    }

    fn config(&self) -> &str {
        self.config_path.to_str().unwrap()
    }
}

impl Drop for CopiedServer {
    fn drop(&mut self) {
        // The group holds the master, its workers, and a new master started
        // by USR2 (forked by the master, so in its process group).
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stop_drain.store(true, Ordering::SeqCst);
        if let Some(t) = self.drain.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// HUP
// ---------------------------------------------------------------------------

// Proves: HUP with a changed response body switches to the new body within
// 3 s, keeps the master, replaces every worker (same count, disjoint pids),
// and no request fails while it happens.
#[test]
fn hup_serves_the_new_body_with_new_workers_and_no_failures() {
    quiet_sigchld();
    let server = start("workers = 2\n[response]\nbody = \"old body\\n\"\n");
    let master = server.pid().as_raw();
    let old = workers(&server, 2);
    let load = Load::start(&server, server.addr);
    assert!(load.saw_body("old body\n"));

    rewrite_config(
        &server.config_path,
        "workers = 2\n[response]\nbody = \"new body\\n\"\n",
    );
    let hup = Instant::now();
    server.signal(Signal::SIGHUP);
    pumped_wait(
        &server,
        Duration::from_secs(3),
        "the new body on a new connection",
        || (get(server.addr) == (200, "new body\n".to_owned())).then_some(()),
    );
    let switched = hup.elapsed();
    let done = server.wait_for_log("reload done generation=2");
    assert!(done.contains(&format!("[{master}]")), "{done}");

    let new = pumped_wait(&server, WAIT, "only new workers", || {
        let pids = server.worker_pids();
        (pids.len() == old.len() && pids.iter().all(|p| !old.contains(p))).then_some(pids)
    });
    assert_eq!(new.len(), 2);
    assert!(alive(master), "master exited");
    // Only the new workers remain: every new connection gets the new body.
    for _ in 0..5 {
        assert_eq!(get(server.addr), (200, "new body\n".to_owned()));
    }
    pumped_wait(&server, WAIT, "the load to see the new body", || {
        load.saw_body("new body\n").then_some(())
    });
    load.wait_more(&server, 40);
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
    finish(server);
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
    let before = workers(&server, 2);
    let config = server.config_path.to_str().unwrap().to_owned();
    let load = Load::start(&server, server.addr);

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

    let (code, out, err) = run_bin_pumped(&server, &["-s", "reload", "-c", &config, "--wait", "5"]);
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
    let (code, out, err) = run_bin_pumped(&server, &["-s", "reload", "-c", &config, "--wait", "5"]);
    assert_eq!(code, 0, "stdout {out:?} stderr {err:?}");
    assert!(out.contains("reloaded"), "{out:?}");
    server.wait_for_log("reload done generation=2");
    pumped_wait(&server, WAIT, "the fixed body", || {
        (get(server.addr) == (200, "fixed\n".to_owned())).then_some(())
    });
    load.wait_more(&server, 30);
    let report = load.stop();
    report.assert_clean(50);
    assert!(
        !report.bodies.contains_key("broken\n"),
        "{:?}",
        report.bodies
    );
    finish_allowing(server, &["reload failed"]);
}

// Proves: HUP adding a listen address serves it (the original keeps
// serving); HUP removing it closes it (connect refused within 5 s) while
// the original address serves throughout without a failed request.
#[test]
fn hup_adds_then_removes_a_listen_address() {
    quiet_sigchld();
    let server = start("workers = 2\n");
    let load = Load::start(&server, server.addr);
    let extra: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    rewrite_config(
        &server.config_path,
        &format!("listen = [\"{}\", \"{extra}\"]\nworkers = 2\n", server.addr),
    );
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
    load.wait_more(&server, 30);

    rewrite_config(
        &server.config_path,
        &format!("listen = [\"{}\"]\nworkers = 2\n", server.addr),
    );
    server.signal(Signal::SIGHUP);
    server.wait_for_log("reload done generation=3");
    let removed = Instant::now();
    pumped_wait(
        &server,
        Duration::from_secs(5),
        "the removed address to refuse",
        || match TcpStream::connect_timeout(&extra, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Some(()),
            _ => None,
        },
    );
    let refused_after = removed.elapsed();
    holds_for(
        &server,
        Duration::from_millis(200),
        "refusing on the removed address",
        || {
            TcpStream::connect_timeout(&extra, Duration::from_secs(1))
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)
        },
    );
    assert_eq!(get(server.addr).0, 200);
    load.wait_more(&server, 30);
    let report = load.stop();
    report.assert_clean(100);
    report.assert_drained_keep_alive();
    eprintln!("removed address refused {refused_after:?} after reload done; load {report:?}");
    finish(server);
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
    let mut server = CopiedServer::start("workers = 2\n");
    let old = server.pid();
    assert_eq!(read_pid(&server.pid_file), Some(old));
    let old_workers = server.wait_workers(old, 2);
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
    let load = Load::start(&server, server.addr);

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
    let new_workers = server.wait_workers(new, 2);
    assert!(new_workers.iter().all(|p| !old_workers.contains(p)));
    wait_until(WAIT, "the old workers to exit", || {
        old_workers.iter().all(|&p| !alive(p)).then_some(())
    });
    assert_eq!(get(server.addr).0, 200);
    load.wait_more(&server, 40);
    let report = load.stop();
    report.assert_clean(100);
    report.assert_drained_keep_alive();
    let lines = server.lines();
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
    let errors = unexpected_errors(&server.lines(), &[]);
    assert!(errors.is_empty(), "error lines in the log: {errors:#?}");
}

/// Waits until the pid file names `master` again and `.oldbin` is gone.
fn pid_file_restored(server: &CopiedServer, master: i32) {
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
    let mut server = CopiedServer::start("workers = 2\n");
    let master = server.pid();
    let before = server.wait_workers(master, 2);
    install_script(&server.exe, "#!/bin/sh\nexit 1\n");
    let load = Load::start(&server, server.addr);

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
    load.wait_more(&server, 40);
    let report = load.stop();
    report.assert_clean(60);

    server.signal(Signal::SIGQUIT);
    assert!(server.wait_exit().success());
    let errors = unexpected_errors(&server.lines(), &["upgrade failed"]);
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
    let mut server = CopiedServer::start("workers = 1\n");
    let old = server.pid();
    server.wait_workers(old, 1);
    install_script(&server.exe, "#!/bin/sh\nexit 1\n");
    server.signal(Signal::SIGUSR2);
    server.wait_for_log("upgrade failed");

    install_binary(&server.exe);
    server.signal(Signal::SIGSTOP);
    let config = server.config().to_owned();
    let s_upgrade =
        std::thread::spawn(move || run_bin(&["-s", "upgrade", "-c", &config, "--wait", "10"]));
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
    workers(&server, 2);
    let load = Load::start(&server, server.addr);

    server.signal(Signal::SIGTTIN);
    server.wait_for_log("master command=add-worker");
    workers(&server, 3);
    load.wait_more(&server, 20);
    server.signal(Signal::SIGTTOU);
    server.wait_for_log_count("master command=remove-worker", 1);
    workers(&server, 2);
    load.wait_more(&server, 20);
    server.signal(Signal::SIGTTOU);
    server.wait_for_log_count("master command=remove-worker", 2);
    let last = workers(&server, 1);
    load.wait_more(&server, 20);
    // One more TTOU must not take the last worker.
    let retiring_before = count(&server.log_lines(), "retiring generation=");
    server.signal(Signal::SIGTTOU);
    server.wait_for_log_count("master command=remove-worker", 3);
    holds_for(
        &server,
        Duration::from_millis(300),
        "one worker left",
        || server.worker_pids() == last,
    );
    assert_eq!(
        count(&server.log_lines(), "retiring generation="),
        retiring_before
    );
    load.wait_more(&server, 20);
    let report = load.stop();
    report.assert_clean(80);

    // WINCH: no load (see above).
    server.signal(Signal::SIGWINCH);
    server.wait_for_log("master command=stop-workers");
    workers(&server, 0);
    assert!(server.child.try_wait().unwrap().is_none(), "master exited");
    let mut queued = server.connect();
    queued.set_read_timeout(Some(WAIT)).unwrap();
    queued
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    holds_for(&server, Duration::from_millis(200), "no workers", || {
        server.worker_pids().is_empty()
    });

    server.signal(Signal::SIGHUP);
    server.wait_for_log("reload done generation=2");
    workers(&server, 2);
    let answer = read_until_close(&mut queued);
    assert_eq!(status(&answer), 200, "{answer:?}");
    let load = Load::start(&server, server.addr);
    load.wait_more(&server, 40);
    let report = load.stop();
    report.assert_clean(60);
    finish(server);
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
    let first = workers(&server, 2);
    let load = Load::start(&server, server.addr);
    let mut seen: BTreeSet<i32> = first.iter().copied().collect();
    pumped_wait(&server, WAIT, "4 replacement workers", || {
        seen.extend(server.worker_pids());
        (seen.len() >= first.len() + 4).then_some(())
    });
    server.wait_for_log_count("retiring on its own", 2);
    load.wait_more(&server, 50);
    let report = load.stop();
    report.assert_clean(200);
    report.assert_drained_keep_alive();
    workers(&server, 2);
    let lines = server.log_lines();
    assert!(count(&lines, "draining") >= 4, "{lines:#?}");
    assert_eq!(count(&lines, "crashed"), 0, "{lines:#?}");
    eprintln!("{} worker pids seen; load {report:?}", seen.len());
    finish(server);
}

// ---------------------------------------------------------------------------
// Logging must not stall the server
// ---------------------------------------------------------------------------

// Proves: a syslog reader that falls behind does not stall the master: with
// nobody reading the log socket, TTIN/TTOU still change the worker count.
// Each round logs about six lines; the rounds outnumber what the socket's
// queue (net.unix.max_dgram_qlen) holds.
#[test]
fn a_stalled_syslog_reader_does_not_stall_the_server() {
    quiet_sigchld();
    let server = start("workers = 1\n");
    let qlen: usize = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(10);
    server.log_lines(); // the queue is empty now, and nobody reads it below
    for round in 0..qlen / 5 + 3 {
        server.signal(Signal::SIGTTIN);
        wait_until(
            Duration::from_secs(5),
            &format!("2 workers (round {round})"),
            || (server.worker_pids().len() == 2).then_some(()),
        );
        server.signal(Signal::SIGTTOU);
        wait_until(
            Duration::from_secs(5),
            &format!("1 worker (round {round})"),
            || (server.worker_pids().len() == 1).then_some(()),
        );
    }
    finish(server);
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
    pumped_wait(&server, Duration::from_secs(3), "the new body", || {
        (get(server.addr) == (200, "new\n".to_owned())).then_some(())
    });
    finish(server);
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
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut bystander = Reap(Command::new("sleep").arg("30").spawn().unwrap());
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
