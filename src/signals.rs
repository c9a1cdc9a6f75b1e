//! The signal queue: handlers only count and wake the master through a
//! self-pipe (unicorn's `@sig_queue`, gunicorn's "just queue the signal");
//! the master loop turns the counts into [`Command`](crate::signals::Command)s in nginx's fixed order.
//! Also the worker's side: flags plus a wake-up pipe for its epoll loop.
//!
//! Acting on a command is the master's and the worker's job, not this file's.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use signal_hook::consts::*;
use signal_hook::SigId;

use crate::sys;

/// What an operator asks of the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// TERM, INT: stop now.
    FastStop,
    /// QUIT: let workers finish what they have, then stop.
    GracefulStop,
    /// USR2: start the new binary.
    Upgrade,
    /// HUP: reread the config, replace the workers.
    Reload,
    /// WINCH: drain every worker, keep the master.
    StopWorkers,
    /// TTIN: one worker more.
    AddWorker,
    /// TTOU: one worker fewer.
    RemoveWorker,
    /// USR1: reopen logs.
    ReopenLogs,
}

/// Signals the master handles, in the order their commands are taken
/// (nginx's: stop, quit, upgrade, reload, winch, ttin/ttou, usr1); SIGCHLD
/// only wakes the loop, which reaps on every turn.
const TABLE: [(i32, Option<Command>); 10] = [
    (SIGTERM, Some(Command::FastStop)),
    (SIGINT, Some(Command::FastStop)),
    (SIGQUIT, Some(Command::GracefulStop)),
    (SIGUSR2, Some(Command::Upgrade)),
    (SIGHUP, Some(Command::Reload)),
    (SIGWINCH, Some(Command::StopWorkers)),
    (SIGTTIN, Some(Command::AddWorker)),
    (SIGTTOU, Some(Command::RemoveWorker)),
    (SIGUSR1, Some(Command::ReopenLogs)),
    (SIGCHLD, None),
];

/// One counter per TABLE row, bumped by the handlers.
static COUNTS: [AtomicUsize; TABLE.len()] = [const { AtomicUsize::new(0) }; TABLE.len()];

/// The master's signal queue.
pub struct Signals {
    ids: Vec<SigId>,
    wake_rx: OwnedFd,
    // Written by the handlers; kept open as long as they are registered.
    _wake_tx: OwnedFd,
    /// Counts already turned into commands.
    taken: [usize; TABLE.len()],
}

impl Command {
    /// The name log lines use.
    pub fn name(self) -> &'static str {
        match self {
            Command::FastStop => "fast-stop",
            Command::GracefulStop => "graceful-stop",
            Command::Upgrade => "upgrade",
            Command::Reload => "reload",
            Command::StopWorkers => "stop-workers",
            Command::AddWorker => "add-worker",
            Command::RemoveWorker => "remove-worker",
            Command::ReopenLogs => "reopen-logs",
        }
    }
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        let (wake_rx, wake_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let mut ids = Vec::new();
        for (i, (sig, _)) in TABLE.iter().enumerate() {
            ids.push(sys::count_signal(*sig, &COUNTS[i], wake_tx.as_raw_fd())?);
        }
        Ok(Signals {
            ids,
            wake_rx,
            _wake_tx: wake_tx,
            taken: [0; TABLE.len()],
        })
    }

    /// The set of handled signals, to block around fork.
    pub fn set() -> SigSet {
        let mut set = SigSet::empty();
        for (sig, _) in TABLE {
            if let Ok(s) = Signal::try_from(sig) {
                set.add(s);
            }
        }
        set
    }

    /// The next queued command, in priority order.
    pub fn next_command(&mut self) -> Option<Command> {
        for (i, (_, command)) in TABLE.iter().enumerate() {
            let count = COUNTS[i].load(Ordering::SeqCst);
            if count != self.taken[i] {
                self.taken[i] += 1;
                if command.is_some() {
                    return *command;
                }
            }
        }
        None
    }

    /// Sleeps until a signal comes, one of `also` is readable, or `timeout` passes.
    pub fn sleep(&self, timeout: Duration, also: &[BorrowedFd]) {
        let ms = timeout.as_millis().min(60_000) as u16;
        let mut fds = vec![PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN)];
        fds.extend(also.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)));
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(ms));
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&self.wake_rx, &mut buf), Ok(n) if n > 0) {}
    }

    /// In a freshly forked worker: drop the master's actions and close the
    /// pipe. Unregistered signals are then ignored (signal-hook keeps its
    /// handler installed) until the worker registers its own.
    pub fn forget_in_child(self) {
        drop(self);
    }
}

impl Drop for Signals {
    /// The actions write to `wake_tx`: unregister them before it closes.
    fn drop(&mut self) {
        for id in &self.ids {
            signal_hook::low_level::unregister(*id);
        }
    }
}

/// The worker's signals: flags the event loop reads, and a socket it polls
/// so that a signal wakes `epoll_wait` at once.
pub struct WorkerSignals {
    /// QUIT: drain and exit.
    pub quit: Arc<AtomicBool>,
    /// TERM, INT: exit now.
    pub terminate: Arc<AtomicBool>,
    /// USR1: reopen logs.
    pub reopen: Arc<AtomicBool>,
    pub wake: UnixStream,
}

impl WorkerSignals {
    pub fn install() -> std::io::Result<WorkerSignals> {
        let (wake, tx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let quit = Arc::new(AtomicBool::new(false));
        let terminate = Arc::new(AtomicBool::new(false));
        let reopen = Arc::new(AtomicBool::new(false));
        for (sig, flag) in [
            (SIGQUIT, &quit),
            (SIGTERM, &terminate),
            (SIGINT, &terminate),
            (SIGUSR1, &reopen),
        ] {
            signal_hook::flag::register(sig, Arc::clone(flag))?;
            signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
        }
        Ok(WorkerSignals {
            quit,
            terminate,
            reopen,
            wake,
        })
    }

    /// Empties the wake-up socket.
    pub fn drain_wake(&self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
    }
}
