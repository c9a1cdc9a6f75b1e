//! The process model, run against the real binary: the worker count and the
//! one listening socket all processes share; a SIGKILLed worker replaced
//! with at most one lost request; TERM, INT and QUIT each stopping the whole
//! process group; workers not outliving a SIGKILLed master; graceful stop
//! finishing an in-flight request and closing idle keep-alive connections
//! after `drain_idle_grace`; the syslog line format (RFC 3164, facility,
//! ident, pids); a worker surviving malformed requests; the
//! pid file; `-l`, `-w` and `--log-target` over the config; bind failure; an
//! unreachable syslog socket.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

// ---------------------------------------------------------------- helpers

/// The master has exited with status 0 and its process group is empty
/// (it reaps every worker before it exits, so no wait is needed here).
fn assert_clean_exit(server: &mut Server) {
    let status = server.wait_exit();
    assert!(status.success(), "master exit status {status}");
    assert!(
        killpg(server.pid(), None).is_err(),
        "processes left in the master's process group"
    );
}

/// Lines of a child's pipe, read on a thread so that a test can wait on
/// them with a deadline.
struct PipeLines {
    lines: Arc<Mutex<Vec<String>>>,
    eof: Arc<AtomicBool>,
}

impl PipeLines {
    fn new(pipe: impl Read + Send + 'static) -> PipeLines {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let eof = Arc::new(AtomicBool::new(false));
        let (l, e) = (Arc::clone(&lines), Arc::clone(&eof));
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                match line {
                    Ok(line) => l.lock().expect("lines lock").push(line),
                    Err(_) => break,
                }
            }
            e.store(true, Ordering::SeqCst);
        });
        PipeLines { lines, eof }
    }

    /// The stderr of `server`, taken from it.
    fn stderr_of(server: &mut Server) -> PipeLines {
        PipeLines::new(server.child.stderr.take().expect("stderr is piped"))
    }

    fn all(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    fn wait_for(&self, needle: &str) -> String {
        wait_until(WAIT, &format!("a line with {needle:?} on stderr"), || {
            self.all().into_iter().find(|l| l.contains(needle))
        })
    }

    /// Waits until every holder of the pipe has closed it; returns all lines.
    fn wait_eof(&self) -> Vec<String> {
        wait_until(WAIT, "EOF on stderr", || {
            self.eof.load(Ordering::SeqCst).then_some(())
        });
        self.all()
    }
}

/// A syslog datagram split into its RFC 3164 parts.
#[derive(Debug)]
struct SyslogLine {
    pri: u32,
    month: String,
    day: String,
    time: String,
    ident: String,
    pid: i32,
    message: String,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses `<PRI>Mmm dd hh:mm:ss IDENT[PID]: MESSAGE`, panicking with the
/// line on any deviation.
fn parse_syslog(line: &str) -> SyslogLine {
    let bad = |why: &str| -> ! { panic!("not an RFC 3164 line ({why}): {line:?}") };
    let rest = line.strip_prefix('<').unwrap_or_else(|| bad("no <PRI>"));
    let (pri, rest) = rest.split_once('>').unwrap_or_else(|| bad("no <PRI>"));
    if pri.is_empty() || pri.len() > 3 || !pri.bytes().all(|b| b.is_ascii_digit()) {
        bad("PRI is not 1 to 3 digits");
    }
    let pri: u32 = pri.parse().unwrap_or_else(|_| bad("PRI"));
    if pri > 191 {
        bad("PRI above 191");
    }
    // "Mmm dd hh:mm:ss " is exactly 16 bytes.
    let stamp = rest.get(..16).unwrap_or_else(|| bad("short timestamp"));
    let rest = &rest[16..];
    let (month, day, time) = (&stamp[..3], &stamp[4..6], &stamp[7..15]);
    if !MONTHS.contains(&month) || &stamp[3..4] != " " || &stamp[6..7] != " " {
        bad("month");
    }
    let day_n: u32 = day.trim_start().parse().unwrap_or_else(|_| bad("day"));
    if !(1..=31).contains(&day_n) || !day.as_bytes()[1].is_ascii_digit() {
        bad("day");
    }
    let t = time.as_bytes();
    let digits_ok = [0, 1, 3, 4, 6, 7].iter().all(|&i| t[i].is_ascii_digit());
    if !digits_ok || t[2] != b':' || t[5] != b':' || &stamp[15..16] != " " {
        bad("hh:mm:ss");
    }
    let (tag, message) = rest.split_once(": ").unwrap_or_else(|| bad("no ': '"));
    let (ident, pid) = tag
        .strip_suffix(']')
        .and_then(|t| t.split_once('['))
        .unwrap_or_else(|| bad("no IDENT[PID]"));
    if ident.is_empty() || ident.contains(' ') {
        bad("ident");
    }
    SyslogLine {
        pri,
        month: month.to_owned(),
        day: day.to_owned(),
        time: time.to_owned(),
        ident: ident.to_owned(),
        pid: pid.parse().unwrap_or_else(|_| bad("pid")),
        message: message.to_owned(),
    }
}

/// Month abbreviation and day of month of now, in UTC (the server stamps
/// its lines in UTC), from an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
fn utc_month_day() -> (String, u32) {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let f: Vec<&str> = date.split(' ').collect();
    (f[2].to_owned(), f[1].parse().expect("day"))
}

/// Sends `sig` to the master and checks the stop: exit 0, an empty process
/// group, no worker left, and the log lines of the stop.
fn stop_with(sig: Signal, mode: &str) {
    let mut server = Server::start("workers = 2\n");
    let workers = server.wait_workers(2);
    let asked = Instant::now();
    server.signal(sig);
    assert_clean_exit(&mut server);
    // The fast stop's grace is 2 s and nothing is in flight here; a hang
    // would last shutdown_timeout (20 s). 8 s is room for a loaded machine.
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{sig} took {:?}",
        asked.elapsed()
    );
    for pid in &workers {
        assert!(!alive(*pid), "worker {pid} still alive after {sig}");
    }
    server.wait_for_log(&format!("master stopping mode={mode}"));
    server.wait_for_log("master exiting");
    let lines = server.log_lines();
    for pid in workers {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(" pid={pid} exited status=0"))),
            "no exit line for worker {pid}:\n{}",
            lines.join("\n")
        );
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn worker_count_and_one_shared_listening_socket() {
    let server = Server::start("workers = 3\n");
    let workers = server.wait_workers(3);
    assert_eq!(workers.len(), 3);
    let inodes: Vec<u64> = listening_inodes(server.addr.port()).into_iter().collect();
    assert_eq!(
        inodes.len(),
        1,
        "one LISTEN socket on {} in /proc/net/tcp, got {inodes:?}",
        server.addr
    );
    let inode = inodes[0];
    for pid in std::iter::once(server.pid().as_raw()).chain(workers.iter().copied()) {
        let held = socket_inodes(pid);
        assert!(
            held.contains(&inode),
            "process {pid} does not hold the listening socket {inode}; it holds {held:?}"
        );
    }
    // Exactly W spawns, no more.
    let started = server
        .log_lines()
        .iter()
        .filter(|l| l.contains(" started generation="))
        .count();
    assert_eq!(started, 3, "started lines: {:#?}", server.log_lines());
    assert_eq!(server.worker_pids(), workers, "the workers stay the same");
    server.finish();
}

#[test]
fn killed_worker_is_replaced_and_at_most_one_request_fails() {
    let server = Server::start("workers = 2\n");
    let workers = server.wait_workers(2);
    let addr = server.addr;
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (ok, failures, stop) = (Arc::clone(&ok), Arc::clone(&failures), Arc::clone(&stop));
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            for _ in 0..20_000 {
                if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                    break;
                }
                match get_ok(addr) {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => failures.lock().expect("lock").push(e),
                }
                // Pacing: steady traffic without starving parallel tests.
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Both workers have served (a worker killed before it is ready would
    // count as a crash); an outside kill after that is replaced at once.
    wait_until(WAIT, "20 requests", || {
        (ok.load(Ordering::SeqCst) >= 20).then_some(())
    });
    let victim = workers[0];
    kill(Pid::from_raw(victim), Signal::SIGKILL).expect("SIGKILL a worker");
    let replaced = wait_until(Duration::from_secs(2), "a replacement worker", || {
        let now = server.worker_pids();
        (now.len() == 2 && !now.contains(&victim)).then_some(now)
    });
    let new_pid = *replaced
        .iter()
        .find(|p| !workers.contains(p))
        .expect("a new pid");
    let before = ok.load(Ordering::SeqCst);
    wait_until(WAIT, "20 requests after the replacement", || {
        (ok.load(Ordering::SeqCst) >= before + 20).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    client.join().expect("client thread");
    let failures = failures.lock().expect("lock").clone();
    assert!(
        failures.len() <= 1,
        "{} of {} requests failed: {failures:#?}",
        failures.len(),
        ok.load(Ordering::SeqCst) + failures.len()
    );
    let killed = parse_syslog(&server.wait_for_log(&format!(" pid={victim} killed")));
    assert_eq!(
        killed.pri, 30,
        "a served worker's death is no crash: {killed:?}"
    );
    let slot = killed
        .message
        .strip_prefix("worker=")
        .and_then(|m| m.strip_suffix(&format!(" pid={victim} killed signal=SIGKILL")))
        .unwrap_or_else(|| panic!("{killed:?}"));
    assert!(slot == "0" || slot == "1", "{killed:?}");
    // The replacement takes the dead worker's slot.
    server.wait_for_log(&format!("worker={slot} pid={new_pid} started"));
    server.finish();
}

#[test]
fn sigterm_stops_everything() {
    stop_with(Signal::SIGTERM, "fast");
}

#[test]
fn sigint_stops_everything() {
    stop_with(Signal::SIGINT, "fast");
}

#[test]
fn sigquit_stops_everything() {
    stop_with(Signal::SIGQUIT, "graceful");
}

#[test]
fn workers_do_not_outlive_a_killed_master() {
    let mut server = Server::start("workers = 2\n");
    let workers = server.wait_workers(2);
    server.signal(Signal::SIGKILL);
    let status = server.wait_exit();
    assert!(!status.success(), "{status}");
    // Each worker asked the kernel for SIGTERM when its master dies.
    wait_until(WAIT, "the orphaned workers to exit", || {
        workers.iter().all(|p| !alive(*p)).then_some(())
    });
    wait_until(WAIT, "the process group to empty", || {
        killpg(server.pid(), None).is_err().then_some(())
    });
}

#[test]
fn graceful_stop_finishes_an_in_flight_request() {
    let mut server = Server::start(
        "workers = 1\ndrain_idle_grace = \"1s\"\nshutdown_timeout = \"20s\"\nkeepalive_timeout = \"30s\"\n",
    );
    let mut s = server.connect();
    s.write_all(GET).expect("write GET");
    let first = read_response(&mut s);
    assert_eq!(status(&first), 200, "{first}");
    assert!(!first.contains("Connection: close"), "{first}");
    // 100 Continue proves the worker parsed the head: the connection is
    // mid-request, not idle, when QUIT comes.
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
    )
    .expect("write POST head");
    let cont = read_response(&mut s);
    assert_eq!(status(&cont), 100, "{cont}");
    s.write_all(b"01234").expect("write half the body");
    server.signal(Signal::SIGQUIT);
    server.wait_for_log("draining");
    // What is exercised: a request under way outlives drain_idle_grace
    // (1 s): the master runs on all along.
    holds_for(
        Duration::from_millis(1500),
        "the master running with a request in flight",
        || server.child.try_wait().expect("try_wait").is_none(),
    );
    s.write_all(b"56789").expect("write the rest of the body");
    let answer = read_response(&mut s);
    assert_eq!(status(&answer), 405, "{answer}");
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest).expect("EOF after the answer");
    assert_eq!(n, 0, "bytes after the answer: {rest:?}");
    assert_clean_exit(&mut server);
}

#[test]
fn graceful_stop_closes_idle_keepalive_connections_after_the_grace() {
    let mut server = Server::start(
        "workers = 1\ndrain_idle_grace = \"1s\"\nshutdown_timeout = \"20s\"\nkeepalive_timeout = \"30s\"\n",
    );
    let mut conns: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(GET).expect("write GET");
            let r = read_response(&mut s);
            assert_eq!(status(&r), 200, "{r}");
            assert!(!r.contains("Connection: close"), "{r}");
            s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
            s
        })
        .collect();
    let asked = Instant::now();
    server.signal(Signal::SIGQUIT);
    for s in &mut conns {
        let mut buf = [0u8; 64];
        let n = s
            .read(&mut buf)
            .expect("the server closes an idle connection, not a timeout");
        assert_eq!(n, 0, "unexpected bytes: {:?}", &buf[..n]);
    }
    let closed = asked.elapsed();
    assert!(
        closed >= Duration::from_millis(800),
        "idle connections closed after {closed:?}, before the 1s grace"
    );
    // Not closed, they would last until shutdown_timeout (20 s).
    assert!(
        closed < Duration::from_secs(7),
        "idle connections closed after {closed:?}"
    );
    assert_clean_exit(&mut server);
    let exited = asked.elapsed();
    assert!(
        exited < Duration::from_secs(10),
        "master exited {exited:?} after QUIT; shutdown_timeout is 20s"
    );
}

#[test]
fn syslog_lines_are_rfc3164_with_pids() {
    let mut server = Server::start("workers = 2\n");
    let master = server.pid().as_raw();
    let workers = server.wait_workers(2);
    let before = utc_month_day();
    server.signal(Signal::SIGQUIT);
    assert_clean_exit(&mut server);
    let after = utc_month_day();
    server.wait_for_log("master exiting");
    let lines = server.log_lines();
    let parsed: Vec<SyslogLine> = lines.iter().map(|l| parse_syslog(l)).collect();
    for p in &parsed {
        assert_eq!(p.ident, "preforkd", "{p:?}");
        assert_eq!(p.pri / 8, 3, "facility daemon (3): {p:?}");
        let day: u32 = p.day.trim_start().parse().expect("day");
        assert!(
            (p.month.clone(), day) == before || (p.month.clone(), day) == after,
            "timestamp {p:?} is not today ({before:?})"
        );
        assert!(!p.time.is_empty());
    }
    let find = |needle: &str| -> &SyslogLine {
        parsed
            .iter()
            .find(|p| p.message.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{}", lines.join("\n")))
    };
    let port = server.addr.port();
    let started = find("master started");
    assert_eq!(started.pri, 30, "info in daemon: {started:?}");
    assert_eq!(started.pid, master);
    assert_eq!(
        started.message,
        format!(
            "master started version={} pid={master} listen=127.0.0.1:{port} workers=2",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(find("master ready").pid, master);
    for pid in &workers {
        let up = find(&format!(" pid={pid} started"));
        assert_eq!(up.pri, 30, "{up:?}");
        assert_eq!(up.pid, master, "the master logs the start: {up:?}");
        assert!(up.message.starts_with("worker="), "{up:?}");
        let down = find(&format!(" pid={pid} exited status=0"));
        assert_eq!(down.pri, 30, "{down:?}");
        assert!(down.message.starts_with("worker="), "{down:?}");
        // The worker logs its own draining, under its own pid.
        let drain = find(&format!("worker pid={pid} draining"));
        assert_eq!(
            drain.pid, *pid,
            "a worker's line carries its pid: {drain:?}"
        );
    }
    let exiting = find("master exiting");
    assert_eq!(exiting.pid, master);
    assert_eq!(exiting.pri, 30);
    assert_eq!(
        server.stderr(),
        "",
        "with syslog reachable, stderr stays empty"
    );
}

#[test]
fn syslog_ident_and_facility_come_from_the_config() {
    let mut server = Server::start_with(Options {
        toml: "workers = 1\n".into(),
        log: "ident = \"web\"\nfacility = \"local0\"\n".into(),
        ..Options::default()
    });
    let master = server.pid().as_raw();
    server.signal(Signal::SIGQUIT);
    assert_clean_exit(&mut server);
    server.wait_for_log("master exiting");
    let lines = server.log_lines();
    let started = lines
        .iter()
        .find(|l| l.contains("master started"))
        .expect("a start line");
    // local0 = 16, info = 6: 16 * 8 + 6.
    assert!(started.starts_with("<134>"), "{started}");
    assert!(
        started.contains(&format!(" web[{master}]: master started ")),
        "{started}"
    );
    for l in &lines {
        let p = parse_syslog(l);
        assert_eq!(p.ident, "web", "{l}");
        assert_eq!(p.pri / 8, 16, "facility local0: {l}");
    }
}

#[test]
fn syslog_day_of_month_is_space_padded() {
    let mut server = Server::start("workers = 1\n");
    server.signal(Signal::SIGQUIT);
    assert_clean_exit(&mut server);
    server.wait_for_log("master exiting");
    for l in server.log_lines() {
        let p = parse_syslog(&l);
        let zero_padded = p.day.starts_with('0');
        assert!(!zero_padded, "day {:?} is zero-padded: {l}", p.day);
    }
}

#[test]
fn malformed_requests_do_not_kill_the_worker() {
    let server = Server::start("workers = 1\n");
    let worker = server.wait_workers(1);
    let bad: [&[u8]; 10] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
        b"GET / HTTP/1.1\nHost: t\n\n",
        b"GET  /  HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX: \x00\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
    ];
    for _round in 0..3 {
        for req in bad {
            let answer = server.request(req);
            let code = status(&answer);
            assert!(
                (400..=599).contains(&code),
                "{:?} got {answer:?}",
                String::from_utf8_lossy(req)
            );
        }
    }
    assert_eq!(status(&server.get()), 200);
    assert_eq!(server.worker_pids(), worker, "the worker kept its pid");
    let lines = server.log_lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(" exited ") || l.contains(" killed ")),
        "a worker ended:\n{}",
        lines.join("\n")
    );
    server.finish();
}

#[test]
fn pid_file_flag_holds_the_master_pid_and_is_removed() {
    let dir = TempDir::new();
    let path = dir.path().join("run").with_extension("pid");
    let mut server = Server::start_with(Options {
        toml: "workers = 1\n".into(),
        args: vec!["-p".into(), path.display().to_string()],
        ..Options::default()
    });
    let text = std::fs::read_to_string(&path).expect("the pid file exists");
    assert_eq!(text.trim(), server.pid().to_string(), "{text:?}");
    assert!(text.ends_with('\n'), "{text:?}");
    server.signal(Signal::SIGQUIT);
    assert_clean_exit(&mut server);
    assert!(!path.exists(), "the pid file is removed on exit");
}

#[test]
fn pid_file_key_holds_the_master_pid_and_is_removed() {
    let dir = TempDir::new();
    let path = dir.path().join("key.pid");
    let mut server = Server::start(&format!("workers = 1\npid_file = \"{}\"\n", path.display()));
    let text = std::fs::read_to_string(&path).expect("the pid file exists");
    assert_eq!(text.trim(), server.pid().to_string(), "{text:?}");
    // A fast stop removes it too.
    server.signal(Signal::SIGTERM);
    assert_clean_exit(&mut server);
    assert!(!path.exists(), "the pid file is removed on exit");
}

/// Starts a server on `-l 127.0.0.1:PORT` (a test of binding itself): the
/// port is held by this process until just before the server starts, and
/// another is tried if a parallel test took it in that moment.
fn start_on_free_port(toml: &str, extra: &[&str]) -> (Server, SocketAddr) {
    for _ in 0..3 {
        let (held, addr) = loopback_listener();
        drop(held);
        let mut args = vec!["-l".to_owned(), addr.to_string()];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let mut server = Server::spawn(Options {
            toml: toml.into(),
            socket: false,
            args,
            ..Options::default()
        });
        if server.wait_ready_or_exit() {
            return (server, addr);
        }
        let err = server.stderr();
        assert!(err.contains("Address already in use"), "{err}");
    }
    panic!("no free port in 3 tries");
}

#[test]
fn listen_and_workers_flags_override_the_config() {
    let (server, addr) = start_on_free_port("workers = 1\n", &["-w", "2"]);
    let port = addr.port();
    server.wait_workers(2);
    let line = server.wait_for_log("master started");
    assert!(
        line.ends_with(&format!(" listen={addr} workers=2")),
        "{line}"
    );
    let mut s = connect(addr);
    s.write_all(GET_CLOSE).expect("write");
    let answer = read_until_close(&mut s);
    assert_eq!(status(&answer), 200, "{answer}");
    let inodes: Vec<u64> = listening_inodes(port).into_iter().collect();
    assert_eq!(inodes.len(), 1, "one listener on {addr}: {inodes:?}");
    assert!(
        socket_inodes(server.pid().as_raw()).contains(&inodes[0]),
        "the master holds the socket it bound on {addr}"
    );
    server.finish();
}

#[test]
fn log_target_flag_sends_lines_to_stderr() {
    let mut server = Server::spawn(Options {
        toml: "workers = 1\n".into(),
        args: vec!["--log-target".into(), "stderr".into()],
        ..Options::default()
    });
    let master = server.pid().as_raw();
    let stderr = PipeLines::stderr_of(&mut server);
    let ready = stderr.wait_for("master ready");
    assert_eq!(
        ready,
        format!("preforkd[{master}]: info: master ready pid={master} workers=1")
    );
    assert_eq!(status(&server.get()), 200);
    server.signal(Signal::SIGQUIT);
    assert_clean_exit(&mut server);
    let lines = stderr.wait_eof();
    let exiting = format!("preforkd[{master}]: info: master exiting pid={master}");
    assert!(lines.contains(&exiting), "no {exiting:?}: {lines:#?}");
    assert!(
        server.log_lines().is_empty(),
        "nothing goes to syslog: {:#?}",
        server.log_lines()
    );
}

#[test]
fn bind_failure_exits_1_with_one_line() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let addr = holder.local_addr().unwrap();
    let dir = TempDir::new();
    let pid_path = dir.path().join("never.pid");
    let mut server = Server::spawn(Options {
        toml: "workers = 1\n".into(),
        socket: false,
        args: vec![
            "-l".into(),
            addr.to_string(),
            "-p".into(),
            pid_path.display().to_string(),
        ],
        ..Options::default()
    });
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(
        killpg(server.pid(), None).is_err(),
        "processes left in the process group"
    );
    let stderr = server.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr:?}");
    assert!(lines[0].contains(&addr.to_string()), "{stderr:?}");
    assert!(lines[0].contains("Address already in use"), "{stderr:?}");
    assert!(
        !pid_path.exists(),
        "no pid file for a master that never ran"
    );
    drop(holder);
}

#[test]
fn unreachable_syslog_socket_falls_back_to_stderr() {
    // The harness' [log] table names its own socket; a second -c (the last
    // one wins) points the server at a config whose socket does not exist.
    let dir = TempDir::new();
    let missing = dir.path().join("no-such.sock");
    let config = dir.path().join("own.toml");
    std::fs::write(
        &config,
        format!(
            "workers = 1\n[log]\ntarget = \"syslog\"\nsyslog_socket = \"{}\"\n",
            missing.display()
        ),
    )
    .unwrap();
    let mut server = Server::spawn(Options {
        args: vec!["-c".into(), config.display().to_string()],
        ..Options::default()
    });
    let master = server.pid().as_raw();
    let stderr = PipeLines::stderr_of(&mut server);
    stderr.wait_for("master ready");
    assert_eq!(status(&server.get()), 200);
    server.signal(Signal::SIGQUIT);
    assert_clean_exit(&mut server);
    let lines = stderr.wait_eof();
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("warning: syslog socket"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning: {lines:#?}");
    assert_eq!(
        *warnings[0],
        format!(
            "preforkd[{master}]: warning: syslog socket {} is unreachable, logging to stderr",
            missing.display()
        )
    );
    assert!(
        lines[0].contains("warning: syslog socket"),
        "the warning comes first: {lines:#?}"
    );
    for needle in [
        "master started",
        "master ready",
        " started",
        "draining",
        "master exiting",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "no {needle:?} line on stderr: {lines:#?}"
        );
    }
    assert!(server.log_lines().is_empty(), "{:#?}", server.log_lines());
}
