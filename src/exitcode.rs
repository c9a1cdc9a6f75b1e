//! Exit statuses of the master and the workers (sysexits.h where it fits).

/// Success.
pub const OK: i32 = 0;
/// Startup failed: bad config, bind error, pid file.
pub const FAILURE: i32 = 1;
/// Bad command line.
pub const USAGE: i32 = 2;
/// Internal error (a panic in a worker).
pub const SOFTWARE: i32 = 70;
/// An operating system call failed where it must not (epoll, signals).
pub const OSERR: i32 = 71;
/// The configuration cannot be applied (privileges cannot be dropped).
pub const CONFIG: i32 = 78;
