//! The observing floor: what the server tells about itself. Counters in
//! shared memory, the pages that show them, the daemon's log and the
//! access log. Imports `os/` for the mapping and the files it writes.

/// The access log: line formats, per-worker buffer, flush, reopen.
pub mod access_log;
/// Time formatted once: HTTP `Date`, syslog timestamps, access log times.
pub mod clock;
/// One request and its answer, as observers see it.
pub mod exchange;
/// HTTP/2 counters in a scoreboard slot: streams, resets, defences.
pub mod h2stats;
/// syslog / stderr logging that survives fork and a missing socket.
pub mod log;
/// stub_status and Prometheus text from a scoreboard snapshot.
pub mod metrics;
/// RFC 3164 syslog framing, shared by the log and the access log.
pub mod rfc3164;
/// Shared-memory heartbeat, state and counters (evictions too), one slot per
/// worker, behind typed accessors.
pub mod scoreboard;
