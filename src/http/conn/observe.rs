//! What a connection tells its observer (the access log) of each answer,
//! refusal and request cut short, and when: at once for an answer that is
//! all in the output; once its last byte is out (or the client is gone)
//! for a file body, whose bytes sent are known only then.

use std::time::Instant;

use super::{Conn, Ctx, Phase};
use crate::http::route::Choice;
use crate::http::transport::Transport;
use crate::obs::exchange::Exchange;

/// An answer with a file body, told once the body is out or cut short.
pub(super) struct Pending {
    head: Box<[u8]>,
    status: u16,
    route: Option<Choice>,
    started: Instant,
}

impl<S: Transport> Conn<S> {
    /// Tells the observer, if any, of a refusal: `answer` is its bytes as
    /// appended to the output (status line, header, body).
    pub(super) fn observe(&self, ctx: &Ctx, head: &[u8], answer: &[u8]) {
        self.tell(ctx, head, None, answer);
    }

    /// Tells the observer, if any, of an answer and of what chose it
    /// (`route`: None for a refusal).
    pub(super) fn observe_routed(
        &mut self,
        ctx: &Ctx,
        head: &[u8],
        route: Option<Choice>,
        answer: &[u8],
    ) {
        if let (Some(_), Some(file)) = (ctx.observer, &mut self.file) {
            file.told = Some(Pending {
                head: head.into(),
                status: summarize(answer).0,
                route,
                started: self.started,
            });
            return;
        }
        self.tell(ctx, head, route, answer);
    }

    fn tell(&self, ctx: &Ctx, head: &[u8], route: Option<Choice>, answer: &[u8]) {
        if let Some(o) = ctx.observer {
            let (status, body_bytes) = summarize(answer);
            o.answered(&Exchange {
                peer: self.peer,
                head,
                status,
                body_bytes,
                started: self.started,
                now: ctx.now,
                route: route.and_then(|c| ctx.responses.route_name(c, ctx.maintenance)),
            });
        }
    }

    /// The client closed (or reset) the connection with a request under
    /// way: nginx logs that as 400 with no body, and so do we. Nothing is
    /// logged for a connection that never sent a byte of a request.
    pub(super) fn observe_cut_short(&mut self, ctx: &Ctx, partial: &[u8]) {
        let Some(o) = ctx.observer else { return };
        let kept = self.observed_head.take();
        let head = match self.phase {
            Phase::Head => partial,
            Phase::Body { .. } => kept.as_deref().unwrap_or(&[]),
            Phase::Idle | Phase::Lingering => return,
        };
        o.answered(&Exchange {
            peer: self.peer,
            head,
            status: 400,
            body_bytes: 0,
            started: self.started,
            now: ctx.now,
            route: None,
        });
    }

    /// The file body under way is done (all of it, or what the client
    /// took before it went): its answer is told with the bytes sent.
    pub(super) fn finish_file(&mut self, ctx: &Ctx) {
        let Some(file) = self.file.take() else { return };
        let (Some(o), Some(told)) = (ctx.observer, file.told) else {
            return;
        };
        o.answered(&Exchange {
            peer: self.peer,
            head: &told.head,
            status: told.status,
            body_bytes: file.sent,
            started: told.started,
            now: ctx.now,
            route: told
                .route
                .and_then(|c| ctx.responses.route_name(c, ctx.maintenance)),
        });
    }
}

/// Status and body length of an answer as appended to the output:
/// `HTTP/1.1 NNN ...` and whatever follows the blank line after the header.
pub(super) fn summarize(answer: &[u8]) -> (u16, u64) {
    let status = answer
        .get(9..12)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| answer.len() - i - 4);
    (status, body as u64)
}
