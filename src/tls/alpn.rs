//! ALPN (RFC 7301) on `tls` listeners: the protocols `[tls] alpn` offers,
//! in the server's order of preference, and what a connection chose.
//! `h2` there lets a TLS connection speak HTTP/2 (the worker tells by the
//! connection preface, as on an `h2c` listener); `["http/1.1"]` turns it off.

use std::sync::Arc;

use super::{Stream, TlsConfig, TlsStream};
use crate::http::transport::Transport;

/// A protocol ALPN may offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    H2,
    Http11,
}

/// The default: HTTP/2 first, as browsers and balancers expect.
pub const DEFAULT: [Alpn; 2] = [Alpn::H2, Alpn::Http11];

impl Alpn {
    /// `"h2"` or `"http/1.1"`.
    pub fn parse(s: &str) -> Option<Alpn> {
        match s {
            "h2" => Some(Alpn::H2),
            "http/1.1" => Some(Alpn::Http11),
            _ => None,
        }
    }

    /// The protocol id on the wire.
    pub fn id(self) -> &'static [u8] {
        match self {
            Alpn::H2 => b"h2",
            Alpn::Http11 => b"http/1.1",
        }
    }
}

/// `config` offering `protocols` (in that order) instead of the
/// `http/1.1` alone that [`super::load`] sets. The rustls config is
/// copied: it is shared by every connection made from it.
pub fn with_alpn(mut config: TlsConfig, protocols: &[Alpn]) -> TlsConfig {
    let mut server = (*config.server).clone();
    server.alpn_protocols = protocols.iter().map(|p| p.id().to_vec()).collect();
    config.server = Arc::new(server);
    config
}

impl<S: Transport> TlsStream<S> {
    /// The handshake chose `h2`.
    pub fn alpn_h2(&self) -> bool {
        self.tls.alpn_protocol() == Some(Alpn::H2.id())
    }
}

impl Stream {
    /// A TLS connection whose handshake chose `h2` (never a plain one).
    pub fn alpn_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.alpn_h2(),
        }
    }
}
