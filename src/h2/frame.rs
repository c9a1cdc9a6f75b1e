//! HTTP/2 frames (RFC 9113 §4, §6) ↔ bytes: the 9-byte frame header, each
//! frame type's payload with its padding, flags and size rules, and the
//! error codes (§7). A parse error names the exact code §4.2 and §6 give it
//! and whether it ends the connection or one stream.
//!
//! Stateless and borrowing: a parsed [`Frame`] points into the caller's
//! input. Stream states, windows and settings are the session's
//! (`session.rs`); the frame-size limit from SETTINGS is checked there too,
//! since only it knows the value advertised.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes in a frame header.
pub const HEAD_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value and its floor (§6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// SETTINGS_MAX_FRAME_SIZE's ceiling, 2^24-1 (§6.5.2).
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// The largest flow-control window, 2^31-1 (§6.9.1).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;
/// Every window starts at this (§6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;

/// Frame flags (§6); one bit can mean two things on different types.
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes (RFC 9113 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    NoError = 0x0,
    ProtocolError = 0x1,
    InternalError = 0x2,
    FlowControlError = 0x3,
    SettingsTimeout = 0x4,
    StreamClosed = 0x5,
    FrameSizeError = 0x6,
    RefusedStream = 0x7,
    Cancel = 0x8,
    CompressionError = 0x9,
    ConnectError = 0xa,
    EnhanceYourCalm = 0xb,
    InadequateSecurity = 0xc,
    Http11Required = 0xd,
}

impl ErrorCode {
    /// The code a peer sent; unknown codes are kept as `None` (§7: they
    /// "MUST NOT trigger any special behavior").
    pub fn from_u32(code: u32) -> Option<ErrorCode> {
        use ErrorCode::*;
        const ALL: [ErrorCode; 14] = [
            NoError,
            ProtocolError,
            InternalError,
            FlowControlError,
            SettingsTimeout,
            StreamClosed,
            FrameSizeError,
            RefusedStream,
            Cancel,
            CompressionError,
            ConnectError,
            EnhanceYourCalm,
            InadequateSecurity,
            Http11Required,
        ];
        ALL.get(usize::try_from(code).ok()?).copied()
    }
}

/// Frame types (§6); others are ignored by the receiver (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown(u8),
}

impl Kind {
    pub fn from_u8(b: u8) -> Kind {
        match b {
            0 => Kind::Data,
            1 => Kind::Headers,
            2 => Kind::Priority,
            3 => Kind::RstStream,
            4 => Kind::Settings,
            5 => Kind::PushPromise,
            6 => Kind::Ping,
            7 => Kind::GoAway,
            8 => Kind::WindowUpdate,
            9 => Kind::Continuation,
            other => Kind::Unknown(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::Headers => 1,
            Kind::Priority => 2,
            Kind::RstStream => 3,
            Kind::Settings => 4,
            Kind::PushPromise => 5,
            Kind::Ping => 6,
            Kind::GoAway => 7,
            Kind::WindowUpdate => 8,
            Kind::Continuation => 9,
            Kind::Unknown(other) => other,
        }
    }
}

/// A frame header (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub len: u32,
    pub kind: Kind,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Reads a header; the reserved bit is ignored as §4.1 says.
    pub fn parse(b: &[u8; HEAD_LEN]) -> Head {
        Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: Kind::from_u8(b[3]),
            flags: b[4],
            stream: read_u31(&b[5..9]),
        }
    }

    /// Appends the header; `len` must fit 24 bits (our frames never exceed
    /// the peer's MAX_FRAME_SIZE, which is at most 2^24-1).
    pub fn write(&self, out: &mut Vec<u8>) {
        debug_assert!(self.len <= MAX_MAX_FRAME_SIZE);
        out.extend_from_slice(&self.len.to_be_bytes()[1..]);
        out.push(self.kind.to_u8());
        out.push(self.flags);
        out.extend_from_slice(&(self.stream & MAX_WINDOW).to_be_bytes());
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The deprecated priority fields (§5.3.2, §6.3); validated, then ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    pub dependency: u32,
    pub exclusive: bool,
    pub weight: u8,
}

/// One parsed frame, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `flow_len` is the whole payload, padding included: what flow control
    /// counts (§6.9.1).
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        flow_len: u32,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        priority: Option<Priority>,
        block: &'a [u8],
    },
    Priority {
        stream: u32,
        priority: Priority,
    },
    RstStream {
        stream: u32,
        code: u32,
    },
    /// `params` is a whole number of 6-byte entries; see [`settings`].
    Settings {
        ack: bool,
        params: &'a [u8],
    },
    PushPromise {
        stream: u32,
        promised: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: u32,
        debug: &'a [u8],
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    Unknown {
        kind: u8,
        stream: u32,
    },
}

/// A frame that breaks §4.2 or §6: which code, and for whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    Connection(ErrorCode),
    Stream(u32, ErrorCode),
}

use ErrorCode::{FrameSizeError, ProtocolError};
use FrameError::Connection;

/// Parses one frame's payload (`payload.len() == head.len`).
pub fn parse(head: Head, payload: &[u8]) -> Result<Frame<'_>, FrameError> {
    debug_assert_eq!(payload.len() as u64, u64::from(head.len));
    let stream = head.stream;
    let on_stream = || {
        if stream == 0 {
            Err(Connection(ProtocolError))
        } else {
            Ok(())
        }
    };
    let on_conn = || {
        if stream != 0 {
            Err(Connection(ProtocolError))
        } else {
            Ok(())
        }
    };
    match head.kind {
        Kind::Data => {
            on_stream()?;
            let data = unpad(head, payload)?;
            Ok(Frame::Data {
                stream,
                end_stream: head.has(flags::END_STREAM),
                data,
                flow_len: head.len,
            })
        }
        Kind::Headers => {
            on_stream()?;
            headers(head, payload)
        }
        Kind::Priority => {
            on_stream()?;
            if payload.len() != 5 {
                // §6.3: a stream error, unlike most size errors.
                return Err(FrameError::Stream(stream, FrameSizeError));
            }
            Ok(Frame::Priority {
                stream,
                priority: read_priority(payload),
            })
        }
        Kind::RstStream => {
            on_stream()?;
            let code = fixed::<4>(payload)?;
            Ok(Frame::RstStream {
                stream,
                code: u32::from_be_bytes(code),
            })
        }
        Kind::Settings => {
            on_conn()?;
            let ack = head.has(flags::ACK);
            if (ack && !payload.is_empty()) || payload.len() % 6 != 0 {
                return Err(Connection(FrameSizeError));
            }
            Ok(Frame::Settings {
                ack,
                params: payload,
            })
        }
        Kind::PushPromise => {
            on_stream()?;
            push_promise(head, payload)
        }
        Kind::Ping => {
            on_conn()?;
            Ok(Frame::Ping {
                ack: head.has(flags::ACK),
                data: fixed::<8>(payload)?,
            })
        }
        Kind::GoAway => {
            on_conn()?;
            go_away(payload)
        }
        Kind::WindowUpdate => {
            let increment = read_u31(&fixed::<4>(payload)?);
            Ok(Frame::WindowUpdate { stream, increment })
        }
        Kind::Continuation => {
            on_stream()?;
            Ok(Frame::Continuation {
                stream,
                end_headers: head.has(flags::END_HEADERS),
                block: payload,
            })
        }
        Kind::Unknown(kind) => Ok(Frame::Unknown { kind, stream }),
    }
}

/// HEADERS (§6.2): padding, then the optional priority fields, then the
/// block fragment.
fn headers(head: Head, payload: &[u8]) -> Result<Frame<'_>, FrameError> {
    let mut block = unpad(head, payload)?;
    let mut priority = None;
    if head.has(flags::PRIORITY) {
        let (fields, rest) = block
            .split_at_checked(5)
            .ok_or(Connection(FrameSizeError))?;
        priority = Some(read_priority(fields));
        block = rest;
    }
    Ok(Frame::Headers {
        stream: head.stream,
        end_stream: head.has(flags::END_STREAM),
        end_headers: head.has(flags::END_HEADERS),
        priority,
        block,
    })
}

/// PUSH_PROMISE (§6.6): padding, the promised stream, the block fragment.
fn push_promise(head: Head, payload: &[u8]) -> Result<Frame<'_>, FrameError> {
    let rest = unpad(head, payload)?;
    let (promised, block) = rest.split_at_checked(4).ok_or(Connection(FrameSizeError))?;
    Ok(Frame::PushPromise {
        stream: head.stream,
        promised: read_u31(promised),
        end_headers: head.has(flags::END_HEADERS),
        block,
    })
}

/// GOAWAY (§6.8): last stream, error code, opaque debug data.
fn go_away(payload: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (fixed, debug) = payload
        .split_at_checked(8)
        .ok_or(Connection(FrameSizeError))?;
    Ok(Frame::GoAway {
        last_stream: read_u31(&fixed[..4]),
        code: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        debug,
    })
}

/// Iterates SETTINGS parameters as (identifier, value) (§6.5.1).
pub fn settings(params: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    params.chunks_exact(6).map(|p| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
        )
    })
}

/// Strips padding (§6.1): a PADDED frame too short for its Pad Length is a
/// FRAME_SIZE_ERROR; padding that fills the payload is a PROTOCOL_ERROR.
fn unpad(head: Head, payload: &[u8]) -> Result<&[u8], FrameError> {
    if !head.has(flags::PADDED) {
        return Ok(payload);
    }
    let (&pad, rest) = payload.split_first().ok_or(Connection(FrameSizeError))?;
    let keep = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or(Connection(ProtocolError))?;
    Ok(&rest[..keep])
}

/// A payload of exactly `N` bytes, or FRAME_SIZE_ERROR (connection-wide for
/// RST_STREAM §6.4, PING §6.7 and WINDOW_UPDATE §6.9).
fn fixed<const N: usize>(payload: &[u8]) -> Result<[u8; N], FrameError> {
    payload.try_into().map_err(|_| Connection(FrameSizeError))
}

fn read_u31(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & MAX_WINDOW
}

fn read_priority(b: &[u8]) -> Priority {
    Priority {
        dependency: read_u31(b),
        exclusive: b[0] & 0x80 != 0,
        weight: b[4],
    }
}

/// Appends a SETTINGS frame with these parameters.
pub fn write_settings(out: &mut Vec<u8>, params: &[(u16, u32)]) {
    let len = u32::try_from(params.len() * 6).expect("a handful of settings");
    Head {
        len,
        kind: Kind::Settings,
        flags: 0,
        stream: 0,
    }
    .write(out);
    for &(id, value) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub fn write_settings_ack(out: &mut Vec<u8>) {
    Head {
        len: 0,
        kind: Kind::Settings,
        flags: flags::ACK,
        stream: 0,
    }
    .write(out);
}

pub fn write_ping(out: &mut Vec<u8>, ack: bool, data: [u8; 8]) {
    let flags = if ack { flags::ACK } else { 0 };
    Head {
        len: 8,
        kind: Kind::Ping,
        flags,
        stream: 0,
    }
    .write(out);
    out.extend_from_slice(&data);
}

pub fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: ErrorCode) {
    Head {
        len: 8,
        kind: Kind::GoAway,
        flags: 0,
        stream: 0,
    }
    .write(out);
    out.extend_from_slice(&(last_stream & MAX_WINDOW).to_be_bytes());
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

pub fn write_rst_stream(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    Head {
        len: 4,
        kind: Kind::RstStream,
        flags: 0,
        stream,
    }
    .write(out);
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

pub fn write_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    debug_assert!(increment > 0 && increment <= MAX_WINDOW);
    Head {
        len: 4,
        kind: Kind::WindowUpdate,
        flags: 0,
        stream,
    }
    .write(out);
    out.extend_from_slice(&increment.to_be_bytes());
}

/// Appends one DATA frame; `data` must fit the peer's MAX_FRAME_SIZE.
pub fn write_data(out: &mut Vec<u8>, stream: u32, data: &[u8], end_stream: bool) {
    let len = u32::try_from(data.len()).expect("DATA fits MAX_FRAME_SIZE");
    let flags = if end_stream { flags::END_STREAM } else { 0 };
    Head {
        len,
        kind: Kind::Data,
        flags,
        stream,
    }
    .write(out);
    out.extend_from_slice(data);
}

/// Appends a header block as HEADERS plus as many CONTINUATION frames as
/// `max_frame` requires (§4.3: the block's frames go out back to back).
pub fn write_headers(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: u32,
) {
    let max = usize::try_from(max_frame.max(DEFAULT_MAX_FRAME_SIZE)).unwrap_or(usize::MAX);
    let mut chunks = block.chunks(max).peekable();
    let mut kind = Kind::Headers;
    let mut first_flags = if end_stream { flags::END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        Head {
            len: 0,
            kind,
            flags: first_flags | flags::END_HEADERS,
            stream,
        }
        .write(out);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let end = if chunks.peek().is_none() {
            flags::END_HEADERS
        } else {
            0
        };
        let len = u32::try_from(chunk.len()).expect("chunk fits MAX_FRAME_SIZE");
        Head {
            len,
            kind,
            flags: first_flags | end,
            stream,
        }
        .write(out);
        out.extend_from_slice(chunk);
        kind = Kind::Continuation;
        first_flags = 0;
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
