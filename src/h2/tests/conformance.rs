//! The conformance table, by h2spec's sections: each case is the frames a
//! client sends after a good handshake and the one error it must get, with
//! its exact code, as a stream error (RST_STREAM) or a connection error
//! (GOAWAY), or no error at all.

use super::*;

type Case = (&'static str, Vec<u8>, Expect);

/// A frame one byte over our max_frame_size.
fn big() -> Vec<u8> {
    vec![0; 16_385]
}

/// Opens stream 1, body to follow.
fn open_body() -> Vec<u8> {
    headers(1, false)
}

/// HEADERS on stream 1 without END_HEADERS: a block under way.
fn partial() -> Vec<u8> {
    raw(Kind::Headers, 0, 1, &get_block())
}

fn table() -> Vec<Case> {
    let mut all = frames_and_stream_states();
    all.extend(frame_types());
    all.extend(settings_windows_continuation());
    all.extend(windows_and_continuation());
    all.extend(hpack_and_requests());
    all.extend(malformed_requests());
    all.extend(more_malformed_requests());
    all
}

fn frames_and_stream_states() -> Vec<Case> {
    use ErrorCode::*;
    use Expect::*;
    vec![
        // §4.2 frame size
        (
            "4.2 DATA over max_frame_size",
            cat(&[open_body(), data(1, &big(), false)]),
            GoAway(FrameSizeError),
        ),
        (
            "4.2 HEADERS over max_frame_size",
            raw(Kind::Headers, flags::END_HEADERS, 1, &big()),
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
            cat(&[open_body(), rst(1), data(1, b"x", false)]),
            GoAway(StreamClosed),
        ),
        (
            "5.1 HEADERS after RST_STREAM",
            cat(&[open_body(), rst(1), headers(1, true)]),
            GoAway(StreamClosed),
        ),
        (
            "5.1 WINDOW_UPDATE after RST is fine",
            cat(&[open_body(), rst(1), window_update(1, 1)]),
            Fine,
        ),
        (
            "5.1 PRIORITY on closed is fine",
            cat(&[
                open_body(),
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
            cat(&[partial(), raw(Kind::Unknown(0x42), 0, 1, b"")]),
            GoAway(ProtocolError),
        ),
    ]
}

fn frame_types() -> Vec<Case> {
    use ErrorCode::*;
    use Expect::*;
    vec![
        // §6.1 DATA
        (
            "6.1 DATA on stream 0",
            data(0, b"x", false),
            GoAway(ProtocolError),
        ),
        (
            "6.1 DATA bad padding",
            cat(&[open_body(), raw(Kind::Data, flags::PADDED, 1, &[5, 0, 0])]),
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
            cat(&[partial(), raw(Kind::Priority, 0, 1, &[0, 0, 0, 3, 16])]),
            GoAway(ProtocolError),
        ),
        (
            "6.2 DATA inside a block",
            cat(&[partial(), data(1, b"", true)]),
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
            cat(&[open_body(), raw(Kind::RstStream, 0, 1, &[0; 3])]),
            GoAway(FrameSizeError),
        ),
    ]
}

fn settings_windows_continuation() -> Vec<Case> {
    use ErrorCode::*;
    use Expect::*;
    vec![
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
    ]
}

fn windows_and_continuation() -> Vec<Case> {
    use ErrorCode::*;
    use Expect::*;
    vec![
        // §6.9 WINDOW_UPDATE
        (
            "6.9 increment 0 on connection",
            window_update(0, 0),
            GoAway(ProtocolError),
        ),
        (
            "6.9 increment 0 on a stream",
            cat(&[open_body(), window_update(1, 0)]),
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
            cat(&[open_body(), window_update(1, MAX_WINDOW)]),
            Rst(1, FlowControlError),
        ),
        (
            "6.9.2 INITIAL_WINDOW_SIZE overflows an open stream",
            cat(&[
                open_body(),
                window_update(1, MAX_WINDOW - 65_535),
                settings(&[(ids::INITIAL_WINDOW_SIZE, 65_536)]),
            ]),
            GoAway(FlowControlError),
        ),
        // §6.10 CONTINUATION
        (
            "6.10 CONTINUATION after END_HEADERS",
            cat(&[
                open_body(),
                raw(Kind::Continuation, flags::END_HEADERS, 1, &[]),
            ]),
            GoAway(ProtocolError),
        ),
        (
            "6.10 CONTINUATION on another stream",
            cat(&[
                partial(),
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
    ]
}

fn hpack_and_requests() -> Vec<Case> {
    use ErrorCode::*;
    use Expect::*;
    vec![
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
    ]
}

fn malformed_requests() -> Vec<Case> {
    use ErrorCode::*;
    use Expect::*;
    vec![
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
    ]
}

fn more_malformed_requests() -> Vec<Case> {
    use ErrorCode::*;
    use Expect::*;
    vec![
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
                open_body(),
                raw(Kind::Headers, flags::END_HEADERS, 1, &block(&[("x", "y")])),
            ]),
            Rst(1, ProtocolError),
        ),
        (
            "8.1 trailers with a pseudo",
            cat(&[
                open_body(),
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
                open_body(),
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
