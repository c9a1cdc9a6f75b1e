//! Every `unsafe` operation of preforkd, each in its own small block with the
//! reason it is sound: fork, registering signal actions, adopting inherited
//! file descriptors. Policy (when to fork, what a signal means) lives in the
//! callers; this module only wraps the operations.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::unistd::{ForkResult, Pid};
use signal_hook::SigId;

use crate::exitcode;

/// Forks a child (a worker, or the new master of an upgrade, which execs).
/// The child runs `body` and exits with its code; it never returns from here, so no master destructor (pid file, listeners) ever runs
/// in a worker, and a panic in the worker ends only the worker.
pub fn fork_worker(body: impl FnOnce() -> i32) -> nix::Result<Pid> {
    debug_assert_eq!(thread_count(), 1, "fork with more than one thread");
    // SAFETY: the master is single-threaded (asserted above, and it never
    // starts a thread), so the child may allocate and take locks.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code = catch_unwind(AssertUnwindSafe(body)).unwrap_or(exitcode::SOFTWARE);
            // _exit: no stdout flush, no atexit handlers of the master's.
            signal_hook::low_level::exit(code)
        }
    }
}

/// Threads of this process, from /proc (for the fork assertion).
fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(1)
}

/// On `signal`, adds one to `counter` and writes a byte to `wake` (a
/// non-blocking pipe), so that a sleeping loop wakes up and can count how
/// many times each signal came.
pub fn count_signal(
    signal: i32,
    counter: &'static AtomicUsize,
    wake: RawFd,
) -> std::io::Result<SigId> {
    let action = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        // A full pipe already wakes the reader; nothing to do on error.
        let _ = nix::unistd::write(
            // SAFETY: `wake` stays open for as long as the action is
            // registered (the signal queue owns it and unregisters first).
            unsafe { std::os::fd::BorrowedFd::borrow_raw(wake) },
            &[1],
        );
    };
    // SAFETY: the action is async-signal-safe: an atomic add and write(2),
    // no allocation, no locks.
    unsafe { signal_hook::low_level::register(signal, action) }
}

/// Takes ownership of the `n` descriptors from 3 up that the parent process
/// passed (`LISTEN_FDS`, after the caller checked that `LISTEN_PID` names
/// us). Each must be an open, listening socket. Works once per process.
///
/// Sound because nothing else can own them: they were handed to us, we take
/// them once (enforced), and only listening sockets, which preforkd creates
/// itself only after this runs at startup.
pub fn take_listen_fds(n: i32) -> std::io::Result<Vec<OwnedFd>> {
    use std::sync::atomic::AtomicBool;
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(std::io::Error::other(
            "the passed sockets were taken already",
        ));
    }
    let mut fds = Vec::new();
    for fd in 3..3 + n {
        let mut listening: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt on a bare number only reads kernel state and
        // writes into our two locals, whose sizes it is given; it fails
        // (EBADF, ENOTSOCK) for anything that is not an open socket.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                std::ptr::from_mut(&mut listening).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::other(format!(
                "fd {fd}: {}",
                std::io::Error::last_os_error()
            )));
        }
        if listening == 0 {
            return Err(std::io::Error::other(format!(
                "fd {fd} is not a listening socket"
            )));
        }
        // SAFETY: an open listening socket passed to us, taken once (above).
        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(fds)
}

/// Why the new master of an upgrade could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// The pipe or the fork failed: nothing was started.
    Fork(nix::errno::Errno),
    /// The child could not place the descriptors or exec the binary (it
    /// reported the errno through a close-on-exec pipe and exited 127).
    Exec(nix::errno::Errno),
}

/// Forks a child that execs `exe` with `fds` passed the systemd way (see
/// `exec_with_listen_fds`); returns its pid once the exec has happened. In
/// the child nothing runs but the descriptor moves and exec. An exec that
/// fails is reported through a close-on-exec pipe (as `std::process::Command`
/// does), so the error reaches the master's log and `-s upgrade` rather than
/// a stderr that `-d` has closed: the pipe reads EOF once exec succeeded,
/// or the errno if it failed.
pub fn spawn_with_listen_fds(
    exe: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    env: Vec<std::ffi::CString>,
    fds: &[RawFd],
    watchdog: bool,
) -> Result<nix::unistd::Pid, SpawnError> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Fork)?;
    let report = tx.as_raw_fd();
    let pid = fork_worker(move || {
        // Signals were blocked around fork; exec keeps the mask, so clear it.
        let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
        // SAFETY: this is the freshly forked child, about to exec; `report`
        // is open (the closure owns `tx`).
        let _err = unsafe { exec_with_listen_fds(exe, argv, env, fds, watchdog, report) };
        drop(tx);
        127
    })
    // The parent's copy of `tx` went with the unrun closure: the pipe
    // reads EOF once the child's copies close at exec (or exit).
    .map_err(SpawnError::Fork)?;
    let mut errno = Vec::new();
    // EOF (exec closed the write end) or four bytes of errno; a read error
    // leaves `errno` short, which counts as success: the child's exit status
    // will still tell.
    let _ = std::fs::File::from(rx).read_to_end(&mut errno);
    match <[u8; 4]>::try_from(errno.as_slice()) {
        Ok(bytes) => Err(SpawnError::Exec(nix::errno::Errno::from_raw(
            i32::from_ne_bytes(bytes),
        ))),
        Err(_) => Ok(pid),
    }
}

/// Places `fds` at 3, 4, … (without CLOEXEC), adds `LISTEN_PID` (and
/// `WATCHDOG_PID` if `watchdog`) naming this process, whose pid exec keeps,
/// to `env`, and execs `exe`. Returns only if that failed, after writing the
/// errno (native-endian `i32`) to `report`, which it first moves above the
/// descriptors it places so that they cannot overwrite it.
///
/// # Safety
/// Only in a freshly forked child about to exec: it overwrites whatever
/// descriptors sit at 3 and up. `report` must be open.
unsafe fn exec_with_listen_fds(
    exe: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    mut env: Vec<std::ffi::CString>,
    fds: &[RawFd],
    watchdog: bool,
    report: RawFd,
) -> nix::errno::Errno {
    use nix::errno::Errno;
    let above = 3 + fds.len() as i32;
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor; no memory is touched.
    let report = unsafe { libc::fcntl(report, libc::F_DUPFD_CLOEXEC, above) };
    if report < 0 {
        // Nowhere to say it: the exit status (127) will.
        return Errno::last();
    }
    let fail = |e: Errno| {
        let bytes = (e as i32).to_ne_bytes();
        // SAFETY: `report` was just created above and stays open until
        // exec or exit; write(2) only reads our four bytes.
        let _ = unsafe { libc::write(report, bytes.as_ptr().cast(), bytes.len()) };
        e
    };
    // First move every fd above the target range so that placing one at
    // 3+i never overwrites another still to be placed.
    let mut high = Vec::with_capacity(fds.len());
    for &fd in fds {
        // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor; no memory is touched.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above) };
        if new < 0 {
            return fail(Errno::last());
        }
        high.push(new);
    }
    for (i, &fd) in high.iter().enumerate() {
        // SAFETY: dup2 onto 3+i: whatever was there is ours to replace (we
        // are about to exec), and the copy it makes is not CLOEXEC.
        if unsafe { libc::dup2(fd, 3 + i as i32) } < 0 {
            return fail(Errno::last());
        }
    }
    let pid = std::process::id();
    let mut ours = vec![format!("LISTEN_PID={pid}")];
    if watchdog {
        // systemd expects WATCHDOG=1 from the main process, which we become.
        ours.push(format!("WATCHDOG_PID={pid}"));
    }
    for var in ours {
        let Ok(var) = std::ffi::CString::new(var) else {
            return fail(Errno::EINVAL);
        };
        env.push(var);
    }
    match nix::unistd::execve(exe, argv, &env) {
        Err(e) => fail(e),
        Ok(never) => match never {},
    }
}

/// Maps `len` zeroed scoreboard slots shared by the master and every worker
/// it forks later (`MAP_SHARED | MAP_ANONYMOUS`). Never unmapped: the
/// slice lives as long as the process.
pub fn map_scoreboard(len: usize) -> nix::Result<&'static [crate::obs::scoreboard::Slot]> {
    // SAFETY: a Slot is atomics only: all-zero is a valid value, and every
    // access goes through them.
    unsafe { map_shared_zeroed(len.max(1)) }
}

/// Maps the master's zeroed [`Totals`](crate::obs::scoreboard::Totals) block
/// beside the scoreboard, shared the same way and never unmapped.
pub fn map_totals() -> nix::Result<&'static crate::obs::scoreboard::Totals> {
    // SAFETY: Totals is atomics only: all-zero is a valid value, and every
    // access goes through them.
    Ok(&unsafe { map_shared_zeroed(1) }?[0])
}

/// `len` zeroed `T`s in a fresh shared anonymous mapping, inherited by
/// every process forked later, never unmapped.
///
/// # Safety
/// All-zero bytes must be a valid `T`, and `T` must be accessed only
/// through atomics (other processes write the same memory).
unsafe fn map_shared_zeroed<T>(len: usize) -> nix::Result<&'static [T]> {
    use nix::sys::mman::{MapFlags, ProtFlags};
    let bytes =
        std::num::NonZeroUsize::new(len * std::mem::size_of::<T>()).expect("a non-empty mapping");
    // SAFETY: a fresh anonymous mapping: no file, no existing memory is
    // aliased; the kernel zero-fills it.
    let ptr = unsafe {
        nix::sys::mman::mmap_anonymous(
            None,
            bytes,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }?;
    // SAFETY: page-aligned (enough for any alignment up to a page, 128 here),
    // `len` values long, zero-filled (valid by this function's contract),
    // and never unmapped.
    Ok(unsafe { std::slice::from_raw_parts(ptr.as_ptr().cast::<T>(), len) })
}

/// Forks and returns in both processes (for `-d`). Only the master calls
/// this, before it starts any worker, while it has one thread.
pub fn fork_detach() -> nix::Result<ForkResult> {
    debug_assert_eq!(thread_count(), 1, "fork with more than one thread");
    // SAFETY: single-threaded (asserted above): the child may go on running
    // ordinary Rust code, allocator included.
    unsafe { nix::unistd::fork() }
}

/// TCP_DEFER_ACCEPT on a listening socket: a connection is queued for
/// accept only once its first bytes arrive (or after about `seconds`).
/// nix has no wrapper for this Linux option.
pub fn set_defer_accept(fd: &OwnedFd, seconds: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain setsockopt on our own socket with a pointer to a live
    // c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_ref(&seconds).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The local time zone's offset from UTC at `unix_secs`, in seconds east of
/// UTC, for the access log's `$time_local` (std knows no time zones). glibc's
/// `localtime_r` reads TZ or /etc/localtime once per process and caches it,
/// so this makes no syscall after the first call.
pub fn utc_offset(unix_secs: i64) -> Option<i32> {
    let t: libc::time_t = unix_secs;
    let mut tm = libc::tm {
        tm_sec: 0,
        tm_min: 0,
        tm_hour: 0,
        tm_mday: 0,
        tm_mon: 0,
        tm_year: 0,
        tm_wday: 0,
        tm_yday: 0,
        tm_isdst: 0,
        tm_gmtoff: 0,
        tm_zone: std::ptr::null(),
    };
    // SAFETY: both pointers are to live locals of the right types;
    // localtime_r is reentrant and keeps neither pointer after it returns.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    (!r.is_null()).then_some(tm.tm_gmtoff as i32)
}
