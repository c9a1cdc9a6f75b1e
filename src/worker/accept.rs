//! The worker's accepting: its place in the listeners' wait queue
//! (EPOLLEXCLUSIVE), `accept4` and its errors (EMFILE pauses), room made at
//! `worker_connections` before an accept, and balanced accepting (a worker
//! past its share of a burst steps aside for `YIELD`). Serving the
//! accepted connection is `mod.rs`'s; choosing what to close, `pressure.rs`'s.

use std::net::TcpStream;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::epoll::{EpollEvent, EpollFlags};
use nix::sys::socket::{accept4, SockFlag};

use super::evict::Cause;
use super::{pressure, Worker, ACCEPT_PAUSE, LISTENER_BASE, YIELD};
use crate::obs::scoreboard::{self, Eviction};
use crate::tls::{Stream, TlsStream};

impl Worker {
    /// A connection on a `tls` listener gets its TLS session here.
    fn wrap(&self, index: usize, tcp: TcpStream) -> Option<Stream> {
        let Some(server) = self.tls.get(index).and_then(Option::as_ref) else {
            return Some(Stream::Plain(tcp));
        };
        match TlsStream::new(tcp, server, self.shared.board.tls_counters()) {
            Ok(s) => Some(Stream::Tls(Box::new(s))),
            Err(e) => {
                log::error!(
                    "worker pid={} cannot start a TLS session: {e}",
                    std::process::id()
                );
                None
            }
        }
    }

    pub(super) fn start_listening(&mut self) -> nix::Result<()> {
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

    pub(super) fn stop_listening(&mut self) {
        if self.listening {
            for l in &self.listeners {
                let _ = self.epoll.delete(l.socket.as_fd());
            }
            self.listening = false;
        }
    }

    /// Listens again if nothing holds it back (a pause or a yield, not
    /// draining). At `worker_connections` too: room is made on accept.
    pub(super) fn resume_listening(&mut self) {
        if !self.listening
            && self.paused_until.is_none()
            && self.yield_until.is_none()
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

    /// Accepts from listener `index`. `waiting`: its readiness says a
    /// connection waits (else we only look), which is when a full worker
    /// makes room; after that the listener, still ready, tells again.
    pub(super) fn accept(&mut self, index: usize, mut waiting: bool) {
        loop {
            if self.table.open() >= self.max_conns && !waiting {
                return;
            }
            waiting = false;
            if self.table.open() >= self.max_conns && !self.make_room() {
                // worker_connections reached and every connection is being
                // served: leave new ones to other workers (or the backlog)
                // until one closes or the next sweep finds one idle.
                if !self.full_stop {
                    self.full_stop = true;
                    self.count(Eviction::Full);
                    self.note_pressure(Cause::Full, None);
                }
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
                    self.full_stop = false;
                    if self.accept_starved {
                        self.accept_starved = false;
                        log::info!("worker pid={} accepting again", std::process::id());
                    }
                    // TCP_NODELAY comes from the listener (Linux copies it
                    // to accepted sockets): no setsockopt per connection.
                    self.accepted += 1;
                    self.shared.board.set_accepted(self.accepted);
                    let via_proxy = self.proxied.get(index).copied().unwrap_or(false);
                    let Some(stream) = self.wrap(index, TcpStream::from(fd)) else {
                        continue;
                    };
                    let h2c = self.h2c.get(index).copied().unwrap_or(false);
                    self.add_conn(stream, via_proxy, h2c);
                    // EPOLLEXCLUSIVE wakes the first idle worker in the
                    // listener's wait queue, so the one woken first would
                    // take a whole burst: past its share it steps aside.
                    if let Some(peers) = self.over_share() {
                        self.yield_accepts(peers);
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
                    self.paused_until = Some(self.shared.now + ACCEPT_PAUSE);
                    return;
                }
                Err(e) => {
                    log::error!("worker pid={} accept4 failed: {e}", std::process::id());
                    return;
                }
            }
        }
    }

    /// Whether we hold more than our share of the accepting workers' open
    /// connections, and if so the others' count (never with one worker
    /// configured: then the scoreboard is not even read).
    pub(super) fn over_share(&self) -> Option<u64> {
        // Two or fewer can never be over a share (the slack is 2), so the
        // scoreboard is read only once a worker holds a few.
        if self.balance_span == 0
            || self.table.open() <= 2
            || self.keep_taking
            || self.drain_deadline.is_some()
        {
            return None;
        }
        let (workers, total) = scoreboard::accepting_peers(self.peers, self.balance_span);
        let mine = self.table.open() as u64;
        pressure::over_share(mine, workers, total).then(|| total.saturating_sub(mine))
    }

    /// Leaves the listeners' wait queue for `YIELD`, so that what arrives
    /// meanwhile wakes another worker; what is queued now waits at most
    /// that long (see `end_yield`).
    pub(super) fn yield_accepts(&mut self, peers: u64) {
        self.stop_listening();
        self.yield_until = Some(self.shared.now + YIELD);
        self.yield_peers = Some(peers);
    }

    /// Back from a yield: listen again and take what is queued now. If the
    /// others took nothing meanwhile, nothing new arrived to wake them, so
    /// nobody else will take the queue: we take all of it, not yielding.
    /// Settled within this call, so that no state outlives the yield.
    pub(super) fn end_yield(&mut self) {
        self.yield_until = None;
        self.resume_listening();
        let before = self.yield_peers.take();
        self.keep_taking = before.is_some_and(|before| {
            let (_, total) = scoreboard::accepting_peers(self.peers, self.balance_span);
            total.saturating_sub(self.table.open() as u64) <= before
        });
        if self.listening {
            for i in 0..self.listeners.len() {
                self.accept(i, false);
            }
        }
        self.keep_taking = false;
    }
}
