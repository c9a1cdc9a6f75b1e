//! `preforkd -s reload|stop|quit|reopen|upgrade`: signal the master named in
//! the pid file and, for reload and upgrade, wait for the outcome. The master
//! publishes outcomes in a small state file beside its pid file
//! (`<pid_file>.state`, `key=value` lines, rewritten atomically), which is
//! how `-s` learns whether a reload worked and why not.
//!
//! `-s status` and `-s maintenance on|off` go over the master's control
//! socket (`<pid_file>.sock`, mode 0600): the client writes one line
//! (`status`, `maintenance on`), the master answers and closes. A command
//! that changes state is refused unless the peer (SO_PEERCRED) is root or
//! the master's own user.
//!
//! Deciding when to reload or upgrade is the master's job, not this file's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::kill;
use nix::sys::stat::{umask, Mode};
use nix::unistd::Pid;

use crate::os::pidfile;
use crate::os::signals::{Action, Command};

/// A line the control socket understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Status,
    Maintenance(bool),
}

impl Request {
    fn line(self) -> &'static str {
        match self {
            Request::Status => "status\n",
            Request::Maintenance(true) => "maintenance on\n",
            Request::Maintenance(false) => "maintenance off\n",
        }
    }

    /// None for a line we do not know. Nothing at all (a client of an
    /// older version, which only read) asks for the status.
    fn parse(line: &[u8]) -> Option<Request> {
        match line.trim_ascii() {
            b"" | b"status" => Some(Request::Status),
            b"maintenance on" => Some(Request::Maintenance(true)),
            b"maintenance off" => Some(Request::Maintenance(false)),
            _ => None,
        }
    }

    /// It changes the server's state: only root or our own user may.
    fn changes_state(self) -> bool {
        !matches!(self, Request::Status)
    }
}

/// The state file that goes with a pid file.
pub fn state_path(pid_file: &Path) -> PathBuf {
    let mut name = pid_file.file_name().unwrap_or_default().to_owned();
    name.push(".state");
    pid_file.with_file_name(name)
}

/// How the last reload or upgrade went, as the state file spells it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing asked yet.
    #[default]
    None,
    /// Reload: the new generation serves.
    Ok,
    /// Reload or upgrade: why it failed (one line).
    Failed(String),
    /// Upgrade: the new master was started with this pid.
    Started { new: u32 },
    /// In a master started by an upgrade: it replaced this one.
    From { old: u32 },
}

impl Outcome {
    /// A failure; the reason is kept on one line (the file is line-based).
    pub fn failed(reason: &str) -> Outcome {
        Outcome::Failed(reason.replace(['\n', '\r'], " "))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::None => f.write_str("none"),
            Outcome::Ok => f.write_str("ok"),
            Outcome::Failed(reason) => write!(f, "failed: {reason}"),
            Outcome::Started { new } => write!(f, "started new={new}"),
            Outcome::From { old } => write!(f, "from={old}"),
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Outcome, String> {
        let pid = |v: &str| v.parse().map_err(|_| format!("bad pid in outcome {s:?}"));
        if let Some(reason) = s.strip_prefix("failed: ") {
            return Ok(Outcome::Failed(reason.to_owned()));
        }
        if let Some(new) = s.strip_prefix("started new=") {
            return Ok(Outcome::Started { new: pid(new)? });
        }
        if let Some(old) = s.strip_prefix("from=") {
            return Ok(Outcome::From { old: pid(old)? });
        }
        match s {
            "none" => Ok(Outcome::None),
            "ok" => Ok(Outcome::Ok),
            _ => Err(format!("unknown outcome {s:?}")),
        }
    }
}

/// The master's published state: written whole each time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct State {
    pub pid: u32,
    /// Reload requests handled so far (done or failed).
    pub reloads: u64,
    /// `none`, `ok` or `failed: reason` for the last one.
    pub reload: Outcome,
    /// Upgrade requests handled so far (started, failed or ignored).
    pub upgrades: u64,
    /// `none`, `started new=PID`, `failed: reason`, or `from=PID` in a master
    /// that replaced another.
    pub upgrade: Outcome,
}

impl State {
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = format!(
            "pid={}\nreloads={}\nreload={}\nupgrades={}\nupgrade={}\n",
            self.pid, self.reloads, self.reload, self.upgrades, self.upgrade
        );
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    pub fn read(path: &Path) -> Option<State> {
        let text = std::fs::read_to_string(path).ok()?;
        let map: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        Some(State {
            pid: map.get("pid")?.parse().ok()?,
            reloads: map.get("reloads")?.parse().ok()?,
            reload: map.get("reload")?.parse().ok()?,
            upgrades: map.get("upgrades")?.parse().ok()?,
            upgrade: map.get("upgrade")?.parse().ok()?,
        })
    }
}

/// The pid file `-s` uses: `-p`, else `pid_file` from the config file read
/// loosely, so that a config broken elsewhere never stops `-s stop`.
pub fn find_pid_file(explicit: Option<&Path>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let path = config
        .map(Path::to_owned)
        .or_else(|| Some(PathBuf::from(crate::config::DEFAULT_PATH)).filter(|p| p.exists()));
    let Some(path) = path else {
        bail!("no pid file: give -p PIDFILE or set pid_file in the config");
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    // Relative to the config file, as the master reads it.
    let base = path.parent().unwrap_or(Path::new("."));
    pid_file_key(&text).map(|p| base.join(p)).ok_or_else(|| {
        anyhow!(
            "no pid file: {} sets no pid_file; give -p PIDFILE",
            path.display()
        )
    })
}

/// `pid_file = "..."` from config text, even if the rest does not parse.
fn pid_file_key(text: &str) -> Option<PathBuf> {
    if let Ok(table) = text.parse::<toml::Table>() {
        return table.get("pid_file")?.as_str().map(PathBuf::from);
    }
    // Top-level keys come before the first [table].
    text.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "pid_file").then(|| v.trim().trim_matches('"').trim_matches('\'').into())
        })
}

/// A live preforkd master's pid from the pid file, or a clear error.
fn live_master(pid_file: &Path) -> anyhow::Result<Pid> {
    if !pid_file.exists() {
        bail!(
            "pid file {} does not exist: is preforkd running?",
            pid_file.display()
        );
    }
    let pid = pidfile::read(pid_file)
        .ok_or_else(|| anyhow!("pid file {} holds no pid", pid_file.display()))?;
    if !is_preforkd(pid) {
        bail!(
            "pid file {} names pid {pid}, which is not a running preforkd (stale pid file?)",
            pid_file.display()
        );
    }
    Ok(Pid::from_raw(pid as i32))
}

fn is_preforkd(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let state_ok = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false);
    // The name of the executable file, cut to 15 bytes: "preforkd", or a
    // copy named after it ("preforkd.new", "preforkd-2.1").
    comm.starts_with("preforkd") && state_ok
}

/// Runs `-s ACTION`; the returned text is printed on success.
pub fn run(action: Action, pid_file: &Path, wait: Duration) -> anyhow::Result<String> {
    let Some(signal) = action.signal() else {
        return match action {
            Action::Maintenance(on) => maintenance(pid_file, on),
            _ => status(pid_file),
        };
    };
    let pid = live_master(pid_file)?;
    let state_file = state_path(pid_file);
    let before = State::read(&state_file).filter(|s| s.pid == pid.as_raw() as u32);
    kill(pid, signal).with_context(|| format!("cannot signal pid {pid}"))?;
    let deadline = Instant::now() + wait;
    match action {
        Action::Send(Command::Reload) => {
            let seen = before.map_or(0, |s| s.reloads);
            let state = poll(deadline, "the reload", || {
                State::read(&state_file)
                    .filter(|s| s.pid == pid.as_raw() as u32 && s.reloads > seen)
            })?;
            match state.reload {
                Outcome::Failed(reason) => bail!("reload failed: {reason}"),
                _ => Ok(format!(
                    "reloaded: master pid {pid} serves with the new configuration"
                )),
            }
        }
        Action::Send(Command::Upgrade) => {
            let old = pid.as_raw() as u32;
            // Only an outcome of this request counts, not an earlier failure.
            let seen = before.map_or(0, |s| s.upgrades);
            let state = poll(deadline, "the upgrade", || {
                let s = State::read(&state_file)?;
                let done = s.pid != old && s.upgrade == Outcome::From { old };
                let failed =
                    s.pid == old && s.upgrades > seen && matches!(s.upgrade, Outcome::Failed(_));
                (done || failed).then_some(s)
            })?;
            match state.upgrade {
                Outcome::Failed(reason) => bail!("upgrade failed: {reason}"),
                _ => Ok(format!(
                    "upgraded: new master pid {} serves; old master {old} drains",
                    state.pid
                )),
            }
        }
        _ => Ok(format!("sent {} to master pid {pid}", signal.as_str())),
    }
}

/// The path of the master's status socket, beside the pid file.
pub fn socket_path(pid_file: &Path) -> PathBuf {
    let mut name = pid_file.file_name().unwrap_or_default().to_owned();
    name.push(".sock");
    pid_file.with_file_name(name)
}

/// The master's status socket: `-s status` connects, the master writes one
/// report and closes.
pub struct StatusSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl StatusSocket {
    pub fn bind(pid_file: &Path) -> std::io::Result<StatusSocket> {
        let path = socket_path(pid_file);
        // A socket file left by a master that died; ours replaces it.
        let _ = std::fs::remove_file(&path);
        // Only root and our user connect (and SO_PEERCRED is checked too
        // before anything changes): created 0600 under a umask of 0177, so
        // there is no moment with wider permissions; the master is
        // single-threaded, so the umask is put back before anything else
        // creates a file.
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(&path);
        umask(old);
        let listener = bound?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(StatusSocket { listener, path })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Answers every waiting client: reads its one line, refuses a
    /// state change from anyone but root or our user, else answers with
    /// `handle(request)`. Reading and writing may block: for a moment only
    /// (200 ms), so that a client that never writes or never reads cannot
    /// stall the master. A report larger than the socket buffer (hundreds
    /// of workers) relies on that.
    pub fn serve(&self, mut handle: impl FnMut(Request) -> String) {
        while let Ok((mut stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            let answer = match read_line(&mut stream).and_then(|l| Request::parse(&l)) {
                None => "error: unknown request\n".to_owned(),
                Some(r) if r.changes_state() && !peer_may_change(&stream) => {
                    log::warn!(
                        "control: {} refused: peer is neither root nor our user",
                        r.line().trim()
                    );
                    "error: permission denied: only root or the master's user may change its state\n"
                        .to_owned()
                }
                Some(r) => handle(r),
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    }

    /// Removes the socket file (on exit, if we own the pid file).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One request line (up to 64 bytes), until LF or EOF; None if the client
/// sent more or failed. A client that sends nothing before the read
/// timeout gets the status, as clients that only read always did.
fn read_line(stream: &mut UnixStream) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(line),
            Ok(n) => {
                line.extend_from_slice(&buf[..n]);
                if line.contains(&b'\n') || line.len() > 64 {
                    let end = line.iter().position(|&b| b == b'\n')?;
                    line.truncate(end);
                    return Some(line);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) && line.is_empty() =>
            {
                return Some(line)
            }
            Err(_) => return None,
        }
    }
}

/// The peer is root or runs as our effective user (SO_PEERCRED).
fn peer_may_change(stream: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    match getsockopt(stream, PeerCredentials) {
        Ok(c) => c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw(),
        Err(_) => false,
    }
}

/// Sends one request over the control socket; returns the answer.
fn ask(pid_file: &Path, request: Request) -> anyhow::Result<String> {
    live_master(pid_file)?;
    let path = socket_path(pid_file);
    let mut stream = UnixStream::connect(&path)
        .with_context(|| format!("cannot connect to {}", path.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream
        .write_all(request.line().as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        .context("sending the request")?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .context("reading the answer")?;
    if let Some(e) = text.strip_prefix("error: ") {
        bail!("{}", e.trim_end());
    }
    Ok(text)
}

/// `-s status`: the running master's report.
pub fn status(pid_file: &Path) -> anyhow::Result<String> {
    ask(pid_file, Request::Status)
}

/// `-s maintenance on|off`: the master flips the switch for every worker.
pub fn maintenance(pid_file: &Path, on: bool) -> anyhow::Result<String> {
    let text = ask(pid_file, Request::Maintenance(on))?;
    Ok(text.trim_end().to_owned())
}

fn poll<T>(deadline: Instant, what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out waiting for {what} (see the log)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_from_broken_config() {
        assert_eq!(
            pid_file_key("pid_file = \"/run/p.pid\"\nworkers = [\n"),
            Some("/run/p.pid".into())
        );
        assert_eq!(
            pid_file_key("pid_file = \"/run/p.pid\"\n"),
            Some("/run/p.pid".into())
        );
        assert_eq!(pid_file_key("workers = 1\n"), None);
    }

    #[test]
    fn state_round_trip() {
        let dir = std::env::temp_dir().join(format!("preforkd-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = state_path(&dir.join("p.pid"));
        assert!(path.ends_with("p.pid.state"));
        let s = State {
            pid: 7,
            reloads: 2,
            reload: Outcome::failed("x.toml:1:1: bad"),
            upgrades: 1,
            upgrade: Outcome::Started { new: 9 },
        };
        s.write(&path).unwrap();
        assert_eq!(State::read(&path), Some(s));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn outcome_round_trip() {
        for o in [
            Outcome::None,
            Outcome::Ok,
            Outcome::failed("p.toml:3:1: unknown key \"wokers\""),
            Outcome::failed("cannot execute the new binary: ENOENT"),
            Outcome::Started { new: 4242 },
            Outcome::From { old: 17 },
        ] {
            let text = o.to_string();
            assert_eq!(text.parse::<Outcome>(), Ok(o.clone()), "{text}");
        }
        assert_eq!("from=17".parse(), Ok(Outcome::From { old: 17 }));
        assert_eq!(Outcome::failed("a\nb").to_string(), "failed: a b");
        assert!("from=x".parse::<Outcome>().is_err());
        assert!("maybe".parse::<Outcome>().is_err());
    }
}
