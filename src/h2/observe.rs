//! What an HTTP/2 connection tells its observer (the access log) of each
//! answer: at once for an answer given whole; for a file body once it has
//! ended, with the body bytes framed by then: all of it, or what was sent
//! before the client reset the stream or the connection closed (as an
//! HTTP/1.1 connection logs a file body, `http/conn/observe.rs`).

use std::net::IpAddr;
use std::time::Instant;

use super::session::Session;
use crate::http::conn::Ctx;
use crate::http::route::Choice;
use crate::obs::exchange::Exchange;

/// An answer whose body bytes are known only once its body has ended.
pub(super) struct Told {
    pub stream: u32,
    /// The request head as logged (`HTTP/2.0`).
    pub head: Vec<u8>,
    pub status: u16,
    pub choice: Option<Choice>,
    pub started: Instant,
}

/// Tells the observer, if any, of one answer.
pub(super) fn tell(ctx: &Ctx, peer: Option<IpAddr>, told: &Told, body_bytes: u64) {
    if let Some(o) = ctx.observer {
        o.answered(&Exchange {
            peer,
            head: &told.head,
            status: told.status,
            body_bytes,
            started: told.started,
            now: ctx.now,
            route: told
                .choice
                .and_then(|c| ctx.responses.route_name(c, ctx.maintenance)),
        });
    }
}

/// File answers waiting for their bodies to end.
#[derive(Default)]
pub(super) struct Waiting(Vec<Told>);

impl Waiting {
    pub fn hold(&mut self, told: Told) {
        self.0.push(told);
    }

    /// Tells of every body the session says has ended.
    pub fn ended(&mut self, ctx: &Ctx, peer: Option<IpAddr>, session: &mut Session) {
        while let Some((stream, bytes)) = session.next_ended() {
            if let Some(i) = self.0.iter().position(|t| t.stream == stream) {
                tell(ctx, peer, &self.0.swap_remove(i), bytes);
            }
        }
    }

    /// The connection closes: tells of every body still under way, with
    /// what was framed of it.
    pub fn close(&mut self, ctx: &Ctx, peer: Option<IpAddr>, session: &mut Session) {
        self.ended(ctx, peer, session);
        for told in self.0.drain(..) {
            tell(ctx, peer, &told, session.framed(told.stream).unwrap_or(0));
        }
    }
}
