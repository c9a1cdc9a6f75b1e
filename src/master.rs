//! The master: the worker table, signal dispatch, reaping, respawning with
//! crash backoff, and the shutdown phases. It binds nothing, serves nothing
//! and never blocks anywhere but in its one sleep; each loop turn is a fixed
//! sequence of small steps (unicorn's arbiter, nginx's process cycle).
//!
//! HTTP and client sockets are the workers'; `unsafe` is `sys.rs`'s.

use std::io::IsTerminal;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cli::Args;
use crate::config::{self, Config};
use crate::control::{self, State, StatusSocket};
use crate::daemon::Reporter;
use crate::inbox::Inbox;
use crate::listener::{self, Listener};
use crate::notify::{self, Watchdog};
use crate::pidfile::PidFile;
use crate::scoreboard::{self, Scoreboard, WorkerState};
use crate::signals::{Command, Signals};
use crate::upgrade::{self, Exec};
use crate::{exitcode, sys, worker};

/// A worker that dies younger than this crashed (it did not get to serve).
const CRASH_LIFETIME: Duration = Duration::from_secs(1);
/// After TERM, workers get this long before SIGKILL.
const FAST_STOP_GRACE: Duration = Duration::from_secs(2);
/// Margin over shutdown_timeout before the master SIGKILLs on a graceful stop.
const GRACEFUL_MARGIN: Duration = Duration::from_secs(2);

/// Consecutive crashes before any worker served after which `-d` reports
/// failure instead of waiting on.
const DAEMON_GIVE_UP: u32 = 5;
/// The longest the master sleeps: it re-checks its workers at least this often.
const TICK: Duration = Duration::from_secs(1);

/// One running worker process.
#[derive(Debug, Clone, Copy)]
struct WorkerProc {
    /// Its place in the table: 0..workers.
    slot: usize,
    pid: Pid,
    started: Instant,
    /// Which configuration it runs: bumped by every reload.
    generation: u64,
    /// It said it accepts (through the inbox).
    ready: bool,
    /// Draining (told to, or on its own); it no longer fills its slot.
    retiring: bool,
    /// Its scoreboard slot.
    board: usize,
    /// SIGKILLed by the watchdog; waiting to be reaped.
    killed: bool,
}

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

pub struct Master {
    /// The command line, re-applied over the file on reload.
    args: Args,
    config: Config,
    listeners: Vec<Listener>,
    signals: Option<Signals>,
    inbox: Option<Inbox>,
    pid_file: Option<PidFile>,
    /// What `-s` reads; published only when there is a pid file.
    state: State,
    exec: Exec,
    workers: Vec<WorkerProc>,
    generation: u64,
    /// How many workers should run (config, changed by TTIN/TTOU/WINCH).
    target: usize,
    backoff: Backoff,
    phase: Phase,
    pid: Pid,
    /// A reload waits for its new workers before it counts as done.
    reload_pending: bool,
    /// The new master started by USR2, until it takes over or fails.
    upgrade: Option<Pid>,
    /// The master we replace (USR2), to QUIT once our workers serve.
    replaces: Option<Pid>,
    scoreboard: Scoreboard,
    status_socket: Option<StatusSocket>,
    watchdog: Watchdog,
    /// `-d`: the waiting parent, told once the first workers serve.
    reporter: Option<Reporter>,
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
    pub replaces: Option<Pid>,
    pub scoreboard: Scoreboard,
    pub status_socket: Option<StatusSocket>,
    pub reporter: Option<Reporter>,
}

impl Master {
    pub fn new(s: Startup) -> Self {
        let pid = nix::unistd::getpid();
        Master {
            target: s.config.workers,
            args: s.args,
            config: s.config,
            listeners: s.listeners,
            signals: Some(s.signals),
            inbox: Some(s.inbox),
            pid_file: s.pid_file,
            state: State {
                pid: pid.as_raw() as u32,
                reloads: 0,
                reload: "none".into(),
                upgrades: 0,
                upgrade: "none".into(),
            },
            exec: s.exec,
            workers: Vec::new(),
            generation: 1,
            backoff: Backoff::default(),
            phase: Phase::Running,
            pid,
            reload_pending: false,
            upgrade: None,
            replaces: s.replaces,
            scoreboard: s.scoreboard,
            status_socket: s.status_socket,
            watchdog: Watchdog::from_env(Instant::now()),
            reporter: s.reporter,
            announced: false,
            started: Instant::now(),
            last_error: String::new(),
            interactive: std::io::stdin().is_terminal() || std::io::stderr().is_terminal(),
            exit_code: exitcode::OK,
        }
        .with_inherited_maintenance()
    }

    /// Maintenance: the switch a master we replace (USR2) passed on.
    fn with_inherited_maintenance(self) -> Self {
        if upgrade::inherited_maintenance() {
            self.set_maintenance(true);
        }
        self
    }

    /// `-s maintenance on|off`: every worker (and every worker started
    /// later, reloads included) answers with `[maintenance]`, health routes
    /// excepted. Returns the answer for `-s`.
    fn set_maintenance(&self, on: bool) -> String {
        let word = if on { "on" } else { "off" };
        if let Some(new) = self.upgrade {
            // The new master got the switch at its start: a change now
            // would be lost when it takes over.
            log::warn!("master maintenance={word} refused: upgrade to pid={new} in progress");
            return format!(
                "error: an upgrade is in progress (new master pid={new}); switch once it is done\n"
            );
        }
        log::info!("master maintenance={word}");
        self.scoreboard.set_maintenance(on);
        format!("maintenance {word}\n")
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
        if self.replaces.is_none() {
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
            self.read_inbox();
            self.answer_status();
            while let Some(command) = self.signals.as_mut().and_then(Signals::next_command) {
                self.handle(command, now);
            }
            if self.is_done() {
                break;
            }
            self.kill_hung_workers();
            self.maintain_worker_count(now);
            self.advance_shutdown(now);
            let mut next = self.next_deadline(now);
            if let Some(t) = self.watchdog.tick(now) {
                next = next.min(t);
            }
            let sleep = next.saturating_duration_since(Instant::now());
            if let Some(s) = &self.signals {
                let fds: Vec<_> = self
                    .inbox
                    .as_ref()
                    .map(Inbox::fd)
                    .into_iter()
                    .chain(self.status_socket.as_ref().map(StatusSocket::fd))
                    .collect();
                s.sleep(sleep, &fds);
            }
        }
        log::info!("master exiting pid={}", self.pid);
        if let Some(p) = &self.pid_file {
            p.remove();
            let state = control::state_path(p.path_original());
            if State::read(&state).is_some_and(|s| s.pid == self.state.pid) {
                let _ = std::fs::remove_file(state);
                // The state and the socket go together: after an upgrade
                // the new master has replaced both.
                if let Some(s) = &self.status_socket {
                    s.remove();
                }
            }
        }
        self.exit_code
    }

    fn listen_list(&self) -> String {
        let addrs: Vec<String> = self.listeners.iter().map(|l| l.addr.to_string()).collect();
        addrs.join(",")
    }

    /// Writes the state file `-s` reads, if there is a pid file.
    fn publish(&self) {
        if let Some(p) = &self.pid_file {
            if let Err(e) = self.state.write(&control::state_path(p.path_original())) {
                log::warn!("cannot write state file: {e}");
            }
        }
    }

    /// Reaps every exited child: `waitpid(-1, WNOHANG)` until none is left.
    fn reap_children(&mut self, now: Instant) {
        loop {
            let (pid, how, clean) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    (pid, format!("exited status={code}"), code == 0)
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid, format!("killed signal={}", sig.as_str()), false)
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("waitpid failed: {e}");
                    return;
                }
            };
            if self.upgrade == Some(pid) {
                self.upgrade_failed(&format!("new master pid={pid} {how}"));
                continue;
            }
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                log::info!("child pid={pid} {how}");
                continue;
            };
            let w = self.workers.swap_remove(i);
            self.scoreboard.release(w.board);
            let lifetime = now.saturating_duration_since(w.started);
            // A worker that leaves on its own with status 0 was recycled, not crashed.
            let crashed =
                self.phase == Phase::Running && !w.retiring && !clean && lifetime < CRASH_LIFETIME;
            if crashed {
                let delay = self.backoff.record_crash(now);
                log::error!(
                    "worker={} pid={pid} {how} after {}ms: crashed, respawn in {}ms",
                    w.slot,
                    lifetime.as_millis(),
                    delay.as_millis()
                );
                self.last_error = format!(
                    "worker crash loop: {how}, respawn in {}ms",
                    delay.as_millis()
                );
                notify::status(&self.summary());
                if !self.announced && self.backoff.crashes >= DAEMON_GIVE_UP {
                    if let Some(r) = self.reporter.as_mut() {
                        // `-d` is still waiting: tell it, and stop rather than
                        // leave a daemon the command said had failed.
                        r.failed(&format!("workers keep crashing ({how}); see the log"));
                        self.exit_code = exitcode::FAILURE;
                        self.begin_stop(false, now);
                    }
                }
            } else {
                log::info!("worker={} pid={pid} {how}", w.slot);
            }
        }
    }

    /// Takes what workers changed from the scoreboard (the inbox only
    /// wakes us): a worker that accepts is ready; one draining on its own
    /// (max_requests_per_worker) no longer fills its slot.
    fn read_inbox(&mut self) {
        if let Some(inbox) = &self.inbox {
            inbox.drain();
        }
        for w in self.workers.iter_mut() {
            match self.scoreboard.slot(w.board).state.load(Relaxed) {
                s if s == WorkerState::Accepting as u32 => w.ready = true,
                s if s == WorkerState::Draining as u32 && !w.retiring => {
                    log::info!("worker={} pid={} retiring on its own", w.slot, w.pid);
                    w.retiring = true;
                }
                _ => {}
            }
        }
    }

    fn handle(&mut self, command: Command, now: Instant) {
        log::info!("master command={}", command.name());
        match command {
            Command::FastStop => self.begin_stop(false, now),
            Command::GracefulStop => self.begin_stop(true, now),
            Command::Reload => self.reload(),
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
                crate::log::reopen();
                self.signal_each_worker(Signal::SIGUSR1);
            }
        }
    }

    /// HUP: validate the whole config first; on error keep everything and
    /// say why. Otherwise bind new addresses, start a new generation of
    /// workers, and drain the old one once the new one runs
    /// (`maintain_worker_count`).
    fn reload(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        self.state.reloads += 1;
        notify::reloading();
        match self.prepare_reload() {
            Ok(()) => {
                self.generation += 1;
                self.target = self.config.workers;
                self.reload_pending = true;
                log::info!(
                    "reload generation={} listen={} workers={}",
                    self.generation,
                    self.listen_list(),
                    self.target
                );
            }
            Err(e) => {
                let reason = format!("{e:#}");
                log::error!("reload failed: {reason}");
                self.state.reload = format!("failed: {reason}");
                self.last_error = format!("reload failed: {reason}");
                self.publish();
                // Still serving the old config: systemd must see us ready again.
                notify::ready(&self.summary());
            }
        }
    }

    /// Loads the config and rebinds; changes nothing unless all of it works.
    fn prepare_reload(&mut self) -> anyhow::Result<()> {
        let mut config = config::load(&self.args)?;
        if !config.listen_given {
            // Sockets we were handed (systemd, upgrade) stay what we listen on.
            config.listen = self.listeners.iter().map(|l| l.addr).collect();
        }
        // Old workers keep their own copies of dropped listeners until they
        // drain; the master's copies go now, so new workers never get them.
        listener::reconcile(&mut self.listeners, &config.listen, config.backlog)?;
        crate::log::init(&config.log);
        self.config = config;
        Ok(())
    }

    /// USR2: start the new binary with our sockets; it QUITs us when it serves.
    fn start_upgrade(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        self.state.upgrades += 1;
        if let Some(pid) = self.upgrade {
            log::warn!("upgrade already in progress (new master pid={pid}); ignored");
            // `-s upgrade` goes on waiting for the one under way.
            self.publish();
            return;
        }
        if let Some(p) = self.pid_file.as_mut() {
            if let Err(e) = p.rename_to_oldbin() {
                log::error!("upgrade failed: cannot rename the pid file: {e}");
                return;
            }
        }
        let blocked = Signals::set();
        let mut old_mask = SigSet::empty();
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut old_mask));
        let result = upgrade::spawn_new_master(
            &self.exec,
            &self.args,
            &self.listeners,
            self.pid,
            self.scoreboard.maintenance(),
        );
        let _ = old_mask.thread_set_mask();
        match result {
            Ok(pid) => {
                log::info!(
                    "upgrade started new master pid={pid} exe={}",
                    self.exec.exe.display()
                );
                self.upgrade = Some(pid);
                self.state.upgrade = format!("started new={pid}");
                self.publish();
            }
            Err(e) => self.upgrade_failed(&format!("{e:#}")),
        }
    }

    fn upgrade_failed(&mut self, why: &str) {
        self.upgrade = None;
        if self.phase != Phase::Running {
            // The new master took over and we are draining: nothing to undo.
            log::info!("{why}");
            return;
        }
        log::error!("upgrade failed: {why}; the old master carries on");
        if let Some(p) = self.pid_file.as_mut() {
            let original = p.path_original().to_owned();
            if let Err(e) = p.restore(&original) {
                log::error!("cannot take the pid file back: {e:#}");
            }
        }
        self.state.upgrade = format!("failed: {why}");
        self.publish();
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
        if self.upgrade.is_none() {
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

    fn signal_each_worker(&self, signal: Signal) {
        for w in &self.workers {
            let _ = kill(w.pid, signal);
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. }) && self.workers.is_empty()
    }

    /// Spawns workers into empty slots (after any crash backoff), retires
    /// workers above the target, and drains older generations once the
    /// current one is complete and accepting.
    fn maintain_worker_count(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        self.backoff.forget_if_healthy(&self.workers, now);
        let (generation, target) = (self.generation, self.target);
        for w in self.workers.iter_mut() {
            if !w.retiring && w.generation == generation && w.slot >= target {
                retire(w);
            }
        }
        for slot in 0..self.target {
            let filled = self
                .workers
                .iter()
                .any(|w| w.slot == slot && w.generation == generation && !w.retiring);
            if filled {
                continue;
            }
            if !self.backoff.may_spawn(now) {
                break;
            }
            self.spawn_worker(slot, now);
        }
        let complete = (0..target).all(|slot| {
            self.workers
                .iter()
                .any(|w| w.slot == slot && w.generation == generation && !w.retiring && w.ready)
        });
        if complete {
            self.on_generation_ready();
        }
    }

    /// The current generation serves: old workers drain, a pending reload
    /// is done, and a master we replace is told to go.
    fn on_generation_ready(&mut self) {
        let generation = self.generation;
        for w in self.workers.iter_mut() {
            if !w.retiring && w.generation < generation {
                retire(w);
            }
        }
        if self.reload_pending {
            self.reload_pending = false;
            log::info!("reload done generation={generation}");
            self.state.reload = "ok".into();
            self.publish();
            notify::ready(&self.summary());
        }
        if let Some(old) = self.replaces.take_if(|_| self.target > 0) {
            // Become the service's main process before the old one goes.
            notify::ready_as_main(&self.summary());
            self.announced = true;
            if let Some(p) = &self.pid_file {
                match StatusSocket::bind(p.path_original()) {
                    Ok(s) => self.status_socket = Some(s),
                    Err(e) => log::warn!("cannot take over the status socket: {e}"),
                }
            }
            log::info!("upgrade: telling old master pid={old} to drain");
            let _ = kill(old, Signal::SIGQUIT);
            self.state.upgrade = format!("from={old}");
            self.publish();
        }
        if !self.announced {
            self.announced = true;
            notify::ready(&self.summary());
            if let Some(r) = self.reporter.as_mut() {
                r.ready();
            }
        }
    }

    fn spawn_worker(&mut self, slot: usize, now: Instant) {
        let blocked = Signals::set();
        let mut old_mask = SigSet::empty();
        // Block our signals so that none is handled in the child before it
        // replaces the master's handlers with its own.
        if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut old_mask)) {
            log::error!("sigprocmask failed: {e}");
            return;
        }
        let Some(board) = self.scoreboard.claim() else {
            let _ = old_mask.thread_set_mask();
            log::error!(
                "worker={slot} not started: all {} scoreboard slots in use",
                scoreboard::CAPACITY
            );
            return;
        };
        let master = self.pid;
        let result = sys::fork_worker(|| {
            // Close what only the master may hold.
            if let Some(s) = self.signals.take() {
                s.forget_in_child();
            }
            self.status_socket = None;
            if let Some(r) = self.reporter.as_mut() {
                r.close();
            }
            crate::log::reinit_after_fork();
            let inbox = self.inbox.take().map(Inbox::into_sender);
            let listeners = std::mem::take(&mut self.listeners);
            let slot = self.scoreboard.slot(board);
            worker::run(&self.config, listeners, master, inbox, slot)
        });
        let _ = old_mask.thread_set_mask();
        match result {
            Ok(pid) => {
                log::info!(
                    "worker={slot} pid={pid} started generation={}",
                    self.generation
                );
                self.scoreboard
                    .slot(board)
                    .pid
                    .store(pid.as_raw() as u32, Relaxed);
                self.workers.push(WorkerProc {
                    slot,
                    pid,
                    started: now,
                    generation: self.generation,
                    ready: false,
                    retiring: false,
                    board,
                    killed: false,
                });
            }
            Err(e) => {
                self.scoreboard.release(board);
                let delay = self.backoff.record_crash(now);
                log::error!(
                    "worker={slot} fork failed: {e}; retry in {}ms",
                    delay.as_millis()
                );
            }
        }
    }

    /// The watchdog: a worker whose heartbeat is older than worker_timeout
    /// (stuck in a loop, or SIGSTOPped) is killed; reaping replaces it.
    fn kill_hung_workers(&mut self) {
        let limit = self.config.worker_timeout.as_millis() as u64;
        let mono = scoreboard::monotonic_ms();
        for w in self.workers.iter_mut().filter(|w| !w.killed) {
            let slot = self.scoreboard.slot(w.board);
            let beat = slot.heartbeat.load(Relaxed);
            let silent = mono.saturating_sub(beat);
            if beat != 0 && silent > limit {
                log::error!(
                    "worker={} pid={} hung: no heartbeat for {silent}ms state={}; killing it with SIGKILL",
                    w.slot,
                    w.pid,
                    WorkerState::name(slot.state.load(Relaxed))
                );
                self.last_error = format!("worker pid={} hung, killed", w.pid);
                let _ = kill(w.pid, Signal::SIGKILL);
                w.killed = true;
            }
        }
    }

    /// One line for STATUS= and the head of `-s status`.
    fn summary(&self) -> String {
        let serving = self.workers.iter().filter(|w| !w.retiring).count();
        let mut s = format!("workers={serving} generation={}", self.generation);
        if !self.last_error.is_empty() {
            s.push_str("; last error: ");
            s.push_str(&self.last_error);
        }
        s
    }

    /// `-s status`: one line per worker from the scoreboard, then totals.
    fn status_report(&self) -> String {
        let mono = scoreboard::monotonic_ms();
        let mut out = format!(
            "master pid={} version={} uptime={}s listen={} maintenance={} {}\n",
            self.pid,
            env!("CARGO_PKG_VERSION"),
            self.started.elapsed().as_secs(),
            self.listen_list(),
            if self.scoreboard.maintenance() {
                "on"
            } else {
                "off"
            },
            self.summary()
        );
        let (mut requests, mut open, mut accepted) = (0, 0, 0);
        let mut workers = self.workers.clone();
        workers.sort_by_key(|w| (w.generation, w.slot));
        for w in &workers {
            let s = self.scoreboard.slot(w.board);
            let (r, o, a) = (
                s.requests.load(Relaxed),
                s.open.load(Relaxed),
                s.accepted.load(Relaxed),
            );
            requests += r;
            open += o;
            accepted += a;
            out.push_str(&format!(
                "worker={} pid={} generation={} state={} age={}s heartbeat={}ms requests={r} open={o} accepted={a}\n",
                w.slot,
                w.pid,
                w.generation,
                WorkerState::name(s.state.load(Relaxed)),
                w.started.elapsed().as_secs(),
                mono.saturating_sub(s.heartbeat.load(Relaxed)),
            ));
        }
        out.push_str(&format!(
            "total workers={} requests={requests} open={open} accepted={accepted}\n",
            workers.len()
        ));
        out
    }

    fn answer_status(&self) {
        if let Some(s) = &self.status_socket {
            s.serve(|request| match request {
                control::Request::Status => self.status_report(),
                control::Request::Maintenance(on) => self.set_maintenance(on),
            });
        }
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
        if let Some(t) = self.backoff.not_before.filter(|t| *t > now) {
            // A backoff that has passed is no deadline (it would spin).
            next = next.min(t);
        }
        next
    }
}

/// Tells a worker to drain.
fn retire(w: &mut WorkerProc) {
    w.retiring = true;
    log::info!(
        "worker={} pid={} retiring generation={}",
        w.slot,
        w.pid,
        w.generation
    );
    let _ = kill(w.pid, Signal::SIGQUIT);
}

/// Crash-loop protection: each consecutive crash doubles the wait before
/// the next spawn, from 100 ms up to 30 s, so a broken worker can never
/// become a fork bomb.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    crashes: u32,
    not_before: Option<Instant>,
    last_crash: Option<Instant>,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

impl Backoff {
    /// Records a crash; returns how long spawning now waits.
    fn record_crash(&mut self, now: Instant) -> Duration {
        self.crashes = self.crashes.saturating_add(1);
        let delay = BACKOFF_FIRST
            .saturating_mul(1u32 << (self.crashes - 1).min(20))
            .min(BACKOFF_MAX);
        self.not_before = Some(now + delay);
        self.last_crash = Some(now);
        delay
    }

    fn may_spawn(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// A worker started after the last crash has lived past the crash
    /// lifetime: the crash loop is over.
    fn forget_if_healthy(&mut self, workers: &[WorkerProc], now: Instant) {
        let Some(last) = self.last_crash else { return };
        if workers
            .iter()
            .any(|w| w.started > last && now.saturating_duration_since(w.started) >= CRASH_LIFETIME)
        {
            *self = Backoff::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert!(b.may_spawn(now));
        let delays: Vec<u128> = (0..12).map(|_| b.record_crash(now).as_millis()).collect();
        assert_eq!(&delays[..4], &[100, 200, 400, 800]);
        assert_eq!(*delays.last().unwrap(), 30_000);
        assert!(!b.may_spawn(now + Duration::from_secs(29)));
        assert!(b.may_spawn(now + Duration::from_secs(30)));
    }

    #[test]
    fn backoff_resets_once_a_worker_lives() {
        let now = Instant::now();
        let mut b = Backoff::default();
        b.record_crash(now);
        b.record_crash(now);
        let young = WorkerProc {
            slot: 0,
            pid: Pid::from_raw(1),
            started: now + Duration::from_millis(500),
            generation: 1,
            ready: true,
            retiring: false,
            board: 0,
            killed: false,
        };
        b.forget_if_healthy(&[young], now + Duration::from_millis(900));
        assert_eq!(b.crashes, 2, "a worker younger than 1s proves nothing");
        b.forget_if_healthy(&[young], now + Duration::from_millis(1600));
        assert_eq!(b, Backoff::default());
    }
}
