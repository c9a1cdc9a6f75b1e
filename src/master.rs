//! The master: the worker table, signal dispatch, reaping, respawning with
//! crash backoff, and the shutdown phases. It binds nothing, serves nothing
//! and never blocks anywhere but in its one sleep; each loop turn is a fixed
//! sequence of small steps (unicorn's arbiter, nginx's process cycle).
//!
//! HTTP and client sockets are the workers'; `unsafe` is `sys.rs`'s.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::config::Config;
use crate::listener::Listener;
use crate::pidfile::PidFile;
use crate::signals::{Command, Signals};
use crate::{exitcode, sys, worker};

/// A worker that dies younger than this crashed (it did not get to serve).
const CRASH_LIFETIME: Duration = Duration::from_secs(1);
/// After TERM, workers get this long before SIGKILL.
const FAST_STOP_GRACE: Duration = Duration::from_secs(2);
/// Margin over shutdown_timeout before the master SIGKILLs on a graceful stop.
const GRACEFUL_MARGIN: Duration = Duration::from_secs(2);
/// The longest the master sleeps: it re-checks its workers at least this often.
const TICK: Duration = Duration::from_secs(1);

/// One running worker process.
#[derive(Debug, Clone, Copy)]
struct WorkerProc {
    /// Its place in the table: 0..workers.
    slot: usize,
    pid: Pid,
    started: Instant,
    /// Told to drain (QUIT); it no longer fills its slot.
    retiring: bool,
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
    config: Config,
    listeners: Vec<Listener>,
    signals: Option<Signals>,
    pid_file: Option<PidFile>,
    workers: Vec<WorkerProc>,
    /// How many workers should run (config, changed by TTIN/TTOU/WINCH).
    target: usize,
    backoff: Backoff,
    phase: Phase,
    pid: Pid,
}

impl Master {
    pub fn new(
        config: Config,
        listeners: Vec<Listener>,
        signals: Signals,
        pid_file: Option<PidFile>,
    ) -> Self {
        Master {
            target: config.workers,
            config,
            listeners,
            signals: Some(signals),
            pid_file,
            workers: Vec::new(),
            backoff: Backoff::default(),
            phase: Phase::Running,
            pid: nix::unistd::getpid(),
        }
    }

    /// Runs until stopped; returns the exit status.
    pub fn run(&mut self) -> i32 {
        let addrs: Vec<String> = self.listeners.iter().map(|l| l.addr.to_string()).collect();
        log::info!(
            "master started version={} pid={} listen={} workers={}",
            env!("CARGO_PKG_VERSION"),
            self.pid,
            addrs.join(","),
            self.target
        );
        self.maintain_worker_count(Instant::now());
        log::info!(
            "master ready pid={} workers={}",
            self.pid,
            self.workers.len()
        );
        loop {
            let now = Instant::now();
            self.reap_children(now);
            while let Some(command) = self.signals.as_mut().and_then(Signals::next_command) {
                self.handle(command, now);
            }
            if self.is_done() {
                break;
            }
            self.maintain_worker_count(now);
            self.advance_shutdown(now);
            let sleep = self
                .next_deadline(now)
                .saturating_duration_since(Instant::now());
            if let Some(s) = &self.signals {
                s.sleep(sleep);
            }
        }
        log::info!("master exiting pid={}", self.pid);
        if let Some(p) = &self.pid_file {
            p.remove();
        }
        exitcode::OK
    }

    /// Reaps every exited child: `waitpid(-1, WNOHANG)` until none is left.
    fn reap_children(&mut self, now: Instant) {
        loop {
            let (pid, how) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, format!("exited status={code}")),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid, format!("killed signal={}", sig.as_str()))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("waitpid failed: {e}");
                    return;
                }
            };
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                log::info!("child pid={pid} {how}");
                continue;
            };
            let w = self.workers.swap_remove(i);
            let lifetime = now.saturating_duration_since(w.started);
            let crashed = self.phase == Phase::Running && !w.retiring && lifetime < CRASH_LIFETIME;
            if crashed {
                let delay = self.backoff.record_crash(now);
                log::error!(
                    "worker={} pid={pid} {how} after {}ms: crashed, respawn in {}ms",
                    w.slot,
                    lifetime.as_millis(),
                    delay.as_millis()
                );
            } else {
                log::info!("worker={} pid={pid} {how}", w.slot);
            }
        }
    }

    fn handle(&mut self, command: Command, now: Instant) {
        log::info!("master command={}", command.name());
        match command {
            Command::FastStop => self.begin_stop(false, now),
            Command::GracefulStop => self.begin_stop(true, now),
            Command::StopWorkers => {
                self.target = 0;
            }
            Command::AddWorker => {
                if self.phase == Phase::Running {
                    self.target += 1;
                }
            }
            Command::RemoveWorker => {
                self.target = self.target.saturating_sub(1).max(1);
            }
            Command::ReopenLogs => {
                crate::log::reopen();
                self.signal_each_worker(Signal::SIGUSR1);
            }
            Command::Reload | Command::Upgrade => {
                log::warn!(
                    "master command={} is not supported by this version; ignored",
                    command.name()
                );
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
    /// workers above the target.
    fn maintain_worker_count(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        self.backoff.forget_if_healthy(&self.workers, now);
        for w in self.workers.iter_mut() {
            if !w.retiring && w.slot >= self.target {
                w.retiring = true;
                log::info!("worker={} pid={} retiring", w.slot, w.pid);
                let _ = kill(w.pid, Signal::SIGQUIT);
            }
        }
        for slot in 0..self.target {
            if self.workers.iter().any(|w| w.slot == slot && !w.retiring) {
                continue;
            }
            if !self.backoff.may_spawn(now) {
                return;
            }
            self.spawn_worker(slot, now);
        }
    }

    fn spawn_worker(&mut self, slot: usize, now: Instant) {
        let blocked = Signals::set();
        let mut old_mask = nix::sys::signal::SigSet::empty();
        // Block our signals so that none is handled in the child before it
        // replaces the master's handlers with its own.
        if let Err(e) = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&blocked),
            Some(&mut old_mask),
        ) {
            log::error!("sigprocmask failed: {e}");
            return;
        }
        let master = self.pid;
        let result = sys::fork_worker(|| {
            if let Some(s) = self.signals.take() {
                s.forget_in_child();
            }
            crate::log::reinit_after_fork();
            let listeners = std::mem::take(&mut self.listeners);
            worker::run(&self.config, listeners, master)
        });
        let _ = old_mask.thread_set_mask();
        match result {
            Ok(pid) => {
                log::info!("worker={slot} pid={pid} started");
                self.workers.push(WorkerProc {
                    slot,
                    pid,
                    started: now,
                    retiring: false,
                });
            }
            Err(e) => {
                let delay = self.backoff.record_crash(now);
                log::error!(
                    "worker={slot} fork failed: {e}; retry in {}ms",
                    delay.as_millis()
                );
            }
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
        if self.phase == Phase::Running
            && self.workers.iter().filter(|w| !w.retiring).count() < self.target
        {
            next = next.min(self.backoff.not_before.map_or(now, |t| t.max(now)));
        }
        next
    }
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
            retiring: false,
        };
        b.forget_if_healthy(&[young], now + Duration::from_millis(900));
        assert_eq!(b.crashes, 2, "a worker younger than 1s proves nothing");
        b.forget_if_healthy(&[young], now + Duration::from_millis(1600));
        assert_eq!(b, Backoff::default());
    }
}
