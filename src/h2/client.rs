//! A worker's client connection: HTTP/1.1 (`http::conn::Conn`) until its
//! first request head turns out to be the HTTP/2 connection preface (on
//! an `h2c` listener, or over TLS when ALPN chose `h2`), HTTP/2
//! (`serve::H2Conn`) from then on, over the same stream. The worker drives
//! either through the same methods; `Client::into_h2` is the one change
//! of kind, made by the worker when `Client::wants_h2` says so.

use std::net::IpAddr;
use std::time::Instant;

use super::serve::H2Conn;
use crate::http::conn::{Buffers, Conn, Ctx, Interest, Standing};
use crate::http::transport::Transport;

// HTTP/1.1 is most connections: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Client<S> {
    H1(Conn<S>),
    H2(Box<H2Conn<S>>),
}

/// Calls `$m` on whichever connection it is.
macro_rules! either {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            Client::H1($c) => $e,
            Client::H2($c) => $e,
        }
    };
}

impl<S: Transport> Client<S> {
    /// A new connection, HTTP/1.1 first; `h2c`: its listener takes
    /// HTTP/2 with prior knowledge too.
    pub fn new(stream: S, ctx: &Ctx, h2c: bool) -> Client<S> {
        let mut c = Conn::new(stream, ctx);
        if h2c {
            c.allow_h2c();
        }
        Client::H1(c)
    }

    /// See [`Conn::expect_proxy_header`].
    pub fn expect_proxy_header(&mut self) {
        if let Client::H1(c) = self {
            c.expect_proxy_header();
        }
    }

    /// The HTTP/2 preface arrived: [`Client::into_h2`] is due.
    pub fn wants_h2(&self) -> bool {
        matches!(self, Client::H1(c) if c.wants_h2())
    }

    /// The HTTP/1.1 connection that read the preface becomes an HTTP/2
    /// one over the same stream, which answers what was read so far.
    pub fn into_h2(self, ctx: &Ctx, bufs: &mut Buffers) -> (Client<S>, Interest) {
        let Client::H1(mut c) = self else {
            return (self, Interest::Read);
        };
        let Some(start) = c.take_h2_start() else {
            return (Client::H1(c), Interest::Read);
        };
        let peer = c.peer();
        let stream = c.into_stream(bufs);
        let (h2, interest) = H2Conn::start(stream, peer, &start, ctx, bufs);
        (Client::H2(Box::new(h2)), interest)
    }

    pub fn on_readable(&mut self, ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        either!(self, c => c.on_readable(ctx, bufs))
    }

    pub fn on_writable(&mut self, ctx: &Ctx) -> Interest {
        either!(self, c => c.on_writable(ctx))
    }

    pub fn on_timeout(&mut self, ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        either!(self, c => c.on_timeout(ctx, bufs))
    }

    pub fn start_drain(&mut self, ctx: &Ctx) {
        either!(self, c => c.start_drain(ctx))
    }

    pub fn release(self, bufs: &mut Buffers) {
        either!(self, c => c.release(bufs))
    }

    pub fn deadline(&self) -> Instant {
        either!(self, c => c.deadline())
    }

    pub fn standing(&self) -> Standing {
        either!(self, c => c.standing())
    }

    pub fn is_slow(&self) -> bool {
        either!(self, c => c.is_slow())
    }

    pub fn is_idle(&self) -> bool {
        either!(self, c => c.is_idle())
    }

    pub fn is_lingering(&self) -> bool {
        either!(self, c => c.is_lingering())
    }

    pub fn held_bytes(&self) -> usize {
        either!(self, c => c.held_bytes())
    }

    /// Requests answered on this connection (HTTP/2: streams answered).
    pub fn requests(&self) -> u64 {
        either!(self, c => c.requests)
    }

    pub fn stream(&self) -> &S {
        either!(self, c => c.stream())
    }

    pub fn stream_mut(&mut self) -> &mut S {
        either!(self, c => c.stream_mut())
    }

    pub fn client_from_header(&self) -> Option<IpAddr> {
        either!(self, c => c.client_from_header())
    }
}
