//! HPACK against every example of RFC 7541 Appendix C (C.2–C.6, with and
//! without Huffman), the §4.2/§6.3 size update rules, and bombs.

use super::*;

/// Bytes from the RFC's hex dumps (spaces and line breaks ignored).
pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

type Fields<'a> = &'a [(&'a str, &'a str)];

/// Decodes each block in turn on one decoder, checking the fields and the
/// dynamic table (newest first) and its size after each.
fn check_sequence(table_size: usize, steps: &[(&str, Fields<'_>, Fields<'_>, usize)]) {
    let mut d = Decoder::new(table_size);
    for (i, &(wire, fields, table, size)) in steps.iter().enumerate() {
        let mut list = HeaderList::new(usize::MAX);
        d.decode(&hex(wire), &mut list)
            .unwrap_or_else(|e| panic!("step {i}: {e:?}"));
        let got: Vec<_> = list.iter().collect();
        let want: Vec<_> = fields
            .iter()
            .map(|&(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(got, want, "step {i} fields");
        let got_table: Vec<_> = (0..d.table().len())
            .map(|j| d.table().get(62 + j).unwrap())
            .collect();
        let want_table: Vec<_> = table
            .iter()
            .map(|&(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(got_table, want_table, "step {i} table");
        assert_eq!(d.table().size(), size, "step {i} size");
    }
}

#[test]
fn c2_literals_and_indexed() {
    check_sequence(
        4096,
        &[(
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            &[("custom-key", "custom-header")],
            &[("custom-key", "custom-header")],
            55,
        )],
    );
    check_sequence(
        4096,
        &[(
            "040c 2f73 616d 706c 652f 7061 7468",
            &[(":path", "/sample/path")],
            &[],
            0,
        )],
    );
    check_sequence(
        4096,
        &[(
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            &[("password", "secret")],
            &[],
            0,
        )],
    );
    check_sequence(4096, &[("82", &[(":method", "GET")], &[], 0)]);
}

#[test]
fn c2_encoder_matches_where_it_can() {
    // C.2.2 (without indexing) and C.2.4; C.2.1 indexes, which we never do.
    let mut out = Vec::new();
    encode_integer(&mut out, 4, 4, 0);
    out.push(12);
    out.extend_from_slice(b"/sample/path");
    assert_eq!(out, hex("040c 2f73 616d 706c 652f 7061 7468"));
    let mut out = Vec::new();
    encode_field(&mut out, b":method", b"GET");
    assert_eq!(out, [0x82]);
}

const C3_1: Fields<'_> = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const C3_2: Fields<'_> = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const C3_3: Fields<'_> = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const T3_1: Fields<'_> = &[(":authority", "www.example.com")];
const T3_2: Fields<'_> = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const T3_3: Fields<'_> = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

#[test]
fn c3_requests_without_huffman() {
    check_sequence(
        4096,
        &[
            (
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                C3_1,
                T3_1,
                57,
            ),
            ("8286 84be 5808 6e6f 2d63 6163 6865", C3_2, T3_2, 110),
            (
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                C3_3,
                T3_3,
                164,
            ),
        ],
    );
}

#[test]
fn c4_requests_with_huffman() {
    check_sequence(
        4096,
        &[
            ("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", C3_1, T3_1, 57),
            ("8286 84be 5886 a8eb 1064 9cbf", C3_2, T3_2, 110),
            (
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                C3_3,
                T3_3,
                164,
            ),
        ],
    );
}

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOC: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const C5_1: Fields<'_> = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", LOC),
];
const C5_2: Fields<'_> = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", LOC),
];
const C5_3: Fields<'_> = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", DATE2),
    ("location", LOC),
    ("content-encoding", "gzip"),
    ("set-cookie", COOKIE),
];
const T5_1: Fields<'_> = &[
    ("location", LOC),
    ("date", DATE1),
    ("cache-control", "private"),
    (":status", "302"),
];
const T5_2: Fields<'_> = &[
    (":status", "307"),
    ("location", LOC),
    ("date", DATE1),
    ("cache-control", "private"),
];
const T5_3: Fields<'_> = &[
    ("set-cookie", COOKIE),
    ("content-encoding", "gzip"),
    ("date", DATE2),
];

#[test]
fn c5_responses_without_huffman_evict() {
    check_sequence(
        256,
        &[
            (
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
                 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
                 6c65 2e63 6f6d",
                C5_1,
                T5_1,
                222,
            ),
            ("4803 3330 37c1 c0bf", C5_2, T5_2, 222),
            (
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
                 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
                 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e \
                 3d31",
                C5_3,
                T5_3,
                215,
            ),
        ],
    );
}

#[test]
fn c6_responses_with_huffman_evict() {
    check_sequence(
        256,
        &[
            (
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
                 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                C5_1,
                T5_1,
                222,
            ),
            ("4883 640e ffc1 c0bf", C5_2, T5_2, 222),
            (
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
                 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
                 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                C5_3,
                T5_3,
                215,
            ),
        ],
    );
}

/// What our encoder writes decodes to what it was given.
#[test]
fn encoder_round_trips_without_touching_the_table() {
    let headers: &[(&[u8], &[u8])] = &[
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"1234"),
        (b"set-cookie", b"a=b"),
        (b"x-custom", b"\x01binary\xff"),
        (b"accept-encoding", b"gzip, deflate"),
    ];
    for status in [200, 204, 404, 418, 503] {
        let mut block = Vec::new();
        encode_response(&mut block, status, headers);
        let mut d = Decoder::new(4096);
        let mut list = HeaderList::new(usize::MAX);
        d.decode(&block, &mut list).unwrap();
        assert_eq!(
            list.get(0),
            Some((&b":status"[..], status.to_string().as_bytes()))
        );
        assert_eq!(list.iter().skip(1).collect::<Vec<_>>(), headers);
        assert!(d.table().is_empty());
    }
    let mut cookie = Vec::new();
    encode_field(&mut cookie, b"set-cookie", b"a=b");
    assert_eq!(cookie[0] & 0xf0, 0x10, "never indexed");
}

#[test]
fn integers() {
    // C.1.1–C.1.3.
    for (value, prefix, wire) in [(10, 5, "0a"), (1337, 5, "1f9a0a"), (42, 8, "2a")] {
        let mut out = Vec::new();
        encode_integer(&mut out, value, prefix, 0);
        assert_eq!(out, hex(wire));
        let mut rest = &out[..];
        assert_eq!(integer(&mut rest, prefix), Ok(value));
        assert!(rest.is_empty());
    }
    let mut rest: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f];
    assert_eq!(integer(&mut rest, 7), Err(DecodeError::IntegerOverflow));
    let mut rest: &[u8] = &[0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    assert_eq!(integer(&mut rest, 7), Err(DecodeError::IntegerOverflow));
    let mut rest: &[u8] = &[0x7f, 0x80];
    assert_eq!(integer(&mut rest, 7), Err(DecodeError::Truncated));
}

fn decode_fresh(table: usize, block: &[u8]) -> Result<HeaderList, DecodeError> {
    let mut list = HeaderList::new(usize::MAX);
    Decoder::new(table).decode(block, &mut list).map(|()| list)
}

#[test]
fn malformed_blocks() {
    assert_eq!(
        decode_fresh(4096, &[0x80]).unwrap_err(),
        DecodeError::BadIndex
    );
    assert_eq!(
        decode_fresh(4096, &[0xbe]).unwrap_err(),
        DecodeError::BadIndex
    );
    assert_eq!(
        decode_fresh(4096, &[0x40, 0x05, b'a']).unwrap_err(),
        DecodeError::Truncated
    );
    assert_eq!(
        decode_fresh(4096, &[0x40, 0x81, 0xff, 0x00]).unwrap_err(),
        DecodeError::Huffman
    );
    assert_eq!(
        decode_fresh(4096, &[0x4f]).unwrap_err(),
        DecodeError::Truncated
    );
    assert!(decode_fresh(4096, &[]).unwrap().is_empty());
}

#[test]
fn size_updates_follow_4_2_and_6_3() {
    // Up to the advertised size, at the start, more than one: fine.
    assert!(decode_fresh(4096, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).is_ok());
    // Above what we advertised.
    let mut over = Vec::new();
    encode_integer(&mut over, 4097, 5, 0x20);
    assert_eq!(
        decode_fresh(4096, &over).unwrap_err(),
        DecodeError::TableSizeTooLarge
    );
    assert_eq!(
        decode_fresh(0, &[0x21]).unwrap_err(),
        DecodeError::TableSizeTooLarge
    );
    // After a field.
    assert_eq!(
        decode_fresh(4096, &[0x82, 0x20]).unwrap_err(),
        DecodeError::TableSizeNotAtStart
    );
    // A shrink evicts.
    let mut d = Decoder::new(4096);
    let mut list = HeaderList::new(usize::MAX);
    d.decode(
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
        &mut list,
    )
    .unwrap();
    assert_eq!(d.table().size(), 55);
    d.decode(&[0x20, 0x3f, 0xe1, 0x1f], &mut list).unwrap();
    assert!(d.table().is_empty());
    assert_eq!(d.table().max_size(), 4096);
}

#[test]
fn list_limit_counts_32_per_field() {
    let mut list = HeaderList::new(70);
    list.push(b"a", b"b"); // 34
    list.push(b"c", b"d"); // 68
    assert!(!list.is_too_large());
    list.push(b"e", b"f"); // 102
    assert!(list.is_too_large());
    assert_eq!((list.len(), list.size()), (2, 102));
}

/// One 4000-byte entry referenced 10,000 times: 40 MB decoded from 10 kB.
/// The list stops storing at its limit; the decoder stays usable.
#[test]
fn indexed_bomb_costs_no_memory() {
    let mut block = vec![0x40, 0x01, b'x'];
    encode_integer(&mut block, 4000, 7, 0);
    block.extend(std::iter::repeat_n(b'v', 4000));
    block.extend(std::iter::repeat_n(0xbe, 10_000));
    let mut d = Decoder::new(4096);
    let mut list = HeaderList::new(16 * 1024);
    d.decode(&block, &mut list).unwrap();
    assert!(list.is_too_large());
    assert!(list.size() > 40_000_000);
    assert!(list.len() <= 4);
    assert!(list.buf.capacity() <= 32 * 1024);
    // The table is intact: the next block still decodes.
    let mut next = HeaderList::new(16 * 1024);
    d.decode(&[0xbe], &mut next).unwrap();
    assert_eq!(
        next.get(0).map(|(n, v)| (n.len(), v.len())),
        Some((1, 4000))
    );
}

/// A table of entries the peer may add is still capped at our size.
#[test]
fn table_never_exceeds_advertised_size() {
    let mut d = Decoder::new(256);
    let mut list = HeaderList::new(usize::MAX);
    for i in 0..100u8 {
        let mut block = vec![0x40, 0x01, b'n', 0x0a];
        block.extend([b'0' + i % 10; 10]);
        d.decode(&block, &mut list).unwrap();
        assert!(d.table().size() <= 256);
    }
}
