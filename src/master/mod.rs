//! The master: one loop of small named steps (unicorn's arbiter, nginx's
//! process cycle) and the stop phases. It binds nothing, serves nothing and
//! never blocks anywhere but in its one sleep.
//!
//! - `plan.rs`: the decisions (which slots to fill, whom to retire, how a
//!   death counts, crash backoff), pure and unit-tested;
//! - `workers.rs`: carrying them out: spawn, reap, retire, the watchdog;
//! - `reload.rs` and `upgrade.rs`: the HUP and USR2 hand-overs, each a
//!   small state machine;
//! - `report.rs`: `STATUS=` and `-s status` text, and the control socket;
//! - `maintenance.rs`: `-s maintenance on|off`.
//!
//! HTTP and client sockets are the workers'; `unsafe` is `sys.rs`'s.

mod maintenance;
mod plan;
mod reload;
mod report;
mod upgrade;
mod workers;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cli::Args;
use crate::config::Config;
use crate::control::{self, Outcome, State, StatusSocket};
use crate::exitcode;
use crate::obs::scoreboard::{self, Scoreboard};
use crate::os::daemon::Reporter;
use crate::os::exec::Exec;
use crate::os::inbox::{Inbox, Sender};
use crate::os::listener::Listener;
use crate::os::notify::{self, Watchdog};
use crate::os::pidfile::PidFile;
use crate::os::signals::{Command, Signals};

use plan::{Respawn, WorkerProc};
use reload::Reload;
use upgrade::Upgrade;

/// After TERM, workers get this long before SIGKILL.
const FAST_STOP_GRACE: Duration = Duration::from_secs(2);
/// Margin over shutdown_timeout before the master SIGKILLs on a graceful stop.
const GRACEFUL_MARGIN: Duration = Duration::from_secs(2);
/// The longest the master sleeps: it re-checks its workers at least this often.
const TICK: Duration = Duration::from_secs(1);

/// Where the master is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Stopping; workers left at `kill_at` are SIGKILLed.
    Stopping {
        graceful: bool,
        kill_at: Instant,
        killed: bool,
    },
}

/// The descriptors only the master may hold. A worker closes all of them
/// with one call ([`MasterOnly::close_in_child`]) right after fork.
struct MasterOnly {
    /// The signal queue: its self-pipe and the handlers that write to it.
    signals: Option<Signals>,
    /// The doorbell's read end (a worker keeps the write end).
    inbox: Option<Inbox>,
    status_socket: Option<StatusSocket>,
    /// `-d`: the pipe to the waiting parent, told once the first workers serve.
    reporter: Option<Reporter>,
}

impl MasterOnly {
    /// In a freshly forked worker: drops the master's signal actions and
    /// closes every master-only descriptor; returns the doorbell's
    /// sending end, the one thing of these a worker keeps.
    fn close_in_child(&mut self) -> Option<Sender> {
        if let Some(s) = self.signals.take() {
            s.forget_in_child();
        }
        self.status_socket = None;
        if let Some(r) = self.reporter.as_mut() {
            r.close();
        }
        self.inbox.take().map(Inbox::into_sender)
    }
}

pub struct Master {
    /// The command line, re-applied over the file on reload.
    args: Args,
    config: Config,
    listeners: Vec<Listener>,
    own: MasterOnly,
    pid_file: Option<PidFile>,
    /// What `-s` reads; published only when there is a pid file.
    state: State,
    exec: Exec,
    workers: Vec<WorkerProc>,
    generation: u64,
    /// How many workers should run (config, changed by TTIN/TTOU/WINCH).
    target: usize,
    respawn: Respawn,
    phase: Phase,
    pid: Pid,
    reload: Reload,
    upgrade: Upgrade,
    scoreboard: Scoreboard,
    watchdog: Watchdog,
    /// READY=1 was sent (and `-d` answered) for the first generation.
    announced: bool,
    started: Instant,
    /// The last error worth showing in STATUS= and `-s status`.
    last_error: String,
    /// stdin or stderr is a terminal: started by hand in the foreground.
    interactive: bool,
    /// The status to exit with (FAILURE when `-d` startup failed).
    exit_code: i32,
}

/// What the master starts with.
pub struct Startup {
    pub args: Args,
    pub config: Config,
    pub listeners: Vec<Listener>,
    pub signals: Signals,
    pub inbox: Inbox,
    pub pid_file: Option<PidFile>,
    pub exec: Exec,
    /// The old master, if an upgrade started us.
    pub replaces: Option<Pid>,
    pub scoreboard: Scoreboard,
    pub status_socket: Option<StatusSocket>,
    pub reporter: Option<Reporter>,
}

impl Master {
    pub fn new(s: Startup) -> Self {
        s.scoreboard.set_generation(1);
        let pid = nix::unistd::getpid();
        Master {
            target: s.config.workers,
            args: s.args,
            config: s.config,
            listeners: s.listeners,
            own: MasterOnly {
                signals: Some(s.signals),
                inbox: Some(s.inbox),
                status_socket: s.status_socket,
                reporter: s.reporter,
            },
            pid_file: s.pid_file,
            state: State {
                pid: pid.as_raw() as u32,
                reloads: 0,
                reload: Outcome::None,
                upgrades: 0,
                upgrade: Outcome::None,
            },
            exec: s.exec,
            workers: Vec::new(),
            generation: 1,
            respawn: Respawn::default(),
            phase: Phase::Running,
            pid,
            reload: Reload::Idle,
            upgrade: s.replaces.map_or(Upgrade::Idle, Upgrade::Replacing),
            scoreboard: s.scoreboard,
            watchdog: Watchdog::from_env(Instant::now()),
            announced: false,
            started: Instant::now(),
            last_error: String::new(),
            interactive: std::io::stdin().is_terminal() || std::io::stderr().is_terminal(),
            exit_code: exitcode::OK,
        }
        .with_inherited_maintenance()
    }

    /// Runs until stopped; returns the exit status.
    pub fn run(&mut self) -> i32 {
        log::info!(
            "master started version={} pid={} listen={} workers={}",
            env!("CARGO_PKG_VERSION"),
            self.pid,
            self.listen_list(),
            self.target
        );
        if !matches!(self.upgrade, Upgrade::Replacing(_)) {
            self.publish();
        }
        self.maintain_worker_count(Instant::now());
        log::info!(
            "master ready pid={} workers={}",
            self.pid,
            self.workers.len()
        );
        loop {
            let now = Instant::now();
            self.reap_children(now);
            self.read_scoreboard();
            self.answer_status();
            while let Some(command) = self.own.signals.as_mut().and_then(Signals::next_command) {
                self.handle(command, now);
            }
            if self.is_done() {
                break;
            }
            self.kill_hung_workers();
            self.maintain_worker_count(now);
            self.advance_shutdown(now);
            self.sleep(now);
        }
        log::info!("master exiting pid={}", self.pid);
        self.remove_files();
        self.exit_code
    }

    /// Sleeps until a signal, the doorbell, a `-s status` client, or the
    /// next deadline.
    fn sleep(&mut self, now: Instant) {
        let mut next = self.next_deadline(now);
        if let Some(t) = self.watchdog.tick(now) {
            next = next.min(t);
        }
        let timeout = next.saturating_duration_since(Instant::now());
        if let Some(s) = &self.own.signals {
            let fds: Vec<_> = self
                .own
                .inbox
                .as_ref()
                .map(Inbox::fd)
                .into_iter()
                .chain(self.own.status_socket.as_ref().map(StatusSocket::fd))
                .collect();
            s.sleep(timeout, &fds);
        }
    }

    /// On exit: the pid file, and the state file and status socket if they
    /// are still ours (after an upgrade the new master has replaced both).
    fn remove_files(&self) {
        if let Some(p) = &self.pid_file {
            p.remove();
            let state = control::state_path(p.path_original());
            if State::read(&state).is_some_and(|s| s.pid == self.state.pid) {
                let _ = std::fs::remove_file(state);
                if let Some(s) = &self.own.status_socket {
                    s.remove();
                }
            }
        }
    }

    /// Writes the state file `-s` reads, if there is a pid file.
    fn publish(&self) {
        if let Some(p) = &self.pid_file {
            if let Err(e) = self.state.write(&control::state_path(p.path_original())) {
                log::warn!("cannot write state file: {e}");
            }
        }
    }

    fn handle(&mut self, command: Command, now: Instant) {
        log::info!("master command={}", command.name());
        match command {
            Command::FastStop => self.begin_stop(false, now),
            Command::GracefulStop => self.begin_stop(true, now),
            Command::Reload => self.start_reload(),
            Command::Upgrade => self.start_upgrade(),
            // Job-control signals come from a terminal too (resizing it
            // sends WINCH): as in nginx and unicorn they act only when the
            // master is not attached to one.
            Command::StopWorkers | Command::AddWorker | Command::RemoveWorker
                if self.interactive =>
            {
                log::warn!(
                    "master command={} ignored: attached to a terminal",
                    command.name()
                );
            }
            Command::StopWorkers => self.target = 0,
            Command::AddWorker if self.target >= scoreboard::MAX_WORKERS => {
                log::warn!(
                    "master command=add-worker ignored: already {} workers",
                    self.target
                );
            }
            Command::AddWorker => self.target += 1,
            // Never fewer than one, and nothing to do while stopped by WINCH.
            Command::RemoveWorker => {
                self.target = self.target.saturating_sub(1).max(self.target.min(1))
            }
            Command::ReopenLogs => {
                crate::obs::log::reopen();
                // As root: create the access log if rotation moved it and
                // give it to the workers' user before they reopen it.
                if let Err(e) = crate::obs::access_log::prepare(
                    self.config.access_log.as_ref(),
                    self.config.user.as_ref(),
                ) {
                    log::warn!("access log: cannot prepare the file for reopening: {e}");
                }
                self.signal_each_worker(Signal::SIGUSR1);
            }
        }
    }

    /// The current generation serves: a pending reload is done, a master
    /// we replace is told to go, and the first time, systemd and `-d` hear
    /// that we are ready. (Older workers were retired by the plan.)
    fn on_generation_ready(&mut self) {
        self.finish_reload();
        self.take_over();
        if !self.announced {
            self.announced = true;
            notify::ready(&self.summary());
            if let Some(r) = self.own.reporter.as_mut() {
                r.ready();
            }
        }
    }

    fn begin_stop(&mut self, graceful: bool, now: Instant) {
        match self.phase {
            // A fast stop overrides a graceful one under way; nothing else changes a stop.
            Phase::Stopping { graceful: true, .. } if !graceful => {}
            Phase::Stopping { .. } => return,
            Phase::Running => {}
        }
        let (signal, budget) = if graceful {
            (
                Signal::SIGQUIT,
                self.config.shutdown_timeout + GRACEFUL_MARGIN,
            )
        } else {
            (Signal::SIGTERM, FAST_STOP_GRACE)
        };
        log::info!(
            "master stopping mode={}",
            if graceful { "graceful" } else { "fast" }
        );
        if !matches!(self.upgrade, Upgrade::Spawned(_)) {
            // Replaced by a new master (it QUIT us), the service goes on.
            notify::stopping();
        }
        self.phase = Phase::Stopping {
            graceful,
            kill_at: now + budget,
            killed: false,
        };
        self.signal_each_worker(signal);
        // Nothing is accepted any more by this master's workers; release
        // the ports now (nginx closes its listeners on QUIT too).
        self.listeners.clear();
    }

    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. }) && self.workers.is_empty()
    }

    /// SIGKILLs workers left when the stop's time is up.
    fn advance_shutdown(&mut self, now: Instant) {
        if let Phase::Stopping {
            kill_at,
            killed: false,
            graceful,
        } = self.phase
        {
            if now >= kill_at {
                for w in &self.workers {
                    log::warn!(
                        "worker={} pid={} still running at stop deadline: SIGKILL",
                        w.slot,
                        w.pid
                    );
                    let _ = kill(w.pid, Signal::SIGKILL);
                }
                self.phase = Phase::Stopping {
                    graceful,
                    kill_at,
                    killed: true,
                };
            }
        }
    }

    /// When the loop must look again even if no signal comes.
    fn next_deadline(&self, now: Instant) -> Instant {
        let mut next = now + TICK;
        if let Phase::Stopping {
            kill_at,
            killed: false,
            ..
        } = self.phase
        {
            next = next.min(kill_at);
        }
        if let Some(t) = self.respawn.next_deadline(now) {
            next = next.min(t);
        }
        next
    }
}
