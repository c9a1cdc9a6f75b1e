//! After fork, before serving: the worker drops privileges and makes sure it
//! does not outlive its master. Leaves the event loop to `worker/mod.rs`.

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::os::credentials::Credentials;

/// setgroups (the user's supplementary groups, via initgroups) → setgid →
/// setuid, each checked, then verified: groups first, while we may still
/// set them, the uid last, after which nothing can be changed back (nginx
/// sets the gid before initgroups, to the same effect). Only as root; a
/// non-root master warned at startup that it cannot switch.
pub fn drop_privileges(creds: &Credentials) -> Result<(), String> {
    use nix::unistd::{getegid, geteuid, getgid, getuid, setgid, setgroups, setuid};
    if !geteuid().is_root() {
        return Ok(());
    }
    match &creds.name {
        Some(name) => {
            let c = std::ffi::CString::new(name.as_str()).map_err(|e| e.to_string())?;
            nix::unistd::initgroups(&c, creds.gid).map_err(|e| format!("initgroups: {e}"))?;
        }
        None => setgroups(&[creds.gid]).map_err(|e| format!("setgroups: {e}"))?,
    }
    setgid(creds.gid).map_err(|e| format!("setgid: {e}"))?;
    if let Some(uid) = creds.uid {
        setuid(uid).map_err(|e| format!("setuid: {e}"))?;
    }
    let uid_ok = creds.uid.is_none_or(|u| getuid() == u && geteuid() == u);
    if !uid_ok || getgid() != creds.gid || getegid() != creds.gid {
        return Err("credentials did not change".into());
    }
    Ok(())
}

/// A worker must not outlive its master: the kernel sends SIGTERM when the
/// master dies, and if it died before that was set, we see it in getppid.
pub fn orphan_guard(master: Pid) -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
    if nix::unistd::getppid() != master {
        return Err(Errno::ESRCH);
    }
    Ok(())
}
