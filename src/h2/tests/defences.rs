//! Each defence fires, is counted, and leaves the connection as the issue
//! says; and arbitrary frame sequences never panic and keep output bounded.

use super::*;

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
        Err(SendError::Full)
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
