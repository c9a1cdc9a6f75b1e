//! Receiving on streams: DATA (discarded, flow-controlled, credited back)
//! and header blocks (HEADERS + CONTINUATION assembled within bounds,
//! decoded, then opening a stream or ending one with trailers), each
//! checked against the stream's state as RFC 9113 §5.1 says.

use std::time::Instant;

use super::frame::{self, ErrorCode};
use super::hpack::{DecodeError, HeaderList};
use super::request;
use super::session::{ConnError, Event, Pending, Session};
use super::stream::Stream;

/// Where a frame's stream id stands (§5.1).
pub(super) enum Standing {
    /// In the table: open or half-closed.
    Known,
    /// Closed after we reset it, or above our GOAWAY: late frames ignored.
    Ignored,
    /// Closed otherwise.
    Closed,
    Idle,
}

impl Session {
    pub(super) fn standing(&self, stream: u32) -> Standing {
        if self.streams.contains_key(&stream) {
            Standing::Known
        } else if self.goaway.is_some_and(|last| stream > last)
            || self.reset_by_us.contains(&stream)
        {
            Standing::Ignored
        } else if stream <= self.last_stream && stream % 2 == 1 {
            Standing::Closed
        } else {
            Standing::Idle
        }
    }

    pub(super) fn on_data(
        &mut self,
        id: u32,
        end_stream: bool,
        len: usize,
        flow_len: u32,
        now: Instant,
    ) -> Result<(), ConnError> {
        if flow_len == 0 && !end_stream {
            self.spend_control(now)?;
        }
        // The connection window counts every DATA frame, whatever its stream.
        if i64::from(flow_len) > self.conn_recv_window {
            return Err(self.fail(
                ErrorCode::FlowControlError,
                "DATA beyond the connection window",
            ));
        }
        self.conn_recv_window -= i64::from(flow_len);
        let target = i64::from(self.settings.initial_window_size);
        if self.conn_recv_window <= target / 2 {
            // Bodies are discarded, so what arrived is credited back at once.
            let credit = (target - self.conn_recv_window) as u32;
            frame::write_window_update(&mut self.tx, 0, credit);
            self.conn_recv_window = target;
        }
        match self.standing(id) {
            Standing::Known => {}
            Standing::Ignored => return Ok(()),
            Standing::Closed => {
                return Err(self.fail(ErrorCode::StreamClosed, "DATA on a closed stream"))
            }
            Standing::Idle => {
                return Err(self.fail(ErrorCode::ProtocolError, "DATA on an idle stream"))
            }
        }
        let s = self.streams.get_mut(&id).expect("standing is Known");
        if !s.recv_open {
            self.reset(id, ErrorCode::StreamClosed);
            return Ok(());
        }
        if i64::from(flow_len) > s.recv_window {
            self.reset(id, ErrorCode::FlowControlError);
            return Ok(());
        }
        s.recv_window -= i64::from(flow_len);
        if !s.receive_body(len, end_stream) {
            self.counters.malformed_requests += 1;
            self.reset(id, ErrorCode::ProtocolError);
            return Ok(());
        }
        if end_stream {
            s.recv_open = false;
            if s.is_closed() {
                self.forget(id);
            }
        } else if s.recv_window <= target / 2 {
            let credit = (target - s.recv_window) as u32;
            frame::write_window_update(&mut self.tx, id, credit);
            s.recv_window = target;
        }
        Ok(())
    }

    /// HEADERS: a whole block is decoded from the frame itself; a partial
    /// one is buffered until END_HEADERS.
    pub(super) fn on_headers(
        &mut self,
        p: Pending,
        end_headers: bool,
        block: &[u8],
    ) -> Result<(), ConnError> {
        if end_headers {
            return self.on_block(p, block);
        }
        self.block.clear();
        self.buffer_fragment(block)?;
        self.pending = Some(p);
        Ok(())
    }

    pub(super) fn on_continuation(
        &mut self,
        stream: u32,
        end_headers: bool,
        block: &[u8],
    ) -> Result<(), ConnError> {
        let Some(mut p) = self.pending else {
            return Err(self.fail(ErrorCode::ProtocolError, "CONTINUATION without HEADERS"));
        };
        debug_assert_eq!(p.stream, stream, "on_frame checked the stream");
        p.continuations += 1;
        if p.continuations > self.settings.budgets.max_continuations {
            self.counters.continuation_floods += 1;
            return Err(self.fail(ErrorCode::EnhanceYourCalm, "CONTINUATION flood"));
        }
        self.buffer_fragment(block)?;
        self.pending = Some(p);
        if end_headers {
            self.pending = None;
            let block = std::mem::take(&mut self.block);
            let result = self.on_block(p, &block);
            self.block = block;
            self.block.clear();
            return result;
        }
        Ok(())
    }

    /// Keeps a fragment, refusing (before copying) one that would take the
    /// block past its limit.
    fn buffer_fragment(&mut self, fragment: &[u8]) -> Result<(), ConnError> {
        if self.block.len() + fragment.len() > self.settings.budgets.max_header_block as usize {
            self.counters.header_blocks_too_large += 1;
            return Err(self.fail(ErrorCode::EnhanceYourCalm, "header block too large"));
        }
        self.block.extend_from_slice(fragment);
        Ok(())
    }

    /// A complete block: decoded first, whatever becomes of its stream, so
    /// the HPACK table stays in step with the client's (§4.3).
    fn on_block(&mut self, p: Pending, block: &[u8]) -> Result<(), ConnError> {
        let mut fields = HeaderList::new(self.settings.max_header_list_size as usize);
        if let Err(e) = self.decoder.decode(block, &mut fields) {
            if e == DecodeError::TableSizeTooLarge {
                self.counters.table_size_violations += 1;
            }
            return Err(self.fail(ErrorCode::CompressionError, "bad header block"));
        }
        match self.standing(p.stream) {
            Standing::Known => self.on_trailers(p, &fields),
            Standing::Ignored => Ok(()),
            Standing::Closed if self.closed.contains(&p.stream) => {
                Err(self.fail(ErrorCode::StreamClosed, "HEADERS on a closed stream"))
            }
            Standing::Closed => Err(self.fail(ErrorCode::ProtocolError, "stream id went down")),
            Standing::Idle if p.stream % 2 == 0 || p.stream < self.last_stream => {
                Err(self.fail(ErrorCode::ProtocolError, "bad stream id"))
            }
            Standing::Idle => {
                self.open(p, fields);
                Ok(())
            }
        }
    }

    /// HEADERS on a stream under way: trailers, which must end it (§8.1).
    fn on_trailers(&mut self, p: Pending, fields: &HeaderList) -> Result<(), ConnError> {
        let id = p.stream;
        let s = self.streams.get_mut(&id).expect("standing is Known");
        if !s.recv_open {
            self.reset(id, ErrorCode::StreamClosed);
            return Ok(());
        }
        if !p.end_stream
            || p.self_dependent
            || request::trailers(fields).is_err()
            || !s.receive_body(0, true)
        {
            self.counters.malformed_requests += 1;
            self.reset(id, ErrorCode::ProtocolError);
            return Ok(());
        }
        s.recv_open = false;
        if s.is_closed() {
            self.forget(id);
        }
        Ok(())
    }

    /// A new stream from the client (idle → open or half-closed (remote)).
    fn open(&mut self, p: Pending, fields: HeaderList) {
        let id = p.stream;
        self.last_stream = id;
        if p.self_dependent {
            self.reset(id, ErrorCode::ProtocolError);
            return;
        }
        if self.streams.len() >= self.settings.max_concurrent_streams as usize {
            // §5.1.2; REFUSED_STREAM tells the client it may retry.
            self.counters.refused_streams += 1;
            self.reset(id, ErrorCode::RefusedStream);
            return;
        }
        let peer_window = self.peer.initial_window_size;
        let mut stream = Stream::new(peer_window, self.settings.initial_window_size, p.end_stream);
        stream.announced = true;
        let event = if fields.is_too_large() {
            self.counters.header_lists_too_large += 1;
            Event::HeaderListTooLarge { stream: id }
        } else {
            match request::request(fields, id, p.end_stream) {
                Ok(req) if p.end_stream && req.content_length.is_some_and(|n| n > 0) => {
                    self.counters.malformed_requests += 1;
                    self.reset(id, ErrorCode::ProtocolError);
                    return;
                }
                Ok(req) => {
                    stream.content_length = req.content_length;
                    Event::Request(req)
                }
                Err(_) => {
                    self.counters.malformed_requests += 1;
                    self.reset(id, ErrorCode::ProtocolError);
                    return;
                }
            }
        };
        self.counters.streams_opened += 1;
        self.streams.insert(id, stream);
        self.events.push_back(event);
    }
}
