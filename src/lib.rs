//! preforkd as a library: the modules of the server, so that the binary
//! (`main.rs`), the fuzz targets and property tests drive the same code.
//! Each module's file says what it owns.

/// The access log: line formats, per-worker buffer, flush, reopen.
pub mod access_log;
/// Address ranges (`10.0.0.0/8`) for `allow` and `proxy_protocol_from`.
pub mod cidr;
/// argv → `Args`.
pub mod cli;
/// TOML → validated `Config`, defaults, overrides, `file:line:col` errors.
pub mod config;
/// One client connection: buffers, pipelining, keep-alive, deadlines.
pub mod conn;
/// `-s`: signal the running master, wait for reload/upgrade outcomes
/// (the typed `Outcome` in the state file).
pub mod control;
/// `-d`: detach, report startup success to the waiting parent.
pub mod daemon;
/// Exit statuses, in one place.
pub mod exitcode;
/// Sans-IO HTTP/2: frames, HPACK, one connection's state machine.
pub mod h2;
/// Sans-IO request parsing; `Reject` → status.
pub mod http;
/// The workers' doorbell: a pipe byte that wakes the master to read the
/// scoreboard (what changed is there, not in the pipe).
pub mod inbox;
/// Bind listening sockets, adopt `LISTEN_FDS`.
pub mod listener;
/// syslog / stderr logging that survives fork and a missing socket.
pub mod log;
/// The master loop and stop phases; the worker table with its pure plan,
/// crash accounting, reload and upgrade hand-overs, status text.
pub mod master;
/// stub_status and Prometheus text from a scoreboard snapshot.
pub mod metrics;
/// sd_notify: READY, RELOADING, STOPPING, MAINPID, STATUS, WATCHDOG.
pub mod notify;
/// The pid file: atomic write, removal only if ours.
pub mod pidfile;
/// PROXY protocol v1/v2 header → client address, sans-IO.
pub mod proxy;
/// Precomputed response bytes with an in-place `Date`.
pub mod response;
/// `[[route]]` → a lookup built once per config, and each route's answers.
pub mod route;
/// Shared-memory heartbeat, state and counters (evictions too), one slot per
/// worker, behind typed accessors.
pub mod scoreboard;
/// The signal table (signal, command, `-s` word, help), the signal queue
/// (counters + self-pipe) and the worker's flags.
pub mod signals;
/// A simulated client driving `conn.rs`, for property tests and fuzzing.
#[cfg(any(test, fuzzing))]
pub mod sim;
/// Every `unsafe` block: fork, exec with passed fds, signal actions, fd
/// adoption, the scoreboard mapping, TCP_DEFER_ACCEPT.
#[allow(unsafe_code)] // the one module allowed to; each block says why it is sound
pub mod sys;
/// HTTPS: certificate and key loading, ticket keys, rustls as a `Transport`.
pub mod tls;
/// The TLS layer against plain HTTP in memory, for property tests and fuzzing.
#[cfg(any(test, fuzzing))]
pub mod tls_sim;
/// USR2: exec the new binary with the listening sockets.
pub mod upgrade;
/// One worker after fork: epoll, accept, the connection table and its
/// pressure (room at `worker_connections`, per-client cap, minimum rate),
/// balanced accepting, draining.
pub mod worker;
