//! A worker's connections one at a time: a new one added to the table
//! (and read at once), an event served where the entry lies, its interest
//! settled in epoll (and its stub_status class), an HTTP/1.1 connection
//! that sent the HTTP/2 preface turned into an HTTP/2 one, and a close.
//! Deciding whom to evict is `pressure.rs`'s; deadlines are `mod.rs`'s
//! sweep.

use std::os::fd::AsFd;

use nix::sys::epoll::{EpollEvent, EpollFlags};

use super::table::{Class, Entry};
use super::Worker;
use crate::h2::client::Client;
use crate::http::conn::Interest;
use crate::http::transport::Transport;
use crate::obs::scoreboard::Eviction;
use crate::tls::Stream;

impl Worker {
    pub(super) fn add_conn(&mut self, stream: Stream, via_proxy: bool, h2c: bool) {
        let mut client = None;
        if via_proxy {
            // Only the balancers named in proxy_protocol_from may say who
            // the client is; anyone else is closed without an answer.
            let trusted = stream
                .peer_ip()
                .is_some_and(|ip| crate::http::cidr::any_contains(&self.proxy_from, ip));
            if !trusted {
                return;
            }
        } else if self.client_cap > 0
            && (self.table.counting() || self.table.open() >= self.client_cap)
        {
            // Only now can a client be past the cap (see table.rs); once
            // counting, every new connection is counted until the worker
            // is well under the cap again (see `sweep`).
            if !self.table.counting() {
                self.table.count_clients();
            }
            let Some(ip) = stream.peer_ip() else {
                return; // already gone
            };
            if !crate::http::cidr::any_contains(&self.cap_exempt, ip) {
                if self.table.held_by(ip) as usize >= self.client_cap && !self.make_room_for(ip) {
                    // Past the cap with nothing idle: the new one goes.
                    self.count(Eviction::ClientCap);
                    return;
                }
                client = Some(ip);
            }
        }
        let index = self.table.reserve(client);
        self.shared.board.set_open(self.table.open() as u64);
        let ctx = self.shared.ctx();
        let mut entry = Entry {
            conn: Client::new(stream, &ctx, h2c),
            interest: None,
            client,
            via_proxy,
            class: Class::New,
        };
        if via_proxy {
            entry.conn.expect_proxy_header();
        }
        // Read at once rather than wait for epoll: on a new connection the
        // request has usually arrived with the handshake, and one answered
        // and closed right here never costs an epoll_ctl.
        let interest = entry.conn.on_readable(&ctx, &mut self.bufs);
        self.served += entry.conn.requests();
        self.settle(index, entry, interest);
    }

    pub(super) fn on_conn_event(&mut self, index: usize, events: EpollFlags) {
        // Served where it lies in the table: an entry is a few hundred
        // bytes, and most events change nothing that `settle` handles.
        let Some(entry) = self.table.get_mut(index) else {
            return;
        };
        let ctx = self.shared.ctx();
        let before = entry.conn.requests();
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
        // For max_requests_per_worker; the slot's count was kept per
        // answer, as it was written, by `http/conn/` (or `h2/`).
        self.served += entry.conn.requests() - before;
        let unchanged = interest != Interest::Close
            && entry.interest == Some(interest)
            && entry.class == Class::of(entry.conn.standing())
            && !(entry.via_proxy && entry.client.is_none())
            && !entry.conn.wants_h2();
        if unchanged {
            return;
        }
        if let Some(entry) = self.table.take(index) {
            self.settle(index, entry, interest);
        }
    }

    /// Closes a connection taken out of the table.
    pub(super) fn close(&mut self, index: usize, entry: Entry) {
        self.reclass(entry.class, Class::New);
        self.table.remove(index, &entry);
        // Closing the socket also takes it out of the epoll set.
        entry.conn.release(&mut self.bufs);
        self.shared.board.set_open(self.table.open() as u64);
    }

    /// `max_connections_per_client` for a client a PROXY header named (a
    /// plain connection's is applied at accept, see `add_conn`): past the
    /// cap, one of its idle connections makes room, or this one goes
    /// (after what it was already answered).
    pub(super) fn admit_proxied(&mut self, ip: std::net::IpAddr) -> bool {
        if self.client_cap == 0
            || !(self.table.counting() || self.table.open() >= self.client_cap)
            || crate::http::cidr::any_contains(&self.cap_exempt, ip)
        {
            return true;
        }
        if !self.table.counting() {
            self.table.count_clients();
        }
        if self.table.held_by(ip) as usize >= self.client_cap && !self.make_room_for(ip) {
            self.count(Eviction::ClientCap);
            return false;
        }
        true
    }

    /// Moves a connection from one stub_status class to another and, if
    /// that changed a count, publishes the counts: on state changes only.
    pub(super) fn reclass(&mut self, from: Class, to: Class) {
        if from == to {
            return;
        }
        for (class, delta) in [(from, u64::wrapping_neg(1)), (to, 1)] {
            match class {
                Class::Reading => self.reading = self.reading.wrapping_add(delta),
                Class::Writing => self.writing = self.writing.wrapping_add(delta),
                Class::New | Class::Waiting => {}
            }
        }
        self.shared
            .board
            .set_reading_writing(self.reading, self.writing);
    }

    /// Puts a connection back with its new interest, or closes it.
    pub(super) fn settle(&mut self, index: usize, mut entry: Entry, mut interest: Interest) {
        if interest != Interest::Close && entry.conn.wants_h2() {
            // The HTTP/2 preface: the same stream, an HTTP/2 connection.
            let ctx = self.shared.ctx();
            let before = entry.conn.requests();
            (entry.conn, interest) = entry.conn.into_h2(&ctx, &mut self.bufs);
            self.served += entry.conn.requests() - before;
        }
        if interest == Interest::Close {
            self.close(index, entry);
            self.resume_listening();
            return;
        }
        let class = Class::of(entry.conn.standing());
        self.reclass(entry.class, class);
        entry.class = class;
        if entry.via_proxy && entry.client.is_none() {
            // Its PROXY header may have named the client by now: that is
            // the address per-client limits count (issue 13).
            if let Some(ip) = entry.conn.client_from_header() {
                if !self.admit_proxied(ip) {
                    self.close(index, entry);
                    self.resume_listening();
                    return;
                }
                self.table.learn_client(&mut entry, ip);
            }
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
        self.table.put(index, entry);
    }
}
