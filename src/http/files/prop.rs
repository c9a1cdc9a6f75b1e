//! Property test: a fuzzed request path, through `target.rs` and then
//! `open.rs` (both the `openat2` and the walk way), never opens anything
//! outside root. The tree beside root holds a secret file and directory,
//! and root holds symlinks that try every way out (relative `..`, absolute,
//! through a subdirectory, through `/proc`).

use std::os::unix::fs::MetadataExt;

use proptest::prelude::*;

use super::open::{Opened, Root};
use super::target;
use super::testdir::TestDir;
use super::Dotfiles;

struct World {
    _dir: TestDir,
    roots: [Root; 2],
    /// Inodes of everything outside root (and of root's parent).
    forbidden: Vec<u64>,
}

thread_local! {
    // Per thread: a Root is not Sync, and the cases of one test run on one thread.
    static WORLD: World = world();
}

fn world() -> World {
    let d = TestDir::new("prop");
    let secret = d.file("outside/secret", b"secret");
    d.file("root/a", b"a");
    d.file("root/e/f", b"f");
    d.symlink("root/c", "../outside/secret");
    d.symlink("root/e/0", "../../outside");
    d.symlink("root/5", &d.path().join("outside/secret").to_string_lossy());
    d.symlink("root/f", "/proc/self/cwd");
    d.symlink("root/2", "e/..");
    d.symlink("root/e/c", "../2/../c");
    std::fs::create_dir(d.path().join("root/%2e%2e")).expect("mkdir");
    d.symlink("root/%2e%2e/a", "../../outside/secret");
    let ino = |p: &std::path::Path| std::fs::metadata(p).expect("stat").ino();
    let forbidden = vec![
        ino(&secret),
        ino(&d.path().join("outside")),
        ino(d.path()),
        ino(std::path::Path::new("/")),
    ];
    let roots = [
        Root::new(&d.path().join("root")).expect("open root"),
        Root::new(&d.path().join("root")).expect("open root"),
    ];
    roots[1].force_walk();
    World {
        _dir: d,
        roots,
        forbidden,
    }
}

/// Segments built from the alphabet `a . / % 2 e f c 0 5 \ NUL`, as
/// tokens (so that escapes such as `%2e` and `%c0%ae` come up often) and
/// as raw characters.
fn path() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "a", ".", "..", "/", "//", "%2e", "%2E", "%2e%2e", "%2f", "%2F", "%25", "%252e", "%c0%ae",
        "%c0%af", "%5c", "\\", "%00", "\0", "c", "e", "f", "0", "5", "2", "%", "?",
    ]);
    let tokens = prop::collection::vec(token, 0..14).prop_map(|v| v.concat());
    let raw = "[a./%2efc05\\\\\\x00]{0,30}";
    prop_oneof![tokens, raw]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn never_outside_root(p in path(), allow in any::<bool>()) {
        WORLD.with(|w| check(w, &p, allow))?;
    }
}

fn check(w: &World, p: &str, allow: bool) -> Result<(), TestCaseError> {
    let dotfiles = if allow {
        Dotfiles::Allow
    } else {
        Dotfiles::Deny
    };
    let Ok(t) = target::resolve(p.as_bytes(), dotfiles) else {
        return Ok(());
    };
    prop_assert!(!t.rel().starts_with('/') && !t.segments().any(|s| s == ".." || s == "."));
    for root in &w.roots {
        let meta = match root.open(t.rel()) {
            Ok(Opened::File(_, m) | Opened::Directory(_, m)) => m,
            Err(_) => continue,
        };
        prop_assert!(
            !w.forbidden.contains(&meta.ino),
            "{p:?} → {:?} opened inode {} outside root (openat2: {})",
            t.rel(),
            meta.ino,
            root.uses_openat2()
        );
    }
    Ok(())
}

#[test]
fn the_traps_are_set() {
    // Sanity: the escapes exist and are refused, the inside paths work.
    let w = &world();
    for root in &w.roots {
        for rel in ["c", "e/0/secret", "5", "f", "e/c", "%2e%2e/a"] {
            assert!(root.open(rel).is_err(), "{rel}");
        }
        for rel in ["a", "e/f", "2/a", "%2e%2e"] {
            assert!(root.open(rel).is_ok(), "{rel}");
        }
    }
}
