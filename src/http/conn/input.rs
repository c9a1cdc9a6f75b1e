//! The input side of a connection: one read (from the socket, or the
//! pipelined input that waited behind a file body), the PROXY header
//! first where one is due, then every complete request in it answered;
//! what is left of a partial head is kept for the next read.

use super::{count, recycle, summarize, would_block, Buffers, Conn, Ctx, Interest, Verdict};
use crate::http::proxy;
use crate::http::transport::Transport;

impl<S: Transport> Conn<S> {
    /// The socket is readable: read once, answer every complete request
    /// (again while the transport holds input it read already).
    pub fn on_readable(&mut self, ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        loop {
            let interest = self.read_once(ctx, bufs);
            let more = self.stream.has_buffered_input() || !self.later.is_empty();
            // An HTTP/2 preface stops here: the rest is HTTP/2's to read.
            if interest != Interest::Read || !more || self.h2_start.is_some() {
                return interest;
            }
        }
    }

    fn read_once(&mut self, ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        if self.is_writing() {
            // Not reading while output is blocked (see Interest::Write).
            return Interest::Write;
        }
        if !self.later.is_empty() {
            return self.answer_later(ctx, bufs);
        }
        let mut own = self.inbuf.take();
        let start = if own.is_some() { self.in_len } else { 0 };
        let result = match own.as_deref_mut() {
            Some(b) => self.stream.read(&mut b[start..]),
            None => self.stream.read(&mut bufs.scratch[..]),
        };
        let n = match result {
            Ok(n) if n > 0 => n,
            Err(e) if would_block(&e) => {
                self.inbuf = own;
                // A TLS handshake reply the socket did not take yet.
                if self.stream.has_pending_output() {
                    return Interest::Write;
                }
                return Interest::Read;
            }
            // EOF, or the client is gone (ECONNRESET and the like): a
            // request cut short is logged as nginx does, 400 with no body.
            // Or the transport answered the client itself (plain HTTP to a
            // TLS port): logged and counted as any refusal.
            _ => {
                if let Some((head, answer)) = self.stream.refused() {
                    count(ctx, summarize(answer).0);
                    self.observe(ctx, head, answer);
                } else {
                    self.observe_cut_short(ctx, own.as_deref().map_or(&[][..], |b| &b[..start]));
                }
                return recycle(own, bufs, Interest::Close);
            }
        };
        let len = start + n;
        bufs.out.clear();
        let input: &[u8] = match own.as_deref() {
            Some(b) => &b[..len],
            None => &bufs.scratch[..len],
        };
        // The PROXY header first; its bytes are skipped, never parsed as HTTP.
        let mut skip = 0;
        if self.awaiting_proxy {
            match proxy::parse(input) {
                proxy::Parsed::Done { len, client } => {
                    self.awaiting_proxy = false;
                    if let Some(ip) = client {
                        self.peer = Some(ip);
                        self.peer_from_header = true;
                    }
                    skip = len;
                }
                // Kept below, as a partial head is, until the rest arrives.
                proxy::Parsed::Partial => {}
                // Not from a balancer that speaks it: no answer at all.
                proxy::Parsed::Invalid => return recycle(own, bufs, Interest::Close),
            }
        }
        let (used, verdict) = if self.awaiting_proxy {
            (0, Verdict::Open)
        } else {
            let (used, verdict) = self.process(&input[skip..], ctx, &mut bufs.out);
            (skip + used, verdict)
        };
        let left = len - used;
        self.in_len = 0;
        if verdict == Verdict::Open && left > 0 && self.file.is_some() {
            // Behind a file answer: kept whole, answered after the file.
            self.later.extend_from_slice(&input[used..len]);
            if let Some(b) = own {
                bufs.give(b);
            }
        } else if verdict == Verdict::Open && left > 0 {
            // Keep the partial head (process refused it if it was too long).
            let kept = match own {
                Some(mut b) => {
                    b.copy_within(used..len, 0);
                    b
                }
                None => {
                    let mut b = bufs.take();
                    b[..left].copy_from_slice(&bufs.scratch[used..len]);
                    b
                }
            };
            self.inbuf = Some(kept);
            self.in_len = left;
        } else if let Some(b) = own {
            bufs.give(b);
        }
        if self.awaiting_proxy {
            // Nothing to send, and the deadline stays header_timeout's
            // from accept (not the keep-alive one an idle connection gets).
            return Interest::Read;
        }
        let out = std::mem::take(&mut bufs.out);
        let interest = self.send(&out, verdict, ctx);
        bufs.out = out;
        interest
    }

    /// Answers the pipelined input that waited behind a file body, as if
    /// it had just been read.
    fn answer_later(&mut self, ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        let later = std::mem::take(&mut self.later);
        bufs.out.clear();
        let (used, verdict) = self.process(&later, ctx, &mut bufs.out);
        let rest = &later[used..];
        if verdict == Verdict::Open && !rest.is_empty() {
            if self.file.is_some() {
                self.later = rest.to_vec();
            } else {
                // A partial head: process refused one over the limit, so
                // it fits a connection buffer.
                let mut b = bufs.take();
                b[..rest.len()].copy_from_slice(rest);
                self.inbuf = Some(b);
                self.in_len = rest.len();
            }
        }
        let out = std::mem::take(&mut bufs.out);
        let interest = self.send(&out, verdict, ctx);
        bufs.out = out;
        interest
    }
}
