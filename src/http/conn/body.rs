//! A request body as it arrives: discarded (counted against
//! `max_request_body_bytes` by the decoder), then the request is answered.
//! Bodies are never buffered.

use super::{count, BodyLeft, Conn, Ctx, Phase, Step, Verdict};
use crate::http::chunked::Decoded;
use crate::http::parse::Method;
use crate::http::transport::Transport;

impl<S: Transport> Conn<S> {
    /// Takes what of the body under way is in `input[pos..]`; answers the
    /// request once the body is whole.
    pub(super) fn take_body(
        &mut self,
        input: &[u8],
        mut pos: usize,
        ctx: &Ctx,
        out: &mut Vec<u8>,
    ) -> Step {
        let Phase::Body {
            request,
            left,
            route,
        } = &mut self.phase
        else {
            return Step::Go(pos);
        };
        let (request, route) = (*request, *route);
        let avail = &input[pos..];
        let before = pos;
        let done = match left {
            BodyLeft::Length(n) => {
                let take = (*n).min(avail.len() as u64);
                pos += take as usize;
                *n -= take;
                *n == 0
            }
            BodyLeft::Chunked(decoder) => match decoder.decode(avail, &ctx.limits) {
                Ok(Decoded::NeedMore) => {
                    pos = input.len();
                    false
                }
                Ok(Decoded::Done(k)) => {
                    pos += k;
                    true
                }
                Err(reject) => {
                    // A HEAD answer carries no body, an error one included.
                    let mark = out.len();
                    count(
                        ctx,
                        ctx.responses
                            .reject(out, reject, request.method == Method::Head),
                    );
                    let head = self.observed_head.take();
                    self.observe(ctx, head.as_deref().unwrap_or(&[]), &out[mark..]);
                    return Step::Stop(input.len(), Verdict::Close { linger: true });
                }
            },
        };
        if !done {
            self.got += (pos - before) as u64;
            self.limit = ctx.now + ctx.timeouts.header;
            self.deadline = self.progress_deadline(ctx);
            return Step::Stop(pos, Verdict::Open);
        }
        let mark = out.len();
        let tail = std::mem::take(&mut self.tail);
        let kept = self.observed_head.take();
        let keep = self.answer(
            request,
            route,
            &tail,
            kept.as_deref().unwrap_or(&[]),
            ctx,
            out,
        );
        self.observed_head = kept;
        self.tail = tail;
        let head = self.observed_head.take();
        self.observe_routed(
            ctx,
            head.as_deref().unwrap_or(&[]),
            Some(route),
            &out[mark..],
        );
        self.after_answer(keep, pos, input.len())
    }
}
