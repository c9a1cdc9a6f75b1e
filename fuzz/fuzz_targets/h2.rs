//! Frames in, invariants out: `preforkd::h2::Session` driven directly
//! (sans-IO) with the fuzzer's bytes after a valid connection preface and
//! an empty SETTINGS frame. The first input byte sets the read size (the
//! bytes arrive in pieces of 1..=256, so frames split anywhere); the rest
//! are frames. Every request event is answered at once with a small
//! response through `respond` (every third one with a pulled body fed
//! through `want_data`/`send_data`), and `poll_output` is pumped after
//! each piece. Invariants (a panic when broken):
//! - no panic inside the session;
//! - every request event is answered, refused for want of room, or told
//!   reset (`Event::Reset`) by the session;
//! - `receive` leaves at most a frame header plus our max frame size
//!   unused; no more streams open than SETTINGS_MAX_CONCURRENT_STREAMS;
//! - the output is a sequence of whole frames; HEADERS and DATA only on
//!   streams the client opened and that had a request event, nothing on a
//!   stream after its END_STREAM; at most 4 MiB per input;
//! - a connection error ends the session: GOAWAY is in the output, every
//!   later `receive` fails the same way, `is_done` holds.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use preforkd::h2::{Body, ConnError, Event, SendError, Session, Settings};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
const MAX_OUTPUT: usize = 4 << 20;
const PULLED: [u8; 3000] = [b'p'; 3000];

/// What the client was told of each stream, as the output shows it.
#[derive(Default)]
struct Seen {
    /// Streams with a request event (or a 431), by whether END_STREAM
    /// went out on them.
    asked: BTreeMap<u32, bool>,
    /// Requests not answered: they must be told reset.
    unanswered: BTreeSet<u32>,
    reset: BTreeSet<u32>,
    out_bytes: usize,
    /// A partial frame of output carried to the next poll.
    carry: Vec<u8>,
    goaway: bool,
    /// Pulled bodies: stream → bytes still to give.
    pulled: BTreeMap<u32, usize>,
}

impl Seen {
    /// Checks the frames of `out`, in order.
    fn check_output(&mut self, out: &[u8]) {
        self.out_bytes += out.len();
        assert!(
            self.out_bytes <= MAX_OUTPUT,
            "output past {MAX_OUTPUT} bytes"
        );
        self.carry.extend_from_slice(out);
        let mut at = 0;
        while let Some(head) = self.carry.get(at..at + 9) {
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let (kind, flags) = (head[3], head[4]);
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            if self.carry.len() < at + 9 + len {
                break;
            }
            at += 9 + len;
            match kind {
                0 | 1 | 9 => {
                    let ended = self
                        .asked
                        .get_mut(&stream)
                        .unwrap_or_else(|| panic!("frame {kind} on stream {stream}, never asked"));
                    assert!(!*ended, "frame {kind} on stream {stream} after END_STREAM");
                    if kind != 9 && flags & 1 != 0 {
                        *ended = true;
                    }
                }
                7 => self.goaway = true,
                _ => {}
            }
        }
        self.carry.drain(..at);
    }
}

/// Answers what the session asks for.
fn answer_events(s: &mut Session, seen: &mut Seen) {
    while let Some(event) = s.next_event() {
        let (stream, result) = match event {
            Event::Request(req) => {
                let id = req.stream;
                seen.asked.entry(id).or_insert(false);
                let r = if id % 3 == 0 {
                    seen.pulled.insert(id, PULLED.len());
                    s.respond(id, 200, &[(b"content-length", b"3000")], Body::Pull)
                } else {
                    let fields: [(&[u8], &[u8]); 1] = [(b"content-type", b"text/plain")];
                    s.respond(id, 200, &fields, Body::Bytes(b"hello\n"))
                };
                (id, r)
            }
            Event::HeaderListTooLarge { stream } => {
                seen.asked.entry(stream).or_insert(false);
                (stream, s.respond(stream, 431, &[], Body::Empty))
            }
            Event::Reset { stream } => {
                seen.reset.insert(stream);
                seen.pulled.remove(&stream);
                continue;
            }
        };
        match result {
            Ok(()) | Err(SendError::Full) => {}
            // Reset in the same read: the session tells it next.
            Err(SendError::NoStream) => {
                seen.unanswered.insert(stream);
            }
            Err(e) => panic!("respond on stream {stream}: {e:?}"),
        }
    }
}

/// Feeds pulled bodies as far as the session asks.
fn pump(s: &mut Session, seen: &mut Seen) {
    while let Some((id, room)) = s.want_data() {
        let left = seen
            .pulled
            .get_mut(&id)
            .expect("want_data names a pulled body");
        let n = room.min(*left);
        *left -= n;
        let end = *left == 0;
        s.send_data(id, &PULLED[..n], end)
            .expect("send_data within want_data's room");
        if end {
            seen.pulled.remove(&id);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&piece, frames)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece) + 1;
    let settings = Settings::default();
    let max_frame = settings.max_frame_size as usize;
    let max_streams = settings.max_concurrent_streams as usize;
    let mut s = Session::new(settings);
    let mut seen = Seen::default();
    let mut now = Instant::now();
    let start = [PREFACE, &EMPTY_SETTINGS].concat();
    let mut pending = Vec::new();
    let mut failed: Option<ConnError> = None;
    let mut out = Vec::new();
    for chunk in std::iter::once(&start[..]).chain(frames.chunks(piece)) {
        now += Duration::from_millis(1);
        pending.extend_from_slice(chunk);
        match s.receive(&pending, now) {
            Ok(used) => {
                assert!(failed.is_none(), "receive went on after {failed:?}");
                pending.drain(..used);
                assert!(
                    pending.len() <= 9 + max_frame,
                    "{} bytes kept",
                    pending.len()
                );
            }
            Err(e) => {
                assert!(failed.is_none_or(|f| f == e), "{failed:?} then {e:?}");
                failed = Some(e);
                pending.clear();
            }
        }
        answer_events(&mut s, &mut seen);
        pump(&mut s, &mut seen);
        out.clear();
        s.poll_output(now, &mut out);
        seen.check_output(&out);
        assert!(
            s.open_streams() <= max_streams,
            "{} streams open",
            s.open_streams()
        );
        if let Some(e) = failed {
            assert!(seen.goaway, "{e:?} without GOAWAY");
            assert!(s.is_done(), "{e:?} and not done");
            assert_eq!(s.error(), Some(e));
        }
    }
    for id in &seen.unanswered {
        assert!(
            seen.reset.contains(id) || failed.is_some(),
            "stream {id}: neither answered nor reset"
        );
    }
});
