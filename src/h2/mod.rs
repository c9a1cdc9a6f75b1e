//! HTTP/2 (RFC 9113) for the server side, sans-IO: frames ↔ bytes
//! (`frame.rs`), HPACK (`hpack/`), and the state machine of one connection
//! (`session.rs` with its stream table in `stream.rs`). Bytes in, requests
//! out, answers framed; the worker owns the socket, epoll and deadlines.
//! The glue to the worker: `serve.rs` (a session over a stream, as an
//! HTTP/1.1 `Conn` is), `answer.rs` (requests answered by the HTTP/1.1
//! code) and `client.rs` (either kind of connection); these import
//! `http/` and `obs/`, never `os/`, `master/` or `worker/`.

/// Requests answered by the HTTP/1.1 code, answers split for HPACK.
pub mod answer;
/// A worker's client connection: HTTP/1.1 until the HTTP/2 preface.
pub mod client;
pub mod frame;
pub mod hpack;
pub mod request;
/// One HTTP/2 connection in a worker: a session over a stream.
pub mod serve;
pub mod settings;

mod control;
mod defence;
mod observe;
mod recv;
mod send;
mod session;
mod stream;

pub use defence::Counters;
pub use frame::ErrorCode;
pub use request::Request;
pub use send::{Body, SendError};
pub use session::{ConnError, Event, Session};
pub use settings::{Budgets, Settings};

#[cfg(test)]
mod tests;
