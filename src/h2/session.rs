//! The server side of one HTTP/2 connection, sans-IO: bytes in through
//! [`Session::receive`], events out through [`Session::next_event`],
//! answers in through `respond`/`send_data` (`send.rs`), bytes out through
//! `poll_output`. Receiving frames is split by kind: streams and header
//! blocks in `recv.rs`, connection control in `control.rs`.
//!
//! Every error ends in one of two ways (RFC 9113 §5.4): a stream error
//! writes RST_STREAM and forgets the stream; a connection error writes
//! GOAWAY and makes every later `receive` fail, the caller flushes the
//! output and closes. Clocks come in as `now`; nothing here reads one.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::defence::{Budget, Counters};
use super::frame::{
    self, ErrorCode, Frame, FrameError, Head, Kind, DEFAULT_WINDOW, HEAD_LEN, PREFACE,
};
use super::hpack::Decoder;
use super::request::Request;
use super::settings::{PeerSettings, Settings};
use super::stream::{Answer, Stream};

/// Streams we reset whose late frames are ignored rather than fatal
/// (§5.1 "closed": the peer may have sent them before it saw our reset).
const MEMORY: usize = 64;

/// Keeps the last `MEMORY` stream ids.
fn remember(ids: &mut VecDeque<u32>, id: u32) {
    if ids.len() == MEMORY {
        ids.pop_front();
    }
    ids.push_back(id);
}

/// What the caller learns from the client.
#[derive(Debug)]
pub enum Event {
    /// A valid request head; answer with `respond`.
    Request(Request),
    /// The decoded header list passed `max_header_list_size`: answer 431
    /// on this stream (a stream error, the connection lives).
    HeaderListTooLarge { stream: u32 },
    /// A stream the caller knows of is gone (the client reset it, or we
    /// did): stop answering it.
    Reset { stream: u32 },
}

/// The connection failed: GOAWAY with `code` is in the output; flush it and
/// close. `reason` is for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnError {
    pub code: ErrorCode,
    pub reason: &'static str,
}

/// A header block under way (HEADERS without END_HEADERS, then CONTINUATION).
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub stream: u32,
    pub end_stream: bool,
    pub self_dependent: bool,
    pub continuations: u32,
}

pub struct Session {
    pub(super) settings: Settings,
    pub(super) peer: PeerSettings,
    pub(super) decoder: Decoder,
    pub(super) streams: BTreeMap<u32, Stream>,
    pub(super) events: VecDeque<Event>,
    /// Frames waiting for `poll_output`, DATA aside.
    pub(super) tx: Vec<u8>,
    /// Header block fragments while a block is under way.
    pub(super) block: Vec<u8>,
    pub(super) pending: Option<Pending>,
    pub(super) preface_done: bool,
    pub(super) settings_received: bool,
    /// Highest stream id the client opened (§5.1.1): ids at or below that
    /// are not in the table are closed, above it idle.
    pub(super) last_stream: u32,
    pub(super) reset_by_us: VecDeque<u32>,
    /// Streams recently closed, to tell HEADERS on a closed stream
    /// (STREAM_CLOSED) from a stream id going down (PROTOCOL_ERROR, §5.1.1).
    pub(super) closed: VecDeque<u32>,
    pub(super) conn_send_window: i64,
    pub(super) conn_recv_window: i64,
    /// Body bytes queued on all streams, not yet framed.
    pub(super) queued_total: usize,
    /// The next round-robin turn starts after this stream.
    pub(super) cursor: u32,
    /// The peer changed SETTINGS_HEADER_TABLE_SIZE: our next block starts
    /// with a size update (RFC 7541 §4.2).
    pub(super) table_update_due: bool,
    /// Our GOAWAY's last stream id, once sent.
    pub(super) goaway: Option<u32>,
    pub(super) peer_goaway: bool,
    pub(super) failed: Option<ConnError>,
    pub(super) stalled_since: Option<Instant>,
    /// Pulled bodies ended (all framed, or the stream gone first), with
    /// the body bytes framed: for the caller's access log.
    pub(super) ended: VecDeque<(u32, u64)>,
    pub(super) resets: Budget,
    pub(super) control: Budget,
    pub(super) counters: Counters,
}

impl Session {
    /// A connection whose server preface (our SETTINGS, and a connection
    /// WINDOW_UPDATE if our window is larger than the default) is already
    /// waiting in the output (§3.4: the server may send it at once).
    pub fn new(settings: Settings) -> Session {
        let settings = settings.normalized();
        let mut tx = Vec::new();
        settings.write(&mut tx);
        let window = settings.initial_window_size;
        if window > DEFAULT_WINDOW {
            frame::write_window_update(&mut tx, 0, window - DEFAULT_WINDOW);
        }
        Session {
            peer: PeerSettings::default(),
            decoder: Decoder::new(settings.header_table_size as usize),
            streams: BTreeMap::new(),
            events: VecDeque::new(),
            tx,
            block: Vec::new(),
            pending: None,
            preface_done: false,
            settings_received: false,
            last_stream: 0,
            reset_by_us: VecDeque::new(),
            closed: VecDeque::new(),
            conn_send_window: i64::from(DEFAULT_WINDOW),
            conn_recv_window: i64::from(window),
            queued_total: 0,
            cursor: 0,
            table_update_due: false,
            goaway: None,
            peer_goaway: false,
            failed: None,
            stalled_since: None,
            ended: VecDeque::new(),
            resets: Budget::new(settings.budgets.resets_per_sec),
            control: Budget::new(settings.budgets.control_frames_per_sec),
            counters: Counters::default(),
            settings,
        }
    }

    /// Takes what the client sent: the preface, then whole frames. Returns
    /// the bytes used; the rest (a partial frame, at most 9 bytes plus our
    /// max_frame_size) is for the caller to present again with more.
    pub fn receive(&mut self, input: &[u8], now: Instant) -> Result<usize, ConnError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut used = 0;
        if !self.preface_done {
            let n = input.len().min(PREFACE.len());
            if input[..n] != PREFACE[..n] {
                return Err(self.fail(ErrorCode::ProtocolError, "bad connection preface"));
            }
            if n < PREFACE.len() {
                return Ok(0);
            }
            self.preface_done = true;
            used = n;
        }
        while let Some(head) = input.get(used..used + HEAD_LEN) {
            let head = Head::parse(head.try_into().expect("a 9-byte slice"));
            if head.len > self.settings.max_frame_size {
                return Err(self.fail(
                    ErrorCode::FrameSizeError,
                    "frame larger than max_frame_size",
                ));
            }
            let end = used + HEAD_LEN + head.len as usize;
            let Some(payload) = input.get(used + HEAD_LEN..end) else {
                break;
            };
            used = end;
            self.on_frame(head, payload, now)?;
        }
        if self.tx.len() > self.settings.budgets.max_buffered_output {
            self.counters.output_overflows += 1;
            return Err(self.fail(ErrorCode::EnhanceYourCalm, "peer does not read its output"));
        }
        Ok(used)
    }

    fn on_frame(&mut self, head: Head, payload: &[u8], now: Instant) -> Result<(), ConnError> {
        if !self.settings_received
            && (head.kind != Kind::Settings || head.flags & frame::flags::ACK != 0)
        {
            // §3.4: the preface's SETTINGS comes first.
            return Err(self.fail(ErrorCode::ProtocolError, "first frame is not SETTINGS"));
        }
        if let Some(p) = self.pending {
            if head.kind != Kind::Continuation || head.stream != p.stream {
                // §6.10: nothing may come between a block's frames.
                return Err(self.fail(ErrorCode::ProtocolError, "frame inside a header block"));
            }
        }
        let frame = match frame::parse(head, payload) {
            Ok(frame) => frame,
            Err(FrameError::Connection(code)) => return Err(self.fail(code, "malformed frame")),
            Err(FrameError::Stream(stream, code)) => {
                self.reset(stream, code);
                return Ok(());
            }
        };
        match frame {
            Frame::Data {
                stream,
                end_stream,
                data,
                flow_len,
            } => self.on_data(stream, end_stream, data.len(), flow_len, now),
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                priority,
                block,
            } => {
                let self_dependent = priority.is_some_and(|p| p.dependency == stream);
                let pending = Pending {
                    stream,
                    end_stream,
                    self_dependent,
                    continuations: 0,
                };
                self.on_headers(pending, end_headers, block)
            }
            Frame::Continuation {
                stream,
                end_headers,
                block,
            } => self.on_continuation(stream, end_headers, block),
            Frame::Priority { stream, priority } => {
                self.spend_control(now)?;
                if priority.dependency == stream {
                    // §5.3.1: a stream cannot depend on itself.
                    self.reset(stream, ErrorCode::ProtocolError);
                }
                Ok(())
            }
            Frame::RstStream { stream, code: _ } => self.on_rst_stream(stream, now),
            Frame::Settings { ack, params } => self.on_settings(ack, params, now),
            Frame::PushPromise { .. } => {
                Err(self.fail(ErrorCode::ProtocolError, "PUSH_PROMISE from a client"))
            }
            Frame::Ping { ack, data } => {
                self.spend_control(now)?;
                if !ack {
                    frame::write_ping(&mut self.tx, true, data);
                }
                Ok(())
            }
            Frame::GoAway { .. } => {
                self.peer_goaway = true;
                Ok(())
            }
            Frame::WindowUpdate { stream, increment } => {
                self.on_window_update(stream, increment, now)
            }
            Frame::Unknown { .. } => self.spend_control(now),
        }
    }

    /// A connection error: GOAWAY with `code` (§5.4.1); the session is over.
    pub(super) fn fail(&mut self, code: ErrorCode, reason: &'static str) -> ConnError {
        let e = ConnError { code, reason };
        if self.failed.is_none() {
            frame::write_goaway(&mut self.tx, self.last_stream, code);
            self.counters.goaways_sent += 1;
            self.failed = Some(e);
        }
        e
    }

    /// A stream error: RST_STREAM (§5.4.2); the stream is forgotten, and
    /// its late frames are ignored.
    pub(super) fn reset(&mut self, stream: u32, code: ErrorCode) {
        frame::write_rst_stream(&mut self.tx, stream, code);
        self.counters.resets_sent += 1;
        self.forget(stream);
        if stream > self.last_stream {
            // An idle stream (a bad PRIORITY) stays idle: it may still be opened.
            return;
        }
        remember(&mut self.reset_by_us, stream);
    }

    /// Drops a stream from the table, telling the caller if it knew of it.
    pub(super) fn forget(&mut self, stream: u32) {
        if let Some(s) = self.streams.remove(&stream) {
            remember(&mut self.closed, stream);
            self.queued_total -= s.queued();
            if s.pull && s.answer == Answer::Body {
                self.ended.push_back((stream, s.framed));
            }
            if s.announced && s.answer != Answer::Done {
                self.events.push_back(Event::Reset { stream });
            }
        }
    }

    pub(super) fn spend_control(&mut self, now: Instant) -> Result<(), ConnError> {
        if self.control.spend(now) {
            return Ok(());
        }
        self.counters.control_floods += 1;
        Err(self.fail(ErrorCode::EnhanceYourCalm, "control frame flood"))
    }

    /// The next thing the caller must act on.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Graceful shutdown (§6.8): GOAWAY NO_ERROR naming the last stream
    /// we took; streams up to it are answered, later ones ignored.
    pub fn go_away(&mut self) {
        if self.goaway.is_none() && self.failed.is_none() {
            frame::write_goaway(&mut self.tx, self.last_stream, ErrorCode::NoError);
            self.counters.goaways_sent += 1;
            self.goaway = Some(self.last_stream);
        }
    }

    /// Nothing more will happen: the connection failed, or it is going away
    /// (either side's GOAWAY) with every stream answered. Close once the
    /// output is written.
    pub fn is_done(&self) -> bool {
        if self.failed.is_some() {
            return true;
        }
        (self.goaway.is_some() || self.peer_goaway)
            && self.tx.is_empty()
            && self.streams.values().all(|s| s.answer == Answer::Done)
    }

    /// Since when queued output has been waiting for a window the peer
    /// does not open; the caller closes after its timeout.
    pub fn stalled_since(&self) -> Option<Instant> {
        self.stalled_since
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The connection error, once there is one.
    pub fn error(&self) -> Option<ConnError> {
        self.failed
    }

    /// A pulled body that ended since the last call: all of it framed, or
    /// its stream gone first (reset, either side); with its body bytes
    /// framed.
    pub fn next_ended(&mut self) -> Option<(u32, u64)> {
        self.ended.pop_front()
    }

    /// Body bytes framed on `stream` so far, while it is in the table.
    pub fn framed(&self, stream: u32) -> Option<u64> {
        self.streams.get(&stream).map(|s| s.framed)
    }

    /// Frees the buffers that hold nothing now (an idle connection's
    /// output, header block and event queues); what the protocol must
    /// remember (settings, the HPACK table, recent stream ids) stays.
    pub fn release_buffers(&mut self) {
        if self.tx.is_empty() {
            self.tx = Vec::new();
        }
        if self.block.is_empty() {
            self.block = Vec::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.ended.is_empty() {
            self.ended = VecDeque::new();
        }
        self.closed.shrink_to_fit();
        self.reset_by_us.shrink_to_fit();
    }

    /// Streams open or half-closed.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }
}
