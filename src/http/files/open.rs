//! The one effectful step of serving a file: opening a path beneath the
//! route's root so that nothing (`..`, a symlink, a rename race) can lead
//! out of it, and reading its metadata.
//!
//! [`Root`] holds an `O_PATH` descriptor of the root, opened once per worker.
//! [`Root::open`] uses `openat2(2)` with `RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS` (Linux 5.6); where the kernel (or a seccomp filter)
//! lacks it, a component walk that does the same in user space: each
//! segment is opened with `O_PATH | O_NOFOLLOW` relative to the one before,
//! a symlink is read and its target walked from the directory it sits in,
//! and `..` pops the walk's own stack of open directories (never the
//! kernel's `..`), so a path that would climb above root is refused.
//!
//! Files are opened `O_NONBLOCK`, so a FIFO never blocks the worker, and only
//! regular files and directories are handed out: FIFOs, devices and sockets
//! are 404. The walk never opens those for reading at all.
//!
//! What to do with a directory (redirect, index, listing) is the caller's.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};

use super::Meta;

/// Linux's limit on symlinks followed in one lookup (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// How a file to serve is opened.
fn read_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY
}

/// A path beneath root, opened.
#[derive(Debug)]
pub enum Opened {
    /// A regular file, open for reading (shared with the open-file cache).
    File(Rc<File>, Meta),
    /// A directory, open for reading (for a listing).
    Directory(File, Meta),
}

/// Why a path beneath root is not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Absent, not a regular file or directory, or reached only by leaving
    /// root (`EXDEV`, `ELOOP`): the answer does not say which.
    NotFound,
    /// Permission denied (`EACCES`).
    Forbidden,
    /// Anything else (`EMFILE`, `EIO`, …): the caller logs it.
    Other(Errno),
}

impl OpenError {
    pub fn status(self) -> u16 {
        match self {
            OpenError::NotFound => 404,
            OpenError::Forbidden => 403,
            OpenError::Other(_) => 500,
        }
    }

    fn from_errno(e: Errno) -> OpenError {
        match e {
            // ENXIO: open(2) of a unix socket (openat2 opens before the
            // type is known); only regular files are served, so 404.
            Errno::ENOENT
            | Errno::ENOTDIR
            | Errno::EXDEV
            | Errno::ELOOP
            | Errno::ENAMETOOLONG
            | Errno::ENXIO => OpenError::NotFound,
            Errno::EACCES | Errno::EPERM => OpenError::Forbidden,
            e => OpenError::Other(e),
        }
    }
}

/// A route's root directory, open.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    /// `openat2` works here; cleared for good when it says `ENOSYS`.
    openat2: Cell<bool>,
}

impl Root {
    /// Opens `path` (`O_PATH | O_DIRECTORY`) and finds out whether `openat2`
    /// works (a seccomp filter may refuse it with `EPERM` or `ENOSYS`).
    pub fn new(path: &Path) -> nix::Result<Root> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty())?;
        let probe = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH);
        let works = openat2(fd.as_fd(), ".", probe).is_ok();
        Ok(Root {
            fd,
            openat2: Cell::new(works),
        })
    }

    /// Uses the component walk from now on, as on a kernel without
    /// `openat2` (for tests of the walk).
    pub fn force_walk(&self) {
        self.openat2.set(false);
    }

    /// Whether lookups use `openat2` (false: the walk).
    pub fn uses_openat2(&self) -> bool {
        self.openat2.get()
    }

    /// Opens `rel` (a [`Target`](super::target::Target)'s path: no leading
    /// slash, `""` for root itself) beneath root.
    pub fn open(&self, rel: &str) -> Result<Opened, OpenError> {
        let fd = self.open_fd(rel).map_err(OpenError::from_errno)?;
        let st = fstat(fd.as_fd()).map_err(OpenError::from_errno)?;
        let meta = meta(&st);
        let file = File::from(fd);
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => Ok(Opened::File(Rc::new(file), meta)),
            SFlag::S_IFDIR => Ok(Opened::Directory(file, meta)),
            _ => Err(OpenError::NotFound),
        }
    }

    /// `stat` of `rel` relative to root, following symlinks wherever they
    /// go: only for confirming a descriptor [`Root::open`] opened (see
    /// `cache.rs`), never for choosing what to serve.
    pub fn stat(&self, rel: &str) -> nix::Result<FileStat> {
        let rel = if rel.is_empty() { "." } else { rel };
        nix::sys::stat::fstatat(self.fd.as_fd(), rel, nix::fcntl::AtFlags::empty())
    }

    fn open_fd(&self, rel: &str) -> nix::Result<OwnedFd> {
        if rel.starts_with('/') {
            // Target never makes one; openat2 would say EXDEV too.
            return Err(Errno::EXDEV);
        }
        let rel = if rel.is_empty() { "." } else { rel };
        if self.openat2.get() {
            let how = OpenHow::new()
                .flags(read_flags())
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            // EAGAIN: a rename or mount raced the lookup (openat2(2)); try
            // again once, then walk.
            for _ in 0..2 {
                match openat2(self.fd.as_fd(), rel, how) {
                    Err(Errno::EAGAIN) => continue,
                    Err(Errno::ENOSYS) => {
                        self.openat2.set(false);
                        break;
                    }
                    other => return other,
                }
            }
        }
        walk(self.fd.as_fd(), rel)
    }
}

/// Opens `rel` beneath `root` without `openat2`: one segment at a time, with
/// symlinks resolved here, never by the kernel.
fn walk(root: BorrowedFd<'_>, rel: &str) -> nix::Result<OwnedFd> {
    // Directories entered below root, innermost last.
    let mut dirs: Vec<OwnedFd> = Vec::new();
    let mut todo: VecDeque<Vec<u8>> = segments(rel.as_bytes()).collect();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == b"." {
            continue;
        }
        if name == b".." {
            // Above root: refused like RESOLVE_BENEATH does.
            dirs.pop().ok_or(Errno::EXDEV)?;
            continue;
        }
        let here = dirs.last().map_or(root, |d| d.as_fd());
        let name = name.as_slice();
        let fd = openat(
            here,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let kind = SFlag::from_bits_truncate(fstat(fd.as_fd())?.st_mode) & SFlag::S_IFMT;
        match kind {
            SFlag::S_IFLNK => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP);
                }
                let to = readlinkat(here, name)?;
                let to = to.as_bytes();
                if to.is_empty() {
                    return Err(Errno::ENOENT);
                }
                if to.starts_with(b"/") {
                    // RESOLVE_BENEATH refuses absolute links too.
                    return Err(Errno::EXDEV);
                }
                for seg in segments(to).collect::<Vec<_>>().into_iter().rev() {
                    todo.push_front(seg);
                }
            }
            SFlag::S_IFDIR if !todo.is_empty() => dirs.push(fd),
            _ if !todo.is_empty() => return Err(Errno::ENOTDIR),
            SFlag::S_IFDIR | SFlag::S_IFREG => {
                // The name may have changed since; O_NOFOLLOW keeps a
                // symlink put there from being followed (ELOOP), and the
                // caller looks at what it got again.
                return openat(here, name, read_flags() | OFlag::O_NOFOLLOW, Mode::empty());
            }
            // FIFO, device, socket: never opened for reading.
            _ => return Err(Errno::ENOENT),
        }
    }
    // Every segment was `.` or `..` or led back up: the directory we are in.
    let here = dirs.last().map_or(root, |d| d.as_fd());
    openat(here, ".", read_flags() | OFlag::O_DIRECTORY, Mode::empty())
}

/// The non-empty segments of a `/`-separated path.
fn segments(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
}

fn meta(st: &FileStat) -> Meta {
    Meta {
        // A regular file's size is never negative.
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime_secs: st.st_mtime,
        mtime_nsecs: u32::try_from(st.st_mtime_nsec).unwrap_or(0),
        ino: st.st_ino,
        dev: st.st_dev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::files::testdir::TestDir;
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, Instant};

    /// `dir/root` holds the served tree, `dir/outside` what must never be
    /// served.
    fn tree() -> TestDir {
        let d = TestDir::new("open");
        d.files(&[
            ("root/index.html", b"<h1>hi</h1>"),
            ("root/sub/a.txt", b"a"),
            ("outside/secret", b"secret"),
        ]);
        d.symlinks(&[
            ("root/in", "sub/a.txt"),
            ("root/subdir", "sub"),
            ("root/chain1", "chain2"),
            ("root/chain2", "sub/../in"),
            ("root/up", "sub/.."),
            ("root/passwd", "/etc/passwd"),
            ("root/out", "../outside/secret"),
            ("root/outdir", "../outside"),
            ("root/sub/deep", "../../outside/secret"),
            ("root/loop", "loop"),
            ("root/dangling", "nothing"),
            ("root/proc", "/proc/self/root/etc/passwd"),
        ]);
        nix::unistd::mkfifo(&d.path().join("root/fifo"), Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        d
    }

    fn roots(d: &TestDir) -> [Root; 2] {
        let a = Root::new(&d.path().join("root")).unwrap();
        let b = Root::new(&d.path().join("root")).unwrap();
        b.force_walk();
        [a, b]
    }

    fn contents(r: &Root, rel: &str) -> Result<String, OpenError> {
        match r.open(rel)? {
            Opened::File(f, meta) => {
                let mut s = String::new();
                (&*f).read_to_string(&mut s).unwrap();
                assert_eq!(meta.size, s.len() as u64);
                Ok(s)
            }
            Opened::Directory(..) => Ok("<dir>".into()),
        }
    }

    #[test]
    fn openat2_is_there_on_this_kernel() {
        let d = tree();
        // Informative: the walk is tested either way.
        let r = Root::new(&d.path().join("root")).unwrap();
        eprintln!("openat2 in use: {}", r.uses_openat2());
        r.force_walk();
        assert!(!r.uses_openat2());
    }

    #[test]
    fn both_ways_agree() {
        let d = tree();
        let nf = Err(OpenError::NotFound);
        let table: &[(&str, Result<&str, OpenError>)] = &[
            ("index.html", Ok("<h1>hi</h1>")),
            ("sub/a.txt", Ok("a")),
            ("", Ok("<dir>")),
            ("sub", Ok("<dir>")),
            ("in", Ok("a")),
            ("subdir/a.txt", Ok("a")),
            ("subdir", Ok("<dir>")),
            ("chain1", Ok("a")),
            ("up/index.html", Ok("<h1>hi</h1>")),
            ("up", Ok("<dir>")),
            ("missing", nf),
            ("index.html/x", nf),
            ("sub/missing/x", nf),
            ("passwd", nf),
            ("out", nf),
            ("outdir", nf),
            ("outdir/secret", nf),
            ("sub/deep", nf),
            ("loop", nf),
            ("dangling", nf),
            ("proc", nf),
            ("/etc/passwd", nf),
            ("fifo", nf),
        ];
        for r in roots(&d) {
            for (rel, want) in table {
                let got = contents(&r, rel);
                let want = want.map(str::to_owned);
                assert_eq!(got, want, "{rel} (openat2: {})", r.uses_openat2());
            }
        }
    }

    #[test]
    fn fifo_does_not_block() {
        let d = tree();
        for r in roots(&d) {
            let t = Instant::now();
            assert_eq!(r.open("fifo").unwrap_err(), OpenError::NotFound);
            assert!(t.elapsed() < Duration::from_secs(1));
        }
    }

    #[test]
    fn long_symlink_chains_stop() {
        let d = TestDir::new("open");
        d.file("root/end", b"end");
        for i in 0..45 {
            let to = if i == 0 {
                "end".to_owned()
            } else {
                format!("l{}", i - 1)
            };
            d.symlink(&format!("root/l{i}"), &to);
        }
        for r in roots(&d) {
            assert_eq!(contents(&r, "l38").unwrap(), "end");
            assert_eq!(r.open("l44").unwrap_err(), OpenError::NotFound);
        }
    }

    #[test]
    fn meta_matches_stat() {
        let d = tree();
        let want = std::fs::metadata(d.path().join("root/sub/a.txt")).unwrap();
        for r in roots(&d) {
            let Ok(Opened::File(_, m)) = r.open("in") else {
                panic!("in is a file");
            };
            assert_eq!(
                (m.size, m.mtime_secs, i64::from(m.mtime_nsecs), m.ino, m.dev),
                (
                    want.size(),
                    want.mtime(),
                    want.mtime_nsec(),
                    want.ino(),
                    want.dev()
                )
            );
        }
    }

    #[test]
    fn unreadable_is_forbidden() {
        let d = tree();
        let secret = d.file("root/locked", b"x");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        let shut = d.path().join("root/shut");
        std::fs::create_dir(&shut).unwrap();
        d.file("root/shut/f", b"x");
        std::fs::set_permissions(&shut, std::fs::Permissions::from_mode(0o000)).unwrap();
        if nix::unistd::geteuid().is_root() {
            // Root passes every permission check (CAP_DAC_OVERRIDE): the
            // 403 can only be seen as another user.
            eprintln!("skipped: running as root");
        } else {
            for r in roots(&d) {
                assert_eq!(r.open("locked").unwrap_err(), OpenError::Forbidden);
                assert_eq!(r.open("shut/f").unwrap_err(), OpenError::Forbidden);
            }
        }
        std::fs::set_permissions(&shut, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn statuses() {
        assert_eq!(OpenError::from_errno(Errno::EXDEV).status(), 404);
        assert_eq!(OpenError::from_errno(Errno::ELOOP).status(), 404);
        assert_eq!(OpenError::from_errno(Errno::ENXIO).status(), 404);
        assert_eq!(OpenError::from_errno(Errno::EACCES).status(), 403);
        assert_eq!(OpenError::from_errno(Errno::EMFILE).status(), 500);
    }
}
