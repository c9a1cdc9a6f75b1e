//! `preforkd -s reload|stop|quit|reopen|upgrade`: signal the master named in
//! the pid file and, for reload and upgrade, wait for the outcome. The master
//! publishes outcomes in a small state file beside its pid file
//! (`<pid_file>.state`, `key=value` lines, rewritten atomically), which is
//! how `-s` learns whether a reload worked and why not.
//!
//! Deciding when to reload or upgrade is the master's job, not this file's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::pidfile;
use crate::signals::{Action, Command};

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
        return status(pid_file);
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
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(StatusSocket { listener, path })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Answers every waiting client with `report()`. A report larger than
    /// the socket buffer (hundreds of workers) may block: for a moment
    /// only, so that a client that never reads cannot stall the master.
    pub fn serve(&self, report: impl Fn() -> String) {
        while let Ok((mut stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = stream.write_all(report().as_bytes());
        }
    }

    /// Removes the socket file (on exit, if we own the pid file).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `-s status`: the running master's report.
pub fn status(pid_file: &Path) -> anyhow::Result<String> {
    live_master(pid_file)?;
    let path = socket_path(pid_file);
    let mut stream = UnixStream::connect(&path)
        .with_context(|| format!("cannot connect to {}", path.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .context("reading the status")?;
    Ok(text)
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
