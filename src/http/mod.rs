//! HTTP/1.1, sans-IO below the connection: the request parser, one
//! connection's state machine over a `Transport`, routes and the answers
//! they give, and the PROXY protocol header. Imports nothing from `os/`,
//! `master/` or `worker/`.

/// Precomputed answers and the policy that picks one (`Responses`).
pub mod answer;
/// The chunked request body decoder (RFC 9112 7.1), sans-IO.
pub mod chunked;
/// Address ranges (`10.0.0.0/8`) for `allow` and `proxy_protocol_from`.
pub mod cidr;
/// One client connection: buffers, pipelining, keep-alive, deadlines.
pub mod conn;
/// Serving a directory (`kind = "files"`): path → file beneath root,
/// validators, ranges, encodings, listings.
pub mod files;
/// Sans-IO request parsing; `Reject` → status.
pub mod parse;
/// PROXY protocol v1/v2 header → client address, sans-IO.
pub mod proxy;
/// `[[route]]` → a lookup built once per config, and each route's answers.
pub mod route;
/// Response templates: bytes built once, the Date patched in place.
pub mod template;
/// What a connection reads from and writes to: TCP, TLS, in memory.
pub mod transport;
