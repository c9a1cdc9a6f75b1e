//! The session driven as a client would drive it: the harness (a client
//! that handshakes, frame builders, output parsing) and, in the files
//! beside it, the conformance table (`conformance.rs`), answers and flow
//! control (`answers.rs`), the defences with their counters and a property
//! test over arbitrary frames (`defences.rs`).

pub(super) use std::time::{Duration, Instant};

pub(super) use super::frame::{self, flags, ErrorCode, Head, Kind, HEAD_LEN, MAX_WINDOW, PREFACE};
pub(super) use super::hpack::{self, Decoder, HeaderList};

pub(super) use super::settings::{self as ids, Budgets, Settings};
pub(super) use super::{Body, ConnError, Event, SendError, Session};

pub(super) fn raw(kind: Kind, fl: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Head {
        len: payload.len() as u32,
        kind,
        flags: fl,
        stream,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

pub(super) fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        hpack::encode_field(&mut out, n.as_bytes(), v.as_bytes());
    }
    out
}

pub(super) const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/"),
    (":authority", "x"),
];

pub(super) fn get_block() -> Vec<u8> {
    block(&GET)
}

pub(super) fn headers(stream: u32, end_stream: bool) -> Vec<u8> {
    let fl = flags::END_HEADERS | if end_stream { flags::END_STREAM } else { 0 };
    raw(Kind::Headers, fl, stream, &get_block())
}

pub(super) fn with_fields(stream: u32, extra: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
    let mut f = GET.to_vec();
    f.extend_from_slice(extra);
    let fl = flags::END_HEADERS | if end_stream { flags::END_STREAM } else { 0 };
    raw(Kind::Headers, fl, stream, &block(&f))
}

pub(super) fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::write_settings(&mut out, params);
    out
}

pub(super) fn window_update(stream: u32, inc: u32) -> Vec<u8> {
    raw(Kind::WindowUpdate, 0, stream, &inc.to_be_bytes())
}

pub(super) fn data(stream: u32, body: &[u8], end: bool) -> Vec<u8> {
    raw(
        Kind::Data,
        if end { flags::END_STREAM } else { 0 },
        stream,
        body,
    )
}

pub(super) fn rst(stream: u32) -> Vec<u8> {
    raw(Kind::RstStream, 0, stream, &8u32.to_be_bytes())
}

pub(super) struct Client {
    pub s: Session,
    pub now: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Got {
    pub head: Head,
    pub payload: Vec<u8>,
}

impl Client {
    pub fn with(ours: Settings) -> Client {
        let mut c = Client {
            s: Session::new(ours),
            now: Instant::now(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(settings(&[]));
        assert_eq!(c.s.receive(&hello, c.now), Ok(hello.len()));
        let got = c.frames();
        assert_eq!(got[0].head.kind, Kind::Settings, "our SETTINGS first");
        assert_eq!(
            got.last().map(|g| (g.head.kind, g.head.flags)),
            Some((Kind::Settings, flags::ACK))
        );
        c
    }

    pub fn new() -> Client {
        Client::with(Settings::default())
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<usize, ConnError> {
        self.s.receive(bytes, self.now)
    }

    pub fn frames(&mut self) -> Vec<Got> {
        let mut out = Vec::new();
        self.s.poll_output(self.now, &mut out);
        parse_all(&out)
    }
}

pub(super) fn parse_all(mut rest: &[u8]) -> Vec<Got> {
    let mut got = Vec::new();
    while rest.len() >= HEAD_LEN {
        let head = Head::parse(rest[..HEAD_LEN].try_into().unwrap());
        let end = HEAD_LEN + head.len as usize;
        got.push(Got {
            head,
            payload: rest[HEAD_LEN..end].to_vec(),
        });
        rest = &rest[end..];
    }
    assert!(rest.is_empty(), "output ends on a frame boundary");
    got
}

/// What a case must produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    GoAway(ErrorCode),
    Rst(u32, ErrorCode),
    /// No error frame at all.
    Fine,
}

pub(super) fn outcome(frames: &[Got]) -> Expect {
    for g in frames {
        let code = || {
            ErrorCode::from_u32(u32::from_be_bytes(
                g.payload[g.payload.len().min(8) - 4..][..4]
                    .try_into()
                    .unwrap(),
            ))
        };
        match g.head.kind {
            Kind::GoAway => return Expect::GoAway(code().unwrap()),
            Kind::RstStream => return Expect::Rst(g.head.stream, code().unwrap()),
            _ => {}
        }
    }
    Expect::Fine
}

pub(super) fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

mod answers;
mod conformance;
mod defences;
