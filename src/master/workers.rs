//! The worker table's effects: reaping (and logging every death with its
//! cause), reading what workers publish in the scoreboard, carrying out the
//! plan (spawn into empty slots, retire), and the hung-worker watchdog.
//! What to do is decided in `plan.rs`; this file only does it.

use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::plan::{self, Ended, WorkerProc};
use super::{Master, Phase};
use crate::obs::scoreboard::{self, Restart, WorkerState};
use crate::os::signals::Signals;
use crate::os::{notify, sys};
use crate::{exitcode, worker};

/// Consecutive crashes before any worker served after which `-d` reports
/// failure instead of waiting on.
const DAEMON_GIVE_UP: u32 = 5;

impl Master {
    pub(super) fn signal_each_worker(&self, signal: Signal) {
        for w in &self.workers {
            let _ = kill(w.pid, signal);
        }
    }

    /// Reaps every exited child: `waitpid(-1, WNOHANG)` until none is left.
    pub(super) fn reap_children(&mut self, now: Instant) {
        loop {
            let (pid, ended) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Ended::Exited(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Ended::Signaled(sig)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("waitpid failed: {e}");
                    return;
                }
            };
            let how = match ended {
                Ended::Exited(code) => format!("exited status={code}"),
                Ended::Signaled(sig) => format!("killed signal={}", sig.as_str()),
            };
            if self.upgrade_child_ended(pid, &how) {
                continue;
            }
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                log::info!("child pid={pid} {how}");
                continue;
            };
            let w = self.workers.swap_remove(i);
            self.worker_ended(w, ended, &how, now);
        }
    }

    /// Logs a worker's death with its cause and counts it: a worker that
    /// never became ready backs its slot off; one that served is replaced
    /// at once (see `plan::Respawn`).
    fn worker_ended(&mut self, w: WorkerProc, ended: Ended, how: &str, now: Instant) {
        // Read before the slot is released: a worker that accepted and died
        // between two turns of the loop still counts as having served.
        let state = self.scoreboard.slot(w.board).state();
        let ready = w.ready || state != WorkerState::Starting;
        // Its counters go into the totals as the slot is released (one
        // write: a scrape never counts them twice or not at all).
        self.scoreboard.release(w.board);
        if self.phase == Phase::Running && !w.retiring && !w.killed {
            // Told to drain (reload, fewer workers) is no restart; the
            // watchdog's kills and recycling were counted when they began.
            self.scoreboard.count_restart(match ended {
                Ended::Exited(0) => Restart::Recycled,
                Ended::Exited(_) => Restart::Exit,
                Ended::Signaled(_) => Restart::Signal,
            });
        }
        if ready {
            self.respawn.record_ready(w.slot);
        }
        let death = plan::classify(&w, ready, ended, self.phase != Phase::Running);
        let lifetime = now.saturating_duration_since(w.started);
        let Some(delay) = self.respawn.record_death(w.slot, death, now) else {
            log::info!("worker={} pid={} {how}", w.slot, w.pid);
            return;
        };
        log::error!(
            "worker={} pid={} {how} after {}ms: crashed, respawn in {}ms",
            w.slot,
            w.pid,
            lifetime.as_millis(),
            delay.as_millis()
        );
        self.last_error = format!(
            "worker crash loop: {how} before serving, respawn in {}ms",
            delay.as_millis()
        );
        notify::status(&self.summary());
        if !self.announced && self.respawn.crashes() >= DAEMON_GIVE_UP {
            if let Some(r) = self.own.reporter.as_mut() {
                // `-d` is still waiting: tell it, and stop rather than
                // leave a daemon the command said had failed.
                r.failed(&format!("workers keep crashing ({how}); see the log"));
                self.exit_code = exitcode::FAILURE;
                self.begin_stop(false, now);
            }
        }
    }

    /// Takes what workers changed from the scoreboard (the doorbell only
    /// wakes us): a worker that accepts is ready, which ends its slot's
    /// crash backoff; one draining on its own (max_requests_per_worker) no
    /// longer fills its slot.
    pub(super) fn read_scoreboard(&mut self) {
        if let Some(inbox) = &self.own.inbox {
            inbox.drain();
        }
        for w in self.workers.iter_mut() {
            match self.scoreboard.slot(w.board).state() {
                WorkerState::Accepting if !w.ready => {
                    w.ready = true;
                    self.respawn.record_ready(w.slot);
                }
                WorkerState::Draining if !w.retiring => {
                    log::info!("worker={} pid={} retiring on its own", w.slot, w.pid);
                    w.retiring = true;
                    self.scoreboard.count_restart(Restart::Recycled);
                }
                _ => {}
            }
        }
    }

    /// Carries out the plan: retires workers above the target, spawns
    /// workers into empty slots that their respawn history allows, and
    /// once the current generation is complete and accepting, drains the
    /// older ones and finishes a reload or upgrade.
    pub(super) fn maintain_worker_count(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        let live = self.workers.iter().filter(|w| !w.retiring).count();
        let plan = plan::plan(&self.workers, self.generation, self.target, |slot| {
            self.respawn.may_spawn(slot, now, live)
        });
        for &i in &plan.retire {
            retire(&mut self.workers[i]);
        }
        if !plan.spawn.is_empty() {
            // As root: a missing access log is created for the workers'
            // user, who opens it after dropping privileges.
            if let Err(e) = crate::obs::access_log::prepare(
                self.config.access_log.as_ref(),
                self.config.user.as_ref(),
            ) {
                log::warn!("access log: cannot create the file for the workers: {e}");
            }
        }
        for &slot in &plan.spawn {
            self.spawn_worker(slot, now);
        }
        if plan.complete {
            self.on_generation_ready();
        }
    }

    fn spawn_worker(&mut self, slot: usize, now: Instant) {
        let Some(board) = self.scoreboard.claim() else {
            log::error!(
                "worker={slot} not started: all {} scoreboard slots in use",
                scoreboard::CAPACITY
            );
            return;
        };
        self.respawn.record_spawn(slot, now);
        let master = self.pid;
        let result = Signals::blocked(|| {
            sys::fork_worker(|| {
                let inbox = self.own.close_in_child();
                crate::obs::log::reinit_after_fork();
                let listeners = std::mem::take(&mut self.listeners);
                let slot = self.scoreboard.slot(board);
                worker::run(
                    &self.config,
                    listeners,
                    master,
                    inbox,
                    slot,
                    self.scoreboard.board(),
                )
            })
        })
        .and_then(|forked| forked);
        match result {
            Ok(pid) => {
                log::info!(
                    "worker={slot} pid={pid} started generation={}",
                    self.generation
                );
                self.scoreboard.slot(board).set_pid(pid.as_raw() as u32);
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
                let delay = self.respawn.record_crash(slot, true, now);
                log::error!(
                    "worker={slot} fork failed: {e}; retry in {}ms",
                    delay.as_millis()
                );
            }
        }
    }

    /// The watchdog: a worker whose heartbeat is older than worker_timeout
    /// (stuck in a loop, or SIGSTOPped) is killed; reaping replaces it.
    pub(super) fn kill_hung_workers(&mut self) {
        let limit = self.config.worker_timeout.as_millis() as u64;
        let mono = scoreboard::monotonic_ms();
        for w in self.workers.iter_mut().filter(|w| !w.killed) {
            let slot = self.scoreboard.slot(w.board);
            let beat = slot.heartbeat();
            let silent = mono.saturating_sub(beat);
            if beat != 0 && silent > limit {
                log::error!(
                    "worker={} pid={} hung: no heartbeat for {silent}ms state={}; killing it with SIGKILL",
                    w.slot,
                    w.pid,
                    slot.state().as_str()
                );
                self.last_error = format!("worker pid={} hung, killed", w.pid);
                let _ = kill(w.pid, Signal::SIGKILL);
                w.killed = true;
                self.scoreboard.count_restart(Restart::Watchdog);
            }
        }
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
