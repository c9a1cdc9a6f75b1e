//! A consistent [`Snapshot`](crate::obs::scoreboard::Snapshot) of the
//! scoreboard for the status pages and `-s status`: every slot and the
//! master's totals, read under the totals' sequence lock (retried while the
//! master is writing), and the eviction counts it carries.

use std::fmt;
use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::atomic::{fence, AtomicU64};

use super::{Eviction, Slot, Totals};

/// Everything a status route shows, read consistently from the slots and
/// the totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub accepted: u64,
    pub requests: u64,
    /// By status class, 1xx to 5xx.
    pub responses: [u64; 5],
    pub evictions: Evictions,
    /// Connections open now, and of those reading a head, and reading a
    /// body or writing (the rest are idle: nginx's "Waiting").
    pub open: u64,
    pub reading: u64,
    pub writing: u64,
    /// Live workers by state: starting, accepting, draining.
    pub workers: [u64; 3],
    /// In [`Restart::ALL`](crate::obs::scoreboard::Restart::ALL) order.
    pub restarts: [u64; 4],
    /// ok, failed.
    pub reloads: [u64; 2],
    /// ok, failed.
    pub upgrades: [u64; 2],
    pub generation: u64,
    pub start_time: u64,
    pub maintenance: bool,
    pub log_lost: u64,
    /// TLS handshakes completed, of them resumed, and failed (summed over
    /// every slot, as `-s status` sums them).
    pub tls: [u64; 3],
    /// HTTP/2 counters in `H2Stat::ALL` order, summed over every slot.
    pub h2: [u64; crate::obs::h2stats::COUNT],
}

/// The whole shared mapping as a worker is handed it: every slot and the
/// master's totals, for a status route to read.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    pub slots: &'static [Slot],
    pub totals: &'static Totals,
}

impl Board {
    /// What a status route shows now.
    pub fn snapshot(&self) -> Snapshot {
        read(self.slots, self.totals)
    }
}

pub(super) fn read(slots: &[Slot], t: &Totals) -> Snapshot {
    let mut snap = Snapshot::default();
    // A master stopped in the middle of a write (SIGSTOP) must not hang a
    // worker: after this many tries the last read is shown.
    for _ in 0..10_000 {
        let before = t.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        snap = read_once(slots, t);
        fence(Ordering::Acquire);
        if t.seq.load(Relaxed) == before {
            break;
        }
    }
    snap
}

fn read_once(slots: &[Slot], t: &Totals) -> Snapshot {
    let load = |c: &AtomicU64| c.load(Relaxed);
    let mut s = Snapshot {
        accepted: load(&t.accepted),
        requests: load(&t.requests),
        responses: std::array::from_fn(|i| load(&t.responses[i])),
        evictions: Evictions(std::array::from_fn(|i| load(&t.evictions[i]))),
        restarts: std::array::from_fn(|i| load(&t.restarts[i])),
        reloads: std::array::from_fn(|i| load(&t.reloads[i])),
        upgrades: std::array::from_fn(|i| load(&t.upgrades[i])),
        generation: load(&t.generation),
        start_time: load(&t.start_time),
        maintenance: t.maintenance.load(Relaxed) != 0,
        ..Snapshot::default()
    };
    for slot in slots {
        s.log_lost += slot.log_lost.load(Relaxed);
        s.tls[0] += slot.tls_handshakes.load(Relaxed);
        s.tls[1] += slot.tls_resumed.load(Relaxed);
        s.tls[2] += slot.tls_failures.load(Relaxed);
        for (a, b) in s.h2.iter_mut().zip(slot.h2.load()) {
            *a += b;
        }
        if slot.pid() == 0 {
            continue;
        }
        s.accepted += slot.accepted();
        s.requests += slot.requests();
        for (a, b) in s.responses.iter_mut().zip(slot.responses()) {
            *a += b;
        }
        s.evictions += slot.evictions();
        s.open += slot.open();
        s.reading += slot.reading();
        s.writing += slot.writing();
        s.workers[slot.state() as usize] += 1;
    }
    s
}

/// Eviction counts by kind, read from one slot or summed over several, for
/// `-s status`: `Display` gives `evicted_idle=N evicted_lingering=N …`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evictions(pub [u64; 6]);

impl Evictions {
    pub fn get(&self, kind: Eviction) -> u64 {
        self.0[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl std::ops::AddAssign for Evictions {
    fn add_assign(&mut self, other: Evictions) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

impl fmt::Display for Evictions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in Eviction::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", kind.key(), self.get(*kind))?;
        }
        Ok(())
    }
}
