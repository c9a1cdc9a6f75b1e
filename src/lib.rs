//! preforkd as a library: the modules of the server, so that the binary
//! (`main.rs`), the fuzz targets and property tests drive the same code.
//!
//! The folders are the floors of the house; an upper floor may import a
//! lower one, never the reverse (README, "Architecture"):
//!
//! ```text
//! master/ worker/     processes: supervision; one worker's event loop
//! http/ tls/ h2/      protocol and serving: bytes in, answers out (sans-IO)
//! obs/                observing: scoreboard, metrics, logs, access log
//! config/             TOML -> validated values, gathered from the components
//! os/                 every system call wrapper; all `unsafe` in os/sys.rs
//! ```
//!
//! The rule that keeps it: `http/`, `h2/` and `tls/` import nothing from `os/`,
//! `master/` or `worker/`. Each file says what it owns.

/// argv → `Args`.
pub mod cli;
/// TOML → validated `Config`, defaults, overrides, `file:line:col` errors.
pub mod config;
/// `-s`: signal the running master, wait for reload/upgrade outcomes
/// (the typed `Outcome` in the state file).
pub mod control;
/// Exit statuses, in one place.
pub mod exitcode;
/// Sans-IO HTTP/2: frames, HPACK, one connection's state machine.
pub mod h2;
/// HTTP/1.1: parsing, the connection, routes and their answers, PROXY.
pub mod http;
/// The master loop and stop phases; the worker table with its pure plan,
/// crash accounting, reload and upgrade hand-overs, status text.
pub mod master;
/// Observing: the scoreboard, metrics pages, the log and the access log.
pub mod obs;
/// The operating system: syscalls, signals, sockets, daemon, pid file.
pub mod os;
/// A simulated client driving `http/conn/`, for property tests and fuzzing.
#[cfg(any(test, feature = "sim"))]
pub mod sim;
/// HTTPS: certificate and key loading, ticket keys, rustls as a `Transport`.
pub mod tls;
/// One worker after fork: epoll, accept, the connection table and its
/// pressure (room at `worker_connections`, per-client cap, minimum rate),
/// balanced accepting, draining.
pub mod worker;
