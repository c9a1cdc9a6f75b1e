//! One worker, after fork: its own epoll set over the shared listening
//! sockets, the event loop (connections' events, the deadline sweep, QUIT
//! and the other signals), serving each connection through `http/conn/`, and
//! draining. Forking, the pid file and the master's worker table are the
//! master's. Its rooms:
//! - `setup.rs`: privileges and the orphan guard, before serving;
//! - `accept.rs`: accepting, EMFILE pauses, balanced accepting;
//! - `table.rs`: the connection table and per-client counts;
//! - `pressure.rs`: what to close under pressure (pure, unit-tested);
//! - `evict.rs`: closing it, the eviction counters and the pressure log.
//!
//! Also drives its access log: opened before privileges are dropped,
//! written on its flush deadline, when draining and on exit, reopened on
//! USR1.
//!
//! EMFILE/ENFILE (or ENOBUFS/ENOMEM) from `accept4`: the worker logs one
//! warning for the episode, stops accepting for `ACCEPT_PAUSE` at a time
//! and serves what it holds; the kernel keeps new connections in the
//! listen backlog meanwhile (other workers may take them), and the worker
//! says "accepting again" when an accept succeeds. With room made at
//! `worker_connections`, it only happens when `RLIMIT_NOFILE` is below
//! `worker_connections` plus the worker's own descriptors.

mod accept;
/// One connection's events: added, served, settled in epoll, closed.
mod conns;
mod evict;
mod pressure;
mod setup;
mod table;

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::unistd::Pid;

use crate::config::Config;
use crate::exitcode;
use crate::http::answer::Responses;
use crate::http::conn::{Buffers, Ctx, Timeouts};
use crate::http::parse::Limits;
use crate::http::template::http_date;
use crate::obs::access_log::AccessLog;
use crate::obs::exchange::Observer;
use crate::obs::scoreboard::{self, Board, Eviction, Slot, WorkerState};
use crate::os::inbox::Sender;
use crate::os::listener::Listener;
use crate::os::signals::WorkerSignals;

use evict::{Cause, Episode};
use pressure::Victim;
use table::Table;

/// epoll tokens: connections use their slab index; these sit above.
const WAKE: u64 = u64::MAX;
const LISTENER_BASE: u64 = 1 << 32;
/// How long accepting pauses after EMFILE/ENFILE (nginx pauses 500 ms).
const ACCEPT_PAUSE: Duration = Duration::from_millis(250);
/// How often deadlines are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Events taken per epoll_wait.
const MAX_EVENTS: usize = 512;
/// How long a worker holding more than its share of the open connections
/// stays out of the listeners' wait queue, so that new arrivals wake the
/// others (balanced accepting, issue 10).
const YIELD: Duration = Duration::from_millis(2);
/// A pressure episode ends (and is logged as over) after this long
/// without an eviction.
const PRESSURE_QUIET: Duration = Duration::from_secs(5);

/// Runs a worker until it is told to stop; returns its exit status.
pub fn run(
    config: &Config,
    listeners: Vec<Listener>,
    master: Pid,
    inbox: Option<Sender>,
    slot: &'static Slot,
    all: Board,
) -> i32 {
    // Privileges first: changing credentials clears PR_SET_PDEATHSIG, so the
    // orphan guard is set up after.
    if let Some(creds) = &config.user {
        if let Err(e) = setup::drop_privileges(creds) {
            log::error!(
                "worker pid={} cannot drop privileges: {e}; exiting rather than serve as root",
                std::process::id()
            );
            return exitcode::CONFIG;
        }
    }
    // The access log after privileges are dropped: root never opens it
    // (a symlink planted there by the workers' user would lead root
    // elsewhere); a missing file was created for us by the master.
    let access_log = config.access_log.as_ref().map(|c| {
        AccessLog::open(
            c,
            &crate::obs::access_log::Setup {
                syslog: &config.log,
                max_header_bytes: config.max_request_header_bytes,
                lost: slot.log_lost(),
            },
        )
    });
    if let Err(e) = setup::orphan_guard(master) {
        log::error!(
            "worker pid={} cannot watch its master: {e}",
            std::process::id()
        );
        return exitcode::OSERR;
    }
    let signals = match WorkerSignals::install() {
        Ok(s) => s,
        Err(e) => {
            log::error!(
                "worker pid={} cannot install signal handlers: {e}",
                std::process::id()
            );
            return exitcode::OSERR;
        }
    };
    // Signals were blocked around fork; ours are installed now.
    let _ = crate::os::signals::Signals::set().thread_unblock();
    match Worker::new(config, listeners, &signals, inbox, (slot, all), access_log) {
        Ok(mut w) => w.run(&signals),
        Err(e) => {
            log::error!("worker pid={} cannot start: {e}", std::process::id());
            exitcode::OSERR
        }
    }
}

/// What every connection of the worker shares: what `Ctx` is made of.
struct Shared {
    responses: Responses,
    limits: Limits,
    timeouts: Timeouts,
    now: Instant,
    /// Draining: every answer closes its connection.
    draining: bool,
    /// Written on its deadline, when draining, and when dropped (exit).
    access_log: Option<AccessLog>,
    /// Our scoreboard slot: heartbeat and counters for the master, and
    /// the maintenance switch it sets.
    board: &'static Slot,
    /// Every slot and the master's totals, for status routes.
    all: Board,
}

impl Shared {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            responses: &self.responses,
            limits: self.limits,
            timeouts: self.timeouts,
            now: self.now,
            draining: self.draining,
            maintenance: self.board.maintenance(),
            observer: self.access_log.as_ref().map(|l| l as &dyn Observer),
            counters: Some(self.board),
            board: Some(self.all),
        }
    }
}

struct Worker {
    epoll: Epoll,
    listeners: Vec<Listener>,
    /// Per listener (same index): its rustls config if it is a `tls` one.
    tls: Vec<Option<std::sync::Arc<rustls::ServerConfig>>>,
    /// Per listener (same index): a `proxy_protocol` one.
    proxied: Vec<bool>,
    /// Per listener (same index): an `h2c` one.
    h2c: Vec<bool>,
    /// `proxy_protocol_from`.
    proxy_from: Vec<crate::http::cidr::Cidr>,
    /// Connections reading a head, and reading a body or writing, now
    /// (stub_status; idle ones are the rest).
    reading: u64,
    writing: u64,
    /// Listeners are in the epoll set.
    listening: bool,
    /// Accepting paused after EMFILE/ENFILE until then.
    paused_until: Option<Instant>,
    /// Stopped accepting at `worker_connections` with nothing to close
    /// (counted once until an accept succeeds again).
    full_stop: bool,
    /// In an episode of accept4 failing for want of descriptors or memory:
    /// logged once when it starts and once when it ends.
    accept_starved: bool,
    table: Table,
    bufs: Buffers,
    shared: Shared,
    max_conns: usize,
    /// `max_connections_per_client` (0: no cap).
    client_cap: usize,
    /// `max_connections_per_client_exempt`.
    cap_exempt: Vec<crate::http::cidr::Cidr>,
    /// Reused by `pressure::choose`.
    victims: Vec<Victim>,
    /// Evictions by kind (`Eviction as usize`), published in the slot.
    evicted: [u64; 6],
    pressure: Option<Episode>,
    /// Balanced accepting is on (more than one worker configured): the
    /// scoreboard's first `balance_span` slots are looked at.
    balance_span: usize,
    /// Every worker's slot, for `balance_span`'s look at the others.
    peers: &'static [Slot],
    /// Out of the listeners' wait queue until then (over our share).
    yield_until: Option<Instant>,
    /// The other workers' open connections when we yielded.
    yield_peers: Option<u64>,
    /// Back from a yield that nobody used: take what is queued without
    /// yielding again (see `end_yield`).
    keep_taking: bool,
    shutdown_timeout: Duration,
    next_date: Instant,
    next_sweep: Instant,
    /// Set once draining: the time by which the worker exits anyway.
    drain_deadline: Option<Instant>,
    /// Connections accepted in all (published in the scoreboard).
    accepted: u64,
    /// Requests answered, against `max_requests` (0: no limit).
    served: u64,
    max_requests: u64,
    inbox: Option<Sender>,
}

impl Worker {
    fn new(
        config: &Config,
        listeners: Vec<Listener>,
        signals: &WorkerSignals,
        inbox: Option<Sender>,
        (board, all): (&'static Slot, Board),
        access_log: Option<AccessLog>,
    ) -> nix::Result<Worker> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(
            signals.wake.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, WAKE),
        )?;
        let limits = Limits {
            max_header_bytes: config.max_request_header_bytes,
            max_body_bytes: config.max_request_body_bytes,
        };
        let now = Instant::now();
        // A listener's flags come from the config, by its address.
        let tls = listeners
            .iter()
            .map(|l| {
                let tls = config.listen_for(l.addr).tls;
                config
                    .tls
                    .as_ref()
                    .filter(|_| tls)
                    .map(|t| t.server.clone())
            })
            .collect();
        let proxied = listeners
            .iter()
            .map(|l| config.listen_for(l.addr).proxy_protocol)
            .collect();
        let h2c = listeners
            .iter()
            .map(|l| config.listen_for(l.addr).h2c)
            .collect();
        let mut w = Worker {
            epoll,
            tls,
            listeners,
            proxied,
            h2c,
            proxy_from: config.proxy_protocol_from.clone(),
            reading: 0,
            writing: 0,
            listening: false,
            paused_until: None,
            full_stop: false,
            accept_starved: false,
            table: Table::default(),
            bufs: Buffers::new(&limits),
            shared: Shared {
                responses: Responses::with_routes(
                    &config.response,
                    &config.routes,
                    &config.maintenance,
                ),
                limits,
                timeouts: Timeouts {
                    header: config.header_timeout,
                    keepalive: config.keepalive_timeout,
                    drain_idle: config.drain_idle_grace,
                    min_rate: config.min_request_rate,
                },
                now,
                draining: false,
                access_log,
                board,
                all,
            },
            max_conns: config.worker_connections,
            client_cap: config.max_connections_per_client,
            cap_exempt: config.max_connections_per_client_exempt.clone(),
            victims: Vec::new(),
            evicted: [0; 6],
            pressure: None,
            // A reload runs old and new workers side by side: twice the
            // configured number, and a few being replaced.
            peers: all.slots,
            balance_span: if config.workers > 1 {
                2 * config.workers + 2
            } else {
                0
            },
            yield_until: None,
            yield_peers: None,
            keep_taking: false,
            shutdown_timeout: config.shutdown_timeout,
            next_date: now,
            next_sweep: now + SWEEP_EVERY,
            drain_deadline: None,
            accepted: 0,
            served: 0,
            max_requests: config.max_requests_per_worker,
            inbox,
        };
        w.refresh_date();
        w.start_listening()?;
        board.set_state(WorkerState::Accepting);
        w.tell_master();
        Ok(w)
    }

    fn run(&mut self, signals: &WorkerSignals) -> i32 {
        let mut events = vec![EpollEvent::empty(); MAX_EVENTS];
        loop {
            let n = match self.epoll.wait(&mut events, self.wait_timeout()) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    log::error!("worker pid={} epoll_wait failed: {e}", std::process::id());
                    return exitcode::OSERR;
                }
            };
            self.shared.now = Instant::now();
            // Every turn: at least every SWEEP_EVERY (the epoll timeout),
            // even when idle.
            self.shared.board.beat();
            if self.shared.now >= self.next_date {
                self.refresh_date();
            }
            for ev in &events[..n] {
                match ev.data() {
                    WAKE => signals.drain_wake(),
                    t if t >= LISTENER_BASE => self.accept((t - LISTENER_BASE) as usize, true),
                    t => self.on_conn_event(t as usize, ev.events()),
                }
            }
            if signals.terminate.load(Ordering::SeqCst) {
                self.farewell();
                return exitcode::OK;
            }
            if signals.reopen.swap(false, Ordering::SeqCst) {
                crate::obs::log::reopen();
                if let Some(l) = &mut self.shared.access_log {
                    l.reopen();
                }
            }
            if let Some(l) = &mut self.shared.access_log {
                l.tick(self.shared.now);
            }
            if signals.quit.load(Ordering::SeqCst) && self.drain_deadline.is_none() {
                self.start_drain();
            }
            if self.max_requests > 0
                && self.served >= self.max_requests
                && self.drain_deadline.is_none()
            {
                // Recycle: the master starts our replacement as soon as it
                // sees us draining.
                self.start_drain();
                self.tell_master();
            }
            if self.shared.now >= self.next_sweep {
                self.sweep();
            }
            let now = self.shared.now;
            if self.paused_until.is_some_and(|t| now >= t) {
                self.paused_until = None;
                self.resume_listening();
            }
            if self.yield_until.is_some_and(|t| now >= t) {
                self.end_yield();
            }
            if let Some(deadline) = self.drain_deadline {
                if self.table.open() == 0 || now >= deadline {
                    self.farewell();
                    return exitcode::OK;
                }
            }
        }
    }

    /// On the way out: what this worker evicted in its life, if anything
    /// (the scoreboard slot goes with it).
    fn farewell(&self) {
        let evicted = scoreboard::Evictions(self.evicted);
        if evicted.total() > 0 {
            log::info!(
                "worker pid={} exiting: requests={} {evicted}",
                std::process::id(),
                self.served
            );
        }
    }

    /// Wakes the master to look at our scoreboard slot.
    fn tell_master(&self) {
        if let Some(inbox) = &self.inbox {
            inbox.ring();
        }
    }

    fn wait_timeout(&self) -> EpollTimeout {
        let mut next = self.next_sweep;
        for t in [self.paused_until, self.yield_until].into_iter().flatten() {
            next = next.min(t);
        }
        if let Some(t) = self
            .shared
            .access_log
            .as_ref()
            .and_then(AccessLog::deadline)
        {
            next = next.min(t);
        }
        let ms = next.saturating_duration_since(Instant::now()).as_millis() + 1;
        EpollTimeout::from(ms.min(1000) as u16)
    }

    /// The `Date` of every template, refreshed at the turn of each second.
    fn refresh_date(&mut self) {
        let wall = SystemTime::now();
        self.shared.responses.set_date(&http_date(wall));
        if let Some(l) = &mut self.shared.access_log {
            l.set_time(wall, self.shared.now);
        }
        let into_second = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.next_date =
            self.shared.now + Duration::from_nanos(u64::from(1_000_000_000 - into_second));
    }

    /// Deadlines: idle keep-alive, slow heads (408), stalled bodies and
    /// writes, heads and bodies below the minimum rate (408); then the
    /// end of a quiet pressure episode, and of counting clients once well
    /// under the cap.
    fn sweep(&mut self) {
        let now = self.shared.now;
        self.next_sweep = now + SWEEP_EVERY;
        for index in 0..self.table.len() {
            let due = self
                .table
                .get(index)
                .is_some_and(|e| e.conn.deadline() <= now);
            if !due {
                continue;
            }
            let Some(mut entry) = self.table.take(index) else {
                continue;
            };
            let slow = entry.conn.is_slow();
            let ctx = self.shared.ctx();
            let interest = entry.conn.on_timeout(&ctx, &mut self.bufs);
            if slow {
                self.count(Eviction::Slow);
                self.note_pressure(Cause::Slow, None);
            }
            self.settle(index, entry, interest);
        }
        // Stopped while full of busy connections: some may be idle by now
        // (that is no event of ours), so look again.
        if self.full_stop {
            self.resume_listening();
        }
        // EPOLLEXCLUSIVE wakes one waiter per arrival; when that waiter is
        // a sibling that cannot run (SIGSTOPped, or stuck until the watchdog
        // kills it), the connection waits in the backlog and nobody else is
        // woken for it. A look at the listeners each sweep (an accept4 per
        // listener that answers EAGAIN when nothing waits) takes such
        // strays.
        if self.listening {
            for i in 0..self.listeners.len() {
                self.accept(i, false);
            }
        }
        self.end_quiet_pressure();
        if self.table.counting() && self.table.open() < self.client_cap / 2 {
            self.table.stop_counting();
        }
    }

    /// QUIT: stop accepting at once and close our copies of the listeners;
    /// idle connections get a short grace, busy ones are answered with
    /// `Connection: close`; all within shutdown_timeout.
    fn start_drain(&mut self) {
        log::info!("worker pid={} draining", std::process::id());
        self.shared.board.set_state(WorkerState::Draining);
        self.stop_listening();
        // Draining from here on: every answer closes its connection.
        self.drain_deadline = Some(self.shared.now + self.shutdown_timeout);
        self.shared.draining = true;
        // A connection may have come in between our last epoll_wait and
        // leaving the epoll set; the kernel woke us (EPOLLEXCLUSIVE) and
        // not another worker, so take what is queued now or it waits for
        // the next arrival. These get `Connection: close` like the rest.
        for i in 0..self.listeners.len() {
            self.accept(i, false);
        }
        self.listeners.clear();
        let ctx = self.shared.ctx();
        for entry in self.table.iter_mut() {
            entry.conn.start_drain(&ctx);
        }
        self.next_sweep = self.shared.now;
        // What is logged so far goes out now; the rest when we exit.
        if let Some(l) = &mut self.shared.access_log {
            l.flush();
        }
    }
}
