//! Connection pressure, decided: which connections a worker at
//! `worker_connections` closes to make room, which one a client past
//! `max_connections_per_client` loses, and whether a worker holding more
//! than its share of a burst leaves the next accepts to the others. Plain
//! functions over what the connection table says of each connection (its
//! [`Standing`]); the worker (`worker/mod.rs`) carries the choice out, and
//! unit tests drive them without sockets.
//!
//! The order follows nginx's reusable connections and Apache's
//! mod_reqtimeout: first the connections idle longest (no first byte yet,
//! or between keep-alive requests), then those lingering after an answer,
//! then the unfinished request heads that have come slowest. A connection
//! reading a body or writing an answer is never chosen.

use std::time::Instant;

use crate::http::conn::Standing;
use crate::obs::scoreboard::Eviction;

/// A connection to close, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Victim {
    pub index: usize,
    pub kind: Eviction,
    /// Lower goes first within a kind: minus seconds idle, or bytes per
    /// second for a head.
    key: f64,
}

/// Connections closed at once when a worker makes room: a 32nd of
/// `worker_connections`, from 1 to 32 (nginx drains up to 32 reusable
/// connections at a time), so that a flood costs one scan of the table per
/// batch rather than one per new connection.
pub fn batch(max_conns: usize) -> usize {
    (max_conns / 32).clamp(1, 32)
}

/// Chooses up to `want` connections to close among `table`, best first,
/// into `out` (cleared first; kept by the caller so that no allocation is
/// made once it has grown). With `heads` false only idle and lingering
/// connections may be chosen (a per-client cap never closes a head).
pub fn choose(
    table: impl IntoIterator<Item = (usize, Standing)>,
    now: Instant,
    want: usize,
    heads: bool,
    out: &mut Vec<Victim>,
) {
    out.clear();
    if want == 0 {
        return;
    }
    for (index, standing) in table {
        let (kind, key) = match standing {
            Standing::Idle { since } => (Eviction::Idle, -secs(now, since)),
            Standing::Lingering { since } => (Eviction::Lingering, -secs(now, since)),
            Standing::Head { since, got } if heads => {
                // Bytes per second so far; a head younger than a
                // millisecond counts as fast.
                (Eviction::Head, got as f64 / secs(now, since).max(0.001))
            }
            Standing::Head { .. } | Standing::Busy => continue,
        };
        out.push(Victim { index, kind, key });
    }
    let order = |a: &Victim, b: &Victim| {
        rank(a.kind)
            .cmp(&rank(b.kind))
            .then(a.key.total_cmp(&b.key))
            .then(a.index.cmp(&b.index))
    };
    if out.len() > want {
        out.select_nth_unstable_by(want - 1, order);
        out.truncate(want);
    }
    out.sort_unstable_by(order);
}

fn rank(kind: Eviction) -> u8 {
    match kind {
        Eviction::Idle => 0,
        Eviction::Lingering => 1,
        _ => 2,
    }
}

fn secs(now: Instant, since: Instant) -> f64 {
    now.saturating_duration_since(since).as_secs_f64()
}

/// Balanced accepting (issue 10): whether a worker holding `mine` of the
/// `total` connections open in the `workers` accepting workers should leave
/// the next accepts to the others. A worker alone never yields; nor does
/// one at or under its even share plus a slack (an eighth of the share,
/// at least 2), so steady load never trips it and only a burst landing on
/// one worker does.
pub fn over_share(mine: u64, workers: u64, total: u64) -> bool {
    if workers < 2 {
        return false;
    }
    let share = total.div_ceil(workers);
    mine > share + (share / 8).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ago(now: Instant, ms: u64) -> Instant {
        now - Duration::from_millis(ms)
    }

    fn picked(table: &[(usize, Standing)], now: Instant, want: usize, heads: bool) -> Vec<usize> {
        let mut out = Vec::new();
        choose(table.iter().copied(), now, want, heads, &mut out);
        out.iter().map(|v| v.index).collect()
    }

    #[test]
    fn idle_longest_goes_first_then_lingering_then_slowest_head_never_busy() {
        let now = Instant::now() + Duration::from_secs(100);
        let table = [
            (0, Standing::Busy),
            (
                1,
                Standing::Head {
                    since: ago(now, 4000),
                    got: 4000,
                },
            ), // 1000 B/s
            (
                2,
                Standing::Idle {
                    since: ago(now, 100),
                },
            ),
            (
                3,
                Standing::Head {
                    since: ago(now, 4000),
                    got: 40,
                },
            ), // 10 B/s
            (
                4,
                Standing::Lingering {
                    since: ago(now, 50),
                },
            ),
            (
                5,
                Standing::Idle {
                    since: ago(now, 3000),
                },
            ),
            (6, Standing::Busy),
        ];
        assert_eq!(picked(&table, now, 1, true), vec![5]);
        assert_eq!(picked(&table, now, 2, true), vec![5, 2]);
        assert_eq!(picked(&table, now, 5, true), vec![5, 2, 4, 3, 1]);
        // Never a busy one, however many are wanted.
        assert_eq!(picked(&table, now, 100, true), vec![5, 2, 4, 3, 1]);
        // Without heads: only idle and lingering.
        assert_eq!(picked(&table, now, 100, false), vec![5, 2, 4]);
        // The kinds are named for the counters.
        let mut out = Vec::new();
        choose(table.iter().copied(), now, 5, true, &mut out);
        let kinds: Vec<Eviction> = out.iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            [
                Eviction::Idle,
                Eviction::Idle,
                Eviction::Lingering,
                Eviction::Head,
                Eviction::Head
            ]
        );
    }

    #[test]
    fn nothing_to_close_when_all_are_busy_or_none_wanted() {
        let now = Instant::now();
        let busy = [(0, Standing::Busy), (1, Standing::Busy)];
        assert!(picked(&busy, now, 4, true).is_empty());
        let idle = [(0, Standing::Idle { since: now })];
        assert!(picked(&idle, now, 0, true).is_empty());
    }

    #[test]
    fn batch_is_a_32nd_within_1_and_32() {
        assert_eq!(batch(1), 1);
        assert_eq!(batch(2), 1);
        assert_eq!(batch(256), 8);
        assert_eq!(batch(1024), 32);
        assert_eq!(batch(100_000), 32);
    }

    #[test]
    fn only_a_worker_well_over_its_share_yields() {
        // Alone: never.
        assert!(!over_share(64, 1, 64));
        assert!(!over_share(10_000, 1, 10_000));
        // Two workers, a burst of 64 landing on one.
        assert!(over_share(6, 2, 6));
        assert!(!over_share(5, 2, 5));
        assert!(!over_share(3, 2, 3));
        assert!(over_share(40, 2, 64));
        assert!(!over_share(34, 2, 64));
        assert!(!over_share(36, 2, 64), "within the slack");
        // Steady and even.
        assert!(!over_share(500, 2, 1000));
        // Nobody counted accepting yet (a worker starting up).
        assert!(!over_share(5, 0, 0));
    }
}
