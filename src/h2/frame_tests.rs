//! Frame header and payload rules, one test per rule of RFC 9113 §4.2 and §6.

use super::*;

fn head(kind: Kind, flags: u8, stream: u32, payload: &[u8]) -> Head {
    Head {
        len: u32::try_from(payload.len()).unwrap(),
        kind,
        flags,
        stream,
    }
}

fn parse_one(kind: Kind, flags: u8, stream: u32, payload: &[u8]) -> Result<Frame<'_>, FrameError> {
    parse(head(kind, flags, stream, payload), payload)
}

const CONN_SIZE: Result<(), FrameError> = Err(FrameError::Connection(ErrorCode::FrameSizeError));
const CONN_PROTO: Result<(), FrameError> = Err(FrameError::Connection(ErrorCode::ProtocolError));

fn shape(r: Result<Frame<'_>, FrameError>) -> Result<(), FrameError> {
    r.map(|_| ())
}

#[test]
fn head_round_trips_and_ignores_reserved_bit() {
    let h = Head {
        len: 0x01_0203,
        kind: Kind::Headers,
        flags: 0x25,
        stream: 7,
    };
    let mut out = Vec::new();
    h.write(&mut out);
    assert_eq!(out, [1, 2, 3, 1, 0x25, 0, 0, 0, 7]);
    let mut b: [u8; 9] = out.try_into().unwrap();
    b[5] |= 0x80;
    assert_eq!(Head::parse(&b), h);
}

#[test]
fn kinds_and_codes_round_trip() {
    for b in 0..=255u8 {
        assert_eq!(Kind::from_u8(b).to_u8(), b);
    }
    assert_eq!(ErrorCode::from_u32(0xb), Some(ErrorCode::EnhanceYourCalm));
    assert_eq!(ErrorCode::from_u32(0xd), Some(ErrorCode::Http11Required));
    assert_eq!(ErrorCode::from_u32(0xe), None);
    assert_eq!(ErrorCode::from_u32(u32::MAX), None);
}

#[test]
fn data_padding() {
    let f = parse_one(
        Kind::Data,
        flags::PADDED | flags::END_STREAM,
        1,
        &[2, b'h', b'i', 0, 0],
    )
    .unwrap();
    assert_eq!(
        f,
        Frame::Data {
            stream: 1,
            end_stream: true,
            data: b"hi",
            flow_len: 5
        }
    );
    // Padding that fills the payload (§6.1).
    assert_eq!(
        shape(parse_one(Kind::Data, flags::PADDED, 1, &[4, 0, 0, 0])),
        CONN_PROTO
    );
    assert!(parse_one(Kind::Data, flags::PADDED, 1, &[3, 0, 0, 0]).is_ok());
    // Too short to hold the Pad Length (§4.2).
    assert_eq!(
        shape(parse_one(Kind::Data, flags::PADDED, 1, &[])),
        CONN_SIZE
    );
    assert_eq!(shape(parse_one(Kind::Data, 0, 0, b"x")), CONN_PROTO);
}

#[test]
fn headers_priority_and_padding() {
    let payload = [1, 0x80, 0, 0, 3, 15, 0x82, 0];
    let f = parse_one(
        Kind::Headers,
        flags::PADDED | flags::PRIORITY | flags::END_HEADERS,
        5,
        &payload,
    );
    let priority = Some(Priority {
        dependency: 3,
        exclusive: true,
        weight: 15,
    });
    assert_eq!(
        f.unwrap(),
        Frame::Headers {
            stream: 5,
            end_stream: false,
            end_headers: true,
            priority,
            block: &[0x82]
        }
    );
    assert_eq!(
        shape(parse_one(Kind::Headers, flags::PRIORITY, 1, &[0, 0, 0, 3])),
        CONN_SIZE
    );
    assert_eq!(
        shape(parse_one(Kind::Headers, flags::PADDED, 1, &[1])),
        CONN_PROTO
    );
    assert_eq!(shape(parse_one(Kind::Headers, 0, 0, &[0x82])), CONN_PROTO);
}

#[test]
fn priority_length_is_a_stream_error() {
    assert_eq!(
        shape(parse_one(Kind::Priority, 0, 3, &[0, 0, 0, 1])),
        Err(FrameError::Stream(3, ErrorCode::FrameSizeError))
    );
    assert_eq!(shape(parse_one(Kind::Priority, 0, 0, &[0; 5])), CONN_PROTO);
    assert!(parse_one(Kind::Priority, 0, 3, &[0; 5]).is_ok());
}

#[test]
fn fixed_sizes() {
    assert_eq!(shape(parse_one(Kind::RstStream, 0, 1, &[0; 3])), CONN_SIZE);
    assert_eq!(shape(parse_one(Kind::RstStream, 0, 0, &[0; 4])), CONN_PROTO);
    assert_eq!(shape(parse_one(Kind::Ping, 0, 0, &[0; 7])), CONN_SIZE);
    assert_eq!(shape(parse_one(Kind::Ping, 0, 1, &[0; 8])), CONN_PROTO);
    assert_eq!(
        shape(parse_one(Kind::WindowUpdate, 0, 0, &[0; 5])),
        CONN_SIZE
    );
    assert_eq!(shape(parse_one(Kind::GoAway, 0, 0, &[0; 7])), CONN_SIZE);
    assert_eq!(shape(parse_one(Kind::GoAway, 0, 1, &[0; 8])), CONN_PROTO);
    let goaway = parse_one(Kind::GoAway, 0, 0, &[0x80, 0, 0, 9, 0, 0, 0, 2, b'd']).unwrap();
    assert_eq!(
        goaway,
        Frame::GoAway {
            last_stream: 9,
            code: 2,
            debug: b"d"
        }
    );
}

#[test]
fn settings_sizes() {
    assert_eq!(shape(parse_one(Kind::Settings, 0, 0, &[0; 5])), CONN_SIZE);
    assert_eq!(
        shape(parse_one(Kind::Settings, flags::ACK, 0, &[0; 6])),
        CONN_SIZE
    );
    assert_eq!(shape(parse_one(Kind::Settings, 0, 1, &[])), CONN_PROTO);
    let Frame::Settings { ack: false, params } =
        parse_one(Kind::Settings, 0, 0, &[0, 4, 0, 0, 1, 0]).unwrap()
    else {
        panic!("not settings");
    };
    assert_eq!(settings(params).collect::<Vec<_>>(), [(4, 256)]);
}

#[test]
fn continuation_and_unknown() {
    assert_eq!(shape(parse_one(Kind::Continuation, 0, 0, &[])), CONN_PROTO);
    assert_eq!(
        parse_one(Kind::Unknown(0x42), 0, 0, b"xyz").unwrap(),
        Frame::Unknown {
            kind: 0x42,
            stream: 0
        }
    );
}

#[test]
fn writers_produce_parseable_frames() {
    let mut out = Vec::new();
    write_settings(&mut out, &[(3, 100)]);
    write_settings_ack(&mut out);
    write_ping(&mut out, true, *b"12345678");
    write_goaway(&mut out, 7, ErrorCode::EnhanceYourCalm);
    write_rst_stream(&mut out, 3, ErrorCode::Cancel);
    write_window_update(&mut out, 0, 1000);
    write_data(&mut out, 1, b"body", true);
    let mut frames = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let h = Head::parse(rest[..9].try_into().unwrap());
        let (payload, tail) = rest[9..].split_at(h.len as usize);
        frames.push(parse(h, payload).unwrap());
        rest = tail;
    }
    assert_eq!(
        frames[2],
        Frame::Ping {
            ack: true,
            data: *b"12345678"
        }
    );
    assert_eq!(
        frames[3],
        Frame::GoAway {
            last_stream: 7,
            code: 0xb,
            debug: b""
        }
    );
    assert_eq!(frames[4], Frame::RstStream { stream: 3, code: 8 });
    assert_eq!(
        frames[5],
        Frame::WindowUpdate {
            stream: 0,
            increment: 1000
        }
    );
    assert_eq!(
        frames[6],
        Frame::Data {
            stream: 1,
            end_stream: true,
            data: b"body",
            flow_len: 4
        }
    );
}

#[test]
fn headers_split_into_continuations() {
    let block = vec![0x82; 40_000];
    let mut out = Vec::new();
    write_headers(&mut out, 1, &block, true, 16_384);
    let first = Head::parse(out[..9].try_into().unwrap());
    assert_eq!(
        (first.kind, first.len, first.flags),
        (Kind::Headers, 16_384, flags::END_STREAM)
    );
    let second = Head::parse(out[9 + 16_384..][..9].try_into().unwrap());
    assert_eq!((second.kind, second.flags), (Kind::Continuation, 0));
    let third = Head::parse(out[2 * (9 + 16_384)..][..9].try_into().unwrap());
    assert_eq!(
        (third.kind, third.len, third.flags),
        (Kind::Continuation, 40_000 - 32_768, flags::END_HEADERS)
    );
    let mut empty = Vec::new();
    write_headers(&mut empty, 1, &[], false, 16_384);
    assert_eq!(empty, [0, 0, 0, 1, flags::END_HEADERS, 0, 0, 0, 1]);
}
