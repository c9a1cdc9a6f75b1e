//! Connection pressure, carried out: closing what `pressure::choose`
//! picked, the per-kind counters in the scoreboard slot, and the log of a
//! pressure episode (one warning per cause, one line when it is over).

use std::net::IpAddr;
use std::time::Instant;

use super::{pressure, Worker, PRESSURE_QUIET};
use crate::obs::scoreboard::{self, Eviction};

/// An episode of connection pressure: logged once when each cause first
/// shows, and once when it is over.
pub(super) struct Episode {
    began: Instant,
    last: Instant,
    /// Causes already logged (bits of `Cause`).
    logged: u8,
    /// The eviction counts when it began.
    before: [u64; 6],
}

/// Why a worker is under pressure, as its log says.
#[derive(Clone, Copy)]
pub(super) enum Cause {
    Full = 1,
    ClientCap = 2,
    Slow = 4,
}

impl Worker {
    /// At `worker_connections`: closes a batch of connections, idle
    /// longest first, then lingering, then the slowest heads (never one
    /// being served). Whether there is room now.
    pub(super) fn make_room(&mut self) -> bool {
        let want = pressure::batch(self.max_conns);
        let mut victims = std::mem::take(&mut self.victims);
        pressure::choose(
            self.table.standings(),
            self.shared.now,
            want,
            true,
            &mut victims,
        );
        for v in &victims {
            self.evict(v.index, v.kind);
        }
        let made = !victims.is_empty();
        self.victims = victims;
        if made {
            self.note_pressure(Cause::Full, None);
        }
        made
    }

    /// A client at `max_connections_per_client` opened another: closes a
    /// batch of its idle (or lingering) connections, idle longest first.
    /// Whether there is room for the new one.
    pub(super) fn make_room_for(&mut self, ip: IpAddr) -> bool {
        let want = pressure::batch(self.client_cap);
        let mut victims = std::mem::take(&mut self.victims);
        pressure::choose(
            self.table.standings_of(ip),
            self.shared.now,
            want,
            false,
            &mut victims,
        );
        for v in &victims {
            self.evict(v.index, Eviction::ClientCap);
        }
        let made = !victims.is_empty();
        self.victims = victims;
        self.note_pressure(Cause::ClientCap, Some(ip));
        made
    }

    /// Closes a connection without an answer, counted as `kind`.
    pub(super) fn evict(&mut self, index: usize, kind: Eviction) {
        if let Some(entry) = self.table.take(index) {
            self.count(kind);
            self.close(index, entry);
        }
    }

    pub(super) fn count(&mut self, kind: Eviction) {
        let n = &mut self.evicted[kind as usize];
        *n += 1;
        self.shared.board.set_evictions(kind, *n);
    }

    /// Records a pressure event; logs its cause the first time in an
    /// episode (the rest is counted, not logged).
    pub(super) fn note_pressure(&mut self, cause: Cause, client: Option<IpAddr>) {
        let now = self.shared.now;
        let evicted = self.evicted;
        let episode = self.pressure.get_or_insert(Episode {
            began: now,
            last: now,
            logged: 0,
            before: evicted,
        });
        episode.last = now;
        if episode.logged & cause as u8 != 0 {
            return;
        }
        episode.logged |= cause as u8;
        let pid = std::process::id();
        match cause {
            Cause::Full => log::warn!(
                "worker pid={pid} pressure: full at worker_connections={}; closing idle connections, then the slowest request heads, to make room",
                self.max_conns
            ),
            Cause::ClientCap => log::warn!(
                "worker pid={pid} pressure: client={} at max_connections_per_client={}; closing its idle connections, else its new ones",
                client.map_or_else(|| "?".to_owned(), |ip| ip.to_string()),
                self.client_cap
            ),
            Cause::Slow => log::warn!(
                "worker pid={pid} pressure: requests arriving below min_request_rate={}/s; answering them 408",
                self.shared.timeouts.min_rate
            ),
        }
    }

    /// Ends a pressure episode after `PRESSURE_QUIET`, logging what it cost.
    pub(super) fn end_quiet_pressure(&mut self) {
        let Some(episode) = &self.pressure else {
            return;
        };
        if self.shared.now < episode.last + PRESSURE_QUIET {
            return;
        }
        let mut during = scoreboard::Evictions::default();
        for (i, n) in during.0.iter_mut().enumerate() {
            *n = self.evicted[i] - episode.before[i];
        }
        log::warn!(
            "worker pid={} pressure over after {}s: {during}",
            std::process::id(),
            (episode.last - episode.began).as_secs()
        );
        self.pressure = None;
    }
}
