//! A worker's open files of one route, kept between requests, that never
//! serve a stale file: each lookup first `stat`s the path (one syscall) and
//! uses the kept descriptor only if the path still names the very same
//! file, unchanged (device, inode, size, mtime and ctime all equal; a
//! rename over it, a rewrite or a chmod all change one of them). Anything
//! else goes through [`Root::open`], the lookup that cannot leave root, and
//! a regular file it opens is kept for next time.
//!
//! Why it is safe: the `stat` follows the path as the kernel does, even out
//! of root, but it only ever *confirms* a descriptor that `Root::open`
//! opened beneath root; what it finds is never served. And why it is worth
//! it: against `openat2` + `fstat` + `close` per request, a hit is one
//! `newfstatat`, and a precompressed variant that does not exist is one
//! failed `newfstatat` (measured in the README, "Serving files").
//!
//! Kept descriptors are bounded ([`MAX_KEPT`] per route and worker); a
//! full cache starts again empty, so a crawler cannot make it hold more.

use std::collections::HashMap;
use std::fs::File;
use std::rc::Rc;

use nix::errno::Errno;
use nix::sys::stat::{FileStat, SFlag};

use super::open::{OpenError, Opened, Root};
use super::Meta;

/// Descriptors one route keeps open per worker, at most.
pub const MAX_KEPT: usize = 256;

/// One kept file and what its path said when it was opened.
struct Kept {
    file: Rc<File>,
    meta: Meta,
    /// `st_ctime`, seconds and nanoseconds: changes with every change of
    /// the inode (content, mode, owner, links).
    ctime: (i64, i64),
}

#[derive(Default)]
pub struct Cache {
    kept: HashMap<String, Kept>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache({} kept)", self.kept.len())
    }
}

impl Cache {
    /// What `rel` names beneath `root` now, as [`Root::open`] would say,
    /// with a kept descriptor when the path's `stat` confirms it.
    pub fn lookup(&mut self, root: &Root, rel: &str) -> Result<Opened, OpenError> {
        match root.stat(rel) {
            Ok(st) if is_regular(&st) => {
                if let Some(k) = self.kept.get(rel) {
                    if same(k, &st) {
                        return Ok(Opened::File(Rc::clone(&k.file), k.meta));
                    }
                }
            }
            // Nothing there, whichever way the path is followed: the
            // lookup beneath root would find nothing either.
            Err(Errno::ENOENT | Errno::ENOTDIR) => {
                self.kept.remove(rel);
                return Err(OpenError::NotFound);
            }
            // A directory, something else, or an error: the lookup beneath
            // root decides (and says the right status).
            _ => {}
        }
        let opened = root.open(rel);
        match &opened {
            Ok(Opened::File(file, meta)) => self.keep(rel, file, *meta),
            _ => {
                self.kept.remove(rel);
            }
        }
        opened
    }

    fn keep(&mut self, rel: &str, file: &Rc<File>, meta: Meta) {
        let Ok(st) = nix::sys::stat::fstat(file.as_ref()) else {
            return;
        };
        if self.kept.len() >= MAX_KEPT && !self.kept.contains_key(rel) {
            self.kept.clear();
        }
        self.kept.insert(
            rel.to_owned(),
            Kept {
                file: Rc::clone(file),
                meta,
                ctime: (st.st_ctime, st.st_ctime_nsec),
            },
        );
    }
}

fn is_regular(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

/// The path's `stat` names the kept file, unchanged.
fn same(k: &Kept, st: &FileStat) -> bool {
    k.meta.dev == st.st_dev
        && k.meta.ino == st.st_ino
        && i64::try_from(k.meta.size) == Ok(st.st_size)
        && k.meta.mtime_secs == st.st_mtime
        && i64::from(k.meta.mtime_nsecs) == st.st_mtime_nsec
        && k.ctime == (st.st_ctime, st.st_ctime_nsec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::files::testdir::TestDir;

    #[test]
    fn a_kept_file_is_used_only_while_its_path_names_it_unchanged() {
        let d = TestDir::new("cache");
        d.file("root/a.txt", b"one");
        d.file("outside/secret", b"secret");
        let root = Root::new(&d.path().join("root")).unwrap();
        let mut cache = Cache::default();
        let first = match cache.lookup(&root, "a.txt") {
            Ok(Opened::File(f, m)) => (f, m),
            other => panic!("{other:?}"),
        };
        // A hit: the same descriptor.
        let Ok(Opened::File(again, _)) = cache.lookup(&root, "a.txt") else {
            panic!("a hit");
        };
        assert!(Rc::ptr_eq(&first.0, &again));
        // Replaced by a rename: a new descriptor, the new size.
        d.file("root/b.tmp", b"three");
        std::fs::rename(d.path().join("root/b.tmp"), d.path().join("root/a.txt")).unwrap();
        let Ok(Opened::File(renamed, m)) = cache.lookup(&root, "a.txt") else {
            panic!("the new file");
        };
        assert!(!Rc::ptr_eq(&first.0, &renamed));
        assert_eq!(m.size, 5);
        // Deleted: not found, and the kept descriptor is let go.
        std::fs::remove_file(d.path().join("root/a.txt")).unwrap();
        assert!(matches!(
            cache.lookup(&root, "a.txt"),
            Err(OpenError::NotFound)
        ));
        assert!(cache.kept.is_empty());
        // A symlink out of root: the stat sees the secret, but only the
        // lookup beneath root decides, and it refuses.
        std::os::unix::fs::symlink("../outside/secret", d.path().join("root/a.txt")).unwrap();
        assert!(matches!(
            cache.lookup(&root, "a.txt"),
            Err(OpenError::NotFound)
        ));
        assert!(cache.kept.is_empty());
    }

    #[test]
    fn a_full_cache_starts_again() {
        let d = TestDir::new("cache-full");
        for i in 0..=MAX_KEPT {
            d.file(&format!("root/{i}"), b"x");
        }
        let root = Root::new(&d.path().join("root")).unwrap();
        let mut cache = Cache::default();
        for i in 0..=MAX_KEPT {
            assert!(cache.lookup(&root, &i.to_string()).is_ok());
            assert!(cache.kept.len() <= MAX_KEPT);
        }
        assert_eq!(cache.kept.len(), 1);
    }
}
