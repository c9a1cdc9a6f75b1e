//! A scratch directory for the tests of this folder, removed on drop (no
//! tempfile crate in the tree).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("preforkd-files-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test dir");
        TestDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` at `rel`, creating parent directories.
    pub fn file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&p, contents).expect("write a test file");
        p
    }

    pub fn symlink(&self, rel: &str, to: &str) {
        std::os::unix::fs::symlink(to, self.0.join(rel)).expect("create a symlink");
    }

    /// A tree: each `(rel, contents)` a file.
    pub fn files(&self, files: &[(&str, &[u8])]) {
        for (rel, contents) in files {
            self.file(rel, contents);
        }
    }

    /// Each `(rel, to)` a symlink.
    pub fn symlinks(&self, links: &[(&str, &str)]) {
        for (rel, to) in links {
            self.symlink(rel, to);
        }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // Mode 000 directories are not in the way of removal as root, and
        // the tests that make them restore the mode.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
