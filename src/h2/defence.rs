//! The defences' bookkeeping: a per-second budget, and the connection's
//! public counters (what happened, and each defence that fired).

use std::time::{Duration, Instant};

/// Events allowed per one-second window (rapid resets, control frames).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    limit: u32,
    used: u32,
    since: Option<Instant>,
}

impl Budget {
    pub fn new(limit: u32) -> Budget {
        Budget {
            limit,
            used: 0,
            since: None,
        }
    }

    /// Counts one event; false once the window's budget is spent.
    pub fn spend(&mut self, now: Instant) -> bool {
        let fresh = self
            .since
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if fresh {
            self.since = Some(now);
            self.used = 0;
        }
        self.used = self.used.saturating_add(1);
        self.used <= self.limit
    }
}

/// One connection's counts, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub streams_opened: u64,
    pub resets_received: u64,
    pub resets_sent: u64,
    pub goaways_sent: u64,
    /// Requests answered with RST_STREAM PROTOCOL_ERROR (§8.1.1).
    pub malformed_requests: u64,
    /// Streams past max_concurrent_streams, refused (REFUSED_STREAM).
    pub refused_streams: u64,
    /// GOAWAY ENHANCE_YOUR_CALM for resetting streams faster than the budget.
    pub rapid_resets: u64,
    /// GOAWAY ENHANCE_YOUR_CALM for too many control frames.
    pub control_floods: u64,
    /// GOAWAY ENHANCE_YOUR_CALM for too many CONTINUATION frames.
    pub continuation_floods: u64,
    /// GOAWAY ENHANCE_YOUR_CALM for a compressed header block over the limit.
    pub header_blocks_too_large: u64,
    /// Decoded header lists over the limit: 431 on the stream.
    pub header_lists_too_large: u64,
    /// COMPRESSION_ERROR for a table size update above what we advertised.
    pub table_size_violations: u64,
    /// GOAWAY ENHANCE_YOUR_CALM for output the peer does not read.
    pub output_overflows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refills_each_second() {
        let t0 = Instant::now();
        let mut b = Budget::new(2);
        assert!(b.spend(t0) && b.spend(t0));
        assert!(!b.spend(t0 + Duration::from_millis(999)));
        assert!(b.spend(t0 + Duration::from_secs(1)));
    }
}
