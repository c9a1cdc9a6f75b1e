//! A load of HTTP/2 clients that behave as RFC 9113 §6.8 asks of a
//! client after a GOAWAY, which h2load does not (it gives up on the rest
//! of its requests, see `peers.rs`): streams up to the GOAWAY's last
//! stream id are awaited, streams above it were not processed and are
//! sent again on a new connection. A failure is anything else: a reset
//! stream, a status other than 200, a GOAWAY with an error, a connection
//! that ends with a stream at or below the last id unanswered, or one
//! that cannot be made.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::client::*;
use super::common::{wait_until, WAIT};

/// Streams each client keeps open.
const IN_FLIGHT: usize = 10;

#[derive(Default)]
pub struct Tally {
    pub answered: AtomicU64,
    pub goaways: AtomicU64,
    /// Streams sent again on a new connection (above a GOAWAY's last id).
    pub retried: AtomicU64,
    pub failures: Mutex<Vec<String>>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    pub tally: Arc<Tally>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `clients` threads, each one connection at a time to `addr`.
    pub fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let threads = (0..clients)
            .map(|_| {
                let (stop, tally) = (stop.clone(), tally.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        one_connection(addr, &stop, &tally);
                    }
                })
            })
            .collect();
        Load {
            stop,
            tally,
            threads,
        }
    }

    /// Waits until `n` more requests than now were answered.
    pub fn wait_more(&self, n: u64) {
        let target = self.tally.answered.load(Ordering::SeqCst) + n;
        wait_until(WAIT * 3, &format!("{n} more answers"), || {
            (self.tally.answered.load(Ordering::SeqCst) >= target).then_some(())
        });
    }

    /// Stops (every stream open is awaited) and returns the failures.
    pub fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        std::mem::take(&mut self.tally.failures.lock().unwrap())
    }
}

/// One connection: requests until stopped or sent away.
fn one_connection(addr: SocketAddr, stop: &AtomicBool, tally: &Tally) {
    let fail = |why: String| tally.failures.lock().unwrap().push(why);
    let Ok(s) = std::net::TcpStream::connect_timeout(&addr, WAIT) else {
        return fail("connect failed".into());
    };
    let mut c = H2::over(s, b"", &settings(&[]));
    let mut open = BTreeSet::new();
    let mut next_id = 1;
    let mut last: Option<u32> = None;
    loop {
        while last.is_none() && open.len() < IN_FLIGHT && !stop.load(Ordering::SeqCst) {
            c.send(&get_frame(next_id, "/"));
            open.insert(next_id);
            next_id += 2;
        }
        if open.is_empty() {
            return;
        }
        let Some(f) = c.next(WAIT) else {
            return fail(format!(
                "connection ended with streams {open:?} open, GOAWAY last id {last:?}"
            ));
        };
        match f.kind {
            HEADERS => {
                let status = c.status_of(&f.payload);
                if status != 200 {
                    fail(format!("stream {}: status {status}", f.stream));
                }
            }
            DATA if !f.payload.is_empty() => {
                let n = f.payload.len() as u32;
                c.send(&frame(WINDOW_UPDATE, 0, 0, &n.to_be_bytes()));
            }
            RST_STREAM => {
                fail(format!("stream {} reset: {:#x}", f.stream, f.code()));
                open.remove(&f.stream);
            }
            GOAWAY => {
                tally.goaways.fetch_add(1, Ordering::SeqCst);
                if f.code() != NO_ERROR {
                    return fail(format!("GOAWAY {:#x}", f.code()));
                }
                let id = f.last_stream().min(last.unwrap_or(u32::MAX));
                last = Some(id);
                // Not processed (§6.8): a new connection sends them again.
                let above: Vec<u32> = open.range(id + 1..).copied().collect();
                for s in above {
                    open.remove(&s);
                    tally.retried.fetch_add(1, Ordering::SeqCst);
                }
            }
            _ => {}
        }
        if matches!(f.kind, HEADERS | DATA) && f.flags & END_STREAM != 0 && open.remove(&f.stream) {
            tally.answered.fetch_add(1, Ordering::SeqCst);
        }
    }
}
