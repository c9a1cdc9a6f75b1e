//! The process side of the harness: starting the real `preforkd` (as a
//! `Server` with `Options`, or as a bare `Proc` for odd environments), its
//! syslog sink, its sd_notify socket, signals, waits on its log and its
//! workers, and the `Drop` guards that SIGKILL what a test started, by pid or
//! by process group; and any program a test runs to completion, within a
//! deadline ([`output_within`]); `/proc` readers (processes, sockets, the
//! TCP queues of a connection). Talking HTTP to it is `client.rs`'s job.
//!
//! SIGCHLD: a test process runs many threads; see [`quiet_sigchld`] for why
//! every test thread blocks SIGCHLD and every spawn here unblocks it for the
//! child.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::client::{connect, read_until_close};
use super::{is_error_line, unexpected_errors, wait_until, TempDir, WAIT};

pub const BIN: &str = env!("CARGO_BIN_EXE_preforkd");

/// Environment variables that would change how preforkd starts; a spawned
/// server never inherits them from the test's environment.
const SERVER_ENV: [&str; 7] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "PREFORKD_UPGRADE_FROM",
];

// ---------------------------------------------------------------------------
// Spawning

/// A command that runs `exe` with a clean environment in a process group of
/// its own. With `listener`, the socket is the process' fd 3 and
/// `LISTEN_FDS=1` with `LISTEN_PID` its own pid (as systemd passes sockets):
/// a shell sets `LISTEN_PID=$$` and execs `exe` in the same process. With
/// `nofile`, that shell sets RLIMIT_NOFILE first.
pub fn preforkd_command(
    exe: &Path,
    listener: Option<&TcpListener>,
    nofile: Option<u32>,
) -> Command {
    let ulimit = nofile.map_or(String::new(), |n| format!("ulimit -n {n} && "));
    let mut cmd = if listener.is_some() || nofile.is_some() {
        let listen = if listener.is_some() {
            "LISTEN_PID=$$ LISTEN_FDS=1 "
        } else {
            ""
        };
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("{ulimit}{listen}exec \"$0\" \"$@\""))
            .arg(exe);
        c
    } else {
        Command::new(exe)
    };
    if let Some(l) = listener {
        pass_as_fd_3(&mut cmd, l.as_raw_fd());
    }
    for var in SERVER_ENV {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null()).process_group(0);
    cmd
}

/// The binary with a clean environment, its stdout discarded and its stderr
/// going to the file `stderr`.
pub fn bin_command(stderr: &Path) -> Command {
    let mut c = preforkd_command(Path::new(BIN), None, None);
    c.stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap());
    c
}

/// [`bin_command`] with `listener` handed over as fd 3 (`LISTEN_FDS`).
pub fn bin_command_on(stderr: &Path, listener: &TcpListener) -> Command {
    let mut c = preforkd_command(Path::new(BIN), Some(listener), None);
    c.stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap());
    c
}

/// A listening socket on 127.0.0.1 with a port the kernel chose, and its
/// address: to hand over as fd 3, or (for tests of binding itself) to hold
/// until the moment preforkd binds that address.
pub fn loopback_listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Spawns `cmd` with SIGCHLD unblocked for the child (see [`quiet_sigchld`]).
pub fn spawn(cmd: &mut Command) -> Child {
    unblocked_sigchld(|| cmd.spawn()).expect("spawn")
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

/// How long a run of the binary itself (`-t`, `-s`, ...) or of a setup
/// script may take: far beyond any `--wait` a test gives `-s`.
pub const RUN_WITHIN: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion and returns its output: `input` on its stdin
/// (then closed; empty: /dev/null), in a process group of its own, SIGCHLD
/// unblocked for it. Bounded: still running after `within`, its group is
/// SIGKILLed and this panics with what it had said. The group is killed
/// when it exits too (the child's pid, not reaped until then, still names
/// it), so that nothing it left behind holds its pipes open. Every
/// external program a test runs to completion goes through here.
pub fn output_within(cmd: &mut Command, input: &[u8], within: Duration) -> Output {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    cmd.process_group(0)
        .stdin(if input.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child =
        unblocked_sigchld(|| cmd.spawn()).unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = Pid::from_raw(child.id() as i32);
    // Input and output on threads of their own: a full pipe never stops
    // the clock below.
    let stdin = child.stdin.take();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&input);
        }
    });
    fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = r.read_to_end(&mut all);
            all
        })
    }
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + within;
    // Exited yet? Asked without reaping (WNOWAIT): the pid stays the child's.
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    let timed_out = loop {
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => break false,
            Err(e) => panic!("waitid {pid}: {e}"),
        }
        if Instant::now() >= deadline {
            break true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = killpg(pid, Signal::SIGKILL);
    let status = child.wait().unwrap();
    let _ = writer.join();
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(
        !timed_out,
        "{cmd:?} still running after {within:?}, killed; it said: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the binary to completion with `args` (for -t, -V, -h, -s, bad flags).
pub fn run_bin(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in SERVER_ENV {
        cmd.env_remove(var);
    }
    let out = output_within(&mut cmd, b"", RUN_WITHIN);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `-t` of each config text (written to `path`) fails with exit 1 and a
/// message that starts with `preforkd: PATH` and its expected rest
/// (`:line:col: key: ...`).
pub fn assert_config_errors<S: AsRef<str>, W: AsRef<str>>(path: &Path, cases: &[(S, W)]) {
    for (text, want) in cases {
        let text = text.as_ref();
        std::fs::write(path, text).unwrap();
        let (code, out, err) = run_bin(&["-t", "-c", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{text:?}: {out}");
        let want = format!("preforkd: {}{}", path.display(), want.as_ref());
        assert!(
            err.starts_with(&want),
            "{text:?}\n got: {err}\nwant: {want}"
        );
    }
}

/// Runs `script` with sh (args `$1`…), which must succeed. Files that will
/// be executed are written by a child process and renamed into place: a
/// descriptor open for writing in this multi-threaded test process could be
/// inherited by a concurrent fork elsewhere and make exec fail (ETXTBSY).
pub fn sh(script: &str, args: &[&Path]) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh").args(args);
    let out = output_within(&mut cmd, b"", RUN_WITHIN);
    assert!(
        out.status.success(),
        "sh -c {script:?} failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies the real binary to `to` (atomically).
pub fn install_binary(to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    sh(
        "cp \"$1\" \"$2.tmp\" && mv -f \"$2.tmp\" \"$2\"",
        &[Path::new(BIN), to],
    );
}

/// Replaces the file at `to` with an executable shell script (atomically;
/// a running process started from the old file keeps its inode).
pub fn install_script(to: &Path, text: &str) {
    let script = to.with_extension("script-src");
    std::fs::write(&script, text).unwrap();
    sh(
        "cp \"$1\" \"$2.tmp\" && chmod 755 \"$2.tmp\" && mv -f \"$2.tmp\" \"$2\"",
        &[&script, to],
    );
}

/// Writes `text` to the file `name` in `dir`; returns its path.
pub fn write_file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A `[log]` table sending everything to the syslog socket at `sock`.
pub fn log_table(sock: &Path) -> String {
    format!(
        "[log]\ntarget = \"syslog\"\nsyslog_socket = \"{}\"\nlevel = \"debug\"\n",
        sock.display()
    )
}

// ---------------------------------------------------------------------------
// SIGCHLD

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
/// is ever woken by it. Nothing here needs SIGCHLD: `wait` uses waitpid.
/// `Server::spawn` calls it; a test that starts threads before its server
/// calls it first. A spawned process inherits the mask (`Command` does not
/// reset it), so every spawn here unblocks it for the child: see
/// [`unblocked_sigchld`].
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

// ---------------------------------------------------------------------------
// Syslog sink

/// A unix datagram socket standing in for syslog (nginx-tests' private
/// syslog listener), with the lines received so far. [`LogSink::drained`]
/// reads it on a thread of its own, so that no line is ever turned away
/// while the test does something else; [`LogSink::bind`] reads only when
/// the test looks (a syslog daemon that may fall behind or stop).
pub struct LogSink {
    sock: Arc<UnixDatagram>,
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    drain: Option<JoinHandle<()>>,
}

fn recv_lines(sock: &UnixDatagram, lines: &Mutex<Vec<String>>, stop: Option<&AtomicBool>) {
    let mut buf = [0u8; 8192];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => lines
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.is_none_or(|s| s.load(Ordering::SeqCst)) {
                    return;
                }
            }
            // A signal to the test process is no error.
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("syslog recv: {e}"),
        }
    }
}

impl LogSink {
    /// Binds `path`; lines are read when the test looks.
    pub fn bind(path: &Path) -> LogSink {
        let sock = UnixDatagram::bind(path).expect("bind syslog socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        LogSink {
            sock: Arc::new(sock),
            lines: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
            drain: None,
        }
    }

    /// Binds `path` and reads it on a thread until dropped.
    pub fn drained(path: &Path) -> LogSink {
        let mut sink = LogSink::bind(path);
        let (sock, lines, stop) = (
            Arc::clone(&sink.sock),
            Arc::clone(&sink.lines),
            Arc::clone(&sink.stop),
        );
        sink.drain = Some(std::thread::spawn(move || {
            recv_lines(&sock, &lines, Some(&stop));
        }));
        sink
    }

    /// Reads the lines waiting on the socket (a drained sink has them).
    pub fn collect(&self) {
        if self.drain.is_none() {
            recv_lines(&self.sock, &self.lines, None);
        }
    }

    /// All lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.collect();
        self.lines.lock().unwrap().clone()
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        super::count(&self.lines(), needle)
    }

    /// Waits (bounded) for a line containing `needle`; returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_count(needle, 1, String::new)
    }

    /// Waits (bounded) until `n` lines contain `needle`; returns the last.
    /// On failure the message shows the log and `context()`.
    pub fn wait_for_count(&self, needle: &str, n: usize, context: impl Fn() -> String) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = self.lines();
            let found: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {n} log line(s) with {needle:?} within {WAIT:?}{}; log:\n{}",
                context(),
                lines.join("\n")
            );
            if self.drain.is_some() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.drain.take() {
            let _ = t.join();
        }
    }
}

/// Receives sd_notify datagrams until one satisfies `pred` (bounded);
/// returns all received, the matching one last.
pub fn recv_notify_until(
    sock: &UnixDatagram,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = pred(&m);
                got.push(m);
                if done {
                    return got;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("notify recv: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "no sd_notify message with {what} within {WAIT:?}; got {got:?}"
        );
    }
}

/// A unix datagram socket for sd_notify at `path`, reads bounded.
pub fn notify_socket(path: &Path) -> UnixDatagram {
    let sock = UnixDatagram::bind(path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    sock
}

// ---------------------------------------------------------------------------
// Server: the usual way to run preforkd in a test

/// How the server is started.
pub struct Options {
    /// Config file text; with `syslog`, `[log]` is appended by the harness;
    /// `{addr}` becomes the handed-over socket's address.
    pub toml: String,
    /// Pass a pre-bound 127.0.0.1:0 socket as fd 3 (else the config or
    /// `args` must say where to listen).
    pub socket: bool,
    pub args: Vec<String>,
    /// Extra text for the harness' `[log]` table.
    pub log: String,
    /// RLIMIT_NOFILE for the server (set by the shell that execs it).
    pub nofile: Option<u32>,
    /// Log to the harness' syslog sink (`dir/log.sock`, read on a thread of
    /// its own). Off: `toml` brings its own `[log]` table, and the waits on
    /// the log are not available.
    pub syslog: bool,
    /// Run a copy of the binary at `dir/bin/preforkd` (tests that replace
    /// the file the master was started from: upgrades).
    pub copy_binary: bool,
    /// Bind `dir/notify.sock` and pass it as `NOTIFY_SOCKET`.
    pub notify: bool,
    /// Set `pid_file` to `dir/preforkd.pid` in the config.
    pub pid_file: bool,
    /// Run with `-d` (implies `pid_file`); `start_with` then waits for the
    /// foreground process to exit 0 before it waits for `master ready`.
    /// The daemon is out of reach of a process-group kill: `Drop` kills
    /// every process started with this test's config path, by pid.
    pub daemon: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            toml: String::new(),
            socket: true,
            args: Vec::new(),
            log: String::new(),
            nofile: None,
            syslog: true,
            copy_binary: false,
            notify: false,
            pid_file: false,
            daemon: false,
        }
    }
}

impl Options {
    /// Defaults but for the config text.
    pub fn toml(toml: &str) -> Options {
        Options {
            toml: toml.to_owned(),
            ..Options::default()
        }
    }
}

/// A preforkd started by the harness, in a temp dir of its own and a process
/// group of its own; `Drop` SIGKILLs that group (and, with `-d`, the
/// daemon's processes by pid).
pub struct Server {
    pub child: Child,
    pub dir: TempDir,
    /// Where it serves (with `socket`; else 127.0.0.1:0).
    pub addr: SocketAddr,
    pub config_path: PathBuf,
    /// The file the master was started from.
    pub exe: PathBuf,
    /// `dir/preforkd.pid`, in the config with `pid_file` or `daemon`.
    pub pid_file: PathBuf,
    /// The sd_notify socket, with `notify`.
    pub notify: Option<UnixDatagram>,
    log: Option<LogSink>,
    daemon: bool,
}

impl Server {
    /// Starts the server with `toml` as its config, one worker unless the
    /// config says otherwise, and waits until the master is ready.
    pub fn start(toml: &str) -> Server {
        Server::start_with(Options::toml(toml))
    }

    pub fn start_with(opts: Options) -> Server {
        let daemon = opts.daemon;
        let mut server = Server::spawn(opts);
        if daemon {
            let status = server.wait_exit();
            assert!(
                status.success(),
                "preforkd -d exited {status}; stderr: {}",
                server.stderr()
            );
        }
        if server.log.is_some() {
            server.wait_for_log("master ready");
        }
        server
    }

    /// Spawns without waiting for readiness. Blocks SIGCHLD in the calling
    /// thread first (see [`quiet_sigchld`]).
    pub fn spawn(opts: Options) -> Server {
        quiet_sigchld();
        let dir = TempDir::new();
        let pid_file = dir.path().join("preforkd.pid");
        let listener = opts.socket.then(loopback_listener);
        let mut config = String::new();
        if opts.pid_file || opts.daemon {
            config += &format!("pid_file = \"{}\"\n", pid_file.display());
        }
        // `{addr}` in the config text: the handed-over socket's address
        // (a listen entry with flags, "{addr} tls", names it).
        match &listener {
            Some((_, addr)) => config += &opts.toml.replace("{addr}", &addr.to_string()),
            None => config += &opts.toml,
        }
        config.push('\n');
        let log = opts.syslog.then(|| {
            let path = dir.path().join("log.sock");
            config += &log_table(&path);
            config += &opts.log;
            config.push('\n');
            LogSink::drained(&path)
        });
        let config_path = dir.path().join("preforkd.toml");
        std::fs::write(&config_path, config).unwrap();

        let exe = if opts.copy_binary {
            let exe = dir.path().join("bin").join("preforkd");
            install_binary(&exe);
            exe
        } else {
            PathBuf::from(BIN)
        };
        let mut cmd = preforkd_command(&exe, listener.as_ref().map(|(l, _)| l), opts.nofile);
        let notify = opts.notify.then(|| {
            let path = dir.path().join("notify.sock");
            let sock = notify_socket(&path);
            cmd.env("NOTIFY_SOCKET", &path);
            sock
        });
        if opts.daemon {
            cmd.arg("-d");
        }
        cmd.arg("-c")
            .arg(&config_path)
            .args(&opts.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = spawn(&mut cmd);
        let addr = listener
            .as_ref()
            .map_or_else(|| "127.0.0.1:0".parse().unwrap(), |(_, addr)| *addr);
        // The server holds the socket now; this process keeps no copy.
        drop(listener);
        Server {
            child,
            dir,
            addr,
            config_path,
            exe,
            pid_file,
            notify,
            log,
            daemon: opts.daemon,
        }
    }

    /// The process the harness started: the master (the foreground process
    /// with `-d`).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The config path as text, for `-c`.
    pub fn config(&self) -> &str {
        self.config_path.to_str().unwrap()
    }

    /// The pid in the pid file, if it holds one.
    pub fn pid_file_pid(&self) -> Option<i32> {
        read_pid(&self.pid_file)
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal the master");
    }

    /// A new connection with read/write timeouts.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// A new connection, reads bounded by `client::ANSWER`.
    pub fn open(&self) -> TcpStream {
        super::client::open(self.addr)
    }

    /// Sends `bytes` on a new connection, returns everything read until the
    /// server closes it (or 2 s pass without data).
    pub fn request(&self, bytes: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(bytes).unwrap();
        read_until_close(&mut s)
    }

    /// Sends `bytes` on a new connection and reads one whole response
    /// (see [`try_read_response`](super::client::try_read_response)).
    pub fn ask(&self, bytes: &[u8]) -> super::client::Response {
        let mut s = self.open();
        super::client::send(&mut s, bytes);
        super::client::try_read_response(&mut s)
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(bytes)))
    }

    /// A plain GET on a new connection with `Connection: close`.
    pub fn get(&self) -> String {
        self.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    }

    fn sink(&self) -> &LogSink {
        self.log
            .as_ref()
            .expect("the harness' syslog sink (Options::syslog)")
    }

    /// All syslog lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.sink().lines()
    }

    /// Waits for a syslog line containing `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.wait_for_log_count(needle, 1)
    }

    /// Waits until `n` syslog lines contain `needle`; returns the last.
    pub fn wait_for_log_count(&self, needle: &str, n: usize) -> String {
        self.sink().wait_for_count(needle, n, String::new)
    }

    /// Error-level lines of the log so far.
    pub fn error_lines(&self) -> Vec<String> {
        self.log_lines()
            .into_iter()
            .filter(|l| is_error_line(l))
            .collect()
    }

    /// Pids of the master's live children (its workers), sorted.
    pub fn worker_pids(&self) -> Vec<i32> {
        children_of(self.pid().as_raw())
    }

    /// Waits until exactly `n` workers run.
    pub fn wait_workers(&self, n: usize) -> Vec<i32> {
        wait_workers_of(self.pid().as_raw(), n)
    }

    /// `preforkd -s ARGS -c CONFIG` against this server: (exit code,
    /// stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let config = self.config_path.to_str().expect("utf-8 path");
        run_bin(&[&["-s"], args, &["-c", config]].concat())
    }

    /// `-s maintenance on|off`, which must succeed, and the master's log
    /// line that it took effect.
    pub fn maintenance(&self, on: bool) {
        let word = if on { "on" } else { "off" };
        let (code, out, err) = self.ctl(&["maintenance", word]);
        assert_eq!(
            (code, out.as_str()),
            (0, format!("preforkd: maintenance {word}\n").as_str()),
            "{err}"
        );
        self.wait_for_log(&format!("master maintenance={word}"));
    }

    /// `-s ACTION` that must succeed; its stdout.
    pub fn control(&self, action: &str) -> String {
        let (code, out, err) = self.ctl(&[action]);
        assert_eq!(code, 0, "-s {action}: stdout {out:?} stderr {err:?}");
        out
    }

    /// Waits until the master says `master ready` (true) or exits (false):
    /// for tests that start servers which may fail on purpose.
    pub fn wait_ready_or_exit(&mut self) -> bool {
        wait_until(WAIT, "master ready or exit", || {
            if self.log_lines().iter().any(|l| l.contains("master ready")) {
                return Some(true);
            }
            self.child.try_wait().expect("try_wait").map(|_| false)
        })
    }

    /// Waits for the master to exit; returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        wait_until(WAIT, "the master to exit", || child.try_wait().unwrap())
    }

    /// Graceful stop: QUIT, exit 0 in time, nothing left in the process
    /// group, no error lines in the log.
    pub fn finish(mut self) {
        self.stop_checked(&[]);
    }

    /// [`Server::finish`] for tests that provoke error lines on purpose: no
    /// error lines but those containing one of `expected`. Returns the log
    /// and stderr.
    pub fn finish_with(mut self, expected: &[&str]) -> (Vec<String>, String) {
        let lines = self.stop_checked(expected);
        let stderr = self.stderr();
        (lines, stderr)
    }

    /// [`Server::finish_with`] that keeps the `Server` (and its temp dir)
    /// for reading what the run left behind; returns the log.
    pub fn stop_checked(&mut self, expected: &[&str]) -> Vec<String> {
        self.signal(Signal::SIGQUIT);
        let status = self.wait_exit();
        assert!(status.success(), "master exit status {status}");
        let pgid = self.pid();
        wait_until(WAIT, "the process group to empty", || {
            (killpg(pgid, None).is_err()).then_some(())
        });
        let lines = self.log_lines();
        let errors = unexpected_errors(&lines, expected);
        assert!(errors.is_empty(), "error lines in the log: {errors:#?}");
        lines
    }

    /// stderr of an exited master (everything, once every holder of the
    /// pipe has closed it).
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
        // The group holds the master, its workers, and a new master started
        // by USR2 (forked by the master, so in its process group).
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.daemon {
            for pid in procs_with_arg(&self.config_path) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Proc: a preforkd started from a hand-made Command

/// A preforkd a test spawned from its own `Command` (for environments
/// `Options` does not give: a foreign `LISTEN_PID`, a syslog socket that
/// comes and goes), in its own process group; dropping it SIGKILLs that
/// group (the master and its workers).
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        Proc {
            child: spawn(&mut cmd),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("signal the master");
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        wait_until(WAIT, "the master to exit", || child.try_wait().unwrap())
    }

    /// Waits (bounded) for the process to exit while reading `sink`, as a
    /// syslog daemon would.
    pub fn wait_exit_reading(&mut self, sink: &LogSink) -> ExitStatus {
        let child = &mut self.child;
        wait_until(WAIT, "the master to exit", || {
            sink.collect();
            child.try_wait().unwrap()
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command that must finish by itself (`-d` returns once the daemon
/// reports); bounded. Returns the exit code and the stderr file's text.
/// `cmd` comes from `bin_command(stderr)`.
pub fn run_to_exit(cmd: Command, stderr: &Path) -> (i32, String) {
    let mut p = Proc::spawn(cmd);
    let status = p.wait_exit();
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(stderr).unwrap(),
    )
}

/// SIGKILLs, on drop, every process whose command line holds this test's
/// (unique) config path: a daemonized master and its workers, which are in
/// a session of their own and so out of reach of a process-group kill.
pub struct ConfigProcs(pub PathBuf);

impl Drop for ConfigProcs {
    fn drop(&mut self) {
        for pid in procs_with_arg(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// SIGKILLs, by pid, a process this test caused to exist but does not
/// own as a child (the new master of an upgrade), if it is still there.
/// A child process (wrk, a bystander) killed and reaped when the test
/// ends, however it ends.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct KillOnDrop(pub i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}

// ---------------------------------------------------------------------------
// /proc

/// Live processes whose argv holds `arg` exactly.
pub fn procs_with_arg(arg: &Path) -> Vec<i32> {
    let want = arg.as_os_str().as_encoded_bytes();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == want) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// `/proc/PID/stat` fields after the comm: [0] state, [1] ppid, [2] pgrp,
/// [3] session, [4] tty_nr, ... [11] utime, [12] stime.
pub fn stat_fields(pid: i32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().map(str::to_owned).collect()
}

/// CPU time `pid` has used, in USER_HZ ticks (utime + stime; USER_HZ is
/// 100 on Linux, an ABI constant).
pub fn cpu_ticks(pid: i32) -> u64 {
    let f = stat_fields(pid);
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
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

/// Waits until `master` has exactly `n` live children; returns their pids.
pub fn wait_workers_of(master: i32, n: usize) -> Vec<i32> {
    wait_until(WAIT, &format!("{n} workers of {master}"), || {
        let pids = children_of(master);
        (pids.len() == n).then_some(pids)
    })
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

/// The pid in a pid file, if it holds one.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
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

/// One IPv4 socket's row of /proc/net/tcp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRow {
    /// Bytes written to the socket that the peer has not acknowledged yet
    /// (`write_seq - snd_una`: sent and in flight, or still queued).
    pub tx_queue: u64,
    /// Bytes received that the process has not read yet.
    pub rx_queue: u64,
    pub inode: u64,
}

/// An IPv4 address as /proc/net/tcp writes it: the address' 32 bits as
/// the kernel holds them (network order) printed as a native integer, then
/// the port; 127.0.0.1:80 is `0100007F:0050` on x86.
fn proc_tcp_addr(addr: SocketAddr) -> String {
    let SocketAddr::V4(a) = addr else {
        panic!("{addr} is not IPv4: /proc/net/tcp has only IPv4 sockets");
    };
    format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(a.ip().octets()),
        a.port()
    )
}

/// The row of the IPv4 socket at `local` connected to `remote`, if there
/// is one (any state).
pub fn tcp_row(local: SocketAddr, remote: SocketAddr) -> Option<TcpRow> {
    let (local, remote) = (proc_tcp_addr(local), proc_tcp_addr(remote));
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    text.lines().skip(1).find_map(|line| {
        // sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode …
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[1] != local || f[2] != remote {
            return None;
        }
        let (tx, rx) = f[4].split_once(':')?;
        Some(TcpRow {
            tx_queue: u64::from_str_radix(tx, 16).ok()?,
            rx_queue: u64::from_str_radix(rx, 16).ok()?,
            inode: f[9].parse().ok()?,
        })
    })
}

/// `client`'s row and its peer's (the server's side of the connection):
/// None for the peer once it is gone, both None once the connection is
/// (reset: `client` has no peer address any more).
pub fn tcp_rows(client: &TcpStream) -> (Option<TcpRow>, Option<TcpRow>) {
    let local = client.local_addr().unwrap();
    let Ok(peer) = client.peer_addr() else {
        return (None, None);
    };
    (tcp_row(local, peer), tcp_row(peer, local))
}

/// The inode of the server's side of `client`'s IPv4 connection (compare
/// with [`socket_inodes`] to learn which worker holds it).
pub fn server_side_inode(client: &TcpStream) -> u64 {
    let (local, peer) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    tcp_row(peer, local)
        .unwrap_or_else(|| panic!("no server side for {local} -> {peer} in /proc/net/tcp"))
        .inode
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
