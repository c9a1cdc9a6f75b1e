//! One HTTP/2 connection in a worker: a [`Session`] over the client's
//! stream, driven by the same events as an HTTP/1.1 `Conn` (readable,
//! writable, deadline) and offering the worker the same surface, so the
//! connection table holds either (`client.rs`). Requests are answered by
//! the HTTP/1.1 code (`answer.rs`); a file body is pulled chunk by chunk as
//! the peer's windows open (`read_at`, never the whole file in memory).
//!
//! Memory: input is read into the worker's scratch buffer; only a partial
//! frame is kept (at most a frame header and our 16 KiB max frame size).
//! Output not taken by the socket waits here, and nothing more is read
//! meanwhile, so a peer that does not read cannot grow it.
//!
//! Deadlines: `header_timeout` for a header block under way, a blocked
//! write and a stall (queued answers behind a window the peer does not
//! open: GOAWAY ENHANCE_YOUR_CALM, then closed); `keepalive_timeout` once
//! no stream is open (GOAWAY NO_ERROR, then closed); `drain_idle_grace`
//! for that while draining. Draining gives notice first (RFC 9113 §6.8: a
//! GOAWAY naming the highest stream id, so that requests already on their
//! way are still taken, and answered as a draining worker answers: health
//! 503), then `DRAIN_NOTICE` later sends GOAWAY with the last stream id,
//! answers the streams below it, then closes. After our GOAWAY the write
//! side is shut and input is read and discarded for a short while, so that
//! unread input does not turn the close into a reset that destroys the
//! GOAWAY (nginx's lingering close).

use std::io;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use super::answer::{self, Made};
use super::frame::ErrorCode;
use super::observe::{self, Told, Waiting};
use super::request::Request;
use super::send::{Body, SendError};
use super::session::{Event, Session};
use super::settings::Settings;
use super::Counters;
use crate::http::conn::{Buffers, Ctx, Interest, Standing};
use crate::http::parse::Reject;
use crate::http::transport::{write_some, FileBody, Transport, FILE_CHUNK};
use crate::obs::h2stats::H2Stat;

/// How long input is read and discarded after our GOAWAY.
const LINGER: Duration = Duration::from_secs(2);
/// Bytes one connection writes per turn of the worker's loop before it
/// lets the others go (epoll is level-triggered: the next writable event
/// continues).
const TURN: usize = 1 << 20;
/// How long requests already under way when draining began may still
/// arrive (between the notice GOAWAY and the final one).
const DRAIN_NOTICE: Duration = Duration::from_secs(1);
/// The notice GOAWAY's last stream id: every stream (§6.8).
const ANY_STREAM: u32 = (1 << 31) - 1;
/// Output capacity kept between writes; more is freed.
const KEEP_OUT: usize = 16 * 1024;

/// A file body being pulled into a stream.
struct Pulled {
    stream: u32,
    body: FileBody,
}

pub struct H2Conn<S> {
    stream: S,
    session: Session,
    /// A partial frame carried to the next read.
    inbuf: Vec<u8>,
    /// Output the socket did not take yet: `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    files: Vec<Pulled>,
    /// File answers logged once their bodies end.
    waiting: Waiting,
    deadline: Instant,
    /// Since when no stream is open and nothing is being written.
    idle_since: Option<Instant>,
    /// Since when a header block is under way.
    block_since: Option<Instant>,
    /// Since when the socket does not take our output.
    blocked_since: Option<Instant>,
    /// GOAWAY sent and write side shut: reading and discarding since then.
    lingering: Option<Instant>,
    /// Draining: when the notice GOAWAY went out.
    drain_notice: Option<Instant>,
    /// Requests answered on this connection.
    pub requests: u64,
    peer: Option<IpAddr>,
    peer_from_header: bool,
    /// The session's counters already added to the slot.
    reported: Counters,
}

impl<S: Transport> H2Conn<S> {
    /// Takes over `stream` whose first bytes (`start`, the preface on)
    /// were read by the HTTP/1.1 connection; answers what they hold.
    pub fn start(
        stream: S,
        peer: (Option<IpAddr>, bool),
        start: &[u8],
        ctx: &Ctx,
        bufs: &mut Buffers,
    ) -> (H2Conn<S>, Interest) {
        let settings = Settings {
            max_header_list_size: u32::try_from(ctx.limits.max_header_bytes).unwrap_or(u32::MAX),
            ..Settings::default()
        };
        let mut c = H2Conn {
            stream,
            session: Session::new(settings),
            inbuf: Vec::new(),
            out: Vec::new(),
            sent: 0,
            files: Vec::new(),
            waiting: Waiting::default(),
            deadline: ctx.now + ctx.timeouts.keepalive,
            idle_since: None,
            block_since: None,
            blocked_since: None,
            lingering: None,
            drain_notice: None,
            requests: 0,
            peer: peer.0,
            peer_from_header: peer.1,
            reported: Counters::default(),
        };
        let mut interest = c.take_input(start, ctx);
        if interest == Interest::Read && c.stream.has_buffered_input() {
            interest = c.on_readable(ctx, bufs);
        }
        let interest = c.closing(ctx, interest);
        (c, interest)
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The client's address as a PROXY protocol header named it.
    pub fn client_from_header(&self) -> Option<IpAddr> {
        self.peer.filter(|_| self.peer_from_header)
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// What the connection is doing, for the worker's eviction choice: a
    /// header block under way is a head being read; open streams or
    /// output waiting are busy; else idle.
    pub fn standing(&self) -> Standing {
        if let Some(since) = self.lingering {
            return Standing::Lingering { since };
        }
        if let Some(since) = self.block_since {
            return Standing::Head {
                since,
                got: self.inbuf.len() as u64,
            };
        }
        match self.idle_since {
            Some(since) => Standing::Idle { since },
            None => Standing::Busy,
        }
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.standing(), Standing::Idle { .. })
    }

    pub fn is_lingering(&self) -> bool {
        self.lingering.is_some()
    }

    /// The minimum rate is not applied to HTTP/2 (its frames interleave
    /// streams); `header_timeout` bounds a header block instead.
    pub fn is_slow(&self) -> bool {
        false
    }

    /// Buffer memory this connection holds now (the session's own tables
    /// aside).
    pub fn held_bytes(&self) -> usize {
        self.inbuf.capacity() + self.out.capacity()
    }

    /// Nothing to give back: this connection holds no pooled buffer.
    pub fn release(self, _bufs: &mut Buffers) {}

    /// Draining: GOAWAY with the last stream id now (on the sweep that
    /// follows at once), the streams below it answered, then closed.
    pub fn start_drain(&mut self, ctx: &Ctx) {
        self.notice_drain(ctx);
        self.deadline = ctx.now;
    }

    /// The notice GOAWAY (see the module doc), once; the final one
    /// follows `DRAIN_NOTICE` later (`on_timeout`).
    fn notice_drain(&mut self, ctx: &Ctx) {
        if self.drain_notice.is_some()
            || self.session.goaway.is_some()
            || self.session.failed.is_some()
        {
            return;
        }
        super::frame::write_goaway(&mut self.session.tx, ANY_STREAM, ErrorCode::NoError);
        if let Some(slot) = ctx.counters {
            slot.h2.add(H2Stat::GoawaysSent, 1);
        }
        self.drain_notice = Some(ctx.now);
    }

    /// The socket is readable: read, answer, write, until the transport
    /// holds no more input it already read.
    pub fn on_readable(&mut self, ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        let interest = self.readable(ctx, bufs);
        self.closing(ctx, interest)
    }

    /// Before a close: file answers under way are logged with what was sent.
    fn closing(&mut self, ctx: &Ctx, interest: Interest) -> Interest {
        if interest == Interest::Close {
            self.waiting.close(ctx, self.peer, &mut self.session);
        }
        interest
    }

    fn readable(&mut self, ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        loop {
            if self.lingering.is_some() {
                return self.discard(ctx, bufs);
            }
            if self.sent < self.out.len() || self.stream.has_pending_output() {
                // Not reading while output is blocked.
                return Interest::Write;
            }
            let (scratch, _) = bufs.parts();
            let n = match self.stream.read(scratch) {
                Ok(0) => return Interest::Close,
                Ok(n) => n,
                Err(e) if would_block(&e) => return self.settle(ctx),
                Err(_) => return Interest::Close,
            };
            let interest = self.take_input(&scratch[..n], ctx);
            if interest != Interest::Read || !self.stream.has_buffered_input() {
                return interest;
            }
        }
    }

    /// The socket is writable again: send what waited, then what is ready.
    pub fn on_writable(&mut self, ctx: &Ctx) -> Interest {
        if self.lingering.is_some() {
            return Interest::Read;
        }
        let interest = self.flush(ctx);
        self.closing(ctx, interest)
    }

    /// The deadline passed (or draining began): whichever limit it was is
    /// acted on, then what is pending is written.
    pub fn on_timeout(&mut self, ctx: &Ctx, _bufs: &mut Buffers) -> Interest {
        let interest = self.timeout(ctx);
        self.closing(ctx, interest)
    }

    fn timeout(&mut self, ctx: &Ctx) -> Interest {
        let now = ctx.now;
        let passed = |since: Option<Instant>, d: Duration| since.is_some_and(|t| t + d <= now);
        if self.lingering.is_some() || passed(self.blocked_since, ctx.timeouts.header) {
            return Interest::Close;
        }
        if passed(self.session.stalled_since(), ctx.timeouts.header) {
            if let Some(slot) = ctx.counters {
                slot.h2.add(H2Stat::StalledCloses, 1);
            }
            self.session
                .fail(ErrorCode::EnhanceYourCalm, "peer's window stays closed");
        } else if passed(self.block_since, ctx.timeouts.header) {
            self.session.fail(
                ErrorCode::EnhanceYourCalm,
                "header block not finished in time",
            );
        } else if passed(self.drain_notice, DRAIN_NOTICE)
            || passed(self.idle_since, idle_timeout(ctx)) && !ctx.draining
        {
            self.session.go_away();
        } else if ctx.draining {
            self.notice_drain(ctx);
        }
        self.flush(ctx)
    }

    /// Gives `data` to the session and answers what it completed.
    fn take_input(&mut self, data: &[u8], ctx: &Ctx) -> Interest {
        let result = if self.inbuf.is_empty() {
            let r = self.session.receive(data, ctx.now);
            if let Ok(used) = r {
                self.inbuf.extend_from_slice(&data[used..]);
            }
            r
        } else {
            self.inbuf.extend_from_slice(data);
            let r = self.session.receive(&self.inbuf, ctx.now);
            if let Ok(used) = r {
                self.inbuf.drain(..used);
                if self.inbuf.is_empty() {
                    self.inbuf = Vec::new();
                }
            }
            r
        };
        if result.is_err() {
            // GOAWAY is in the output: written by flush, then closed.
            self.inbuf = Vec::new();
            self.files.clear();
        }
        while let Some(event) = self.session.next_event() {
            match event {
                Event::Request(req) => self.answer(&req, ctx),
                Event::HeaderListTooLarge { stream } => {
                    let mut out = Vec::new();
                    let made = answer::refuse(Reject::HeaderTooLarge, ctx, &mut out);
                    self.respond(stream, made, &[], &mut out, ctx);
                }
                Event::Reset { stream } => self.files.retain(|p| p.stream != stream),
            }
        }
        if ctx.draining {
            self.notice_drain(ctx);
        }
        self.flush(ctx)
    }

    /// Answers one request, as an HTTP/1.1 connection would.
    fn answer(&mut self, req: &Request, ctx: &Ctx) {
        if !self.session.streams.contains_key(&req.stream) {
            // Reset by the client in the same read: nothing to answer.
            return;
        }
        let mut head = Vec::with_capacity(256);
        answer::h1_head(req, &mut head);
        let mut out = Vec::with_capacity(512);
        let made = answer::make(&head, self.peer, ctx, &mut out);
        self.respond(req.stream, made, &head, &mut out, ctx);
    }

    /// Sends an HTTP/1.1 answer `out` on `stream`, counts it, tells the
    /// observer.
    fn respond(&mut self, stream: u32, made: Made, head: &[u8], out: &mut [u8], ctx: &Ctx) {
        self.requests += 1;
        if let Some(slot) = ctx.counters {
            slot.count_request();
            slot.count_response(made.status);
        }
        let Some((status, fields, bytes)) = answer::split(out) else {
            self.session.reset(stream, ErrorCode::InternalError);
            return;
        };
        let body_bytes = bytes.len() as u64;
        let body = match (&made.file, bytes) {
            (Some(_), _) => Body::Pull,
            (None, []) => Body::Empty,
            (None, b) => Body::Bytes(b),
        };
        let told = ctx.observer.map(|_| Told {
            stream,
            head: answer::as_logged(head),
            status,
            choice: made.choice,
            started: ctx.now,
        });
        let result = self.session.respond(stream, status, &fields, body);
        match (result, made.file) {
            // Logged once the body has ended, with what was sent of it.
            (Ok(()), Some(file)) => {
                self.files.push(Pulled { stream, body: file });
                if let Some(told) = told {
                    self.waiting.hold(told);
                }
                return;
            }
            (Ok(()), None) => {}
            // More output waits than we hold for a client: it may retry.
            (Err(SendError::Full), _) => self.session.reset(stream, ErrorCode::RefusedStream),
            // The client reset it meanwhile.
            (Err(_), _) => {}
        }
        if let Some(told) = told {
            let sent = if result.is_ok() { body_bytes } else { 0 };
            observe::tell(ctx, self.peer, &told, sent);
        }
    }

    /// Feeds pulled file bodies as far as the windows and our output
    /// bound allow, a chunk at a time.
    fn pump_files(&mut self) {
        let mut chunk = [0u8; FILE_CHUNK];
        while let Some((id, room)) = self.session.want_data() {
            let Some(i) = self.files.iter().position(|p| p.stream == id) else {
                // A pulled body we no longer have (never happens): end it.
                let _ = self.session.send_data(id, &[], true);
                continue;
            };
            let p = &mut self.files[i];
            let want = room.min(FILE_CHUNK).min(p.body.len as usize);
            let n = if want == 0 {
                0
            } else {
                match p.body.file.read_at(&mut chunk[..want], p.body.offset) {
                    Ok(n) if n > 0 => n,
                    // Truncated or unreadable: the promised length cannot be kept.
                    _ => {
                        self.session.reset(id, ErrorCode::InternalError);
                        self.files.swap_remove(i);
                        continue;
                    }
                }
            };
            p.body.offset += n as u64;
            p.body.len -= n as u64;
            let end = p.body.len == 0;
            if end {
                self.files.swap_remove(i);
            }
            if self.session.send_data(id, &chunk[..n], end).is_err() {
                self.session.reset(id, ErrorCode::InternalError);
            }
        }
    }

    /// Writes what waits, then what the session has ready, until the
    /// socket is full or this turn's share is spent; then the deadline.
    fn flush(&mut self, ctx: &Ctx) -> Interest {
        let mut written = 0;
        loop {
            if self.sent == self.out.len() {
                self.out.clear();
                self.sent = 0;
                self.pump_files();
                self.session.poll_output(ctx.now, &mut self.out);
                self.waiting.ended(ctx, self.peer, &mut self.session);
                if self.out.is_empty() {
                    break;
                }
            }
            match write_some(&mut self.stream, &self.out[self.sent..], false) {
                Ok(n) => {
                    self.sent += n;
                    written += n;
                }
                Err(_) => return Interest::Close,
            }
            if self.sent < self.out.len() || written >= TURN {
                self.blocked_since.get_or_insert(ctx.now);
                return self.settle_writing(ctx);
            }
        }
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::new();
        }
        if self.stream.flush().is_err() {
            return Interest::Close;
        }
        if self.stream.has_pending_output() {
            self.blocked_since.get_or_insert(ctx.now);
            return self.settle_writing(ctx);
        }
        self.blocked_since = None;
        if self.session.is_done() {
            return self.close_gracefully(ctx);
        }
        self.settle(ctx)
    }

    /// Nothing under way: the buffers go back to the allocator, so an idle
    /// connection holds its state and no more (as an idle HTTP/1.1
    /// connection holds no buffer).
    fn release_buffers(&mut self) {
        if self.sent >= self.out.len() {
            self.out = Vec::new();
            self.sent = 0;
        }
        if self.inbuf.is_empty() {
            self.inbuf = Vec::new();
        }
        self.files = Vec::new();
        self.session.release_buffers();
    }

    /// Output is waiting for the socket: the write's deadline.
    fn settle_writing(&mut self, ctx: &Ctx) -> Interest {
        self.report(ctx);
        self.idle_since = None;
        if let Some(t) = self.blocked_since {
            self.deadline = t + ctx.timeouts.header;
        }
        Interest::Write
    }

    /// Everything is written: the next deadline, and wait for input.
    fn settle(&mut self, ctx: &Ctx) -> Interest {
        self.report(ctx);
        let now = ctx.now;
        self.block_since = if self.session.pending.is_some() {
            self.block_since.or(Some(now))
        } else {
            None
        };
        let idle = self.session.open_streams() == 0;
        self.idle_since = if idle {
            self.idle_since.or(Some(now))
        } else {
            None
        };
        if idle && self.files.is_empty() {
            self.release_buffers();
        }
        let mut deadline = now + ctx.timeouts.keepalive.max(ctx.timeouts.header);
        let header = ctx.timeouts.header;
        for t in [self.block_since, self.session.stalled_since()]
            .into_iter()
            .flatten()
        {
            deadline = deadline.min(t + header);
        }
        if let Some(t) = self.idle_since.filter(|_| self.drain_notice.is_none()) {
            deadline = deadline.min(t + idle_timeout(ctx));
        }
        if let Some(t) = self.drain_notice.filter(|_| self.session.goaway.is_none()) {
            deadline = deadline.min(t + DRAIN_NOTICE);
        }
        self.deadline = deadline;
        Interest::Read
    }

    /// GOAWAY is out: shut the write side and read what still comes for a
    /// while, so that our close does not reset it away.
    fn close_gracefully(&mut self, ctx: &Ctx) -> Interest {
        self.report(ctx);
        if self.stream.shutdown_write().is_err() {
            return Interest::Close;
        }
        self.files.clear();
        self.inbuf = Vec::new();
        self.lingering = Some(ctx.now);
        self.deadline = ctx.now + LINGER;
        Interest::Read
    }

    /// Lingering: read and discard until EOF or the deadline.
    fn discard(&mut self, _ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        let (scratch, _) = bufs.parts();
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Interest::Close,
                Ok(_) => {}
                Err(e) if would_block(&e) => return Interest::Read,
                Err(_) => return Interest::Close,
            }
        }
    }

    /// Adds what the session counted since the last time to the slot.
    fn report(&mut self, ctx: &Ctx) {
        let Some(slot) = ctx.counters else { return };
        let (c, r) = (*self.session.counters(), self.reported);
        for (stat, now, before) in [
            (H2Stat::Streams, c.streams_opened, r.streams_opened),
            (H2Stat::ResetsReceived, c.resets_received, r.resets_received),
            (H2Stat::ResetsSent, c.resets_sent, r.resets_sent),
            (H2Stat::GoawaysSent, c.goaways_sent, r.goaways_sent),
            (H2Stat::RapidResets, c.rapid_resets, r.rapid_resets),
            (H2Stat::ControlFloods, c.control_floods, r.control_floods),
            (
                H2Stat::ContinuationFloods,
                c.continuation_floods,
                r.continuation_floods,
            ),
            (
                H2Stat::HeaderBlocksTooLarge,
                c.header_blocks_too_large,
                r.header_blocks_too_large,
            ),
            (
                H2Stat::HeaderListsTooLarge,
                c.header_lists_too_large,
                r.header_lists_too_large,
            ),
            (H2Stat::RefusedStreams, c.refused_streams, r.refused_streams),
            (
                H2Stat::TableSizeViolations,
                c.table_size_violations,
                r.table_size_violations,
            ),
            (
                H2Stat::OutputOverflows,
                c.output_overflows,
                r.output_overflows,
            ),
        ] {
            slot.h2.add(stat, now - before);
        }
        self.reported = c;
    }
}

/// How long a connection with no stream open is kept.
fn idle_timeout(ctx: &Ctx) -> Duration {
    if ctx.draining {
        ctx.timeouts.drain_idle
    } else {
        ctx.timeouts.keepalive
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
