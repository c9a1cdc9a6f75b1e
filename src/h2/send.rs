//! Answering: response heads (encoded here or precomputed), bodies given
//! whole or pulled chunk by chunk, and DATA framed within the peer's
//! windows and MAX_FRAME_SIZE, round-robin over streams, into the
//! caller's output buffer.
//!
//! Memory: what waits (frames in `tx` plus queued body bytes) is bounded
//! by `max_buffered_output`; a body larger than that is pulled
//! (`want_data` says which stream may take how much, `send_data` gives
//! it), so a big file is never read whole.

use std::time::Instant;

use super::frame;
use super::hpack;
use super::session::Session;
use super::stream::Answer;

/// A response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// No body: END_STREAM on the HEADERS frame.
    Empty,
    /// The whole body, copied into the stream's queue.
    Bytes(&'a [u8]),
    /// The caller feeds it with `send_data` when `want_data` names the stream.
    Pull,
}

/// Why an answer was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such stream now (never opened, reset, or finished).
    NoStream,
    /// The stream already has its head, or its body has ended.
    AlreadyAnswered,
    /// Not a pulled body, or not one still open.
    NotPulled,
    /// Taking it would pass `max_buffered_output`.
    Full,
    /// A header name with upper case or a connection-specific field.
    BadHeader,
}

/// Body bytes `want_data` asks for at once: enough for a few full frames.
const PULL_CHUNK: usize = 64 * 1024;

impl Session {
    /// Answers `stream` with `status`, `headers` (lower-case names) and
    /// `body`.
    pub fn respond(
        &mut self,
        stream: u32,
        status: u16,
        headers: &[(&[u8], &[u8])],
        body: Body<'_>,
    ) -> Result<(), SendError> {
        for (name, _) in headers {
            let upper = name.iter().any(u8::is_ascii_uppercase);
            if upper
                || matches!(
                    *name,
                    b"connection" | b"keep-alive" | b"transfer-encoding" | b"upgrade"
                )
            {
                return Err(SendError::BadHeader);
            }
        }
        let mut block = Vec::new();
        hpack::encode_response(&mut block, status, headers);
        self.respond_block(stream, &block, body)
    }

    /// Answers with a header block made by `hpack::encode_response` (or
    /// anything that uses no dynamic table), e.g. computed once per config.
    pub fn respond_block(
        &mut self,
        stream: u32,
        block: &[u8],
        body: Body<'_>,
    ) -> Result<(), SendError> {
        let room = self.room();
        let s = self.streams.get_mut(&stream).ok_or(SendError::NoStream)?;
        if s.answer != Answer::Awaiting {
            return Err(SendError::AlreadyAnswered);
        }
        let body_len = if let Body::Bytes(b) = body {
            b.len()
        } else {
            0
        };
        if block.len() + body_len + 64 > room {
            return Err(SendError::Full);
        }
        let end_stream = matches!(body, Body::Empty | Body::Bytes([]));
        let max_frame = self.peer.max_frame_size;
        if std::mem::take(&mut self.table_update_due) {
            let mut prefixed = Vec::with_capacity(block.len() + 1);
            prefixed.push(hpack::TABLE_SIZE_ZERO);
            prefixed.extend_from_slice(block);
            frame::write_headers(&mut self.tx, stream, &prefixed, end_stream, max_frame);
        } else {
            frame::write_headers(&mut self.tx, stream, block, end_stream, max_frame);
        }
        match body {
            _ if end_stream => s.answer = Answer::Done,
            Body::Bytes(b) => {
                s.queue.extend_from_slice(b);
                s.end_queued = true;
                s.answer = Answer::Body;
                self.queued_total += b.len();
            }
            _ => {
                s.pull = true;
                s.answer = Answer::Body;
            }
        }
        if s.is_closed() {
            self.forget(stream);
        }
        Ok(())
    }

    /// Bytes we may still hold: `max_buffered_output` less what waits.
    fn room(&self) -> usize {
        self.settings
            .budgets
            .max_buffered_output
            .saturating_sub(self.tx.len() + self.queued_total)
    }

    /// A pulled body that can take more now, and how much (the windows
    /// open beyond what is queued, within the output bound).
    pub fn want_data(&self) -> Option<(u32, usize)> {
        let conn = (self.conn_send_window - self.queued_total as i64).max(0) as usize;
        let limit = conn.min(self.room()).min(PULL_CHUNK);
        if limit == 0 {
            return None;
        }
        let after = self.streams.range(self.cursor + 1..);
        let before = self.streams.range(..=self.cursor);
        after.chain(before).find_map(|(&id, s)| {
            if !s.pull || s.end_queued {
                return None;
            }
            let window = (s.send_window - s.queued() as i64).max(0) as usize;
            Some((id, window.min(limit))).filter(|&(_, n)| n > 0)
        })
    }

    /// The next piece of a pulled body; `end` closes it (an empty `data`
    /// with `end` is fine).
    pub fn send_data(&mut self, stream: u32, data: &[u8], end: bool) -> Result<(), SendError> {
        let room = self.room();
        let s = self.streams.get_mut(&stream).ok_or(SendError::NoStream)?;
        if !s.pull || s.end_queued {
            return Err(SendError::NotPulled);
        }
        if data.len() > room {
            return Err(SendError::Full);
        }
        s.queue.extend_from_slice(data);
        s.end_queued = end;
        self.queued_total += data.len();
        Ok(())
    }

    /// Moves what is ready onto `out`: control frames and heads, then DATA
    /// as far as the windows allow. Call after `receive`, `respond` and
    /// `send_data`, and when the socket is writable again.
    pub fn poll_output(&mut self, now: Instant, out: &mut Vec<u8>) {
        out.append(&mut self.tx);
        if self.failed.is_some() {
            return;
        }
        while let Some(id) = self.next_sendable() {
            self.write_frame(id, out);
            self.cursor = id;
        }
        let stalled = self.streams.values().any(|s| {
            let waiting = s.queued() > 0 || (s.pull && !s.end_queued);
            waiting && (self.conn_send_window <= 0 || s.send_window <= 0)
        });
        self.stalled_since = if stalled {
            self.stalled_since.or(Some(now))
        } else {
            None
        };
    }

    /// The next stream, round-robin, that can send a DATA frame now: bytes
    /// and window for them, or just the END_STREAM of an ended body.
    fn next_sendable(&self) -> Option<u32> {
        let conn_open = self.conn_send_window > 0;
        let ready = |s: &super::stream::Stream| {
            s.answer == Answer::Body
                && ((s.queued() > 0 && conn_open && s.send_window > 0)
                    || (s.queued() == 0 && s.end_queued))
        };
        let after = self.streams.range(self.cursor + 1..);
        let before = self.streams.range(..=self.cursor);
        after
            .chain(before)
            .find(|(_, s)| ready(s))
            .map(|(&id, _)| id)
    }

    fn write_frame(&mut self, id: u32, out: &mut Vec<u8>) {
        let max_frame = self.peer.max_frame_size as usize;
        let conn = self.conn_send_window.max(0) as usize;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let max = max_frame.min(conn).min(s.send_window.max(0) as usize);
        let (start, end) = s.take(max);
        let n = end - start;
        let end_stream = s.end_queued && s.queued() == 0;
        frame::write_data(out, id, &s.queue[start..end], end_stream);
        s.compact();
        s.send_window -= n as i64;
        s.framed += n as u64;
        self.conn_send_window -= n as i64;
        self.queued_total -= n;
        if end_stream {
            if s.pull {
                self.ended.push_back((id, s.framed));
            }
            s.answer = Answer::Done;
            if s.is_closed() {
                self.forget(id);
            }
        }
    }
}
