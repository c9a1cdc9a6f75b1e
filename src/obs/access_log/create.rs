//! Root-safe creation of the access log file: the master, as root, only
//! ever creates a missing file (`O_CREAT|O_EXCL|O_NOFOLLOW`) and hands it
//! to the workers' user; the workers open it themselves, unprivileged.
//!
//! Leaves deciding when (`prepare`, in `mod.rs`) and writing to `sink.rs`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::os::credentials::Credentials;

/// (uid, gid) a file created by root is handed to, if we are root and the
/// workers run as someone else.
pub(super) fn owner_ids(creds: Option<&Credentials>) -> Option<(Option<u32>, u32)> {
    let c = creds?;
    nix::unistd::geteuid()
        .is_root()
        .then(|| (c.uid.map(|u| u.as_raw()), c.gid.as_raw()))
}

/// Opens (creating it mode 0640 if missing) `path` for appending, with the
/// caller's own rights: a worker calls it after it dropped its privileges,
/// so it follows a symlink or opens a FIFO or `/dev/stdout` only as far as
/// the workers' user may, and changes no owner. The open does not block
/// on a FIFO without a reader (`ENXIO`, retried at the next write); the
/// file is then put back in blocking mode, writes are whole buffers.
pub fn open_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) - nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    Ok(file)
}

/// For root: creates `path` (mode 0640) if, and only if, nothing is there
/// yet, and hands it to `owner`. `O_CREAT|O_EXCL` (and `O_NOFOLLOW`) never
/// follows a symlink, not even a dangling one, and never opens what
/// exists: whatever already sits at the path (a file, a symlink a worker
/// planted, a FIFO) is left untouched, neither opened nor chowned by root
/// (CVE-2016-1247's pattern: root chowning the target of a symlink in a
/// directory the workers' user can write). Returns whether it created it.
pub fn create_owned(path: &Path, owner: (Option<u32>, u32)) -> io::Result<bool> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match created {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    let (uid, gid) = owner;
    if let Err(e) = std::os::unix::fs::fchown(&file, uid, Some(gid)) {
        // A root-owned empty file would keep the workers out for good;
        // without it a worker may still create the file itself.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    // Root's creation never goes through what is at the path: a symlink
    // (dangling or not) or a FIFO is left alone and its target untouched;
    // only a path with nothing there is created, mode 0640.
    #[test]
    fn create_owned_touches_nothing_that_exists() {
        let dir = std::env::temp_dir().join(format!("preforkd-al-unit2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        struct Dir(PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _guard = Dir(dir.clone());
        let me = (
            Some(nix::unistd::geteuid().as_raw()),
            nix::unistd::getegid().as_raw(),
        );
        let target = dir.join("target");
        let link = dir.join("link");
        let dangling = dir.join("dangling");
        std::fs::write(&target, "x").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
        assert!(!create_owned(&link, me).unwrap());
        assert!(!create_owned(&dangling, me).unwrap());
        assert!(!dir.join("nowhere").exists(), "followed a dangling symlink");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
        let fresh = dir.join("access.log");
        assert!(create_owned(&fresh, me).unwrap());
        let meta = std::fs::symlink_metadata(&fresh).unwrap();
        assert!(meta.file_type().is_file());
        // 0640, less what the umask takes away, never more.
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        assert_eq!((mode & !0o640, mode & 0o600), (0, 0o600), "mode {mode:o}");
        assert!(!create_owned(&fresh, me).unwrap());
        // A FIFO without a reader: the worker's open fails at once
        // instead of hanging the worker.
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(!create_owned(&fifo, me).unwrap());
        let err = open_file(&fifo).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENXIO));
    }
}
