//! Answers through the session: requests in, heads and bodies out within
//! windows and frame sizes, pulled bodies, credit for request bodies,
//! graceful GOAWAY, 431 and refused streams.

use super::*;

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
        Err(SendError::NoStream)
    );
    c.send(&headers(3, true)).unwrap();
    c.s.next_event();
    assert_eq!(
        c.s.respond(3, 200, &[(b"Bad", b"x")], Body::Empty),
        Err(SendError::BadHeader)
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
    assert_eq!(c.s.send_data(1, b"x", true), Err(SendError::NotPulled));
    assert_eq!(c.s.want_data(), None);
    let got = c.frames();
    assert_eq!(got.last().map(|g| g.head.flags), Some(flags::END_STREAM));
    assert_eq!(c.s.send_data(1, b"x", true), Err(SendError::NoStream));
}

#[test]
fn a_pulled_body_ends_with_the_bytes_framed_whole_or_reset() {
    let mut c = Client::new();
    c.send(&cat(&[headers(1, true), headers(3, true)])).unwrap();
    c.frames();
    for id in [1, 3] {
        c.s.respond(id, 200, &[], Body::Pull).unwrap();
    }
    c.s.send_data(1, &[1; 100], true).unwrap();
    c.s.send_data(3, &[3; 70_000], false).unwrap();
    c.frames();
    assert_eq!(c.s.next_ended(), Some((1, 100)), "all of it framed");
    assert_eq!(c.s.next_ended(), None, "stream 3 is under way");
    // Stream 3 took what the connection's window left: 65,535 - 100.
    assert_eq!(c.s.framed(3), Some(65_435));
    c.send(&raw(Kind::RstStream, 0, 3, &8u32.to_be_bytes()))
        .unwrap();
    assert_eq!(c.s.next_ended(), Some((3, 65_435)), "what was framed");
    assert_eq!(c.s.framed(3), None);
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
