//! The lookup structures of a `Router`: a non-random hash for the exact
//! paths and a byte trie for the prefixes, both fixed once per config.

use std::hash::Hasher;

/// FNV-1a: the keys are a few short paths fixed by the config, and the
/// lookup cannot add any, so a DoS-resistant hash buys nothing here.
#[derive(Default)]
pub(super) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The prefix routes as a byte trie: node 0 is the empty prefix; a node
/// lists the routes whose prefix ends there, in file order.
#[derive(Default)]
pub(super) struct Trie {
    nodes: Vec<Node>,
}

#[derive(Default)]
pub(super) struct Node {
    /// (byte, node), few per node: searched in order.
    next: Vec<(u8, u32)>,
    ends: Vec<u16>,
}

impl Trie {
    pub(super) fn insert(&mut self, key: &[u8], index: u16) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = 0usize;
        for &b in key {
            let found = self.nodes[at].next.iter().find(|(k, _)| *k == b);
            at = match found {
                Some(&(_, n)) => n as usize,
                None => {
                    let n = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[at].next.push((b, n as u32));
                    n
                }
            };
        }
        self.nodes[at].ends.push(index);
    }

    /// Calls `f` with the routes of every prefix of `path`, shortest first.
    pub(super) fn walk(&self, path: &[u8], mut f: impl FnMut(&[u16])) {
        let Some(mut node) = self.nodes.first() else {
            return;
        };
        for &b in path {
            match node.next.iter().find(|(k, _)| *k == b) {
                Some(&(_, n)) => node = &self.nodes[n as usize],
                None => return,
            }
            if !node.ends.is_empty() {
                f(&node.ends);
            }
        }
    }
}
