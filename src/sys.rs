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

/// Forks a worker. The child runs `body` and exits with its code; it never
/// returns from here, so no master destructor (pid file, listeners) ever runs
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

/// Takes ownership of the `n` file descriptors from 3 up that the parent
/// process passed (`LISTEN_FDS`). Call once, at startup, and only after
/// `LISTEN_PID` named this process: then these descriptors were passed for
/// us to own, and nothing else in the process refers to them.
pub fn take_listen_fds(n: i32) -> std::io::Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for fd in 3..3 + n {
        // Refuse a descriptor that is not open rather than own a stranger's number.
        nix::fcntl::fcntl(
            // SAFETY: F_GETFD on any number is harmless; the borrow ends here.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_GETFD,
        )?;
        // SAFETY: see the function's contract: the fd is open and ours alone.
        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(fds)
}

/// In a freshly forked child: places `fds` at 3, 4, … (without CLOEXEC),
/// sets `LISTEN_FDS`/`LISTEN_PID` (this process's pid, which exec keeps)
/// in `env`, and execs `exe`. Returns only if exec failed.
pub fn exec_with_listen_fds(
    exe: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    mut env: Vec<std::ffi::CString>,
    fds: &[RawFd],
) -> nix::errno::Errno {
    use nix::errno::Errno;
    // First move every fd above the target range so that placing one at
    // 3+i never overwrites another still to be placed.
    let mut high = Vec::with_capacity(fds.len());
    for &fd in fds {
        // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor; no memory is touched.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3 + fds.len() as i32) };
        if new < 0 {
            return Errno::last();
        }
        high.push(new);
    }
    for (i, &fd) in high.iter().enumerate() {
        // SAFETY: dup2 onto 3+i: whatever was there is ours to replace (we
        // are about to exec), and the copy it makes is not CLOEXEC.
        if unsafe { libc::dup2(fd, 3 + i as i32) } < 0 {
            return Errno::last();
        }
    }
    let Ok(pid) = std::ffi::CString::new(format!("LISTEN_PID={}", std::process::id())) else {
        return Errno::EINVAL;
    };
    env.push(pid);
    match nix::unistd::execve(exe, argv, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// Maps `len` zeroed scoreboard slots shared by the master and every worker
/// it forks later (`MAP_SHARED | MAP_ANONYMOUS`). Never unmapped: the
/// slice lives as long as the process.
pub fn map_scoreboard(len: usize) -> nix::Result<&'static [crate::scoreboard::Slot]> {
    use nix::sys::mman::{MapFlags, ProtFlags};
    let bytes =
        std::num::NonZeroUsize::new(len.max(1) * std::mem::size_of::<crate::scoreboard::Slot>())
            .expect("a non-empty scoreboard");
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
    // SAFETY: the mapping is page-aligned (enough for the atomics in Slot),
    // `len` slots long, zero-filled (all-zero atomics are valid values),
    // only ever accessed through atomics, and never unmapped.
    Ok(unsafe {
        std::slice::from_raw_parts(ptr.as_ptr().cast::<crate::scoreboard::Slot>(), len.max(1))
    })
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
