//! One worker, after fork: its own epoll set over the shared listening
//! sockets (`EPOLLEXCLUSIVE`, so one connection wakes one worker), accepting
//! with `accept4` until `EAGAIN`, driving its connections, the timeouts
//! sweep, and draining on QUIT. Forking, the pid file and the worker table
//! are the master's. Also drives its access log: opened before privileges
//! are dropped, written on its flush deadline, when draining and on exit,
//! reopened on USR1.

use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{accept4, SockFlag};
use nix::unistd::Pid;

use std::sync::atomic::Ordering::Relaxed;

use crate::access_log::AccessLog;
use crate::config::{Config, Credentials};
use crate::conn::{Buffers, Conn, Ctx, Interest, Observer, Timeouts};
use crate::exitcode;
use crate::http::Limits;
use crate::inbox::Sender;
use crate::listener::Listener;
use crate::response::{http_date, Responses};
use crate::scoreboard::{self, Slot, WorkerState};
use crate::signals::WorkerSignals;
use crate::tls::{self, Stream, TlsStream};

/// epoll tokens: connections use their slab index; these sit above.
const WAKE: u64 = u64::MAX;
const LISTENER_BASE: u64 = 1 << 32;
/// How long accepting pauses after EMFILE/ENFILE (nginx pauses 500 ms).
const ACCEPT_PAUSE: Duration = Duration::from_millis(250);
/// How often deadlines are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Accepted connections between two re-registrations of the listeners.
const REARM_EVERY: u64 = 16;
/// Events taken per epoll_wait.
const MAX_EVENTS: usize = 512;

/// What connections need to know of the worker right now; a macro so that
/// it borrows single fields and `self.bufs` stays free to borrow mutably.
macro_rules! ctx {
    ($w:expr) => {
        Ctx {
            responses: &$w.responses,
            limits: $w.limits,
            timeouts: $w.timeouts,
            now: $w.now,
            draining: $w.drain_deadline.is_some(),
            observer: $w.access_log.as_ref().map(|l| l as &dyn Observer),
        }
    };
}

/// Runs a worker until it is told to stop; returns its exit status.
pub fn run(
    config: &Config,
    listeners: Vec<Listener>,
    master: Pid,
    inbox: Option<Sender>,
    slot: &'static Slot,
) -> i32 {
    // The access log before privileges are dropped: a file created now is
    // handed to the workers' user (nginx's master does the same).
    let access_log = config.access_log.as_ref().map(|c| {
        AccessLog::open(
            c,
            &crate::access_log::Setup {
                owner: config.user.as_ref(),
                syslog: &config.log,
                max_header_bytes: config.max_request_header_bytes,
                lost: &slot.log_lost,
            },
        )
    });
    // Privileges first: changing credentials clears PR_SET_PDEATHSIG, so the
    // orphan guard is set up after.
    if let Some(creds) = &config.user {
        if let Err(e) = drop_privileges(creds) {
            log::error!(
                "worker pid={} cannot drop privileges: {e}; exiting rather than serve as root",
                std::process::id()
            );
            return exitcode::CONFIG;
        }
    }
    if let Err(e) = orphan_guard(master) {
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
    let _ = crate::signals::Signals::set().thread_unblock();
    match Worker::new(config, listeners, &signals, inbox, slot, access_log) {
        Ok(mut w) => w.run(&signals),
        Err(e) => {
            log::error!("worker pid={} cannot start: {e}", std::process::id());
            exitcode::OSERR
        }
    }
}

/// setgroups (the user's supplementary groups, via initgroups) → setgid →
/// setuid, each checked, then verified: groups first, while we may still
/// set them, the uid last, after which nothing can be changed back (nginx
/// sets the gid before initgroups, to the same effect). Only as root; a
/// non-root master warned at startup that it cannot switch.
fn drop_privileges(creds: &Credentials) -> Result<(), String> {
    use nix::unistd::{getegid, geteuid, getgid, getuid, setgid, setgroups, setuid};
    if !geteuid().is_root() {
        return Ok(());
    }
    match &creds.name {
        Some(name) => {
            let c = std::ffi::CString::new(name.as_str()).map_err(|e| e.to_string())?;
            nix::unistd::initgroups(&c, creds.gid).map_err(|e| format!("initgroups: {e}"))?;
        }
        None => setgroups(&[creds.gid]).map_err(|e| format!("setgroups: {e}"))?,
    }
    setgid(creds.gid).map_err(|e| format!("setgid: {e}"))?;
    if let Some(uid) = creds.uid {
        setuid(uid).map_err(|e| format!("setuid: {e}"))?;
    }
    let uid_ok = creds.uid.is_none_or(|u| getuid() == u && geteuid() == u);
    if !uid_ok || getgid() != creds.gid || getegid() != creds.gid {
        return Err("credentials did not change".into());
    }
    Ok(())
}

/// A worker must not outlive its master: the kernel sends SIGTERM when the
/// master dies, and if it died before that was set, we see it in getppid.
fn orphan_guard(master: Pid) -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
    if nix::unistd::getppid() != master {
        return Err(Errno::ESRCH);
    }
    Ok(())
}

struct Entry {
    conn: Conn<Stream>,
    /// What it waits for in the epoll set; None until first registered.
    interest: Option<Interest>,
}

struct Worker {
    epoll: Epoll,
    /// Our scoreboard slot: heartbeat and counters for the master.
    board: &'static Slot,
    listeners: Vec<Listener>,
    /// Per listener (same index): its rustls config if it is a `tls` one.
    tls: Vec<Option<std::sync::Arc<rustls::ServerConfig>>>,
    /// Listeners are in the epoll set.
    listening: bool,
    /// Accepting paused after EMFILE/ENFILE until then.
    paused_until: Option<Instant>,
    /// In an episode of accept4 failing for want of descriptors or memory:
    /// logged once when it starts and once when it ends.
    accept_starved: bool,
    conns: Vec<Option<Entry>>,
    free: Vec<usize>,
    open: usize,
    max_conns: usize,
    bufs: Buffers,
    responses: Responses,
    limits: Limits,
    timeouts: Timeouts,
    shutdown_timeout: Duration,
    now: Instant,
    next_date: Instant,
    next_sweep: Instant,
    /// Set once draining: the time by which the worker exits anyway.
    drain_deadline: Option<Instant>,
    /// Connections accepted since the listeners were last registered.
    since_rearm: u64,
    /// Connections accepted in all (published in the scoreboard).
    accepted: u64,
    /// Requests answered, against `max_requests` (0: no limit).
    served: u64,
    max_requests: u64,
    inbox: Option<Sender>,
    /// Written on its deadline, when draining, and when dropped (exit).
    access_log: Option<AccessLog>,
}

impl Worker {
    fn new(
        config: &Config,
        listeners: Vec<Listener>,
        signals: &WorkerSignals,
        inbox: Option<Sender>,
        board: &'static Slot,
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
        let mut w = Worker {
            epoll,
            board,
            tls,
            listeners,
            listening: false,
            paused_until: None,
            accept_starved: false,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            max_conns: config.worker_connections,
            bufs: Buffers::new(&limits),
            responses: Responses::new(&config.response),
            limits,
            timeouts: Timeouts {
                header: config.header_timeout,
                keepalive: config.keepalive_timeout,
                drain_idle: config.drain_idle_grace,
            },
            shutdown_timeout: config.shutdown_timeout,
            now,
            next_date: now,
            next_sweep: now + SWEEP_EVERY,
            drain_deadline: None,
            since_rearm: 0,
            accepted: 0,
            served: 0,
            max_requests: config.max_requests_per_worker,
            inbox,
            access_log,
        };
        w.refresh_date();
        w.start_listening()?;
        board.state.store(WorkerState::Accepting as u32, Relaxed);
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
            self.now = Instant::now();
            // At least once a second (the epoll timeout), even when idle.
            self.board
                .heartbeat
                .store(scoreboard::monotonic_ms(), Relaxed);
            if self.now >= self.next_date {
                self.refresh_date();
            }
            for ev in &events[..n] {
                match ev.data() {
                    WAKE => signals.drain_wake(),
                    t if t >= LISTENER_BASE => self.accept((t - LISTENER_BASE) as usize),
                    t => self.on_conn_event(t as usize, ev.events()),
                }
            }
            if signals.terminate.load(Ordering::SeqCst) {
                return exitcode::OK;
            }
            if signals.reopen.swap(false, Ordering::SeqCst) {
                crate::log::reopen();
                if let Some(l) = &mut self.access_log {
                    l.reopen();
                }
            }
            if let Some(l) = &mut self.access_log {
                l.tick(self.now);
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
            if self.now >= self.next_sweep {
                self.sweep();
            }
            if self.paused_until.is_some_and(|t| self.now >= t) {
                self.paused_until = None;
                self.resume_listening();
            }
            if let Some(deadline) = self.drain_deadline {
                if self.open == 0 || self.now >= deadline {
                    return exitcode::OK;
                }
            }
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
        if let Some(t) = self.paused_until {
            next = next.min(t);
        }
        if let Some(t) = self.access_log.as_ref().and_then(AccessLog::deadline) {
            next = next.min(t);
        }
        let ms = next.saturating_duration_since(Instant::now()).as_millis() + 1;
        EpollTimeout::from(ms.min(1000) as u16)
    }

    /// The `Date` of every template, refreshed at the turn of each second.
    fn refresh_date(&mut self) {
        let wall = SystemTime::now();
        self.responses.set_date(&http_date(wall));
        if let Some(l) = &mut self.access_log {
            l.set_time(wall, self.now);
        }
        let into_second = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.next_date = self.now + Duration::from_nanos(u64::from(1_000_000_000 - into_second));
    }

    fn start_listening(&mut self) -> nix::Result<()> {
        for (i, l) in self.listeners.iter().enumerate() {
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
            self.epoll.add(
                l.socket.as_fd(),
                EpollEvent::new(flags, LISTENER_BASE + i as u64),
            )?;
        }
        self.listening = true;
        Ok(())
    }

    /// EPOLLEXCLUSIVE wakes the first idle worker in the listener's wait
    /// queue, so one worker takes nearly every connection of a burst.
    /// Leaving and re-entering the epoll set moves us to the back of that
    /// queue, so others get their turn (nginx does the same).
    fn rearm_listeners(&mut self) {
        self.since_rearm = 0;
        if self.listening {
            self.stop_listening();
            self.resume_listening();
        }
    }

    fn stop_listening(&mut self) {
        if self.listening {
            for l in &self.listeners {
                let _ = self.epoll.delete(l.socket.as_fd());
            }
            self.listening = false;
        }
    }

    /// Listens again if nothing holds it back (room, no pause, not draining).
    fn resume_listening(&mut self) {
        if !self.listening
            && self.paused_until.is_none()
            && self.open < self.max_conns
            && self.drain_deadline.is_none()
        {
            if let Err(e) = self.start_listening() {
                log::error!(
                    "worker pid={} cannot resume accepting: {e}",
                    std::process::id()
                );
            }
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            if self.open >= self.max_conns {
                // worker_connections reached: let other workers take them.
                self.stop_listening();
                return;
            }
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match accept4(
                listener.socket.as_fd(),
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            ) {
                Ok(fd) => {
                    if self.accept_starved {
                        self.accept_starved = false;
                        log::info!("worker pid={} accepting again", std::process::id());
                    }
                    // TCP_NODELAY comes from the listener (Linux copies it
                    // to accepted sockets): no setsockopt per connection.
                    self.accepted += 1;
                    self.board.accepted.store(self.accepted, Relaxed);
                    let tcp = TcpStream::from(fd);
                    let stream = match self.tls.get(index).and_then(Option::as_ref) {
                        None => Stream::Plain(tcp),
                        Some(server) => match TlsStream::new(tcp, server, self.tls_counters()) {
                            Ok(s) => Stream::Tls(Box::new(s)),
                            Err(e) => {
                                log::error!(
                                    "worker pid={} cannot start a TLS session: {e}",
                                    std::process::id()
                                );
                                continue;
                            }
                        },
                    };
                    self.add_conn(stream);
                    self.since_rearm += 1;
                    if self.since_rearm >= REARM_EVERY {
                        // Leave the rest of the queue to whoever is woken next.
                        self.rearm_listeners();
                        return;
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO) => {}
                Err(e @ (Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)) => {
                    // Out of descriptors or memory: retrying at once would
                    // spin. Pause, serve what we have, try again; say so once.
                    if !self.accept_starved {
                        self.accept_starved = true;
                        log::warn!(
                            "worker pid={} accept4 failed: {e}; pausing accepts ({}ms at a time) until it succeeds",
                            std::process::id(),
                            ACCEPT_PAUSE.as_millis()
                        );
                    }
                    self.stop_listening();
                    self.paused_until = Some(self.now + ACCEPT_PAUSE);
                    return;
                }
                Err(e) => {
                    log::error!("worker pid={} accept4 failed: {e}", std::process::id());
                    return;
                }
            }
        }
    }

    fn tls_counters(&self) -> tls::Counters {
        tls::Counters {
            handshakes: &self.board.tls_handshakes,
            resumed: &self.board.tls_resumed,
            failures: &self.board.tls_failures,
        }
    }

    fn add_conn(&mut self, stream: Stream) {
        let index = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.open += 1;
        self.board.open.store(self.open as u64, Relaxed);
        let ctx = ctx!(self);
        let mut entry = Entry {
            conn: Conn::new(stream, &ctx),
            interest: None,
        };
        // Read at once rather than wait for epoll: on a new connection the
        // request has usually arrived with the handshake, and one answered
        // and closed right here never costs an epoll_ctl.
        let interest = entry.conn.on_readable(&ctx, &mut self.bufs);
        self.count_served(&entry, 0);
        self.settle(index, entry, interest);
    }

    fn on_conn_event(&mut self, index: usize, events: EpollFlags) {
        let Some(mut entry) = self.conns.get_mut(index).and_then(Option::take) else {
            return;
        };
        let ctx = ctx!(self);
        let before = entry.conn.requests;
        let interest = if entry.interest == Some(Interest::Write)
            && events.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP)
        {
            match entry.conn.on_writable(&ctx) {
                // Unblocked: read whatever waited meanwhile.
                Interest::Read => entry.conn.on_readable(&ctx, &mut self.bufs),
                other => other,
            }
        } else {
            entry.conn.on_readable(&ctx, &mut self.bufs)
        };
        self.count_served(&entry, before);
        self.settle(index, entry, interest);
    }

    /// Adds what a connection answered since `before` to our counters.
    fn count_served(&mut self, entry: &Entry, before: u64) {
        let answered = entry.conn.requests - before;
        if answered > 0 {
            self.served += answered;
            self.board.requests.store(self.served, Relaxed);
        }
    }

    /// Puts a connection back with its new interest, or closes it.
    fn settle(&mut self, index: usize, mut entry: Entry, interest: Interest) {
        if interest == Interest::Close {
            // Closing the socket also takes it out of the epoll set.
            entry.conn.release(&mut self.bufs);
            self.free.push(index);
            self.open -= 1;
            self.board.open.store(self.open as u64, Relaxed);
            self.resume_listening();
            return;
        }
        if entry.interest != Some(interest) {
            let flags = match interest {
                Interest::Write => EpollFlags::EPOLLOUT,
                _ => EpollFlags::EPOLLIN,
            };
            let mut event = EpollEvent::new(flags, index as u64);
            let fd = entry.conn.stream().as_fd();
            let result = match entry.interest {
                None => self.epoll.add(fd, event),
                Some(_) => self.epoll.modify(fd, &mut event),
            };
            if let Err(e) = result {
                log::error!("worker pid={} epoll_ctl failed: {e}", std::process::id());
                return self.settle(index, entry, Interest::Close);
            }
            entry.interest = Some(interest);
        }
        self.conns[index] = Some(entry);
    }

    /// Deadlines: idle keep-alive, slow heads (408), stalled bodies and writes.
    fn sweep(&mut self) {
        self.next_sweep = self.now + SWEEP_EVERY;
        for index in 0..self.conns.len() {
            let due = matches!(&self.conns[index], Some(e) if e.conn.deadline() <= self.now);
            if !due {
                continue;
            }
            let Some(mut entry) = self.conns[index].take() else {
                continue;
            };
            let ctx = ctx!(self);
            let interest = entry.conn.on_timeout(&ctx, &mut self.bufs);
            self.settle(index, entry, interest);
        }
    }

    /// QUIT: stop accepting at once and close our copies of the listeners;
    /// idle connections get a short grace, busy ones are answered with
    /// `Connection: close`; all within shutdown_timeout.
    fn start_drain(&mut self) {
        log::info!("worker pid={} draining", std::process::id());
        self.board
            .state
            .store(WorkerState::Draining as u32, Relaxed);
        self.stop_listening();
        // Draining from here on: every answer closes its connection.
        self.drain_deadline = Some(self.now + self.shutdown_timeout);
        // A connection may have come in between our last epoll_wait and
        // leaving the epoll set; the kernel woke us (EPOLLEXCLUSIVE) and
        // not another worker, so take what is queued now or it waits for
        // the next arrival. These get `Connection: close` like the rest.
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
        self.listeners.clear();
        let ctx = ctx!(self);
        for entry in self.conns.iter_mut().flatten() {
            entry.conn.start_drain(&ctx);
        }
        self.next_sweep = self.now;
        // What is logged so far goes out now; the rest when we exit.
        if let Some(l) = &mut self.access_log {
            l.flush();
        }
    }
}
