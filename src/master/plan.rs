//! The master's decisions, as plain functions over the worker table: which
//! slots to fill, which workers to retire, when a generation is complete
//! ([`plan`]), how a worker's death counts ([`classify`]) and when a slot
//! may be filled again ([`Respawn`]). No process is forked or signalled
//! here and no clock is read (`now` is passed in), so all of it is
//! unit-tested without forking; `workers.rs` carries the decisions out.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::exitcode;

/// One running worker process, as the master tracks it.
#[derive(Debug, Clone, Copy)]
pub struct WorkerProc {
    /// Its place in the table: 0..workers.
    pub slot: usize,
    pub pid: Pid,
    pub started: Instant,
    /// Which configuration it runs: bumped by every reload.
    pub generation: u64,
    /// It has accepted (its scoreboard state left `starting`).
    pub ready: bool,
    /// Draining (told to, or on its own); it no longer fills its slot.
    pub retiring: bool,
    /// Its scoreboard slot.
    pub board: usize,
    /// SIGKILLed by the watchdog; waiting to be reaped.
    pub killed: bool,
}

/// What [`plan`] decided for one turn of the loop.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indexes into the worker table of workers to tell to drain: the
    /// current generation above the target, and, once the current
    /// generation is complete, every older one.
    pub retire: Vec<usize>,
    /// Slots to start a worker in now.
    pub spawn: Vec<usize>,
    /// Every slot below the target holds a ready worker of the current
    /// generation.
    pub complete: bool,
}

/// Decides what `maintain_worker_count` does: retire extras, fill empty
/// slots that `may_spawn` allows, and, once the generation is complete,
/// retire the older ones.
pub fn plan(
    workers: &[WorkerProc],
    generation: u64,
    target: usize,
    mut may_spawn: impl FnMut(usize) -> bool,
) -> Plan {
    let current = |w: &&WorkerProc| w.generation == generation && !w.retiring;
    let mut p = Plan::default();
    for (i, w) in workers.iter().enumerate() {
        if w.generation == generation && !w.retiring && w.slot >= target {
            p.retire.push(i);
        }
    }
    for slot in 0..target {
        let filled = workers.iter().filter(current).any(|w| w.slot == slot);
        if !filled && may_spawn(slot) {
            p.spawn.push(slot);
        }
    }
    p.complete = (0..target).all(|slot| {
        workers
            .iter()
            .filter(current)
            .any(|w| w.slot == slot && w.ready)
    });
    if p.complete {
        for (i, w) in workers.iter().enumerate() {
            if !w.retiring && w.generation < generation {
                p.retire.push(i);
            }
        }
    }
    p
}

/// How a worker ended, from `waitpid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(Signal),
}

/// How a death counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// Told to drain, recycled on its own (status 0), or the master stops.
    Planned,
    /// It never became ready: it died before it first accepted, or exited
    /// with the privilege-drop status. Its slot backs off. `own` says the
    /// worker failed by itself (an exit status, a fault signal, or hung
    /// and killed by the watchdog) rather than being killed from outside
    /// (SIGKILL, SIGTERM… from an operator, a chaos tool, the OOM killer).
    BeforeReady { own: bool },
    /// It served and then died, by any signal or exit: replaced at once
    /// (at most one spawn per slot per [`RESPAWN_EVERY`]).
    AfterServing,
}

/// Signals a process raises on itself by faulting or aborting.
const FAULTS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGABRT,
    Signal::SIGSYS,
    Signal::SIGTRAP,
];

/// Classifies a reaped worker. `ready`: it had left the `starting` state
/// by the time it was reaped (read from its scoreboard slot then, so a
/// worker that accepted and died between two loop turns counts as ready).
pub fn classify(w: &WorkerProc, ready: bool, ended: Ended, stopping: bool) -> Death {
    match ended {
        _ if stopping || w.retiring => Death::Planned,
        // Recycled (max_requests_per_worker) or drained on its own.
        Ended::Exited(0) => Death::Planned,
        Ended::Exited(exitcode::CONFIG) => Death::BeforeReady { own: true },
        _ if ready => Death::AfterServing,
        Ended::Exited(_) => Death::BeforeReady { own: true },
        Ended::Signaled(s) => Death::BeforeReady {
            own: w.killed || FAULTS.contains(&s),
        },
    }
}

/// At most one spawn per slot per this long, whatever the deaths: a kill
/// storm is not a fork storm either.
pub const RESPAWN_EVERY: Duration = Duration::from_millis(100);
/// The first crash backoff; each consecutive crash in a slot doubles it.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One slot's respawn history.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SlotHistory {
    /// Workers in a row that died before they became ready.
    crashes: u32,
    /// The crash backoff: no spawn before then.
    not_before: Option<Instant>,
    /// The last crash was the worker's own failure (not an outside kill).
    own: bool,
    last_spawn: Option<Instant>,
}

/// Crash-loop protection, per slot: each worker in a row that dies before
/// it becomes ready doubles the wait before the slot is filled again, from
/// 100 ms up to 30 s, so a worker that cannot start never becomes a fork
/// bomb. A worker that served and then died is replaced at once, limited
/// to one spawn per slot per [`RESPAWN_EVERY`]. A slot's backoff ends when
/// one of its workers becomes ready.
#[derive(Debug, Default, Clone)]
pub struct Respawn {
    slots: Vec<SlotHistory>,
}

impl Respawn {
    fn slot(&mut self, slot: usize) -> &mut SlotHistory {
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, SlotHistory::default());
        }
        &mut self.slots[slot]
    }

    pub fn record_spawn(&mut self, slot: usize, now: Instant) {
        self.slot(slot).last_spawn = Some(now);
    }

    /// A worker of `slot` died; returns the backoff if it counts as a
    /// crash.
    pub fn record_death(&mut self, slot: usize, death: Death, now: Instant) -> Option<Duration> {
        match death {
            Death::Planned | Death::AfterServing => None,
            Death::BeforeReady { own } => Some(self.record_crash(slot, own, now)),
        }
    }

    /// A crash (or a failed fork, `own`): returns how long the slot waits.
    pub fn record_crash(&mut self, slot: usize, own: bool, now: Instant) -> Duration {
        let h = self.slot(slot);
        h.crashes = h.crashes.saturating_add(1);
        let delay = BACKOFF_FIRST
            .saturating_mul(1u32 << (h.crashes - 1).min(20))
            .min(BACKOFF_MAX);
        h.not_before = Some(now + delay);
        h.own = own;
        delay
    }

    /// A worker of `slot` became ready: the slot's crash loop is over.
    pub fn record_ready(&mut self, slot: usize) {
        let h = self.slot(slot);
        h.crashes = 0;
        h.not_before = None;
    }

    /// Whether `slot` may get a worker now. `live`: workers serving now
    /// (any generation, not draining). A backoff that outside kills caused
    /// never holds the master at zero live workers.
    pub fn may_spawn(&self, slot: usize, now: Instant, live: usize) -> bool {
        let Some(h) = self.slots.get(slot) else {
            return true;
        };
        let rate_ok = h.last_spawn.is_none_or(|t| now >= t + RESPAWN_EVERY);
        let backoff_ok = h.not_before.is_none_or(|t| now >= t) || (!h.own && live == 0);
        rate_ok && backoff_ok
    }

    /// The most crashes in a row of any slot (for `-d`'s give-up).
    pub fn crashes(&self) -> u32 {
        self.slots.iter().map(|h| h.crashes).max().unwrap_or(0)
    }

    /// The earliest time after `now` when a slot may be filled again.
    /// A time already passed is no deadline (the loop would spin).
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.slots
            .iter()
            .flat_map(|h| [h.not_before, h.last_spawn.map(|t| t + RESPAWN_EVERY)])
            .flatten()
            .filter(|t| *t > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(slot: usize, generation: u64, ready: bool) -> WorkerProc {
        WorkerProc {
            slot,
            pid: Pid::from_raw(100 + slot as i32),
            started: Instant::now(),
            generation,
            ready,
            retiring: false,
            board: slot,
            killed: false,
        }
    }

    #[test]
    fn fills_empty_slots_and_retires_extras() {
        let table = [worker(0, 1, true), worker(2, 1, true), worker(3, 1, false)];
        let p = plan(&table, 1, 3, |_| true);
        assert_eq!(p.spawn, [1]);
        assert_eq!(p.retire, [2], "slot 3 is above the target of 3");
        assert!(!p.complete);
        let none = plan(&table, 1, 3, |_| false);
        assert!(none.spawn.is_empty(), "may_spawn is obeyed");
    }

    #[test]
    fn old_generation_retires_only_once_the_new_one_is_ready() {
        let mut table = vec![worker(0, 1, true), worker(1, 1, true)];
        table.push(worker(0, 2, true));
        table.push(worker(1, 2, false));
        let p = plan(&table, 2, 2, |_| true);
        assert!(p.spawn.is_empty() && p.retire.is_empty() && !p.complete);
        table[3].ready = true;
        let p = plan(&table, 2, 2, |_| true);
        assert!(p.complete);
        assert_eq!(p.retire, [0, 1]);
        // A draining worker does not fill its slot.
        table[3].retiring = true;
        let p = plan(&table, 2, 2, |_| true);
        assert_eq!(p.spawn, [1]);
        assert!(!p.complete);
    }

    #[test]
    fn zero_target_is_complete_and_retires_everything_current() {
        let table = [worker(0, 1, true)];
        let p = plan(&table, 1, 0, |_| true);
        assert!(p.complete);
        assert_eq!(p.retire, [0]);
    }

    #[test]
    fn deaths_are_told_apart() {
        use Ended::*;
        let w = worker(0, 1, false);
        let kill = Signaled(Signal::SIGKILL);
        assert_eq!(classify(&w, true, kill, false), Death::AfterServing);
        assert_eq!(classify(&w, true, Exited(70), false), Death::AfterServing);
        assert_eq!(
            classify(&w, false, kill, false),
            Death::BeforeReady { own: false }
        );
        assert_eq!(
            classify(&w, false, Exited(71), false),
            Death::BeforeReady { own: true }
        );
        assert_eq!(
            classify(&w, false, Signaled(Signal::SIGSEGV), false),
            Death::BeforeReady { own: true }
        );
        assert_eq!(
            classify(&w, true, Exited(exitcode::CONFIG), false),
            Death::BeforeReady { own: true },
            "the privilege-drop status is a start failure"
        );
        assert_eq!(classify(&w, true, Exited(0), false), Death::Planned);
        assert_eq!(classify(&w, false, kill, true), Death::Planned);
        let retiring = WorkerProc {
            retiring: true,
            ..w
        };
        assert_eq!(classify(&retiring, true, kill, false), Death::Planned);
        let hung = WorkerProc { killed: true, ..w };
        assert_eq!(
            classify(&hung, false, kill, false),
            Death::BeforeReady { own: true }
        );
    }

    #[test]
    fn crashes_back_off_doubling_and_capped() {
        let now = Instant::now();
        let mut r = Respawn::default();
        assert!(r.may_spawn(0, now, 0));
        let delays: Vec<u128> = (0..12)
            .map(|_| r.record_crash(0, true, now).as_millis())
            .collect();
        assert_eq!(&delays[..4], &[100, 200, 400, 800]);
        assert_eq!(*delays.last().unwrap(), 30_000);
        assert!(!r.may_spawn(0, now + Duration::from_secs(29), 0));
        assert!(r.may_spawn(0, now + Duration::from_secs(30), 0));
        assert!(r.may_spawn(1, now, 0), "other slots are not held back");
        assert_eq!(r.crashes(), 12);
        r.record_ready(0);
        assert!(r.may_spawn(0, now, 0));
        assert_eq!(r.crashes(), 0);
    }

    #[test]
    fn kills_after_serving_are_replaced_at_once_but_rate_limited() {
        let t0 = Instant::now();
        let mut r = Respawn::default();
        let ms = Duration::from_millis;
        // A kill storm: the worker of slot 0 serves and is killed, again
        // and again. No backoff ever builds up.
        let mut t = t0;
        for _ in 0..10 {
            assert!(r.may_spawn(0, t, 1));
            r.record_spawn(0, t);
            assert_eq!(r.record_death(0, Death::AfterServing, t + ms(5)), None);
            assert!(!r.may_spawn(0, t + ms(50), 1), "one spawn per 100 ms");
            t += RESPAWN_EVERY;
        }
        assert_eq!(r.crashes(), 0);
        assert!(r.may_spawn(0, t, 1));
        assert_eq!(r.next_deadline(t - ms(1)), Some(t));
    }

    #[test]
    fn outside_kills_never_leave_zero_workers_by_backoff() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = Respawn::default();
        r.record_spawn(0, t0);
        let delay = r
            .record_death(0, Death::BeforeReady { own: false }, t0 + ms(1))
            .unwrap();
        assert_eq!(delay, ms(100));
        let t = t0 + ms(100);
        assert!(!r.may_spawn(0, t, 1), "others serve: back off");
        assert!(r.may_spawn(0, t, 0), "no live worker: no backoff wait");
        // A worker that cannot start keeps its backoff even at zero.
        r.record_spawn(0, t);
        r.record_death(0, Death::BeforeReady { own: true }, t + ms(1));
        assert!(!r.may_spawn(0, t + ms(150), 0));
        assert!(r.may_spawn(0, t + ms(201), 0));
    }

    #[test]
    fn next_deadline_ignores_the_past() {
        let now = Instant::now();
        let mut r = Respawn::default();
        assert_eq!(r.next_deadline(now), None);
        r.record_crash(0, true, now);
        assert_eq!(r.next_deadline(now), Some(now + BACKOFF_FIRST));
        assert_eq!(r.next_deadline(now + Duration::from_secs(1)), None);
    }
}
