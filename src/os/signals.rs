//! The signal queue: handlers only count and wake the master through a
//! self-pipe (unicorn's `@sig_queue`, gunicorn's "just queue the signal");
//! the master loop turns the counts into [`Command`](crate::os::signals::Command)s in nginx's fixed order.
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

use crate::os::sys;

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

/// One row of the signal table: what a signal means to the master, the
/// `-s` word that sends it, and the words `--help` shows for it.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub signal: Signal,
    /// None: the signal only wakes the loop (SIGCHLD: it reaps every turn).
    pub command: Option<Command>,
    /// The `-s` word that sends it, if any.
    pub word: Option<&'static str>,
    /// What it does, for `--help`.
    pub help: &'static str,
}

const fn row(
    signal: Signal,
    command: Command,
    word: Option<&'static str>,
    help: &'static str,
) -> Row {
    Row {
        signal,
        command: Some(command),
        word,
        help,
    }
}

/// The one signal table (nginx's `signals[]`): the master's handlers, the
/// command each signal becomes, the `-s` words and the help text all come
/// from here. Rows are in the order commands are taken (nginx's: stop,
/// quit, upgrade, reload, winch, ttin/ttou, usr1).
pub const TABLE: [Row; 10] = [
    row(
        Signal::SIGTERM,
        Command::FastStop,
        Some("stop"),
        "fast stop",
    ),
    row(Signal::SIGINT, Command::FastStop, None, "fast stop"),
    row(
        Signal::SIGQUIT,
        Command::GracefulStop,
        Some("quit"),
        "graceful stop",
    ),
    row(
        Signal::SIGUSR2,
        Command::Upgrade,
        Some("upgrade"),
        "upgrade",
    ),
    row(Signal::SIGHUP, Command::Reload, Some("reload"), "reload"),
    row(Signal::SIGWINCH, Command::StopWorkers, None, "stop workers"),
    row(Signal::SIGTTIN, Command::AddWorker, None, "one worker more"),
    row(
        Signal::SIGTTOU,
        Command::RemoveWorker,
        None,
        "one worker fewer",
    ),
    row(
        Signal::SIGUSR1,
        Command::ReopenLogs,
        Some("reopen"),
        "reopen logs",
    ),
    Row {
        signal: Signal::SIGCHLD,
        command: None,
        word: None,
        help: "",
    },
];

/// What `-s` can ask: send a command's signal, read the status, or switch
/// maintenance on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the signal of this table row's command.
    Send(Command),
    /// Ask the status socket.
    Status,
    /// `-s maintenance on|off`: ask the master over the control socket
    /// (no signal carries an argument).
    Maintenance(bool),
}

/// The `-s` word that reads the status (it sends no signal).
const STATUS_WORD: &str = "status";
/// The `-s` word that switches maintenance; `on` or `off` follows it.
pub const MAINTENANCE_WORD: &str = "maintenance";

impl Action {
    /// Every `-s` word that stands alone, in table order, then `status`
    /// (`maintenance` takes an argument: see [`Action::maintenance`]).
    pub fn words() -> impl Iterator<Item = &'static str> {
        TABLE
            .iter()
            .filter_map(|r| r.word)
            .chain(std::iter::once(STATUS_WORD))
    }

    /// `-s maintenance ARG`: `on` or `off`.
    pub fn maintenance(arg: &str) -> Option<Action> {
        match arg {
            "on" => Some(Action::Maintenance(true)),
            "off" => Some(Action::Maintenance(false)),
            _ => None,
        }
    }

    /// The signal it sends; `status` and `maintenance` ask over the
    /// control socket instead.
    pub fn signal(self) -> Option<Signal> {
        match self {
            Action::Send(command) => TABLE
                .iter()
                .find(|r| r.command == Some(command) && r.word.is_some())
                .map(|r| r.signal),
            Action::Status | Action::Maintenance(_) => None,
        }
    }
}

impl std::str::FromStr for Action {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        if s == STATUS_WORD {
            return Ok(Action::Status);
        }
        TABLE
            .iter()
            .find(|r| r.word == Some(s))
            .and_then(|r| r.command)
            .map(Action::Send)
            .ok_or(())
    }
}

/// `--help`'s line on signals, from the table: signals that do the same
/// share an entry ("TERM/INT fast stop").
pub fn help() -> String {
    let mut entries: Vec<(String, &str)> = Vec::new();
    for r in TABLE.iter().filter(|r| r.command.is_some()) {
        let name = r.signal.as_str().trim_start_matches("SIG");
        match entries.iter_mut().find(|(_, h)| *h == r.help) {
            Some((names, _)) => {
                names.push('/');
                names.push_str(name);
            }
            None => entries.push((name.to_owned(), r.help)),
        }
    }
    let mut text = String::from("signals to the master:");
    let mut line = text.len();
    for (i, (names, what)) in entries.iter().enumerate() {
        let sep = if i + 1 < entries.len() { "," } else { "" };
        let entry = format!("{names} {what}{sep}");
        // Wrapped at 72 columns, as the rest of --help.
        if line + 1 + entry.len() > 72 {
            text.push('\n');
            line = 0;
        } else {
            text.push(' ');
            line += 1;
        }
        line += entry.len();
        text.push_str(&entry);
    }
    text.push('\n');
    text
}

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
        for (i, row) in TABLE.iter().enumerate() {
            ids.push(sys::count_signal(
                row.signal as i32,
                &COUNTS[i],
                wake_tx.as_raw_fd(),
            )?);
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
        for row in TABLE {
            set.add(row.signal);
        }
        set
    }

    /// Runs `f` (a fork) with the master's signals blocked, so that none is
    /// handled in the child before it replaces the master's handlers (a
    /// worker) or execs (a new master); the mask is restored after. Fails,
    /// without running `f`, only if the mask cannot be changed.
    pub fn blocked<T>(f: impl FnOnce() -> T) -> nix::Result<T> {
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&Signals::set()),
            Some(&mut old),
        )?;
        let out = f();
        // Restoring a mask we just read cannot fail (EINVAL is for a bad `how`).
        let _ = old.thread_set_mask();
        Ok(out)
    }

    /// The next queued command, in priority order.
    pub fn next_command(&mut self) -> Option<Command> {
        for (i, row) in TABLE.iter().enumerate() {
            let count = COUNTS[i].load(Ordering::SeqCst);
            if count != self.taken[i] {
                self.taken[i] += 1;
                if row.command.is_some() {
                    return row.command;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_parses_back_to_its_signal() {
        let words: Vec<&str> = Action::words().collect();
        assert_eq!(
            words,
            ["stop", "quit", "upgrade", "reload", "reopen", "status"]
        );
        for w in words {
            let action: Action = w.parse().unwrap();
            assert_eq!(action.signal().is_none(), w == "status", "{w}");
        }
        assert_eq!(
            "reload".parse::<Action>().unwrap().signal(),
            Some(Signal::SIGHUP)
        );
        assert_eq!(
            "stop".parse::<Action>().unwrap().signal(),
            Some(Signal::SIGTERM)
        );
        assert!("restart".parse::<Action>().is_err());
        assert!(MAINTENANCE_WORD.parse::<Action>().is_err(), "needs on|off");
        assert_eq!(Action::maintenance("on"), Some(Action::Maintenance(true)));
        assert_eq!(Action::maintenance("off"), Some(Action::Maintenance(false)));
        assert_eq!(Action::maintenance("maybe"), None);
        assert_eq!(Action::Maintenance(true).signal(), None);
    }

    #[test]
    fn help_groups_signals_that_do_the_same() {
        let h = help();
        assert!(h.contains("TERM/INT fast stop"), "{h}");
        assert!(h.contains("HUP reload"), "{h}");
        assert!(!h.contains("CHLD"), "{h}");
    }

    #[test]
    fn every_command_has_a_signal() {
        let mut seen: Vec<Command> = Vec::new();
        for c in TABLE.iter().filter_map(|r| r.command) {
            if !seen.contains(&c) {
                seen.push(c);
            }
        }
        // `Command` has eight variants: each needs a row of its own.
        assert_eq!(seen.len(), 8, "a command without a row: {seen:?}");
    }
}
