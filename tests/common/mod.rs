//! Test harness: runs the real `preforkd` binary in a fresh temp dir, with a
//! pre-bound listening socket handed over as fd 3 (`LISTEN_FDS`, as systemd
//! does) and its syslog lines captured on a unix datagram socket the test
//! binds. Every wait has a deadline; `Drop` SIGKILLs the whole process group,
//! so nothing outlives a failed test.
#![allow(dead_code)] // each test binary uses its own part of the harness
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_preforkd");
/// The longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temp dir removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("preforkd-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` until it returns Some, or panics after `timeout` with `what`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port that was free a moment ago (for tests of binding itself).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the server is started.
pub struct Options {
    /// Config file text; `[log]` is appended by the harness.
    pub toml: String,
    /// Pass a pre-bound 127.0.0.1:0 socket as fd 3 (else the config or
    /// `args` must say where to listen).
    pub socket: bool,
    pub args: Vec<String>,
    /// Extra text for the `[log]` table.
    pub log: String,
    /// RLIMIT_NOFILE for the server (set by the shell that execs it).
    pub nofile: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            toml: String::new(),
            socket: true,
            args: Vec::new(),
            log: String::new(),
            nofile: None,
        }
    }
}

pub struct Server {
    pub child: Child,
    pub dir: TempDir,
    pub addr: SocketAddr,
    pub config_path: PathBuf,
    syslog: UnixDatagram,
    lines: std::cell::RefCell<Vec<String>>,
}

impl Server {
    /// Starts the server with `toml` as its config, one worker unless the
    /// config says otherwise, and waits until the master is ready.
    pub fn start(toml: &str) -> Server {
        Server::start_with(Options {
            toml: toml.to_owned(),
            ..Options::default()
        })
    }

    pub fn start_with(opts: Options) -> Server {
        let server = Server::spawn(opts);
        server.wait_for_log("master ready");
        server
    }

    /// Spawns without waiting for readiness.
    pub fn spawn(opts: Options) -> Server {
        let dir = TempDir::new();
        let log_path = dir.path().join("log.sock");
        let syslog = UnixDatagram::bind(&log_path).expect("bind syslog socket");
        syslog
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let config_path = dir.path().join("preforkd.toml");
        let config = format!(
            "{}\n[log]\ntarget = \"syslog\"\nsyslog_socket = \"{}\"\nlevel = \"debug\"\n{}\n",
            opts.toml,
            log_path.display(),
            opts.log
        );
        std::fs::write(&config_path, config).unwrap();

        let listener = opts
            .socket
            .then(|| TcpListener::bind("127.0.0.1:0").expect("bind test listener"));
        let ulimit = opts
            .nofile
            .map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let mut cmd = if let Some(l) = &listener {
            // LISTEN_PID must be the server's own pid: the shell sets it to
            // its pid, then execs the server in the same process.
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!(
                    "{ulimit}LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\""
                ))
                .arg(BIN);
            pass_as_fd_3(&mut c, l.as_raw_fd());
            c
        } else if opts.nofile.is_some() {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{ulimit}exec \"$0\" \"$@\""))
                .arg(BIN);
            c
        } else {
            Command::new(BIN)
        };
        cmd.arg("-c")
            .arg(&config_path)
            .args(&opts.args)
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // The server inherits this thread's signal mask: spawn it with
        // SIGCHLD unblocked even from a thread that quieted it.
        let child = unblocked_sigchld(|| cmd.spawn()).expect("spawn preforkd");
        let addr = match &listener {
            Some(l) => l.local_addr().unwrap(),
            None => "127.0.0.1:0".parse().unwrap(),
        };
        drop(listener);
        Server {
            child,
            dir,
            addr,
            config_path,
            syslog,
            lines: std::cell::RefCell::new(Vec::new()),
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal the master");
    }

    /// A new connection with read/write timeouts.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// Sends `bytes` on a new connection, returns everything read until the
    /// server closes it (or 2 s pass without data).
    pub fn request(&self, bytes: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(bytes).unwrap();
        read_until_close(&mut s)
    }

    /// A plain GET on a new connection with `Connection: close`.
    pub fn get(&self) -> String {
        self.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    }

    /// Reads any syslog lines waiting on the socket.
    fn collect(&self) {
        let mut buf = [0u8; 8192];
        loop {
            match self.syslog.recv(&mut buf) {
                Ok(n) => self
                    .lines
                    .borrow_mut()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return,
                // A signal to the test process (SIGCHLD of a finished child) is no error.
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("syslog recv: {e}"),
            }
        }
    }

    /// All syslog lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.collect();
        self.lines.borrow().clone()
    }

    /// Waits for a syslog line containing `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.wait_for_log_count(needle, 1)
    }

    /// Waits until `n` syslog lines contain `needle`; returns the last.
    pub fn wait_for_log_count(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            self.collect();
            {
                let lines = self.lines.borrow();
                let found: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
                if found.len() >= n {
                    return found[n - 1].clone();
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "no {n} log line(s) with {needle:?} within {WAIT:?}; log:\n{}",
                    self.lines.borrow().join("\n")
                );
            }
        }
    }

    /// Pids of the master's live children (its workers), sorted.
    pub fn worker_pids(&self) -> Vec<i32> {
        children_of(self.pid().as_raw())
    }

    /// Waits until exactly `n` workers run.
    pub fn wait_workers(&self, n: usize) -> Vec<i32> {
        wait_until(WAIT, &format!("{n} workers"), || {
            let pids = self.worker_pids();
            (pids.len() == n).then_some(pids)
        })
    }

    /// Waits for the master to exit; returns its status.
    /// Keeps reading the syslog socket meanwhile: a datagram queue holds
    /// only a few lines, and a stop logs several per worker.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            self.collect();
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for the master to exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Graceful stop: QUIT, exit 0 in time, nothing left in the process
    /// group, no error lines in the log.
    pub fn finish(mut self) {
        self.signal(Signal::SIGQUIT);
        let status = self.wait_exit();
        assert!(status.success(), "master exit status {status}");
        let pgid = self.pid();
        wait_until(WAIT, "the process group to empty", || {
            (killpg(pgid, None).is_err()).then_some(())
        });
        let errors: Vec<String> = self
            .log_lines()
            .into_iter()
            .filter(|l| l.starts_with("<27>") || l.starts_with("<26>") || l.starts_with("<25>"))
            .collect();
        assert!(errors.is_empty(), "error lines in the log: {errors:#?}");
    }

    /// stderr of an exited master.
    pub fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `fd` the child's fd 3 (without CLOEXEC), as systemd passes sockets.
#[allow(unsafe_code)] // pre_exec is the only way to place a socket at fd 3
pub fn pass_as_fd_3(cmd: &mut Command, fd: i32) {
    let place = move || {
        if fd == 3 {
            // SAFETY: fcntl on our own open fd; async-signal-safe.
            let flags = unsafe { libc::fcntl(3, libc::F_GETFD) };
            // SAFETY: as above; clears FD_CLOEXEC so that exec keeps it.
            unsafe { libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) };
        // SAFETY: dup2 is async-signal-safe; the copy at 3 is not CLOEXEC.
        } else if unsafe { libc::dup2(fd, 3) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: between fork and exec the closure runs only dup2 and fcntl,
    // both async-signal-safe; nothing allocates.
    unsafe {
        cmd.pre_exec(place);
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads until EOF, or until 2 s pass without data; a reset ends it too.
pub fn read_until_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads exactly one response (head and Content-Length body) from `s`.
pub fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => out.push(byte[0]),
            other => panic!(
                "connection ended mid-head ({other:?}) after {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    let head = String::from_utf8_lossy(&out).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let head_only = head.starts_with("HTTP/1.1 204") || head.starts_with("HTTP/1.1 100");
    let mut body = vec![0u8; if head_only { 0 } else { len }];
    s.read_exact(&mut body).expect("read body");
    head + &String::from_utf8_lossy(&body)
}

/// The status code of a response text.
pub fn status(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"))
}

/// Live (non-zombie) children of `pid`, from /proc.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == pid && state != "Z" {
            out.push(child);
        }
    }
    out.sort_unstable();
    out
}

/// True while a process with this pid exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

/// Runs the binary to completion with `args` (for -t, -V, -h, bad flags).
pub fn run_bin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .output()
        .expect("run preforkd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Inodes of the sockets process `pid` holds open (`socket:[N]` links).
pub fn socket_inodes(pid: i32) -> std::collections::HashSet<u64> {
    let mut out = std::collections::HashSet::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for entry in dir.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy();
            if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                out.insert(n.parse().unwrap());
            }
        }
    }
    out
}

/// Inodes of every TCP socket (v4 and v6) listening on `port`, any address.
pub fn listening_inodes(port: u16) -> std::collections::HashSet<u64> {
    let mut out = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let local_port = f[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                out.insert(f[9].parse().unwrap());
            }
        }
    }
    out
}

/// SIGCHLD alone.
pub fn sigchld() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(Signal::SIGCHLD);
    set
}

/// Blocks SIGCHLD in the calling test thread, and so in the load and
/// helper threads it starts (they inherit the mask). Why: SIGCHLD is
/// normally discarded at once (default action: ignore), but when the
/// thread a child belongs to has it blocked at that moment (glibc's
/// posix_spawn blocks every signal around its clone), the kernel queues it
/// and wakes another thread of this process; a `recv`/`read` with a timeout
/// (SO_RCVTIMEO) there then fails with EINTR. With SIGCHLD blocked in every
/// test thread, only libtest's main thread (a futex wait that just loops)
/// is ever woken by it. Nothing here needs SIGCHLD: `wait` uses waitpid. A
/// spawned process inherits the mask (`Command` does not reset it), so
/// servers are started with SIGCHLD unblocked: see `unblocked_sigchld`.
pub fn quiet_sigchld() {
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&sigchld()),
        None,
    )
    .unwrap();
}

/// Runs `f`, which starts a process, with SIGCHLD unblocked in this thread,
/// so that the process inherits a clean signal mask; then puts the
/// thread's mask back as it was.
pub fn unblocked_sigchld<T>(f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&sigchld()), Some(&mut old)).unwrap();
    let out = f();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).unwrap();
    out
}

/// One response as read by [`try_read_response`].
pub struct Response {
    pub status: u16,
    pub close: bool,
    /// The whole response, head and body.
    pub text: String,
    pub body: String,
}

/// Reads one complete response (head, then Content-Length bytes), within
/// the socket's read timeout; a signal (EINTR) is read through, anything
/// else (EOF, reset, timeout, no Content-Length, bytes after the body) is
/// an error saying how far it got.
pub fn try_read_response(s: &mut TcpStream) -> Result<Response, String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let mut fill = |buf: &mut Vec<u8>, what: &str| -> Result<(), String> {
        loop {
            return match s.read(&mut chunk) {
                Ok(0) => Err(format!("EOF {what} after {} bytes", buf.len())),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(format!("read {what} after {} bytes: {e}", buf.len())),
            };
        }
    };
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(&mut buf, "before a complete head")?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut len = None;
    let mut close = false;
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse::<usize>().ok(),
                "connection" => close = v.trim().eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let len = len.ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    while buf.len() < head_end + len {
        fill(&mut buf, "before the end of the body")?;
    }
    if buf.len() > head_end + len {
        return Err(format!(
            "{} bytes after the body",
            buf.len() - head_end - len
        ));
    }
    Ok(Response {
        status,
        close,
        body: String::from_utf8_lossy(&buf[head_end..]).into_owned(),
        text: String::from_utf8_lossy(&buf).into_owned(),
    })
}
