//! The simulations' own tests: deadlines and standing of a connection fed
//! at chosen times, the property tests over generated request sequences
//! and arbitrary bytes, and the fuzz corpus replayed.

use super::*;
use proptest::prelude::*;

/// A connection fed `pieces` one read at a time, at the times given.
struct Timed {
    conn: Conn<Scripted>,
    bufs: Buffers,
    responses: Responses,
    timeouts: Timeouts,
    t0: Instant,
}

impl Timed {
    fn new(min_rate: u64) -> Timed {
        let responses = responses();
        let timeouts = Timeouts {
            header: Duration::from_secs(10),
            keepalive: Duration::from_secs(5),
            drain_idle: Duration::from_secs(1),
            min_rate,
        };
        let t0 = Instant::now();
        let ctx = Ctx {
            responses: &responses,
            limits: limits(),
            timeouts,
            now: t0,
            draining: false,
            maintenance: false,
            observer: None,
            counters: None,
            board: None,
        };
        let stream = Scripted {
            pieces: VecDeque::new(),
            eof: false,
            written: Vec::new(),
            write_budget: None,
            shut: false,
        };
        let conn = Conn::new(stream, &ctx);
        Timed {
            conn,
            bufs: Buffers::new(&limits()),
            responses,
            timeouts,
            t0,
        }
    }

    /// Delivers `bytes` at `ms` after accept.
    fn feed(&mut self, ms: u64, bytes: &[u8]) -> Interest {
        self.conn.stream_mut().pieces.push_back(bytes.to_vec());
        let ctx = Ctx {
            responses: &self.responses,
            limits: limits(),
            timeouts: self.timeouts,
            now: self.t0 + Duration::from_millis(ms),
            draining: false,
            maintenance: false,
            observer: None,
            counters: None,
            board: None,
        };
        self.conn.on_readable(&ctx, &mut self.bufs)
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
}

#[test]
fn a_trickling_head_is_due_at_the_minimum_rate_and_answered_408() {
    let mut c = Timed::new(512);
    c.feed(100, b"GET / HT");
    c.feed(1100, b"TP/1.1\r\n");
    // 16 bytes: RATE_GRACE plus 16/512 s from the head's first byte,
    // well before header_timeout (10 s from accept).
    assert_eq!(
        c.conn.deadline(),
        c.at(100) + crate::http::conn::RATE_GRACE + Duration::from_millis(31)
    );
    assert!(c.conn.is_slow());
    assert_eq!(
        c.conn.standing(),
        crate::http::conn::Standing::Head {
            since: c.at(100),
            got: 16
        }
    );
    let ctx = Ctx {
        responses: &c.responses,
        limits: limits(),
        timeouts: c.timeouts,
        now: c.at(2200),
        draining: false,
        maintenance: false,
        observer: None,
        counters: None,
        board: None,
    };
    let mut bufs = Buffers::new(&limits());
    assert_eq!(c.conn.on_timeout(&ctx, &mut bufs), Interest::Read);
    let out = String::from_utf8_lossy(&c.conn.stream().written).into_owned();
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    assert!(c.conn.is_lingering());
}

#[test]
fn a_head_that_keeps_up_stays_ahead_and_no_minimum_means_header_timeout() {
    // 769 bytes over 800 ms, well above 512/s: each byte buys time, so
    // the deadline stays beyond the grace from now.
    let mut c = Timed::new(512);
    c.feed(0, b"GET / HTTP/1.1\r\n");
    let filler = format!("X-Pad: {}\r\n", "a".repeat(242));
    for t in [0, 400, 800] {
        c.feed(t, filler.as_bytes());
    }
    assert_eq!(
        c.conn.deadline(),
        c.at(0) + crate::http::conn::RATE_GRACE + Duration::from_millis(769 * 1000 / 512)
    );
    assert!(c.conn.deadline() > c.at(800) + crate::http::conn::RATE_GRACE);
    // Off: a trickle waits for header_timeout (10 s from accept).
    let mut c = Timed::new(0);
    c.feed(100, b"G");
    c.feed(5000, b"E");
    assert_eq!(c.conn.deadline(), c.at(10_000));
    assert!(!c.conn.is_slow());
}

#[test]
fn a_trickling_body_is_due_at_the_minimum_rate_too() {
    let mut c = Timed::new(512);
    c.feed(
        0,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n",
    );
    assert_eq!(c.conn.standing(), crate::http::conn::Standing::Busy);
    c.feed(500, b"0123456789");
    // 10 bytes since the body began at 0 ms; the stretch limit is
    // 500 ms + header_timeout.
    assert_eq!(
        c.conn.deadline(),
        c.at(0) + crate::http::conn::RATE_GRACE + Duration::from_millis(19)
    );
    assert!(c.conn.is_slow());
}

#[test]
fn standing_follows_the_phases() {
    let mut c = Timed::new(512);
    assert_eq!(
        c.conn.standing(),
        crate::http::conn::Standing::Idle { since: c.at(0) }
    );
    c.feed(300, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        c.conn.standing(),
        crate::http::conn::Standing::Idle { since: c.at(300) }
    );
    c.feed(400, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nrest");
    assert_eq!(
        c.conn.standing(),
        crate::http::conn::Standing::Lingering { since: c.at(400) }
    );
}

fn req() -> impl Strategy<Value = Req> {
    // Bodies often hold request bytes, to catch a body taken for a request.
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        Just(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        Just(b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
    ];
    prop_oneof![
        Just(Req::Get),
        Just(Req::Head),
        Just(Req::Options),
        (0..ROUTED.len()).prop_map(Req::Routed),
        (0..ROUTED.len()).prop_map(Req::Routed),
        file_req(),
        file_req(),
        body.clone().prop_map(Req::PostLength),
        (
            body,
            proptest::collection::vec(1usize..64, 0..8),
            any::<bool>()
        )
            .prop_map(|(b, s, f)| Req::PostChunked(b, s, f)),
    ]
}

/// A GET or HEAD beneath the files route: a known path, or one made of
/// fragments (`..`, `%2e`, `%2f`, `%00`, `%5c`, `%c0%ae`, names).
fn file_req() -> impl Strategy<Value = Req> {
    let path = prop_oneof![
        (0..files::KNOWN.len()).prop_map(|i| files::KNOWN[i].0.to_owned()),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(|c| files::path_from(&c)),
    ];
    (path, any::<bool>()).prop_map(|(path, head)| Req::File { path, head })
}

/// Raw bytes for a path beneath the files route: fragments, raw `\`,
/// broken escapes, any byte; and header fields a files answer reads.
fn raw_file_request() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        (0..files::FRAGMENTS.len()).prop_map(|i| files::FRAGMENTS[i].as_bytes().to_vec()),
        Just(b"\\".to_vec()),
        Just(b"..\\".to_vec()),
        Just(b"%".to_vec()),
        Just(b"%2".to_vec()),
        Just(b"%c0%2e".to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    let field = prop_oneof![
        Just(&b""[..]),
        Just(&b"Range: bytes=1-4\r\n"[..]),
        Just(&b"Range: bytes=-3\r\n"[..]),
        Just(&b"Range: bytes=99-\r\n"[..]),
        Just(&b"If-None-Match: *\r\n"[..]),
        Just(&b"If-Match: \"nope\"\r\n"[..]),
        Just(&b"If-Modified-Since: Sun, 06 Nov 2094 08:49:37 GMT\r\n"[..]),
        Just(&b"Accept-Encoding: gzip, br\r\n"[..]),
    ];
    (
        proptest::collection::vec(piece, 0..10),
        proptest::collection::vec(field, 0..3),
        any::<bool>(),
    )
        .prop_map(|(pieces, fields, head)| {
            let mut r = if head {
                b"HEAD ".to_vec()
            } else {
                b"GET ".to_vec()
            };
            r.extend_from_slice(files::PREFIX.as_bytes());
            r.extend(pieces.concat());
            r.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n");
            r.extend(fields.concat());
            r.extend_from_slice(b"\r\n");
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn well_formed_sequences_are_answered_in_order(
        requests in proptest::collection::vec(req(), 1..12),
        cuts in proptest::collection::vec(0usize..4000, 0..40),
        budget in proptest::option::of(1usize..300),
    ) {
        run_sequence(&requests, b"", &cuts, budget);
    }

    #[test]
    fn a_bad_request_after_good_ones_is_the_last_answer(
        requests in proptest::collection::vec(req(), 0..6),
        bad in prop_oneof![
            Just(&b"GET / HTTP/1.1\r\n\r\n"[..]),
            Just(&b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..]),
            Just(&b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..]),
            Just(&b"GET / HTTP/1.1\nHost: a\n\n"[..]),
            Just(&b"GET / HTTP/9.9\r\nHost: a\r\n\r\n"[..]),
        ],
        trailing in proptest::collection::vec(any::<u8>(), 0..100),
        cuts in proptest::collection::vec(0usize..2000, 0..20),
    ) {
        let tail = [bad, &trailing[..]].concat();
        let o = run_sequence(&requests, &tail, &cuts, None);
        prop_assert_eq!(o.responses.len(), requests.len() + 1);
        prop_assert!(o.responses.last().is_some_and(|r| r.status >= 400 && r.close));
        prop_assert!(o.closed);
    }

    #[test]
    fn maintenance_answers_everything_but_health(
        requests in proptest::collection::vec(req(), 1..12),
        cuts in proptest::collection::vec(0usize..4000, 0..40),
        budget in proptest::option::of(1usize..300),
    ) {
        let state = State { maintenance: true, draining: false, ..State::default() };
        run_sequence_in(state, &requests, b"", &cuts, budget);
    }

    #[test]
    fn draining_answers_once_and_closes(
        requests in proptest::collection::vec(req(), 1..6),
        cuts in proptest::collection::vec(0usize..4000, 0..40),
        maintenance in any::<bool>(),
    ) {
        let state = State { maintenance, draining: true, ..State::default() };
        run_sequence_in(state, &requests, b"", &cuts, None);
    }

    #[test]
    fn a_proxy_header_is_invisible_to_http(
        requests in proptest::collection::vec(req(), 0..6),
        v2 in any::<bool>(),
        source in any::<[u8; 4]>(),
        cuts in proptest::collection::vec(0usize..3000, 0..30),
        budget in proptest::option::of(1usize..300),
    ) {
        let mut input = if v2 {
            let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
            h.extend_from_slice(&source);
            h.extend_from_slice(&[127, 0, 0, 1, 0x10, 0x00, 0, 80]);
            h
        } else {
            let [a, b, c, d] = source;
            format!("PROXY TCP4 {a}.{b}.{c}.{d} 127.0.0.1 4096 80\r\n").into_bytes()
        };
        for r in &requests {
            r.write(&mut input);
        }
        let state = State { proxied: true, ..State::default() };
        // run_in compares with the same requests on a plain connection.
        let o = run_in(state, &input, &cuts, budget);
        prop_assert_eq!(o.responses.len(), requests.len());
    }

    #[test]
    fn file_paths_of_any_bytes_never_leave_root(
        requests in proptest::collection::vec(raw_file_request(), 1..6),
        cuts in proptest::collection::vec(0usize..2000, 0..20),
        budget in proptest::option::of(1usize..300),
    ) {
        // run_in checks no answer holds the secret, and every files
        // answer's status and body.
        run(&requests.concat(), &cuts, budget);
    }

    #[test]
    fn arbitrary_bytes_keep_the_invariants(
        input in proptest::collection::vec(any::<u8>(), 0..3000),
        cuts in proptest::collection::vec(0usize..3000, 0..30),
        proxied in any::<bool>(),
    ) {
        run_in(State { proxied, ..State::default() }, &input, &cuts, None);
    }
}

// Found by the sequence fuzz target: draining, no request, a tail that
// is not one: its 400 is the one answer, then the connection closes.
#[test]
fn draining_with_only_a_bad_tail_answers_it_and_closes() {
    let state = State {
        draining: true,
        ..State::default()
    };
    let out = run_sequence_in(state, &[], b"\x16\t\n\xe8\r\n\r\n", &[], None);
    assert_eq!(out.responses.len(), 1);
    assert_eq!(out.responses[0].status, 400);
    assert!(out.closed);
}

/// The fuzz corpus holds the cases that matter (routes and PROXY
/// headers among them): every seed runs here too, and the routed and
/// proxied ones are answered as expected.
#[test]
fn the_fuzz_corpus_keeps_the_invariants() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request");
    let mut routed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let o = run_encoded(&data);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let statuses: Vec<u16> = o.responses.iter().map(|r| r.status).collect();
        let want: &[u16] = match name.as_str() {
            "route_static" => &[201, 201],
            "route_keep_path" => &[308],
            "route_keep_path_body" => &[308, 308],
            "route_health_draining" => &[503],
            "route_maintenance" => &[200, 503, 503],
            "route_methods" => &[405, 204, 405],
            "route_host" => &[203, 200, 203],
            "proxy_v1" => &[200, 201],
            "proxy_v1_split" | "proxy_v2" | "proxy_v2_local" => &[200],
            "proxy_missing" | "proxy_lf_only" => &[],
            "files_get" => &[200, 301, 200],
            "files_traversal" => &[400, 400, 404, 404, 400],
            "files_fields" => &[206, 304, 200],
            "files_backslash" => &[400],
            "files_budget" => &[200, 200],
            _ => continue,
        };
        routed += 1;
        assert_eq!(statuses, want, "{name}");
    }
    assert_eq!(routed, 18, "the routed seeds are in {}", dir.display());
}

#[test]
fn known_file_paths_get_their_answers() {
    for (path, status, body) in files::KNOWN {
        for head in [false, true] {
            let req = Req::File {
                path: path.to_owned(),
                head,
            };
            let o = run_sequence(std::slice::from_ref(&req), b"", &[], None);
            assert_eq!(o.responses[0].status, status, "{path}");
            if let (Some(body), false) = (body, head) {
                assert_eq!(o.responses[0].body, body, "{path}");
            }
        }
    }
    // The secret is there to be leaked: the checks would see it.
    let secret = files::base().join("outside/secret");
    assert_eq!(std::fs::read(secret).unwrap(), files::SECRET);
}

#[test]
fn a_client_that_never_reads_is_held_to_bounded_memory() {
    let mut input = Vec::new();
    for _ in 0..2000 {
        Req::Get.write(&mut input);
    }
    // The socket takes nothing: output piles up only as far as one read.
    let o = run(&input, &[], Some(0));
    assert!(o.responses.is_empty());
}

#[test]
#[should_panic(expected = "the secret outside root was sent")]
fn the_secret_in_any_output_is_caught() {
    let out = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n".as_slice(),
        files::SECRET,
    ]
    .concat();
    let o = Outcome {
        responses: parse_responses(&out),
        closed: false,
    };
    oracle::check_files(&out, &[], &o);
}
