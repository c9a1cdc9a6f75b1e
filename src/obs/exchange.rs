//! What a connection tells its observers (the access log) of each answer:
//! the [`Exchange`](crate::obs::exchange::Exchange), and the
//! [`Observer`](crate::obs::exchange::Observer) trait that takes it. Defined here,
//! below the protocol, so that the access log need not import the
//! connection that calls it.

use std::net::IpAddr;
use std::time::Instant;

/// Learns of each answer a connection decides on, before it is written.
pub trait Observer {
    fn answered(&self, exchange: &Exchange);
}

/// One request and its answer, as an [`Observer`] sees them.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    /// The client's address (None when unknown).
    pub peer: Option<IpAddr>,
    /// The request head from its first byte: all of it for an answered
    /// request, whatever had arrived for a refused or cut-short one (maybe
    /// not even a whole request line). Empty lines before it included.
    pub head: &'a [u8],
    pub status: u16,
    /// Bytes of the answer's body (0 for HEAD, 204, or no answer sent).
    pub body_bytes: u64,
    /// When the request's first byte was read (the worker's loop time).
    pub started: Instant,
    /// When it was answered (the worker's loop time).
    pub now: Instant,
    /// What answered: a route's path (a prefix ends in `*`),
    /// `maintenance`, or None for `[response]` and refusals.
    pub route: Option<&'a str>,
}
