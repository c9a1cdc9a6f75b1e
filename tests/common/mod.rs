//! Test harness: runs the real `preforkd` binary in a fresh temp dir, with a
//! pre-bound listening socket handed over as fd 3 (`LISTEN_FDS`, as systemd
//! does) and its syslog lines captured on a unix datagram socket the test
//! binds and reads on a thread of its own. Every wait has a deadline; `Drop`
//! SIGKILLs the whole process group, so nothing outlives a failed test.
//!
//! - `client.rs`: raw TCP (open, send, read one response or to EOF, redact
//!   `Date`, GET probes).
//! - `process.rs`: `Server` with `Options` (a copied binary, a notify
//!   socket, the harness' syslog sink or the test's own, `-d`), `Proc` for
//!   hand-made commands, `output_within` for any program run to completion
//!   (bounded), `LogSink`, SIGCHLD handling, `/proc` readers.
//! - `peer.rs`: real peers (HAProxy, promtool, the nginx exporter), killed
//!   by process group on drop.
//! - here: temp dirs, the waits every test file uses, and the one way a
//!   test skips ([`skip`], with [`tool`] and [`root`] on top): a message,
//!   or a failure under `PREFORKD_REQUIRE_ALL=1` (CI, which has every tool
//!   and runs as root).
#![allow(dead_code)] // each test binary uses its own part of the harness
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise

pub mod client;
pub mod peer;
pub mod process;

#[allow(unused_imports)] // a test binary may use no part of one module
pub use client::*;
#[allow(unused_imports)] // as above
pub use peer::*;
#[allow(unused_imports)] // as above
pub use process::*;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temp dir removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("preforkd-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` until it returns Some, or panics after `timeout` with `what`.
pub fn wait_until<T>(timeout: Duration, what: &str, cond: impl FnMut() -> Option<T>) -> T {
    wait_until_every(Duration::from_millis(20), timeout, what, cond)
}

/// [`wait_until`], polling every `every`: for a wait that runs once per
/// byte of a request (see `client::wait_peer_read_all`).
pub fn wait_until_every<T>(
    every: Duration,
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// Asserts that `cond` holds at every look for `window` (an observation
/// period: something must NOT happen, or must keep holding).
pub fn holds_for(window: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(cond(), "{what} stopped holding");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Skips

/// Set to `1`, every [`skip`] fails the test instead: `.ci/run` sets it,
/// since CI installs every tool and runs as root, so that a tool missing
/// from its list fails CI instead of passing it untested.
pub const REQUIRE_ALL: &str = "PREFORKD_REQUIRE_ALL";

/// The one way a test, or a part of one, is skipped: says `reason` on
/// stderr (the caller then returns), or panics with it when
/// `PREFORKD_REQUIRE_ALL=1`.
pub fn skip(reason: &str) {
    if std::env::var_os(REQUIRE_ALL).is_some_and(|v| v == "1") {
        panic!("{REQUIRE_ALL}=1, and this would skip: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Where `name` is installed: the first file of that name on `PATH`, then
/// in /usr/sbin and /sbin (not on a user's `PATH`, but where Debian puts
/// nginx and haproxy). No skip: for a program a test can do without, or
/// one known by two names.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// `name`'s path, or None after [`skip`]ping for want of it (naming the
/// Debian package that has it).
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = find_tool(name);
    if found.is_none() {
        skip(&format!(
            "{name} is not installed (Debian package {package})"
        ));
    }
    found
}

/// Whether the test runs as root; false after [`skip`]ping `what`, the
/// part that needs root.
pub fn root(what: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        skip(&format!("not root: {what}"));
    }
    root
}

/// How many of `lines` contain `needle`.
pub fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// An error-level syslog line (facility daemon: <27> err, <26> crit,
/// <25> alert).
pub fn is_error_line(line: &str) -> bool {
    line.starts_with("<27>") || line.starts_with("<26>") || line.starts_with("<25>")
}

/// Sets the flag when dropped: load threads of a scope stop even when the
/// test body panics.
pub struct StopOnDrop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Error-level lines of `lines` that contain none of `expected`.
pub fn unexpected_errors(lines: &[String], expected: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| is_error_line(l))
        .filter(|l| !expected.iter().any(|e| l.contains(e)))
        .cloned()
        .collect()
}
