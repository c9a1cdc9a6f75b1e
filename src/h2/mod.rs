//! HTTP/2 (RFC 9113) for the server side, sans-IO: frames ↔ bytes
//! (`frame.rs`), HPACK (`hpack/`), and the state machine of one connection
//! (`session.rs` with its stream table in `stream.rs`). Bytes in, requests
//! out, answers framed; the worker owns the socket, epoll and deadlines.

pub mod frame;
pub mod hpack;
pub mod request;
pub mod settings;

mod control;
mod defence;
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
