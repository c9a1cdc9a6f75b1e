//! HTTP/2 (RFC 9113) for the server side, sans-IO: frames ↔ bytes
//! (`frame.rs`), HPACK (`hpack/`), and the state machine of one connection
//! (`session.rs` with its stream table in `stream.rs`). Bytes in, requests
//! out, answers framed; the worker owns the socket, epoll and deadlines.

pub mod frame;
pub mod hpack;
