//! The session driven as a client would drive it: a conformance table by
//! h2spec's sections (each case asserting the exact error code and whether
//! it ends the stream or the connection), answers and flow control, the
//! defences with their counters, and a property test over arbitrary frames.

use std::time::{Duration, Instant};

use super::frame::{self, flags, ErrorCode, Head, Kind, HEAD_LEN, MAX_WINDOW, PREFACE};
use super::hpack::{self, Decoder, HeaderList};
use super::settings::{self as ids, Budgets, Settings};
use super::{Body, Event, Session};

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

fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        hpack::encode_field(&mut out, n.as_bytes(), v.as_bytes());
    }
    out
}

const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/"),
    (":authority", "x"),
];

fn get_block() -> Vec<u8> {
    block(&GET)
}

fn headers(stream: u32, end_stream: bool) -> Vec<u8> {
    let fl = flags::END_HEADERS | if end_stream { flags::END_STREAM } else { 0 };
    raw(Kind::Headers, fl, stream, &get_block())
}

fn with_fields(stream: u32, extra: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
    let mut f = GET.to_vec();
    f.extend_from_slice(extra);
    let fl = flags::END_HEADERS | if end_stream { flags::END_STREAM } else { 0 };
    raw(Kind::Headers, fl, stream, &block(&f))
}

fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::write_settings(&mut out, params);
    out
}

fn window_update(stream: u32, inc: u32) -> Vec<u8> {
    raw(Kind::WindowUpdate, 0, stream, &inc.to_be_bytes())
}

fn data(stream: u32, body: &[u8], end: bool) -> Vec<u8> {
    raw(
        Kind::Data,
        if end { flags::END_STREAM } else { 0 },
        stream,
        body,
    )
}

fn rst(stream: u32) -> Vec<u8> {
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
    pub fn with(settings: Settings) -> Client {
        let mut c = Client {
            s: Session::new(settings),
            now: Instant::now(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(super::session_tests::settings(&[]));
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

    pub fn send(&mut self, bytes: &[u8]) -> Result<usize, super::ConnError> {
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
enum Expect {
    GoAway(ErrorCode),
    Rst(u32, ErrorCode),
    /// No error frame at all.
    Fine,
}

fn outcome(frames: &[Got]) -> Expect {
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

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn table() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use ErrorCode::*;
    use Expect::*;
    let big = vec![0u8; 16_385];
    let open_body = headers(1, false);
    let partial = raw(Kind::Headers, 0, 1, &get_block());
    vec![
        // §4.2 frame size
        (
            "4.2 DATA over max_frame_size",
            cat(&[open_body.clone(), data(1, &big, false)]),
            GoAway(FrameSizeError),
        ),
        (
            "4.2 HEADERS over max_frame_size",
            raw(Kind::Headers, flags::END_HEADERS, 1, &big),
            GoAway(FrameSizeError),
        ),
        (
            "4.2 PING too short",
            raw(Kind::Ping, 0, 0, &[0; 7]),
            GoAway(FrameSizeError),
        ),
        // §5.1 idle
        (
            "5.1 DATA on idle",
            data(1, b"x", false),
            GoAway(ProtocolError),
        ),
        ("5.1 RST_STREAM on idle", rst(1), GoAway(ProtocolError)),
        (
            "5.1 WINDOW_UPDATE on idle",
            window_update(1, 1),
            GoAway(ProtocolError),
        ),
        (
            "5.1 CONTINUATION on idle",
            raw(Kind::Continuation, flags::END_HEADERS, 1, &get_block()),
            GoAway(ProtocolError),
        ),
        // §5.1 half-closed (remote)
        (
            "5.1 DATA on half-closed",
            cat(&[headers(1, true), data(1, b"x", false)]),
            Rst(1, StreamClosed),
        ),
        (
            "5.1 HEADERS on half-closed",
            cat(&[headers(1, true), headers(1, true)]),
            Rst(1, StreamClosed),
        ),
        // §5.1 closed
        (
            "5.1 DATA after RST_STREAM",
            cat(&[open_body.clone(), rst(1), data(1, b"x", false)]),
            GoAway(StreamClosed),
        ),
        (
            "5.1 HEADERS after RST_STREAM",
            cat(&[open_body.clone(), rst(1), headers(1, true)]),
            GoAway(StreamClosed),
        ),
        (
            "5.1 WINDOW_UPDATE after RST is fine",
            cat(&[open_body.clone(), rst(1), window_update(1, 1)]),
            Fine,
        ),
        (
            "5.1 PRIORITY on closed is fine",
            cat(&[
                open_body.clone(),
                rst(1),
                raw(Kind::Priority, 0, 1, &[0, 0, 0, 0, 1]),
            ]),
            Fine,
        ),
        // §5.1.1 stream ids
        (
            "5.1.1 even stream id",
            headers(2, true),
            GoAway(ProtocolError),
        ),
        (
            "5.1.1 decreasing stream id",
            cat(&[headers(5, true), headers(3, true)]),
            GoAway(ProtocolError),
        ),
        // §5.3.1 self-dependency
        (
            "5.3.1 HEADERS depends on itself",
            raw(
                Kind::Headers,
                flags::END_HEADERS | flags::END_STREAM | flags::PRIORITY,
                1,
                &[&[0, 0, 0, 1, 16][..], &get_block()].concat(),
            ),
            Rst(1, ProtocolError),
        ),
        (
            "5.3.1 PRIORITY depends on itself",
            raw(Kind::Priority, 0, 1, &[0, 0, 0, 1, 16]),
            Rst(1, ProtocolError),
        ),
        // §5.5 unknown frames
        (
            "5.5 unknown frame ignored",
            raw(Kind::Unknown(0x42), 0, 0, b"abc"),
            Fine,
        ),
        (
            "5.5 unknown frame inside a block",
            cat(&[partial.clone(), raw(Kind::Unknown(0x42), 0, 1, b"")]),
            GoAway(ProtocolError),
        ),
        // §6.1 DATA
        (
            "6.1 DATA on stream 0",
            data(0, b"x", false),
            GoAway(ProtocolError),
        ),
        (
            "6.1 DATA bad padding",
            cat(&[
                open_body.clone(),
                raw(Kind::Data, flags::PADDED, 1, &[5, 0, 0]),
            ]),
            GoAway(ProtocolError),
        ),
        // §6.2 HEADERS
        (
            "6.2 HEADERS on stream 0",
            raw(Kind::Headers, flags::END_HEADERS, 0, &get_block()),
            GoAway(ProtocolError),
        ),
        (
            "6.2 HEADERS bad padding",
            raw(
                Kind::Headers,
                flags::END_HEADERS | flags::PADDED,
                1,
                &[200, 0x82],
            ),
            GoAway(ProtocolError),
        ),
        (
            "6.2 PRIORITY inside a block",
            cat(&[
                partial.clone(),
                raw(Kind::Priority, 0, 1, &[0, 0, 0, 3, 16]),
            ]),
            GoAway(ProtocolError),
        ),
        (
            "6.2 DATA inside a block",
            cat(&[partial.clone(), data(1, b"", true)]),
            GoAway(ProtocolError),
        ),
        // §6.3 PRIORITY
        (
            "6.3 PRIORITY on stream 0",
            raw(Kind::Priority, 0, 0, &[0, 0, 0, 1, 16]),
            GoAway(ProtocolError),
        ),
        (
            "6.3 PRIORITY length 4",
            raw(Kind::Priority, 0, 1, &[0, 0, 0, 3]),
            Rst(1, FrameSizeError),
        ),
        (
            "6.3 PRIORITY accepted",
            raw(Kind::Priority, 0, 3, &[0, 0, 0, 1, 16]),
            Fine,
        ),
        // §6.4 RST_STREAM
        ("6.4 RST_STREAM on stream 0", rst(0), GoAway(ProtocolError)),
        (
            "6.4 RST_STREAM length 3",
            cat(&[open_body.clone(), raw(Kind::RstStream, 0, 1, &[0; 3])]),
            GoAway(FrameSizeError),
        ),
        // §6.5 SETTINGS
        (
            "6.5 ACK with payload",
            raw(Kind::Settings, flags::ACK, 0, &[0; 6]),
            GoAway(FrameSizeError),
        ),
        (
            "6.5 SETTINGS on a stream",
            raw(Kind::Settings, 0, 1, &[]),
            GoAway(ProtocolError),
        ),
        (
            "6.5 SETTINGS length 5",
            raw(Kind::Settings, 0, 0, &[0; 5]),
            GoAway(FrameSizeError),
        ),
        (
            "6.5.2 ENABLE_PUSH 2",
            settings(&[(ids::ENABLE_PUSH, 2)]),
            GoAway(ProtocolError),
        ),
        (
            "6.5.2 INITIAL_WINDOW_SIZE 2^31",
            settings(&[(ids::INITIAL_WINDOW_SIZE, 1 << 31)]),
            GoAway(FlowControlError),
        ),
        (
            "6.5.2 MAX_FRAME_SIZE 16383",
            settings(&[(ids::MAX_FRAME_SIZE, 16_383)]),
            GoAway(ProtocolError),
        ),
        (
            "6.5.2 MAX_FRAME_SIZE 2^24",
            settings(&[(ids::MAX_FRAME_SIZE, 1 << 24)]),
            GoAway(ProtocolError),
        ),
        (
            "6.5.2 unknown setting ignored",
            settings(&[(0xff, 1)]),
            Fine,
        ),
        // §6.7 PING
        (
            "6.7 PING on a stream",
            raw(Kind::Ping, 0, 1, &[0; 8]),
            GoAway(ProtocolError),
        ),
        (
            "6.7 PING length 9",
            raw(Kind::Ping, 0, 0, &[0; 9]),
            GoAway(FrameSizeError),
        ),
        // §6.8 GOAWAY
        (
            "6.8 GOAWAY on a stream",
            raw(Kind::GoAway, 0, 1, &[0; 8]),
            GoAway(ProtocolError),
        ),
        // §6.9 WINDOW_UPDATE
        (
            "6.9 increment 0 on connection",
            window_update(0, 0),
            GoAway(ProtocolError),
        ),
        (
            "6.9 increment 0 on a stream",
            cat(&[open_body.clone(), window_update(1, 0)]),
            Rst(1, ProtocolError),
        ),
        (
            "6.9 length 3",
            raw(Kind::WindowUpdate, 0, 0, &[0; 3]),
            GoAway(FrameSizeError),
        ),
        (
            "6.9.1 connection window overflow",
            window_update(0, MAX_WINDOW),
            GoAway(FlowControlError),
        ),
        (
            "6.9.1 stream window overflow",
            cat(&[open_body.clone(), window_update(1, MAX_WINDOW)]),
            Rst(1, FlowControlError),
        ),
        (
            "6.9.2 INITIAL_WINDOW_SIZE overflows an open stream",
            cat(&[
                open_body.clone(),
                window_update(1, MAX_WINDOW - 65_535),
                settings(&[(ids::INITIAL_WINDOW_SIZE, 65_536)]),
            ]),
            GoAway(FlowControlError),
        ),
        // §6.10 CONTINUATION
        (
            "6.10 CONTINUATION after END_HEADERS",
            cat(&[
                open_body.clone(),
                raw(Kind::Continuation, flags::END_HEADERS, 1, &[]),
            ]),
            GoAway(ProtocolError),
        ),
        (
            "6.10 CONTINUATION on another stream",
            cat(&[
                partial.clone(),
                raw(Kind::Continuation, flags::END_HEADERS, 3, &[]),
            ]),
            GoAway(ProtocolError),
        ),
        (
            "6.10 block in pieces is fine",
            cat(&[
                raw(Kind::Headers, flags::END_STREAM, 1, &get_block()[..3]),
                raw(Kind::Continuation, flags::END_HEADERS, 1, &get_block()[3..]),
            ]),
            Fine,
        ),
        // §8.1 PUSH_PROMISE, HPACK
        (
            "8.4 PUSH_PROMISE from a client",
            raw(Kind::PushPromise, flags::END_HEADERS, 1, &[0, 0, 0, 2]),
            GoAway(ProtocolError),
        ),
        (
            "4.3 bad HPACK index",
            raw(Kind::Headers, flags::END_HEADERS, 1, &[0xff, 0x00]),
            GoAway(CompressionError),
        ),
        (
            "4.3 table size update too large",
            raw(
                Kind::Headers,
                flags::END_HEADERS,
                1,
                &[0x3f, 0xe2, 0x1f, 0x82],
            ),
            GoAway(CompressionError),
        ),
        (
            "4.3 table size update after a field",
            raw(Kind::Headers, flags::END_HEADERS, 1, &[0x82, 0x20]),
            GoAway(CompressionError),
        ),
        // §8.2, §8.3.1 malformed requests
        (
            "8.2 upper-case name",
            with_fields(1, &[("X-Up", "1")], true),
            Rst(1, ProtocolError),
        ),
        (
            "8.2.2 connection header",
            with_fields(1, &[("connection", "close")], true),
            Rst(1, ProtocolError),
        ),
        (
            "8.2.2 te gzip",
            with_fields(1, &[("te", "gzip")], true),
            Rst(1, ProtocolError),
        ),
        (
            "8.2.2 te trailers is fine",
            with_fields(1, &[("te", "trailers")], true),
            Fine,
        ),
        (
            "8.3.1 unknown pseudo",
            with_fields(1, &[(":foo", "1")], true),
            Rst(1, ProtocolError),
        ),
        (
            "8.3.1 duplicate pseudo",
            with_fields(1, &[(":path", "/")], true),
            Rst(1, ProtocolError),
        ),
        (
            "8.3.1 response pseudo",
            with_fields(1, &[(":status", "200")], true),
            Rst(1, ProtocolError),
        ),
        (
            "8.3.1 missing :path",
            raw(
                Kind::Headers,
                flags::END_HEADERS | flags::END_STREAM,
                1,
                &block(&GET[..2]),
            ),
            Rst(1, ProtocolError),
        ),
        (
            "8.3.1 empty :path",
            raw(
                Kind::Headers,
                flags::END_HEADERS | flags::END_STREAM,
                1,
                &block(&[(":method", "GET"), (":scheme", "https"), (":path", "")]),
            ),
            Rst(1, ProtocolError),
        ),
        (
            "8.3.1 pseudo after regular",
            raw(
                Kind::Headers,
                flags::END_HEADERS | flags::END_STREAM,
                1,
                &block(&[
                    (":method", "GET"),
                    ("a", "b"),
                    (":scheme", "https"),
                    (":path", "/"),
                ]),
            ),
            Rst(1, ProtocolError),
        ),
        (
            "8.1.1 content-length more than DATA",
            cat(&[
                with_fields(1, &[("content-length", "3")], false),
                data(1, b"ab", true),
            ]),
            Rst(1, ProtocolError),
        ),
        (
            "8.1.1 content-length less than DATA",
            cat(&[
                with_fields(1, &[("content-length", "1")], false),
                data(1, b"ab", true),
            ]),
            Rst(1, ProtocolError),
        ),
        (
            "8.1.1 content-length with END_STREAM HEADERS",
            with_fields(1, &[("content-length", "1")], true),
            Rst(1, ProtocolError),
        ),
        (
            "8.1.1 content-length matches",
            cat(&[
                with_fields(1, &[("content-length", "2")], false),
                data(1, b"a", false),
                data(1, b"b", true),
            ]),
            Fine,
        ),
        (
            "8.1 trailers without END_STREAM",
            cat(&[
                open_body.clone(),
                raw(Kind::Headers, flags::END_HEADERS, 1, &block(&[("x", "y")])),
            ]),
            Rst(1, ProtocolError),
        ),
        (
            "8.1 trailers with a pseudo",
            cat(&[
                open_body.clone(),
                raw(
                    Kind::Headers,
                    flags::END_HEADERS | flags::END_STREAM,
                    1,
                    &block(&[(":path", "/")]),
                ),
            ]),
            Rst(1, ProtocolError),
        ),
        (
            "8.1 trailers fine",
            cat(&[
                open_body.clone(),
                data(1, b"abc", false),
                raw(
                    Kind::Headers,
                    flags::END_HEADERS | flags::END_STREAM,
                    1,
                    &block(&[("x", "y")]),
                ),
            ]),
            Fine,
        ),
    ]
}

#[test]
fn conformance_table() {
    let mut failures = Vec::new();
    for (name, input, want) in table() {
        let mut c = Client::new();
        let result = c.send(&input);
        let got = outcome(&c.frames());
        let conn_error = matches!(want, Expect::GoAway(_));
        if got != want || result.is_err() != conn_error {
            failures.push(format!("{name}: want {want:?}, got {got:?} ({result:?})"));
        }
        if let (Expect::GoAway(code), Err(e)) = (want, result) {
            assert_eq!(e.code, code, "{name}");
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn preface_rules() {
    let mut s = Session::new(Settings::default());
    assert_eq!(
        s.receive(&PREFACE[..10], Instant::now()),
        Ok(0),
        "a partial preface waits"
    );
    let err = s
        .receive(b"GET / HTTP/1.1\r\n\r\n", Instant::now())
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ProtocolError);
    let mut s = Session::new(Settings::default());
    let mut bytes = PREFACE.to_vec();
    bytes.extend(raw(Kind::Ping, 0, 0, &[0; 8]));
    assert_eq!(
        s.receive(&bytes, Instant::now()).unwrap_err().code,
        ErrorCode::ProtocolError,
        "SETTINGS first"
    );
    assert!(s.is_done());
}

#[test]
fn settings_ack_ping_and_partial_frames() {
    let mut c = Client::new();
    let ping = raw(Kind::Ping, 0, 0, b"abcdefgh");
    assert_eq!(c.send(&ping[..5]), Ok(0), "a partial frame waits");
    assert_eq!(c.send(&ping), Ok(ping.len()));
    let got = c.frames();
    assert_eq!(
        (got[0].head.kind, got[0].head.flags, &got[0].payload[..]),
        (Kind::Ping, flags::ACK, &b"abcdefgh"[..])
    );
    c.send(&raw(Kind::Ping, flags::ACK, 0, b"abcdefgh"))
        .unwrap();
    assert!(c.frames().is_empty(), "a PING ACK is not answered");
}

fn decode_head(g: &Got) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut list = HeaderList::new(usize::MAX);
    Decoder::new(4096).decode(&g.payload, &mut list).unwrap();
    list.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

#[test]
fn request_and_answer() {
    let mut c = Client::new();
    c.send(&with_fields(1, &[("accept", "*/*")], true)).unwrap();
    let Some(Event::Request(req)) = c.s.next_event() else {
        panic!("no request")
    };
    assert_eq!(
        (req.stream, req.method(), req.path(), req.end_stream),
        (1, &b"GET"[..], Some(&b"/"[..]), true)
    );
    assert_eq!(
        req.headers().collect::<Vec<_>>(),
        [(&b"accept"[..], &b"*/*"[..])]
    );
    c.s.respond(
        1,
        200,
        &[(b"content-type", b"text/plain")],
        Body::Bytes(b"hello"),
    )
    .unwrap();
    let got = c.frames();
    assert_eq!(
        (got[0].head.kind, got[0].head.flags),
        (Kind::Headers, flags::END_HEADERS)
    );
    assert_eq!(
        decode_head(&got[0])[0],
        (b":status".to_vec(), b"200".to_vec())
    );
    assert_eq!(
        (got[1].head.kind, got[1].head.flags, &got[1].payload[..]),
        (Kind::Data, flags::END_STREAM, &b"hello"[..])
    );
    assert_eq!(c.s.open_streams(), 0);
    assert_eq!(
        c.s.respond(1, 200, &[], Body::Empty),
        Err(super::SendError::NoStream)
    );
    c.send(&headers(3, true)).unwrap();
    c.s.next_event();
    assert_eq!(
        c.s.respond(3, 200, &[(b"Bad", b"x")], Body::Empty),
        Err(super::SendError::BadHeader)
    );
    c.s.respond(3, 204, &[], Body::Empty).unwrap();
    let got = c.frames();
    assert_eq!(got[0].head.flags, flags::END_HEADERS | flags::END_STREAM);
}

#[test]
fn body_respects_windows_and_frame_size() {
    let mut c = Client::new();
    c.send(&settings(&[(ids::INITIAL_WINDOW_SIZE, 10)]))
        .unwrap();
    c.send(&headers(1, true)).unwrap();
    c.frames();
    c.s.respond(1, 200, &[], Body::Bytes(&[7; 25])).unwrap();
    let got = c.frames();
    assert_eq!(got[1].payload.len(), 10);
    assert!(
        c.s.stalled_since().is_some(),
        "window closed with data waiting"
    );
    // §6.9.2: a new INITIAL_WINDOW_SIZE moves the open stream's window.
    c.send(&settings(&[(ids::INITIAL_WINDOW_SIZE, 15)]))
        .unwrap();
    let got = c.frames();
    assert_eq!(
        got.iter()
            .find(|g| g.head.kind == Kind::Data)
            .map(|g| g.payload.len()),
        Some(5)
    );
    c.send(&window_update(1, 100)).unwrap();
    let got = c.frames();
    assert_eq!(
        (got[0].payload.len(), got[0].head.flags),
        (10, flags::END_STREAM)
    );
    assert_eq!(c.s.stalled_since(), None);

    let mut c = Client::new();
    c.send(&cat(&[
        headers(1, true),
        window_update(0, 100_000),
        settings(&[(ids::INITIAL_WINDOW_SIZE, 100_000)]),
    ]))
    .unwrap();
    c.frames();
    c.s.respond(1, 200, &[], Body::Bytes(&[1; 40_000])).unwrap();
    let sizes: Vec<_> = c
        .frames()
        .iter()
        .filter(|g| g.head.kind == Kind::Data)
        .map(|g| g.payload.len())
        .collect();
    assert_eq!(sizes, [16_384, 16_384, 40_000 - 32_768]);
}

#[test]
fn connection_window_is_shared() {
    let mut c = Client::new();
    c.send(&cat(&[
        settings(&[(ids::INITIAL_WINDOW_SIZE, 60_000)]),
        headers(1, true),
        headers(3, true),
    ]))
    .unwrap();
    c.frames();
    c.s.respond(1, 200, &[], Body::Bytes(&[1; 50_000])).unwrap();
    c.s.respond(3, 200, &[], Body::Bytes(&[1; 50_000])).unwrap();
    let sent: usize = c
        .frames()
        .iter()
        .filter(|g| g.head.kind == Kind::Data)
        .map(|g| g.payload.len())
        .sum();
    assert_eq!(sent, 65_535, "the connection window is the limit");
    c.send(&window_update(0, 40_000)).unwrap();
    let got = c.frames();
    let ends = got
        .iter()
        .filter(|g| g.head.flags & flags::END_STREAM != 0)
        .count();
    assert_eq!(ends, 2);
}

#[test]
fn pulled_body_never_exceeds_what_was_asked() {
    let mut c = Client::new();
    c.send(&headers(1, true)).unwrap();
    c.frames();
    c.s.respond(1, 200, &[], Body::Pull).unwrap();
    let mut total = 0;
    let file = vec![9u8; 200_000];
    while let Some((stream, max)) = c.s.want_data() {
        assert_eq!(stream, 1);
        let n = max.min(file.len() - total);
        total += n;
        c.s.send_data(1, &file[total - n..total], total == file.len())
            .unwrap();
        c.frames();
        if total == file.len() {
            break;
        }
    }
    assert_eq!(total, 65_535, "the window stops the pull");
    assert!(c.s.stalled_since().is_some());
    c.send(&cat(&[
        window_update(0, 200_000),
        window_update(1, 200_000),
    ]))
    .unwrap();
    let (stream, max) = c.s.want_data().unwrap();
    assert_eq!((stream, max), (1, 64 * 1024));
    c.s.send_data(1, &file[total..], false).unwrap();
    c.s.send_data(1, &[], true).unwrap();
    assert_eq!(
        c.s.send_data(1, b"x", true),
        Err(super::SendError::NotPulled)
    );
    assert_eq!(c.s.want_data(), None);
    let got = c.frames();
    assert_eq!(got.last().map(|g| g.head.flags), Some(flags::END_STREAM));
    assert_eq!(
        c.s.send_data(1, b"x", true),
        Err(super::SendError::NoStream)
    );
}

#[test]
fn request_bodies_are_credited_back() {
    let mut c = Client::new();
    c.send(&headers(1, false)).unwrap();
    for _ in 0..3 {
        c.send(&data(1, &[0; 16_000], false)).unwrap();
    }
    let got = c.frames();
    let updates: Vec<_> = got
        .iter()
        .filter(|g| g.head.kind == Kind::WindowUpdate)
        .map(|g| g.head.stream)
        .collect();
    assert_eq!(updates, [0, 1], "both windows reopened once half used");
    // Beyond the window: DATA with no credit left.
    let mut c = Client::new();
    c.send(&cat(&[headers(1, false), headers(3, false)]))
        .unwrap();
    let frame = data(1, &[0; 16_384], false);
    for _ in 0..4 {
        c.send(&frame).unwrap();
    }
    assert_eq!(c.s.open_streams(), 2);
}

#[test]
fn graceful_go_away() {
    let mut c = Client::new();
    c.send(&headers(1, true)).unwrap();
    c.s.go_away();
    let got = c.frames();
    assert_eq!(
        (got[0].head.kind, &got[0].payload[..]),
        (Kind::GoAway, &[0, 0, 0, 1, 0, 0, 0, 0][..])
    );
    assert!(!c.s.is_done(), "stream 1 not answered");
    c.send(&headers(3, true)).unwrap();
    c.s.next_event();
    assert!(c.s.next_event().is_none(), "stream 3 is past the GOAWAY");
    c.send(&data(3, b"late", true)).unwrap();
    c.s.respond(1, 200, &[], Body::Empty).unwrap();
    c.frames();
    assert!(c.s.is_done());
    assert_eq!(c.s.counters().goaways_sent, 1);
}

#[test]
fn header_list_too_large_is_a_431_not_a_connection_error() {
    let mut c = Client::with(Settings {
        max_header_list_size: 200,
        ..Settings::default()
    });
    c.send(&with_fields(1, &[("x", &"v".repeat(300))], true))
        .unwrap();
    assert!(matches!(
        c.s.next_event(),
        Some(Event::HeaderListTooLarge { stream: 1 })
    ));
    c.s.respond(1, 431, &[], Body::Empty).unwrap();
    assert_eq!(outcome(&c.frames()), Expect::Fine);
    assert_eq!(c.s.counters().header_lists_too_large, 1);
    c.send(&headers(3, true)).unwrap();
    assert!(
        matches!(c.s.next_event(), Some(Event::Request(_))),
        "the connection lives"
    );
}

#[test]
fn refused_past_max_concurrent_streams() {
    let mut c = Client::with(Settings {
        max_concurrent_streams: 2,
        ..Settings::default()
    });
    c.send(&cat(&[
        headers(1, true),
        headers(3, true),
        headers(5, true),
    ]))
    .unwrap();
    assert_eq!(
        outcome(&c.frames()),
        Expect::Rst(5, ErrorCode::RefusedStream)
    );
    assert_eq!(c.s.counters().refused_streams, 1);
    assert_eq!(c.s.counters().streams_opened, 2);
}

#[test]
fn client_reset_is_told_to_the_caller() {
    let mut c = Client::new();
    c.send(&cat(&[headers(1, true), rst(1)])).unwrap();
    assert!(matches!(c.s.next_event(), Some(Event::Request(_))));
    assert!(matches!(c.s.next_event(), Some(Event::Reset { stream: 1 })));
    assert_eq!(c.s.counters().resets_received, 1);
}

fn budgets(b: Budgets) -> Settings {
    Settings {
        budgets: b,
        ..Settings::default()
    }
}

#[test]
fn rapid_reset_goes_away() {
    let mut c = Client::with(budgets(Budgets {
        resets_per_sec: 5,
        ..Budgets::default()
    }));
    let mut input = Vec::new();
    for id in (1..=11).step_by(2) {
        input.extend(headers(id, false));
        input.extend(rst(id));
    }
    assert_eq!(c.send(&input).unwrap_err().code, ErrorCode::EnhanceYourCalm);
    assert_eq!(c.s.counters().rapid_resets, 1);
    assert_eq!(c.s.counters().resets_received, 6);
    // The same pace spread over seconds is fine.
    let mut c = Client::with(budgets(Budgets {
        resets_per_sec: 5,
        ..Budgets::default()
    }));
    for id in (1..=21).step_by(2) {
        c.now += Duration::from_millis(300);
        c.send(&cat(&[headers(id, false), rst(id)])).unwrap();
    }
}

#[test]
fn control_flood_goes_away() {
    for frame in [
        raw(Kind::Ping, 0, 0, &[0; 8]),
        settings(&[]),
        raw(Kind::Priority, 0, 3, &[0, 0, 0, 1, 1]),
        window_update(0, 1),
        raw(Kind::Unknown(0x30), 0, 0, &[]),
    ] {
        let mut c = Client::with(budgets(Budgets {
            control_frames_per_sec: 50,
            ..Budgets::default()
        }));
        let input: Vec<u8> = std::iter::repeat_n(frame, 51).flatten().collect();
        assert_eq!(c.send(&input).unwrap_err().code, ErrorCode::EnhanceYourCalm);
        assert_eq!(c.s.counters().control_floods, 1);
    }
    let mut c = Client::with(budgets(Budgets {
        control_frames_per_sec: 50,
        ..Budgets::default()
    }));
    c.send(&headers(1, false)).unwrap();
    let input: Vec<u8> = std::iter::repeat_n(data(1, b"", false), 51)
        .flatten()
        .collect();
    assert_eq!(
        c.send(&input).unwrap_err().code,
        ErrorCode::EnhanceYourCalm,
        "empty DATA"
    );
}

#[test]
fn continuation_flood_goes_away() {
    let mut c = Client::new();
    let mut input = raw(Kind::Headers, 0, 1, &get_block());
    for _ in 0..33 {
        input.extend(raw(Kind::Continuation, 0, 1, &[]));
    }
    assert_eq!(c.send(&input).unwrap_err().code, ErrorCode::EnhanceYourCalm);
    assert_eq!(c.s.counters().continuation_floods, 1);
}

#[test]
fn header_block_over_the_limit_ends_at_once() {
    let mut c = Client::with(budgets(Budgets {
        max_header_block: 1000,
        ..Budgets::default()
    }));
    let input = cat(&[
        raw(Kind::Headers, 0, 1, &[0; 600]),
        raw(Kind::Continuation, 0, 1, &[0; 600]),
    ]);
    assert_eq!(c.send(&input).unwrap_err().code, ErrorCode::EnhanceYourCalm);
    assert_eq!(c.s.counters().header_blocks_too_large, 1);
    assert!(c.s.block.len() <= 1000, "nothing buffered past the limit");
}

#[test]
fn table_larger_than_advertised() {
    let mut c = Client::new();
    let err = c
        .send(&raw(
            Kind::Headers,
            flags::END_HEADERS,
            1,
            &[0x3f, 0xe2, 0x1f],
        ))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CompressionError);
    assert_eq!(c.s.counters().table_size_violations, 1);
}

#[test]
fn unread_output_is_bounded() {
    let mut c = Client::with(budgets(Budgets {
        max_buffered_output: 1000,
        ..Budgets::default()
    }));
    let input: Vec<u8> = std::iter::repeat_n(raw(Kind::Ping, 0, 0, &[0; 8]), 100)
        .flatten()
        .collect();
    assert_eq!(c.send(&input).unwrap_err().code, ErrorCode::EnhanceYourCalm);
    assert_eq!(c.s.counters().output_overflows, 1);
    let mut c = Client::with(budgets(Budgets {
        max_buffered_output: 1000,
        ..Budgets::default()
    }));
    c.send(&headers(1, true)).unwrap();
    assert_eq!(
        c.s.respond(1, 200, &[], Body::Bytes(&[0; 2000])),
        Err(super::SendError::Full)
    );
}

#[test]
fn peer_table_size_change_is_signalled() {
    let mut c = Client::new();
    c.send(&cat(&[
        settings(&[(ids::HEADER_TABLE_SIZE, 0)]),
        headers(1, true),
        headers(3, true),
    ]))
    .unwrap();
    c.s.respond(1, 200, &[], Body::Empty).unwrap();
    c.s.respond(3, 200, &[], Body::Empty).unwrap();
    let heads: Vec<_> = c
        .frames()
        .into_iter()
        .filter(|g| g.head.kind == Kind::Headers)
        .collect();
    assert_eq!(heads[0].payload, [hpack::TABLE_SIZE_ZERO, 0x88]);
    assert_eq!(
        heads[1].payload,
        [0x88],
        "only the first block after the change"
    );
}

#[test]
fn precomputed_block_and_continuations_out() {
    let mut block = Vec::new();
    hpack::encode_response(&mut block, 200, &[(b"x-big", &[1; 20_000])]);
    let mut c = Client::new();
    c.send(&headers(1, true)).unwrap();
    c.frames();
    c.s.respond_block(1, &block, Body::Empty).unwrap();
    let got = c.frames();
    assert_eq!(
        (got[0].head.kind, got[1].head.kind),
        (Kind::Headers, Kind::Continuation)
    );
    assert_eq!(got[1].head.flags, flags::END_HEADERS);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn any_frame() -> impl Strategy<Value = Vec<u8>> {
        let kind = prop_oneof![0u8..10, Just(0x42)];
        let stream = prop_oneof![Just(0u32), Just(1), Just(2), Just(3), 1u32..20];
        let payload = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            Just(get_block()),
            Just(vec![0, 0, 0, 1, 0]),
        ];
        (kind, any::<u8>(), stream, payload)
            .prop_map(|(k, fl, s, p)| raw(Kind::from_u8(k), fl, s, &p))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any frame sequence: no panic, every output a whole frame, the
        /// output bounded, answers never break it.
        #[test]
        fn arbitrary_frames_never_panic(frames in proptest::collection::vec(any_frame(), 1..40), split in 0usize..64) {
            let settings = budgets(Budgets { max_buffered_output: 64 * 1024, ..Budgets::default() });
            let mut c = Client::with(settings);
            let input = frames.concat();
            let cut = split.min(input.len());
            let mut total_out = 0;
            for part in [&input[..cut], &input[cut..]] {
                let mut pending = part;
                while let Ok(n) = c.send(pending) {
                    pending = &pending[n..];
                    if n == 0 { break; }
                }
                while let Some(ev) = c.s.next_event() {
                    if let Event::Request(r) = ev {
                        let _ = c.s.respond(r.stream, 200, &[], Body::Bytes(b"ok"));
                    }
                }
                let mut out = Vec::new();
                c.s.poll_output(c.now, &mut out);
                prop_assert!(out.len() <= 64 * 1024 + 16 * 1024);
                total_out += parse_all(&out).len();
            }
            prop_assert!(total_out < 10_000);
        }
    }
}
