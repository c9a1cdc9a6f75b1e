//! One client connection: reading, answering every complete request in what
//! was read (pipelining) with one write, keep-alive, draining, deadlines and
//! the lingering close after an error.
//!
//! Buffers: reads go into the worker's one scratch buffer; only a connection
//! left holding a partial request head keeps a buffer of its own, taken from
//! the worker's pool and given back as soon as the head is complete, so an
//! idle connection holds no buffer. Bodies are discarded as they arrive and
//! never buffered. A file body is sent from the file (`sendfile` on TCP,
//! `output.rs`), a turn's share at a time; pipelined requests read behind
//! it wait, at most one read's worth, until it is out.
//!
//! Deadlines: `header_timeout` for a request head (from accept for the
//! first), for each stretch of a body and for a blocked write;
//! `keepalive_timeout` between requests; and, for a head or body under way,
//! the minimum rate (`min_request_rate`): after `RATE_GRACE`, what has
//! arrived must keep up with the rate, or the deadline comes sooner than
//! `header_timeout` (Apache's mod_reqtimeout `MinRate`). What a connection
//! is doing now, for the worker's eviction choice, is its
//! [`Standing`](crate::http::conn::Standing).
//!
//! On a `proxy_protocol` listener the connection first takes a PROXY
//! header (`proxy.rs`), whose bytes never reach the HTTP parser and whose
//! address is the client from then on; no valid header, no answer.
//!
//! Every answer (and a request cut short by its client) is told to the
//! worker's [`Observer`](crate::obs::exchange::Observer), if any (the access log),
//! with the request head as read; the observer decides what to make of it.
//! Leaves the event loop, epoll and processes to `worker/`.

use std::io;
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::http::answer::{Responses, CONTINUE};
/// Reading and discarding a request body.
mod body;
/// Telling an HTTP/2 connection preface from an HTTP/1.1 head.
mod h2start;
/// Reading: the socket or the input held behind a file, PROXY first.
mod input;
/// Telling the observer.
mod observe;
/// Writing: bytes, files, then keep-alive or close.
mod output;

use observe::{summarize, Pending};

use crate::http::chunked::ChunkedDecoder;
use crate::http::parse::{self, Body, Limits, Parsed, Reject, Request};
use crate::http::route::{Asker, Choice, Question};
use crate::http::template::Persistence;
use crate::http::transport::{FileBody, Transport};
use crate::obs::exchange::Observer;
use crate::obs::scoreboard::{Board, Slot};

/// Bytes read from a socket at once.
pub const READ_SIZE: usize = 32 * 1024;
/// How long, at most, an answered-and-closing connection is read and
/// discarded so that unread input does not turn our close into a reset that
/// destroys the answer in flight (nginx's lingering close).
const LINGER: Duration = Duration::from_secs(2);
/// Free connection buffers a worker keeps for reuse.
const POOL_MAX: usize = 64;
/// How long a head or body may take before the minimum rate applies: a
/// normal client sends a head in one packet, a slow link in a few round
/// trips; only a trickle is still short of the rate after this.
pub const RATE_GRACE: Duration = Duration::from_secs(2);

/// Timeouts from the config, as the connection uses them.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// A request head (and each stretch of a body or a blocked write) must
    /// arrive within this.
    pub header: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keepalive: Duration,
    /// While draining, an idle connection is closed after this.
    pub drain_idle: Duration,
    /// Bytes per second a head or body must keep up with after
    /// `RATE_GRACE` (`min_request_rate`); 0: no minimum.
    pub min_rate: u64,
}

/// What a connection needs from its worker to answer.
pub struct Ctx<'a> {
    pub responses: &'a Responses,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub now: Instant,
    /// The worker is draining: every answer closes its connection.
    pub draining: bool,
    /// `-s maintenance on`: the maintenance page answers (health routes excepted).
    pub maintenance: bool,
    /// Told of every answer (the access log); None when nobody listens.
    pub observer: Option<&'a dyn Observer>,
    /// The worker's scoreboard slot, where answers are counted by status
    /// class; None outside a worker.
    pub counters: Option<&'a Slot>,
    /// Every slot and the master's totals, read by status routes; None
    /// outside a worker.
    pub board: Option<Board>,
}

impl Ctx<'_> {
    /// One request as its answer sees it, with the worker's state
    /// (maintenance, draining, the board) and who asks.
    pub fn question<'q>(
        &'q self,
        request: &'q Request,
        choice: Choice,
        tail: &'q [u8],
        head: &'q [u8],
        persistence: Persistence,
        client: Option<IpAddr>,
    ) -> Question<'q> {
        Question {
            request,
            choice,
            tail,
            head,
            persistence,
            maintenance: self.maintenance,
            draining: self.draining,
            asker: Asker {
                client,
                board: self.board,
            },
        }
    }
}

/// The worker's reusable buffers, shared by all its connections.
pub struct Buffers {
    scratch: Box<[u8]>,
    out: Vec<u8>,
    pool: Vec<Box<[u8]>>,
    conn_buf_size: usize,
}

impl Buffers {
    pub fn new(limits: &Limits) -> Self {
        Buffers {
            scratch: vec![0; READ_SIZE].into_boxed_slice(),
            out: Vec::with_capacity(64 * 1024),
            pool: Vec::new(),
            // A partial head is at most max_header_bytes; the rest is room to read into.
            conn_buf_size: limits.max_header_bytes + 4096,
        }
    }

    fn take(&mut self) -> Box<[u8]> {
        self.pool
            .pop()
            .unwrap_or_else(|| vec![0; self.conn_buf_size].into_boxed_slice())
    }

    fn give(&mut self, buf: Box<[u8]>) {
        if self.pool.len() < POOL_MAX {
            self.pool.push(buf);
        }
    }
}

/// What a connection is doing now, as the worker's eviction choice sees it
/// (`worker::pressure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Waiting for a first byte, or between keep-alive requests, since then.
    Idle { since: Instant },
    /// Answered and half-closed, reading what the client still sends.
    Lingering { since: Instant },
    /// Part of a request head has arrived: `got` bytes since `since`.
    Head { since: Instant, got: u64 },
    /// A request is being read (its body) or answered (output pending, in
    /// the connection or in the transport, TLS records):
    /// never closed to make room.
    Busy,
}

#[derive(Debug)]
enum Phase {
    /// Between requests (or before the first): nothing buffered.
    Idle,
    /// Part of a request head has arrived.
    Head,
    /// The head is parsed; discarding its body, answer still due.
    Body {
        request: Request,
        left: BodyLeft,
        route: Choice,
    },
    /// Answered, write side shut: reading and discarding until EOF.
    Lingering,
}

#[derive(Debug)]
enum BodyLeft {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// What the worker should do with the connection after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Wait for input.
    Read,
    /// Output is pending: wait until the socket is writable (and stop
    /// reading meanwhile, so a client that does not read cannot grow our
    /// buffers).
    Write,
    /// Close the connection now.
    Close,
}

/// What one step of `process` leaves: go on from this input position, or
/// stop there with this verdict.
enum Step {
    Go(usize),
    Stop(usize, Verdict),
}

/// After processing input: keep going, or close (lingering if the client
/// may still be sending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Open,
    Close { linger: bool },
}

pub struct Conn<S = TcpStream> {
    stream: S,
    phase: Phase,
    /// A partial request head carried to the next read: `inbuf[..in_len]`.
    inbuf: Option<Box<[u8]>>,
    in_len: usize,
    /// Output the socket did not take yet: `pending[sent..]`.
    pending: Vec<u8>,
    sent: usize,
    /// What to do once `pending` is written.
    after_flush: Verdict,
    /// The end of the target a keep_path redirect appends, kept while a
    /// body is read (the head's bytes are gone by then); empty otherwise.
    tail: Vec<u8>,
    deadline: Instant,
    /// The `header_timeout` limit of the head or body under way, which the
    /// minimum rate may bring `deadline` before.
    limit: Instant,
    /// When the current phase began (accepted, idle again, head or body
    /// started, lingering).
    since: Instant,
    /// Bytes of the current head or body received so far.
    got: u64,
    /// Requests answered on this connection.
    pub requests: u64,
    /// The client's address: looked up once (getpeername) only when an
    /// observer or a status route's `allow` needs it, or taken from a
    /// PROXY protocol header.
    peer: Option<IpAddr>,
    /// A PROXY protocol header must come first (a `proxy_protocol`
    /// listener) and has not arrived yet.
    awaiting_proxy: bool,
    /// `peer` came from a PROXY protocol header.
    peer_from_header: bool,
    /// When the request under way began.
    started: Instant,
    /// The head of a request whose body is being read, kept for the
    /// observer until the answer (only when there is one).
    observed_head: Option<Box<[u8]>>,
    /// A file body on its way out, after the answer's head.
    file: Option<FileOut>,
    /// Pipelined input read behind a file answer: answered once the file
    /// is out, before the socket is read again (at most one read's worth).
    later: Vec<u8>,
    /// An `h2c` listener: the first head may be the HTTP/2 preface.
    h2c: bool,
    /// The HTTP/2 preface arrived: the bytes read from it on, for the
    /// worker to make an HTTP/2 connection of (`h2start.rs`).
    h2_start: Option<Vec<u8>>,
}

/// A file body being sent, and its answer's access-log line, which waits
/// for the bytes actually sent.
struct FileOut {
    body: FileBody,
    sent: u64,
    told: Option<Pending>,
}

impl<S: Transport> Conn<S> {
    pub fn new(stream: S, ctx: &Ctx) -> Self {
        Conn {
            phase: Phase::Idle,
            inbuf: None,
            in_len: 0,
            pending: Vec::new(),
            sent: 0,
            after_flush: Verdict::Open,
            tail: Vec::new(),
            // The first request head gets header_timeout, not keepalive_timeout.
            deadline: ctx.now + ctx.timeouts.header,
            limit: ctx.now + ctx.timeouts.header,
            since: ctx.now,
            got: 0,
            requests: 0,
            peer: if ctx.observer.is_some() || ctx.responses.needs_client() {
                stream.peer_ip()
            } else {
                None
            },
            awaiting_proxy: false,
            peer_from_header: false,
            started: ctx.now,
            observed_head: None,
            file: None,
            later: Vec::new(),
            h2c: false,
            h2_start: None,
            stream,
        }
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The connection comes from a `proxy_protocol` listener: its first
    /// bytes must be a PROXY header, which never reaches the HTTP parser;
    /// anything else closes it without an answer.
    pub fn expect_proxy_header(&mut self) {
        self.awaiting_proxy = true;
    }

    /// The client's address as a PROXY protocol header named it (None
    /// before the header, for a `LOCAL` one, or without a header).
    pub fn client_from_header(&self) -> Option<IpAddr> {
        self.peer.filter(|_| self.peer_from_header)
    }

    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Answered and half-closed: only draining the client's input is left.
    pub fn is_lingering(&self) -> bool {
        matches!(self.phase, Phase::Lingering)
    }

    /// Buffer memory this connection holds now.
    pub fn held_bytes(&self) -> usize {
        self.inbuf.as_ref().map_or(0, |b| b.len())
            + self.pending.capacity()
            + self.tail.capacity()
            + self.observed_head.as_ref().map_or(0, |b| b.len())
            + self.later.capacity()
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Nothing of a request is under way: closing now loses nothing.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle) && !self.is_writing()
    }

    /// An answer is still on its way out: in `pending`, or taken by the
    /// transport but not yet by the socket (TLS records).
    fn is_writing(&self) -> bool {
        !self.pending.is_empty() || self.file.is_some() || self.stream.has_pending_output()
    }

    /// What the connection is doing, for the worker's eviction choice.
    pub fn standing(&self) -> Standing {
        if self.is_writing() {
            return Standing::Busy;
        }
        match self.phase {
            Phase::Idle => Standing::Idle { since: self.since },
            Phase::Lingering => Standing::Lingering { since: self.since },
            Phase::Head => Standing::Head {
                since: self.since,
                got: self.got,
            },
            Phase::Body { .. } => Standing::Busy,
        }
    }

    /// The deadline that passed (or will) is the minimum rate's, not
    /// `header_timeout`'s: the head or body is trickling.
    pub fn is_slow(&self) -> bool {
        matches!(self.phase, Phase::Head | Phase::Body { .. })
            && !self.is_writing()
            && self.deadline < self.limit
    }

    /// Starts draining: an idle connection gets only a short grace; every
    /// answer from now on closes (`Ctx::draining`).
    pub fn start_drain(&mut self, ctx: &Ctx) {
        if self.is_idle() {
            self.deadline = self.deadline.min(ctx.now + ctx.timeouts.drain_idle);
        }
    }

    /// Gives the connection's buffer back to the pool before it is dropped.
    pub fn release(mut self, bufs: &mut Buffers) {
        if let Some(b) = self.inbuf.take() {
            bufs.give(b);
        }
    }

    /// The deadline passed: answer 408 if a request was under way, close.
    pub fn on_timeout(&mut self, ctx: &Ctx, bufs: &mut Buffers) -> Interest {
        match self.phase {
            Phase::Head | Phase::Body { .. } if !self.is_writing() => {
                let own = self.inbuf.take();
                bufs.out.clear();
                let status = ctx
                    .responses
                    .reject(&mut bufs.out, Reject::RequestTimeout, false);
                count(ctx, status);
                if matches!(self.phase, Phase::Head) {
                    let head = own.as_deref().map_or(&[][..], |b| &b[..self.in_len]);
                    self.observe(ctx, head, &bufs.out);
                } else {
                    let head = self.observed_head.take();
                    self.observe(ctx, head.as_deref().unwrap_or(&[]), &bufs.out);
                }
                if let Some(b) = own {
                    bufs.give(b);
                }
                let out = std::mem::take(&mut bufs.out);
                let interest = self.send(&out, Verdict::Close { linger: true }, ctx);
                bufs.out = out;
                interest
            }
            _ => {
                // A file body stalled (the client stopped reading): its
                // answer is logged with the bytes that did go out.
                self.finish_file(ctx);
                Interest::Close
            }
        }
    }

    /// Answers every complete request at the start of `input`, appending
    /// the answers to `out`. Returns how much input was used and whether
    /// the connection stays open. What is left unused is a partial head.
    fn process(&mut self, input: &[u8], ctx: &Ctx, out: &mut Vec<u8>) -> (usize, Verdict) {
        let mut pos = 0;
        loop {
            let step = match self.phase {
                // Answered and half-closed: what still comes is discarded
                // (the deadline stays LINGER's).
                Phase::Lingering => return (input.len(), Verdict::Open),
                Phase::Idle | Phase::Head if pos == input.len() => break,
                Phase::Idle | Phase::Head => self.take_head(input, pos, ctx, out),
                Phase::Body { .. } => self.take_body(input, pos, ctx, out),
            };
            match step {
                Step::Go(at) => pos = at,
                Step::Stop(at, verdict) => return (at, verdict),
            }
        }
        (pos, Verdict::Open)
    }

    /// A request head at `input[pos..]`: answered if it is whole and has no
    /// body; else the phase moves to its body, or the partial head waits.
    fn take_head(&mut self, input: &[u8], mut pos: usize, ctx: &Ctx, out: &mut Vec<u8>) -> Step {
        if matches!(self.phase, Phase::Idle) {
            self.started = ctx.now;
        }
        if let Some(step) = self.detect_h2(input, pos, ctx) {
            return step;
        }
        let (request, route, tail, head) = match parse::parse_head(&input[pos..], &ctx.limits) {
            Err(reject) => {
                let mark = out.len();
                count(ctx, ctx.responses.reject(out, reject, false));
                self.observe(ctx, &input[pos..], &out[mark..]);
                return Step::Stop(input.len(), Verdict::Close { linger: true });
            }
            // Empty lines between requests are not a request
            // yet: the connection stays idle (keepalive_timeout).
            Ok(Parsed::Partial) if input[pos..].iter().all(|&b| b == b'\r' || b == b'\n') => {
                return Step::Stop(pos, Verdict::Open);
            }
            Ok(Parsed::Partial) => {
                if matches!(self.phase, Phase::Idle) {
                    self.phase = Phase::Head;
                    self.since = ctx.now;
                    // The first head's clock started at accept.
                    if self.requests > 0 {
                        self.limit = ctx.now + ctx.timeouts.header;
                    }
                }
                self.got = (input.len() - pos) as u64;
                self.deadline = self.progress_deadline(ctx);
                return Step::Stop(pos, Verdict::Open);
            }
            Ok(Parsed::Complete(request, n)) => {
                let (route, tail) = ctx.responses.route(&request, &input[pos..pos + n]);
                pos += n;
                if request.body != Body::None {
                    // Rare (a body on a keep_path redirect): the only copy.
                    self.tail.clear();
                    self.tail.extend_from_slice(tail);
                }
                (request, route, tail, &input[pos - n..pos])
            }
        };
        let left = match request.body {
            Body::None => {
                let mark = out.len();
                let keep = self.answer(request, route, tail, head, ctx, out);
                self.observe_routed(ctx, head, Some(route), &out[mark..]);
                return self.after_answer(keep, pos, input.len());
            }
            Body::Length(n) => BodyLeft::Length(n),
            Body::Chunked => BodyLeft::Chunked(ChunkedDecoder::new()),
        };
        if ctx.observer.is_some() {
            // The head is gone from the buffer by the answer.
            self.observed_head = Some(head.into());
        }
        if request.expect_continue && pos == input.len() {
            out.extend_from_slice(CONTINUE);
        }
        self.phase = Phase::Body {
            request,
            left,
            route,
        };
        self.since = ctx.now;
        self.got = 0;
        self.limit = ctx.now + ctx.timeouts.header;
        self.deadline = self.limit;
        Step::Go(pos)
    }

    /// What follows an answer that used the input up to `pos`: close
    /// (lingering if more input came), wait for a file body to go out
    /// (what follows waits with it), or go on with the next request.
    fn after_answer(&self, keep: bool, pos: usize, input_len: usize) -> Step {
        if !keep {
            return Step::Stop(
                pos,
                Verdict::Close {
                    linger: pos < input_len,
                },
            );
        }
        if self.file.is_some() {
            return Step::Stop(pos, Verdict::Open);
        }
        Step::Go(pos)
    }

    /// Appends the answer to a complete request; false when the connection
    /// closes after it.
    fn answer(
        &mut self,
        request: Request,
        choice: Choice,
        tail: &[u8],
        head: &[u8],
        ctx: &Ctx,
        out: &mut Vec<u8>,
    ) -> bool {
        self.requests += 1;
        let keep = request.keep_alive && !ctx.draining;
        let p = match (keep, request.http10) {
            (false, _) => Persistence::Close,
            (true, true) => Persistence::KeepAlive10,
            (true, false) => Persistence::KeepAlive,
        };
        // The hook where routes, health and maintenance choose the bytes.
        let q = ctx.question(&request, choice, tail, head, p, self.peer);
        let answered = ctx.responses.answer(out, &q);
        let status = answered.status;
        if let Some(body) = answered.file {
            self.file = Some(FileOut {
                body,
                sent: 0,
                told: None,
            });
        }
        if let Some(slot) = ctx.counters {
            slot.count_request();
        }
        count(ctx, status);
        self.phase = Phase::Idle;
        self.since = ctx.now;
        self.deadline = ctx.now + self.idle_timeout(ctx);
        keep
    }

    /// The deadline of a head or body under way: `limit`, or sooner when
    /// what arrived since `since` is short of the minimum rate once
    /// `RATE_GRACE` has passed (so a head or body gets `RATE_GRACE` plus
    /// one second per `min_rate` bytes received).
    fn progress_deadline(&self, ctx: &Ctx) -> Instant {
        if ctx.timeouts.min_rate == 0 {
            return self.limit;
        }
        let earned = Duration::from_millis(self.got.saturating_mul(1000) / ctx.timeouts.min_rate);
        self.limit.min(self.since + RATE_GRACE + earned)
    }

    /// How long an idle connection is kept.
    fn idle_timeout(&self, ctx: &Ctx) -> Duration {
        if ctx.draining {
            ctx.timeouts.drain_idle
        } else {
            ctx.timeouts.keepalive
        }
    }
}

/// Counts an answer in the worker's slot, if there is one (before it is
/// written: a client that read it finds it counted).
fn count(ctx: &Ctx, status: u16) {
    if let Some(slot) = ctx.counters {
        slot.count_response(status);
    }
}

fn recycle(own: Option<Box<[u8]>>, bufs: &mut Buffers, interest: Interest) -> Interest {
    if let Some(b) = own {
        bufs.give(b);
    }
    interest
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
