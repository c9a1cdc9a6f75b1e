//! The scoreboard: one shared-memory slot per worker (mapped by the master
//! before the first fork, see `sys::map_scoreboard`), which the worker
//! updates with relaxed atomic stores from its event loop and the master
//! reads: heartbeat (for the hung-worker watchdog) and counters (for
//! `-s status`). A slot whose `pid` is 0 is free; a `heartbeat` of 0 means
//! "not started". Mapping memory is `sys.rs`'s job.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use nix::time::{clock_gettime, ClockId};

/// Worker states shown by the scoreboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    Starting = 0,
    Accepting = 1,
    Draining = 2,
}

impl WorkerState {
    pub fn name(v: u32) -> &'static str {
        match v {
            1 => "accepting",
            2 => "draining",
            _ => "starting",
        }
    }
}

/// One worker's slot. Each is written by one worker alone (plain stores of
/// its own counters) and read by the master; 128-byte alignment keeps two
/// workers' slots off the same cache line.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct Slot {
    pub pid: AtomicU32,
    pub state: AtomicU32,
    /// CLOCK_MONOTONIC milliseconds of the worker's last loop turn.
    pub heartbeat: AtomicU64,
    pub accepted: AtomicU64,
    pub requests: AtomicU64,
    pub open: AtomicU64,
    /// Access log lines lost (write failures) by every worker that used
    /// this slot: not reset when the slot is claimed again, so the sum over
    /// all slots is the master's total ([`Scoreboard::log_lost_total`]).
    pub log_lost: AtomicU64,
    /// TLS handshakes completed, of them resumed, and connections that
    /// never completed one (see `tls::Counters`); like `log_lost`, never
    /// reset, so their sums over all slots are the master's totals.
    pub tls_handshakes: AtomicU64,
    pub tls_resumed: AtomicU64,
    pub tls_failures: AtomicU64,
}

/// The most slots (and so workers, counting old and new during a reload).
pub const CAPACITY: usize = 2048;
/// The most workers one configuration may ask for: a reload runs the old
/// and the new set side by side.
pub const MAX_WORKERS: usize = CAPACITY / 2;

/// CLOCK_MONOTONIC in milliseconds: unlike `Instant`, the same clock in
/// every process, so the master can compare it with a worker's.
pub fn monotonic_ms() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

pub struct Scoreboard {
    slots: &'static [Slot],
}

impl Scoreboard {
    pub fn new(slots: &'static [Slot]) -> Self {
        Scoreboard { slots }
    }

    /// Claims a free slot for a worker about to be forked; the heartbeat
    /// starts now so a slow start is not mistaken for a hang.
    pub fn claim(&self) -> Option<usize> {
        let i = self
            .slots
            .iter()
            .position(|s| s.pid.load(Relaxed) == 0 && s.heartbeat.load(Relaxed) == 0)?;
        let s = &self.slots[i];
        s.state.store(WorkerState::Starting as u32, Relaxed);
        s.heartbeat.store(monotonic_ms(), Relaxed);
        for c in [&s.accepted, &s.requests, &s.open] {
            c.store(0, Relaxed);
        }
        // Marks it taken even before the pid is known.
        s.pid.store(u32::MAX, Relaxed);
        Some(i)
    }

    pub fn slot(&self, i: usize) -> &'static Slot {
        &self.slots[i]
    }

    /// Access log lines lost since the scoreboard was mapped, by live and
    /// exited workers alike.
    pub fn log_lost_total(&self) -> u64 {
        self.slots.iter().map(|s| s.log_lost.load(Relaxed)).sum()
    }

    /// TLS (handshakes, resumed, failures) since the scoreboard was mapped,
    /// by live and exited workers alike.
    pub fn tls_totals(&self) -> (u64, u64, u64) {
        self.slots.iter().fold((0, 0, 0), |(h, r, f), s| {
            (
                h + s.tls_handshakes.load(Relaxed),
                r + s.tls_resumed.load(Relaxed),
                f + s.tls_failures.load(Relaxed),
            )
        })
    }

    /// The worker is gone: the slot may be claimed again.
    pub fn release(&self, i: usize) {
        let s = &self.slots[i];
        s.heartbeat.store(0, Relaxed);
        s.pid.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_and_release() {
        let slots: &'static [Slot] = Box::leak(
            (0..2)
                .map(|_| Slot::default())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let sb = Scoreboard::new(slots);
        let a = sb.claim().unwrap();
        let b = sb.claim().unwrap();
        assert_ne!(a, b);
        assert_eq!(sb.claim(), None, "full");
        assert!(sb.slot(a).heartbeat.load(Relaxed) > 0);
        sb.release(a);
        assert_eq!(sb.claim(), Some(a));
    }

    #[test]
    fn lost_lines_outlive_the_worker() {
        let slots: &'static [Slot] = Box::leak(
            (0..2)
                .map(|_| Slot::default())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let sb = Scoreboard::new(slots);
        let a = sb.claim().unwrap();
        sb.slot(a).log_lost.fetch_add(3, Relaxed);
        sb.release(a);
        let again = sb.claim().unwrap();
        sb.slot(again).log_lost.fetch_add(2, Relaxed);
        assert_eq!(sb.log_lost_total(), 5);
    }
}
