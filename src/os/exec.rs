//! USR2: start the binary now at the path we were started from, handing it
//! the listening sockets the systemd way (fds from 3, `LISTEN_FDS`,
//! `LISTEN_PID`, `LISTEN_FDNAMES`), so that socket activation and upgrade are
//! one code path. `PREFORKD_UPGRADE_FROM` tells the new master whom to QUIT
//! once its workers serve. When to upgrade and what to do with the pid file
//! is the master's decision; the fork and exec themselves are `sys.rs`'s.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Context;
use nix::unistd::Pid;

use crate::os::listener::Listener;
use crate::os::sys;

/// Names the old master's pid in the new master's environment.
pub const FROM_VAR: &str = "PREFORKD_UPGRADE_FROM";
/// `on` in the new master's environment: maintenance was on in the old one.
pub const MAINTENANCE_VAR: &str = "PREFORKD_MAINTENANCE";

/// The executable to start on USR2, recorded at startup.
#[derive(Clone, Debug)]
pub struct Exec {
    pub exe: PathBuf,
}

impl Exec {
    /// The path we were started by (`argv[0]`, made absolute), so that a
    /// symlink moved to a new version is followed; `/proc/self/exe` only
    /// when `argv[0]` was a bare name looked up in PATH. (Later, that link
    /// names the old, possibly deleted inode, not the file at the path.)
    pub fn current() -> anyhow::Result<Exec> {
        let argv0 = std::env::args_os().next().map(PathBuf::from);
        let exe = match argv0 {
            Some(p) if p.as_os_str().as_bytes().contains(&b'/') => std::env::current_dir()
                .context("current directory")?
                .join(p),
            _ => std::env::current_exe().context("locating our own executable")?,
        };
        Ok(Exec { exe })
    }
}

/// Forks and execs the new master with `args`, the same command line
/// without `-d` (it is detached already; `cli::Args::to_argv`), and our
/// sockets; returns its pid once it
/// runs the new binary, or why it could not ("cannot execute the new
/// binary /usr/sbin/preforkd: ENOENT: No such file or directory").
pub fn spawn_new_master(
    exec: &Exec,
    args: &[std::ffi::OsString],
    listeners: &[Listener],
    old: Pid,
    maintenance: bool,
) -> anyhow::Result<Pid> {
    let cstr = |s: &[u8]| CString::new(s).context("NUL byte in an argument or variable");
    let exe = cstr(exec.exe.as_os_str().as_bytes())?;
    let argv = std::iter::once(exec.exe.clone().into_os_string())
        .chain(args.iter().cloned())
        .map(|a| cstr(a.as_bytes()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let watchdog = std::env::var_os("WATCHDOG_USEC").is_some();
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        let k = k.as_bytes();
        if k.starts_with(b"LISTEN_")
            || k == b"WATCHDOG_PID"
            || k == FROM_VAR.as_bytes()
            || k == MAINTENANCE_VAR.as_bytes()
        {
            continue;
        }
        env.push(cstr(&[k, b"=", v.as_bytes()].concat())?);
    }
    // Names may not hold ':' (the separator), so "127.0.0.1:80" → "127.0.0.1_80".
    let names: Vec<String> = listeners
        .iter()
        .map(|l| l.addr.to_string().replace(':', "_"))
        .collect();
    env.push(cstr(format!("LISTEN_FDS={}", listeners.len()).as_bytes())?);
    env.push(cstr(
        format!("LISTEN_FDNAMES={}", names.join(":")).as_bytes(),
    )?);
    env.push(cstr(format!("{FROM_VAR}={old}").as_bytes())?);
    if maintenance {
        env.push(cstr(format!("{MAINTENANCE_VAR}=on").as_bytes())?);
    }
    let fds: Vec<i32> = listeners.iter().map(|l| l.socket.as_raw_fd()).collect();
    sys::spawn_with_listen_fds(&exe, &argv, env, &fds, watchdog).map_err(|e| match e {
        sys::SpawnError::Fork(e) => anyhow::anyhow!("fork for the new master: {e}"),
        sys::SpawnError::Exec(e) => {
            anyhow::anyhow!("cannot execute the new binary {}: {e}", exec.exe.display())
        }
    })
}

/// Maintenance was on in the master that started us (and the variable is
/// gone from our environment, so it does not outlive the switch).
pub fn inherited_maintenance() -> bool {
    let on = std::env::var_os(MAINTENANCE_VAR).is_some_and(|v| v == "on");
    std::env::remove_var(MAINTENANCE_VAR);
    on
}

/// The old master to QUIT once we serve, if we are the result of an upgrade.
pub fn old_master() -> Option<Pid> {
    let v = std::env::var(FROM_VAR).ok()?;
    std::env::remove_var(FROM_VAR);
    let pid: i32 = v.parse().ok()?;
    // Only our parent can be the master that started us.
    (nix::unistd::getppid().as_raw() == pid).then(|| Pid::from_raw(pid))
}
