//! The output side of a connection: writing answers, holding what the
//! socket did not take, and sending a file body (`sendfile` on TCP) a
//! turn's share at a time; then what follows the write (keep open, close,
//! or the lingering close).

use std::io;

use super::{Conn, Ctx, Interest, Phase, Verdict, LINGER};
use crate::http::transport::{write_some, Transport};

/// Bytes of a file body one connection sends per turn of the worker's
/// loop before it lets the others go (it continues on the next writable
/// event).
const FILE_TURN: u64 = 1 << 20;

impl<S: Transport> Conn<S> {
    /// The socket is writable again: send what was pending.
    pub fn on_writable(&mut self, ctx: &Ctx) -> Interest {
        if self.pending.is_empty() {
            if !self.stream.has_pending_output() {
                if self.file.is_some() {
                    return self.pump_file(ctx);
                }
                return Interest::Read;
            }
        } else {
            let more = self.file.is_some();
            match write_some(&mut self.stream, &self.pending[self.sent..], more) {
                Ok(n) => self.sent += n,
                Err(_) => return Interest::Close,
            }
            if self.sent < self.pending.len() {
                self.deadline = ctx.now + ctx.timeouts.header;
                return Interest::Write;
            }
            // Free it: a connection that is not blocked holds no output buffer.
            self.pending = Vec::new();
            self.sent = 0;
        }
        // What the transport itself still holds (TLS records).
        if self.stream.flush().is_err() {
            return Interest::Close;
        }
        if self.stream.has_pending_output() {
            self.deadline = ctx.now + ctx.timeouts.header;
            return Interest::Write;
        }
        if matches!(self.phase, Phase::Lingering) {
            return Interest::Read;
        }
        if self.file.is_some() {
            return self.pump_file(ctx);
        }
        self.after_write(self.after_flush, ctx)
    }

    /// Writes `out` (one write in the usual case); what the socket does not
    /// take waits in `pending`.
    pub(super) fn send(&mut self, out: &[u8], verdict: Verdict, ctx: &Ctx) -> Interest {
        if !out.is_empty() {
            // A file body follows: the head waits to share its packet.
            let more = self.file.is_some();
            let n = match write_some(&mut self.stream, out, more) {
                Ok(n) => n,
                Err(_) => return Interest::Close,
            };
            if n < out.len() || self.stream.has_pending_output() {
                self.pending.extend_from_slice(&out[n..]);
                self.sent = 0;
                self.after_flush = verdict;
                self.deadline = ctx.now + ctx.timeouts.header;
                return Interest::Write;
            }
        }
        if self.file.is_some() {
            self.after_flush = verdict;
            return self.pump_file(ctx);
        }
        self.after_write(verdict, ctx)
    }

    /// Sends the file body under way until the socket is full, the file is
    /// out, or this turn's share is spent (a fast reader of a big file
    /// must not hold the worker; epoll is level-triggered, so the next
    /// writable event continues). Then as after any write.
    pub(super) fn pump_file(&mut self, ctx: &Ctx) -> Interest {
        let mut budget = FILE_TURN;
        while let Some(out) = &mut self.file {
            if out.body.len == 0 {
                self.finish_file(ctx);
                return self.after_write(self.after_flush, ctx);
            }
            if self.stream.has_pending_output() {
                // TLS records of the last chunk: they go first.
                if self.stream.flush().is_err() {
                    return self.abandon_file(ctx);
                }
                if self.stream.has_pending_output() {
                    self.deadline = ctx.now + ctx.timeouts.header;
                    return Interest::Write;
                }
            }
            if budget == 0 {
                self.deadline = ctx.now + ctx.timeouts.header;
                return Interest::Write;
            }
            let want = out.body.len.min(budget);
            match self.stream.send_file(&out.body.file, out.body.offset, want) {
                // Shorter than its size said: truncated since it was
                // opened. The promised length cannot be kept: close.
                Ok(0) => return self.abandon_file(ctx),
                Ok(n) => {
                    let n = n as u64;
                    out.body.offset += n;
                    out.body.len -= n;
                    out.sent += n;
                    budget -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.deadline = ctx.now + ctx.timeouts.header;
                    return Interest::Write;
                }
                Err(_) => return self.abandon_file(ctx),
            }
        }
        self.after_write(self.after_flush, ctx)
    }

    /// The client is gone or the file broke mid-body: the answer is told
    /// with what was sent, and the connection closes.
    fn abandon_file(&mut self, ctx: &Ctx) -> Interest {
        self.finish_file(ctx);
        self.later = Vec::new();
        Interest::Close
    }

    pub(super) fn after_write(&mut self, verdict: Verdict, ctx: &Ctx) -> Interest {
        match verdict {
            Verdict::Open => {
                if matches!(self.phase, Phase::Idle) {
                    // Idle again once everything is out (the deadline was
                    // the write's while it was blocked).
                    self.since = ctx.now;
                    self.deadline = ctx.now + self.idle_timeout(ctx);
                }
                Interest::Read
            }
            Verdict::Close { linger: false } => Interest::Close,
            Verdict::Close { linger: true } => {
                // FIN after the answer; keep reading so that what the client
                // still sends does not make the kernel reset the connection.
                if self.stream.shutdown_write().is_err() {
                    return Interest::Close;
                }
                self.phase = Phase::Lingering;
                self.since = ctx.now;
                self.deadline = ctx.now + LINGER;
                Interest::Read
            }
        }
    }
}
