//! The worker's connection table: a slab of connections indexed by their
//! epoll token, the count of those open, and, once a worker holds more
//! connections than `max_connections_per_client`, how many each client
//! address holds. Owns the bookkeeping, none of the decisions (those are
//! `pressure.rs`'s) and no event loop.
//!
//! Client addresses are looked up (`getpeername`) only when they can
//! matter: below the cap no client can be over it, so a worker under it
//! pays nothing per connection. The key is an `IpAddr` that the table is
//! handed, so a PROXY-protocol address can take the peer's place.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::h2::client::Client;
use crate::http::conn::{Interest, Standing};
use crate::http::transport::Transport;
use crate::tls::Stream;

pub struct Entry {
    /// HTTP/1.1, or HTTP/2 once its preface arrived.
    pub conn: Client<Stream>,
    /// What it waits for in the epoll set; None until first registered.
    pub interest: Option<Interest>,
    /// The client's address, once looked up (see the module doc).
    pub client: Option<IpAddr>,
    /// From a `proxy_protocol` listener: the client is the header's
    /// address, never the socket's peer (the balancer).
    pub via_proxy: bool,
    /// What it was doing when last put back, as stub_status counts it.
    pub class: Class,
}

/// A connection as stub_status counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Not put back yet.
    New,
    Reading,
    Waiting,
    /// Anything else (a body, an answer being written, lingering): nginx's
    /// "Writing".
    Writing,
}

impl Class {
    pub fn of(standing: Standing) -> Class {
        match standing {
            Standing::Idle { .. } => Class::Waiting,
            Standing::Head { .. } => Class::Reading,
            Standing::Lingering { .. } | Standing::Busy => Class::Writing,
        }
    }
}

#[derive(Default)]
pub struct Table {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    open: usize,
    /// Connections per client address, while counting (see `count_clients`).
    clients: Option<HashMap<IpAddr, u32>>,
}

impl Table {
    /// Connections open, including one taken out to be worked on.
    pub fn open(&self) -> usize {
        self.open
    }

    /// A slot for a new connection, counted open from now.
    pub fn reserve(&mut self, client: Option<IpAddr>) -> usize {
        self.open += 1;
        if let (Some(map), Some(ip)) = (&mut self.clients, client) {
            *map.entry(ip).or_insert(0) += 1;
        }
        self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        })
    }

    /// Takes a connection out to work on it; `put` or `remove` follows.
    pub fn take(&mut self, index: usize) -> Option<Entry> {
        self.slots.get_mut(index).and_then(Option::take)
    }

    pub fn put(&mut self, index: usize, entry: Entry) {
        self.slots[index] = Some(entry);
    }

    /// A connection taken out is closed: its slot is free again.
    pub fn remove(&mut self, index: usize, entry: &Entry) {
        self.open -= 1;
        self.free.push(index);
        if let (Some(map), Some(ip)) = (&mut self.clients, entry.client) {
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }

    /// Slot indexes in use (or reserved); some may be out being worked on.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn get(&self, index: usize) -> Option<&Entry> {
        self.slots.get(index).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Entry> {
        self.slots.get_mut(index).and_then(Option::as_mut)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.slots.iter_mut().flatten()
    }

    /// What each connection in the table is doing, for `pressure::choose`.
    pub fn standings(&self) -> impl Iterator<Item = (usize, Standing)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i, e.conn.standing())))
    }

    /// The standings of one client's connections.
    pub fn standings_of(&self, ip: IpAddr) -> impl Iterator<Item = (usize, Standing)> + '_ {
        self.slots.iter().enumerate().filter_map(move |(i, e)| {
            e.as_ref()
                .filter(|e| e.client == Some(ip))
                .map(|e| (i, e.conn.standing()))
        })
    }

    /// Whether client addresses are being counted.
    pub fn counting(&self) -> bool {
        self.clients.is_some()
    }

    /// Starts counting connections per client address, looking up those
    /// not known yet. A connection whose peer is already gone is left
    /// uncounted; its next read closes it. One from a `proxy_protocol`
    /// listener counts once its header named the client.
    pub fn count_clients(&mut self) {
        let mut map = HashMap::new();
        for e in self.slots.iter_mut().flatten() {
            if e.client.is_none() {
                e.client = if e.via_proxy {
                    e.conn.client_from_header()
                } else {
                    e.conn.stream().peer_ip()
                };
            }
            if let Some(ip) = e.client {
                *map.entry(ip).or_insert(0) += 1;
            }
        }
        self.clients = Some(map);
    }

    /// A connection's client became known after it was reserved (its
    /// PROXY header arrived): counted from now, if counting.
    pub fn learn_client(&mut self, entry: &mut Entry, ip: IpAddr) {
        entry.client = Some(ip);
        if let Some(map) = &mut self.clients {
            *map.entry(ip).or_insert(0) += 1;
        }
    }

    /// Stops counting (the worker is well under the cap again).
    pub fn stop_counting(&mut self) {
        self.clients = None;
    }

    /// Connections `ip` holds (0 when not counting).
    pub fn held_by(&self, ip: IpAddr) -> u32 {
        self.clients
            .as_ref()
            .and_then(|m| m.get(&ip).copied())
            .unwrap_or(0)
    }
}
