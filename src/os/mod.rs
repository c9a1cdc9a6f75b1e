//! The operating system floor: every wrapper around a system call the
//! daemon makes, with all `unsafe` in `sys.rs`. Imports nothing of the
//! server above it (only `exitcode` and the scoreboard's layout for the
//! shared mapping).

/// The workers' user and group ids.
pub mod credentials;
/// `-d`: detach, report startup success to the waiting parent.
pub mod daemon;
/// USR2: exec the new binary with the listening sockets.
pub mod exec;
/// The workers' doorbell: a pipe byte that wakes the master to read the
/// scoreboard (what changed is there, not in the pipe).
pub mod inbox;
/// Bind listening sockets, adopt `LISTEN_FDS`.
pub mod listener;
/// sd_notify: READY, RELOADING, STOPPING, MAINPID, STATUS, WATCHDOG.
pub mod notify;
/// The pid file: atomic write, removal only if ours.
pub mod pidfile;
/// The signal table (signal, command, `-s` word, help), the signal queue
/// (counters + self-pipe) and the worker's flags.
pub mod signals;
/// Every `unsafe` block: fork, exec with passed fds, signal actions, fd
/// adoption, the scoreboard mapping, TCP_DEFER_ACCEPT.
#[allow(unsafe_code)] // the one module allowed to; each block says why it is sound
pub mod sys;
