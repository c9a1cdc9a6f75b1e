//! Telling HTTP/2 from HTTP/1.1 on a connection that may speak both: on an
//! `h2c` listener (prior knowledge, RFC 9113 §3.3), or over TLS when ALPN
//! chose `h2` (§3.2), a first request head that is the HTTP/2 connection
//! preface stops this connection. It keeps the bytes read from the
//! preface on; the worker takes them and the stream and makes an HTTP/2
//! connection of them (`h2/serve.rs`). Anywhere else the preface is an
//! HTTP/1.1 head like any other (505, as before). `Upgrade: h2c` (§3.1 of
//! RFC 7540, deprecated by RFC 9113) is not acted on: such a request is
//! answered over HTTP/1.1.
//!
//! Also the two accessors to the worker's buffers that the HTTP/2
//! connection reads and writes with.

use super::{Buffers, Conn, Ctx, Phase, Step, Verdict};
use crate::http::transport::Transport;

/// RFC 9113 §3.4 (the same bytes as `h2::frame::PREFACE`, which `http/`
/// does not import: `h2/` imports `http/`).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl<S: Transport> Conn<S> {
    /// The connection is on an `h2c` listener.
    pub fn allow_h2c(&mut self) {
        self.h2c = true;
    }

    /// The HTTP/2 preface arrived: whether the worker should take over.
    pub fn wants_h2(&self) -> bool {
        self.h2_start.is_some()
    }

    /// The bytes read from the preface on (the preface included), for an
    /// HTTP/2 connection; None without a preface.
    pub fn take_h2_start(&mut self) -> Option<Vec<u8>> {
        self.h2_start.take()
    }

    /// The stream, for the HTTP/2 connection that takes over; the
    /// connection's buffer goes back to the pool.
    pub fn into_stream(mut self, bufs: &mut Buffers) -> S {
        if let Some(b) = self.inbuf.take() {
            bufs.give(b);
        }
        self.stream
    }

    /// The address a PROXY header named, and the one looked up, for the
    /// HTTP/2 connection that takes over.
    pub fn peer(&self) -> (Option<std::net::IpAddr>, bool) {
        (self.peer, self.peer_from_header)
    }

    /// At the first request head: the preface whole (stop, keep the
    /// bytes), a part of it (wait for more, as for a partial head), or not
    /// the preface (None: HTTP/1.1 as usual).
    pub(super) fn detect_h2(&mut self, input: &[u8], pos: usize, ctx: &Ctx) -> Option<Step> {
        if self.requests > 0 || !(self.h2c || self.stream.negotiated_h2()) {
            return None;
        }
        let rest = &input[pos..];
        let n = rest.len().min(PREFACE.len());
        if n == 0 || rest[..n] != PREFACE[..n] {
            return None;
        }
        if n < PREFACE.len() {
            if matches!(self.phase, Phase::Idle) {
                self.phase = Phase::Head;
                self.since = ctx.now;
            }
            self.got = n as u64;
            return Some(Step::Stop(pos, Verdict::Open));
        }
        self.h2_start = Some(rest.to_vec());
        self.phase = Phase::Idle;
        Some(Step::Stop(input.len(), Verdict::Open))
    }
}

impl Buffers {
    /// The scratch buffer reads go into, and the output buffer answers
    /// are built in: one each per worker.
    pub fn parts(&mut self) -> (&mut [u8], &mut Vec<u8>) {
        (&mut self.scratch[..], &mut self.out)
    }

    /// Memory for a held buffer: from the pool if one is free.
    pub fn take_buffer(&mut self) -> Box<[u8]> {
        self.take()
    }

    /// Gives a held buffer back.
    pub fn give_buffer(&mut self, buf: Box<[u8]>) {
        self.give(buf);
    }
}
