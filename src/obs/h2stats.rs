//! HTTP/2 counters in a worker's scoreboard slot: streams, resets, GOAWAYs
//! and one per defence (RFC 9113 attacks). Like the TLS counters they are
//! never reset when a slot is claimed again, so their sums over all slots
//! are the master's totals: a reaped worker's counts stay counted.
//! The HTTP/2 connection (`h2/serve.rs`) counts; metrics shows them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One counter of [`H2Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H2Stat {
    Streams,
    ResetsReceived,
    ResetsSent,
    GoawaysSent,
    RapidResets,
    ControlFloods,
    ContinuationFloods,
    HeaderBlocksTooLarge,
    HeaderListsTooLarge,
    RefusedStreams,
    TableSizeViolations,
    OutputOverflows,
    StalledCloses,
}

/// How many [`H2Stat`]s there are.
pub const COUNT: usize = 13;

impl H2Stat {
    pub const ALL: [H2Stat; COUNT] = [
        H2Stat::Streams,
        H2Stat::ResetsReceived,
        H2Stat::ResetsSent,
        H2Stat::GoawaysSent,
        H2Stat::RapidResets,
        H2Stat::ControlFloods,
        H2Stat::ContinuationFloods,
        H2Stat::HeaderBlocksTooLarge,
        H2Stat::HeaderListsTooLarge,
        H2Stat::RefusedStreams,
        H2Stat::TableSizeViolations,
        H2Stat::OutputOverflows,
        H2Stat::StalledCloses,
    ];

    /// The `defence` label of the metric, for the defences (None for the
    /// plain counts).
    pub fn defence(self) -> Option<&'static str> {
        Some(match self {
            H2Stat::RapidResets => "rapid_reset",
            H2Stat::ControlFloods => "control_flood",
            H2Stat::ContinuationFloods => "continuation_flood",
            H2Stat::HeaderBlocksTooLarge => "header_block_too_large",
            H2Stat::HeaderListsTooLarge => "header_list_too_large",
            H2Stat::RefusedStreams => "refused_stream",
            H2Stat::TableSizeViolations => "table_size",
            H2Stat::OutputOverflows => "output_overflow",
            H2Stat::StalledCloses => "stalled_window",
            _ => return None,
        })
    }
}

/// The counters of one slot, in [`H2Stat::ALL`] order.
#[derive(Debug, Default)]
pub struct H2Stats([AtomicU64; COUNT]);

impl H2Stats {
    /// Adds `n` (only the slot's worker writes).
    pub fn add(&self, stat: H2Stat, n: u64) {
        if n > 0 {
            self.0[stat as usize].fetch_add(n, Relaxed);
        }
    }

    pub fn load(&self) -> [u64; COUNT] {
        std::array::from_fn(|i| self.0[i].load(Relaxed))
    }
}

/// Writes a metric family: name (after `preforkd_`), type, help, samples
/// (labels, value); the metrics page's own writer.
pub type Family = fn(&mut String, &str, &str, &str, &[(String, u64)]);

/// The HTTP/2 families of the metrics page: streams, resets by direction,
/// GOAWAYs sent, and connections or streams ended by each defence.
pub fn families(out: &mut String, h2: &[u64; COUNT], family: Family) {
    let at = |s: H2Stat| h2[s as usize];
    let one = |v: u64| [(String::new(), v)];
    family(
        out,
        "h2_streams_total",
        "counter",
        "HTTP/2 streams opened by clients.",
        &one(at(H2Stat::Streams)),
    );
    family(
        out,
        "h2_resets_total",
        "counter",
        "HTTP/2 RST_STREAM frames, by direction.",
        &[
            ("direction=\"received\"".into(), at(H2Stat::ResetsReceived)),
            ("direction=\"sent\"".into(), at(H2Stat::ResetsSent)),
        ],
    );
    family(
        out,
        "h2_goaways_sent_total",
        "counter",
        "HTTP/2 GOAWAY frames sent (draining, idle, errors).",
        &one(at(H2Stat::GoawaysSent)),
    );
    let defences: Vec<(String, u64)> = H2Stat::ALL
        .iter()
        .filter_map(|&s| s.defence().map(|d| (format!("defence=\"{d}\""), at(s))))
        .collect();
    family(
        out,
        "h2_defences_total",
        "counter",
        "HTTP/2 connections or streams ended by a defence, by kind.",
        &defences,
    );
}
