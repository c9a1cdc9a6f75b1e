//! The scoreboard: one shared-memory slot per worker (mapped by the master
//! before the first fork, see `sys::map_scoreboard`), which the worker
//! updates with relaxed atomic stores from its event loop and the master
//! reads: heartbeat (for the hung-worker watchdog), state and counters (for
//! `-s status`), and, for a worker deciding whether to take more of a burst,
//! the other workers' open connections. A slot whose `pid` is 0 is free; a
//! heartbeat of 0 means "not started". The master also writes one switch
//! into every slot, the maintenance flag, which its worker reads per request
//! from its own slot. Mapping memory is `sys.rs`'s job.
//!
//! Beside the slots, one [`Totals`](crate::obs::scoreboard::Totals) block that only the master writes: the
//! counters of workers that are gone (folded in from their slot when they
//! are reaped, before the slot is released), and the master's own counts
//! (restarts, reloads, upgrades, generation). A worker answering a status
//! route reads both ([`Board::snapshot`](crate::obs::scoreboard::Board::snapshot)), so that counters never go down while
//! the master lives. Folding and releasing a slot happen inside a sequence
//! lock (the master writes, single-threaded; readers retry), so a reader
//! never sees a dead worker's counts twice or not at all.

use std::cell::Cell;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering, Ordering::Relaxed};

use nix::time::{clock_gettime, ClockId};

/// What a status route reads: the `Snapshot` of every slot and the
/// totals, taken under the totals' sequence lock.
mod snapshot;

use snapshot::read;
pub use snapshot::{Board, Evictions, Snapshot};

/// Worker states shown by the scoreboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    Starting = 0,
    Accepting = 1,
    Draining = 2,
}

impl WorkerState {
    /// The word `-s status` and the log show.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Accepting => "accepting",
            WorkerState::Draining => "draining",
        }
    }

    fn from_u32(v: u32) -> WorkerState {
        match v {
            1 => WorkerState::Accepting,
            2 => WorkerState::Draining,
            _ => WorkerState::Starting,
        }
    }
}

/// Why a worker closed a connection that had not finished on its own
/// (issue 16); each kind has its own counter in the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// Idle (no first byte yet, or between keep-alive requests), closed to
    /// make room at `worker_connections`.
    Idle,
    /// Answered and lingering (reading what the client still sends),
    /// closed to make room.
    Lingering,
    /// An unfinished request head, the slowest, closed to make room.
    Head,
    /// A head or body arriving below `min_request_rate`: answered 408.
    Slow,
    /// Past `max_connections_per_client`: one of the client's idle
    /// connections, or its new one, closed without an answer.
    ClientCap,
    /// Not a connection closed: the worker was full and every connection
    /// it held was being served, so it left new ones to the other workers
    /// (or the backlog) until one finished; counted once per such stop.
    Full,
}

impl Eviction {
    pub const ALL: [Eviction; 6] = [
        Eviction::Idle,
        Eviction::Lingering,
        Eviction::Head,
        Eviction::Slow,
        Eviction::ClientCap,
        Eviction::Full,
    ];

    /// The key in `-s status` and in the log.
    pub fn key(self) -> &'static str {
        match self {
            Eviction::Idle => "evicted_idle",
            Eviction::Lingering => "evicted_lingering",
            Eviction::Head => "evicted_head",
            Eviction::Slow => "slow_408",
            Eviction::ClientCap => "client_cap",
            Eviction::Full => "full_busy",
        }
    }
}

/// One worker's slot. Each is written by one worker alone (plain stores of
/// its own counters) and read by the master; 128-byte alignment keeps two
/// workers' slots off the same cache line. The fields are read and
/// written through the accessors below, which keep the `as u32` casts in
/// here.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct Slot {
    pid: AtomicU32,
    state: AtomicU32,
    /// CLOCK_MONOTONIC milliseconds of the worker's last loop turn.
    heartbeat: AtomicU64,
    accepted: AtomicU64,
    requests: AtomicU64,
    open: AtomicU64,
    /// Access log lines lost (write failures) by every worker that used
    /// this slot: not reset when the slot is claimed again, so the sum over
    /// all slots is the master's total ([`Scoreboard::log_lost_total`]).
    log_lost: AtomicU64,
    /// One counter per `Eviction`, in `Eviction::ALL` order.
    evictions: [AtomicU64; 6],
    /// Written by the master only: 1 while `-s maintenance on`.
    maintenance: AtomicU32,
    /// TLS handshakes completed, of them resumed, and connections that
    /// never completed one (see `TlsCounters`); like `log_lost`, never
    /// reset, so their sums over all slots are the master's totals.
    tls_handshakes: AtomicU64,
    tls_resumed: AtomicU64,
    tls_failures: AtomicU64,
    /// Answers by status class, 1xx to 5xx.
    responses: [AtomicU64; 5],
    /// Connections reading a request head now.
    reading: AtomicU64,
    /// Connections reading a body, writing an answer or lingering now
    /// (idle ones are the rest of `open`, as nginx derives "Waiting").
    writing: AtomicU64,
    /// HTTP/2 streams, resets, defences; never reset (see `h2stats.rs`).
    pub h2: super::h2stats::H2Stats,
}

impl Slot {
    /// Where this worker's TLS sessions count their handshakes.
    pub fn tls_counters(&'static self) -> TlsCounters {
        TlsCounters {
            handshakes: &self.tls_handshakes,
            resumed: &self.tls_resumed,
            failures: &self.tls_failures,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.load(Relaxed)
    }

    pub fn set_pid(&self, pid: u32) {
        self.pid.store(pid, Relaxed);
    }

    pub fn state(&self) -> WorkerState {
        WorkerState::from_u32(self.state.load(Relaxed))
    }

    pub fn set_state(&self, state: WorkerState) {
        self.state.store(state as u32, Relaxed);
    }

    /// Records a loop turn now (CLOCK_MONOTONIC), for the watchdog.
    pub fn beat(&self) {
        self.heartbeat.store(monotonic_ms(), Relaxed);
    }

    /// CLOCK_MONOTONIC milliseconds of the last beat; 0: not started.
    pub fn heartbeat(&self) -> u64 {
        self.heartbeat.load(Relaxed)
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Relaxed)
    }

    pub fn set_accepted(&self, n: u64) {
        self.accepted.store(n, Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    pub fn set_requests(&self, n: u64) {
        self.requests.store(n, Relaxed);
    }

    /// Connections the worker holds now.
    pub fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    pub fn set_open(&self, n: u64) {
        self.open.store(n, Relaxed);
    }

    /// Publishes the worker's count of one kind of eviction.
    pub fn set_evictions(&self, kind: Eviction, n: u64) {
        self.evictions[kind as usize].store(n, Relaxed);
    }

    pub fn evictions(&self) -> Evictions {
        Evictions(std::array::from_fn(|i| self.evictions[i].load(Relaxed)))
    }

    /// The counter the worker's access log adds its lost lines to.
    pub fn log_lost(&self) -> &AtomicU64 {
        &self.log_lost
    }

    /// Maintenance is on (`-s maintenance on`): read per request.
    pub fn maintenance(&self) -> bool {
        self.maintenance.load(Relaxed) != 0
    }

    /// Counts one answer of `status` (the worker is the only writer, so
    /// a load and a store: no locked instruction).
    pub fn count_response(&self, status: u16) {
        let c = &self.responses[usize::from(status / 100).clamp(1, 5) - 1];
        c.store(c.load(Relaxed) + 1, Relaxed);
    }

    /// Counts one request answered (before its answer is written, so a
    /// client that has read it never finds it uncounted).
    pub fn count_request(&self) {
        self.requests
            .store(self.requests.load(Relaxed) + 1, Relaxed);
    }

    /// Answers by status class, 1xx to 5xx.
    pub fn responses(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.responses[i].load(Relaxed))
    }

    /// Publishes how many connections read a head and how many read a
    /// body or write (on connection state changes only).
    pub fn set_reading_writing(&self, reading: u64, writing: u64) {
        self.reading.store(reading, Relaxed);
        self.writing.store(writing, Relaxed);
    }

    pub fn reading(&self) -> u64 {
        self.reading.load(Relaxed)
    }

    pub fn writing(&self) -> u64 {
        self.writing.load(Relaxed)
    }

    /// Zeroes the counters of a slot about to be reused.
    fn reset(&self) {
        for c in [
            &self.accepted,
            &self.requests,
            &self.open,
            &self.reading,
            &self.writing,
        ] {
            c.store(0, Relaxed);
        }
        for c in self.evictions.iter().chain(&self.responses) {
            c.store(0, Relaxed);
        }
    }
}

/// Why the master started a worker in place of another (the label of
/// `preforkd_worker_restarts_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// It exited on its own (not told to, not recycled).
    Exit,
    /// A signal killed it (not the watchdog's).
    Signal,
    /// Hung: the watchdog killed it.
    Watchdog,
    /// It reached `max_requests_per_worker` and drained.
    Recycled,
}

impl Restart {
    pub const ALL: [Restart; 4] = [
        Restart::Exit,
        Restart::Signal,
        Restart::Watchdog,
        Restart::Recycled,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Restart::Exit => "exit",
            Restart::Signal => "signal",
            Restart::Watchdog => "watchdog",
            Restart::Recycled => "recycled",
        }
    }
}

/// The master's block beside the slots (see the module doc): written by
/// the master alone, inside `seq` (odd while a write is under way).
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct Totals {
    seq: AtomicU64,
    accepted: AtomicU64,
    requests: AtomicU64,
    responses: [AtomicU64; 5],
    evictions: [AtomicU64; 6],
    restarts: [AtomicU64; 4],
    /// ok, failed.
    reloads: [AtomicU64; 2],
    /// ok, failed.
    upgrades: [AtomicU64; 2],
    generation: AtomicU64,
    /// Unix time the master started, in seconds.
    start_time: AtomicU64,
    maintenance: AtomicU32,
}

impl Totals {
    /// Runs one write of the master's inside the sequence lock.
    fn write(&self, f: impl FnOnce()) {
        let s = self.seq.load(Relaxed);
        self.seq.store(s.wrapping_add(1), Relaxed);
        fence(Ordering::Release);
        f();
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    fn add(c: &AtomicU64, n: u64) {
        c.store(c.load(Relaxed) + n, Relaxed);
    }
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
    totals: &'static Totals,
    /// The maintenance switch, copied into each slot as it is claimed.
    maintenance: Cell<bool>,
}

impl Scoreboard {
    pub fn new(slots: &'static [Slot], totals: &'static Totals) -> Self {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        totals.start_time.store(start, Relaxed);
        Scoreboard {
            slots,
            totals,
            maintenance: Cell::new(false),
        }
    }

    /// Turns maintenance on or off for every worker at once (each reads
    /// the flag in its own slot per request) and for workers started later.
    pub fn set_maintenance(&self, on: bool) {
        self.maintenance.set(on);
        for s in self.slots {
            s.maintenance.store(u32::from(on), Relaxed);
        }
        self.totals.maintenance.store(u32::from(on), Relaxed);
    }

    /// Counts a worker replaced for `cause`.
    pub fn count_restart(&self, cause: Restart) {
        self.totals
            .write(|| Totals::add(&self.totals.restarts[cause as usize], 1));
    }

    /// Counts a reload's outcome.
    pub fn count_reload(&self, ok: bool) {
        self.totals
            .write(|| Totals::add(&self.totals.reloads[usize::from(!ok)], 1));
    }

    /// Counts an upgrade's outcome.
    pub fn count_upgrade(&self, ok: bool) {
        self.totals
            .write(|| Totals::add(&self.totals.upgrades[usize::from(!ok)], 1));
    }

    /// The generation serving now (a reload bumps it).
    pub fn set_generation(&self, generation: u64) {
        self.totals
            .write(|| self.totals.generation.store(generation, Relaxed));
    }

    /// What a status route would show now.
    pub fn snapshot(&self) -> Snapshot {
        read(self.slots, self.totals)
    }

    /// Every slot and the totals, for a worker.
    pub fn board(&self) -> Board {
        Board {
            slots: self.slots,
            totals: self.totals,
        }
    }

    pub fn maintenance(&self) -> bool {
        self.maintenance.get()
    }

    /// Claims a free slot for a worker about to be forked; the heartbeat
    /// starts now so a slow start is not mistaken for a hang.
    pub fn claim(&self) -> Option<usize> {
        let i = self
            .slots
            .iter()
            .position(|s| s.pid() == 0 && s.heartbeat() == 0)?;
        let s = &self.slots[i];
        self.totals.write(|| {
            s.set_state(WorkerState::Starting);
            s.beat();
            s.reset();
            s.maintenance
                .store(u32::from(self.maintenance.get()), Relaxed);
            // Marks it taken even before the pid is known.
            s.set_pid(u32::MAX);
        });
        Some(i)
    }

    /// Every slot: what a worker reads the others' load from.
    pub fn slots(&self) -> &'static [Slot] {
        self.slots
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

    /// The worker is gone: its counters are folded into the totals and
    /// the slot may be claimed again, in one write (see the module doc).
    pub fn release(&self, i: usize) {
        let s = &self.slots[i];
        let t = self.totals;
        t.write(|| {
            Totals::add(&t.accepted, s.accepted());
            Totals::add(&t.requests, s.requests());
            for (c, n) in t.responses.iter().zip(s.responses()) {
                Totals::add(c, n);
            }
            for (c, n) in t.evictions.iter().zip(s.evictions().0) {
                Totals::add(c, n);
            }
            s.reset();
            s.heartbeat.store(0, Relaxed);
            s.set_pid(0);
        });
    }
}

/// Workers accepting now, and the connections they hold in all, over the
/// first `span` of `slots` (slots are claimed lowest first, so a server of
/// N workers uses about the first 2N even during a reload).
pub fn accepting_peers(slots: &[Slot], span: usize) -> (u64, u64) {
    let mut workers = 0;
    let mut open = 0;
    for s in &slots[..span.min(slots.len())] {
        if s.pid() != 0 && s.state() == WorkerState::Accepting {
            workers += 1;
            open += s.open();
        }
    }
    (workers, open)
}

/// Where a worker's TLS layer counts handshakes: its scoreboard slot's
/// counters, lent to each `tls::TlsStream`.
#[derive(Clone, Copy)]
pub struct TlsCounters {
    /// Completed handshakes, resumed ones included.
    pub handshakes: &'static AtomicU64,
    /// Of those, resumed ones.
    pub resumed: &'static AtomicU64,
    /// Connections that sent something but never completed a handshake:
    /// protocol errors, plain HTTP, timeouts, clients gone.
    pub failures: &'static AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(n: usize) -> &'static [Slot] {
        Box::leak(
            (0..n)
                .map(|_| Slot::default())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )
    }

    fn board(n: usize) -> Scoreboard {
        Scoreboard::new(slots(n), Box::leak(Box::default()))
    }

    #[test]
    fn a_released_workers_counts_stay_in_the_totals() {
        let sb = board(2);
        let a = sb.claim().unwrap();
        sb.slot(a).set_pid(10);
        let s = sb.slot(a);
        s.set_accepted(3);
        s.set_requests(5);
        s.count_response(200);
        s.count_response(404);
        s.count_response(503);
        s.count_response(999);
        s.set_evictions(Eviction::Idle, 2);
        s.set_open(1);
        s.set_reading_writing(0, 1);
        let live = sb.snapshot();
        assert_eq!((live.accepted, live.requests), (3, 5));
        assert_eq!(live.responses, [0, 1, 0, 1, 2]);
        assert_eq!((live.open, live.writing), (1, 1));
        assert_eq!(live.workers, [1, 0, 0]);
        sb.release(a);
        let gone = sb.snapshot();
        assert_eq!((gone.accepted, gone.requests), (3, 5));
        assert_eq!(gone.responses, [0, 1, 0, 1, 2]);
        assert_eq!(gone.evictions.get(Eviction::Idle), 2);
        assert_eq!(
            (gone.open, gone.writing),
            (0, 0),
            "gauges go with the worker"
        );
        assert_eq!(gone.workers, [0, 0, 0]);
        // The slot's next worker starts from zero and adds to the totals.
        let b = sb.claim().unwrap();
        assert_eq!(b, a);
        sb.slot(b).set_pid(11);
        sb.slot(b).set_requests(1);
        assert_eq!(sb.snapshot().requests, 6);
        sb.count_restart(Restart::Watchdog);
        sb.count_reload(false);
        sb.count_upgrade(true);
        sb.set_generation(4);
        let s = sb.snapshot();
        assert_eq!(s.restarts, [0, 0, 1, 0]);
        assert_eq!((s.reloads, s.upgrades, s.generation), ([0, 1], [1, 0], 4));
        assert!(s.start_time > 1_600_000_000);
        assert_eq!(sb.totals.seq.load(Relaxed) % 2, 0, "no write left open");
    }

    #[test]
    fn claim_and_release() {
        let sb = board(2);
        let a = sb.claim().unwrap();
        let b = sb.claim().unwrap();
        assert_ne!(a, b);
        assert_eq!(sb.claim(), None, "full");
        assert!(sb.slot(a).heartbeat() > 0);
        sb.release(a);
        sb.set_maintenance(true);
        assert_eq!(sb.claim(), Some(a));
        assert_eq!(
            sb.slot(a).maintenance.load(Relaxed),
            1,
            "a new worker starts switched"
        );
        assert_eq!(
            sb.slot(b).maintenance.load(Relaxed),
            1,
            "a running one is switched"
        );
        sb.set_maintenance(false);
        assert_eq!(sb.slot(b).maintenance.load(Relaxed), 0);
    }

    #[test]
    fn lost_lines_outlive_the_worker() {
        let sb = board(2);
        let a = sb.claim().unwrap();
        sb.slot(a).log_lost.fetch_add(3, Relaxed);
        sb.release(a);
        let again = sb.claim().unwrap();
        sb.slot(again).log_lost.fetch_add(2, Relaxed);
        assert_eq!(sb.log_lost_total(), 5);
    }

    #[test]
    fn state_round_trips_through_the_slot() {
        let s = Slot::default();
        assert_eq!(s.state(), WorkerState::Starting);
        for state in [
            WorkerState::Accepting,
            WorkerState::Draining,
            WorkerState::Starting,
        ] {
            s.set_state(state);
            assert_eq!(s.state(), state);
        }
    }

    #[test]
    fn evictions_are_counted_per_kind_summed_and_shown() {
        let sb = board(3);
        let (a, b) = (sb.claim().unwrap(), sb.claim().unwrap());
        sb.slot(a).set_evictions(Eviction::Idle, 5);
        sb.slot(a).set_evictions(Eviction::Slow, 1);
        sb.slot(b).set_evictions(Eviction::Idle, 2);
        sb.slot(b).set_evictions(Eviction::Full, 7);
        let sum = sb.snapshot().evictions;
        assert_eq!(sum.get(Eviction::Idle), 7);
        assert_eq!(sum.total(), 15);
        assert_eq!(
            sum.to_string(),
            "evicted_idle=7 evicted_lingering=0 evicted_head=0 slow_408=1 client_cap=0 full_busy=7"
        );
        // A worker gone: its counts stay in the totals, and its slot, when
        // reused, starts from zero.
        sb.release(a);
        assert_eq!(sb.snapshot().evictions, sum);
        assert_eq!(sb.claim(), Some(a));
        assert_eq!(sb.slot(a).evictions().total(), 0);
        assert_eq!(sb.snapshot().evictions, sum);
    }
}
