//! Tests of `decide.rs`: RFC 9110 13.2.2's precedence, ranges, If-Range,
//! variants and the fields each status carries.

use super::*;

const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";
const NOW: i64 = 1_700_000_000;

const META: Meta = Meta {
    size: 100,
    mtime_secs: 784_111_777,
    mtime_nsecs: 7,
    ino: 42,
    dev: 1,
};

fn tag() -> String {
    String::from_utf8(ETag::of(&META).as_bytes().to_vec()).unwrap()
}

fn identity() -> Representation {
    Representation {
        meta: META,
        encoding: None,
    }
}

fn run(req: &FileRequest<'_>) -> Answer {
    decide(req, &identity(), false, NOW)
}

fn fields(a: &Answer) -> String {
    let h = FileHeaders {
        content_type: "text/css; charset=utf-8",
        cache_control: Some("max-age=60"),
    };
    let mut s = String::new();
    a.for_each_field(&h, |f, v| {
        s += &format!("{}: {}\n", f.name(), String::from_utf8_lossy(v));
    });
    s
}

/// Builds a request from (field, value) pairs.
fn req<'a>(pairs: &[(&str, &'a str)]) -> FileRequest<'a> {
    let mut r = FileRequest::get();
    for &(k, v) in pairs {
        let v = Some(v.as_bytes());
        match k {
            "HEAD" => r.method = Method::Head,
            "If-Match" => r.if_match = v,
            "If-None-Match" => r.if_none_match = v,
            "If-Modified-Since" => r.if_modified_since = v,
            "If-Unmodified-Since" => r.if_unmodified_since = v,
            "Range" => r.range = v,
            "If-Range" => r.if_range = v,
            "Accept-Encoding" => r.accept_encoding = v,
            _ => panic!("{k}"),
        }
    }
    r
}

#[test]
fn plain_get_and_head() {
    let a = run(&FileRequest::get());
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body,
        Body::File {
            offset: 0,
            len: 100
        }
    );
    assert_eq!(
        fields(&a),
        format!(
            "Content-Type: text/css; charset=utf-8\nContent-Length: 100\nLast-Modified: {LM}\n\
             ETag: {}\nAccept-Ranges: bytes\nCache-Control: max-age=60\n",
            tag()
        )
    );
    let h = run(&req(&[("HEAD", "")]));
    assert_eq!((h.status, h.body), (200, Body::Empty));
    assert_eq!(fields(&h), fields(&a));
}

#[test]
fn precedence() {
    let t = tag();
    let weak = format!("W/{t}");
    let cases: &[(&[(&str, &str)], u16)] = &[
        (&[("If-Match", "*")], 200),
        (&[("If-Match", &t)], 200),
        (&[("If-Match", "\"nope\"")], 412),
        // If-Match compares strongly.
        (&[("If-Match", &weak)], 412),
        (&[("If-Unmodified-Since", LM)], 200),
        (&[("If-Unmodified-Since", AFTER)], 200),
        (&[("If-Unmodified-Since", BEFORE)], 412),
        (&[("If-Unmodified-Since", "garbage")], 200),
        // If-Match present: If-Unmodified-Since is not looked at.
        (&[("If-Match", &t), ("If-Unmodified-Since", BEFORE)], 200),
        (
            &[("If-Match", "\"x\""), ("If-Unmodified-Since", AFTER)],
            412,
        ),
        (&[("If-None-Match", &t)], 304),
        (&[("If-None-Match", &weak)], 304),
        (&[("If-None-Match", "*")], 304),
        (&[("If-None-Match", "\"a\", \"b\"")], 200),
        (&[("If-Modified-Since", LM)], 304),
        (&[("If-Modified-Since", AFTER)], 304),
        (&[("If-Modified-Since", BEFORE)], 200),
        (&[("If-Modified-Since", "garbage")], 200),
        // If-None-Match present: If-Modified-Since is not looked at.
        (
            &[("If-None-Match", "\"x\""), ("If-Modified-Since", LM)],
            200,
        ),
        (&[("If-None-Match", &t), ("If-Modified-Since", BEFORE)], 304),
        // 412 before 304.
        (&[("If-Match", "\"x\""), ("If-None-Match", &t)], 412),
        (
            &[("If-Unmodified-Since", BEFORE), ("If-Modified-Since", LM)],
            412,
        ),
        // 304 before a range.
        (&[("If-None-Match", &t), ("Range", "bytes=0-1")], 304),
        (&[("If-Match", &t), ("Range", "bytes=0-1")], 206),
        (&[("HEAD", ""), ("If-None-Match", &t)], 304),
        (&[("HEAD", ""), ("If-Match", "\"x\"")], 412),
    ];
    for (pairs, want) in cases {
        assert_eq!(run(&req(pairs)).status, *want, "{pairs:?}");
    }
}

#[test]
fn not_modified_fields() {
    let a = run(&req(&[("If-None-Match", &tag())]));
    assert_eq!(
        (a.status, a.body, a.content_length),
        (304, Body::Empty, None)
    );
    assert_eq!(
        fields(&a),
        format!(
            "Last-Modified: {LM}\nETag: {}\nAccept-Ranges: bytes\nCache-Control: max-age=60\n",
            tag()
        )
    );
}

#[test]
fn precondition_failed_fields() {
    let a = run(&req(&[("If-Match", "\"x\"")]));
    assert_eq!(a.body, Body::Text(b"Precondition Failed\n"));
    assert_eq!(
        fields(&a),
        "Content-Type: text/plain; charset=utf-8\nContent-Length: 20\nAccept-Ranges: bytes\n"
    );
    let h = run(&req(&[("HEAD", ""), ("If-Match", "\"x\"")]));
    assert_eq!((h.body, h.content_length), (Body::Empty, Some(20)));
}

#[test]
fn ranges() {
    let a = run(&req(&[("Range", "bytes=10-19")]));
    assert_eq!(a.status, 206);
    assert_eq!(
        a.body,
        Body::File {
            offset: 10,
            len: 10
        }
    );
    let f = fields(&a);
    assert!(f.contains("Content-Length: 10\n"), "{f}");
    assert!(f.contains("Content-Range: bytes 10-19/100\n"), "{f}");
    assert!(f.contains("Accept-Ranges: bytes\n"), "{f}");

    let a = run(&req(&[("Range", "bytes=-1")]));
    assert_eq!(a.body, Body::File { offset: 99, len: 1 });

    let a = run(&req(&[("Range", "bytes=100-")]));
    assert_eq!(a.status, 416);
    assert_eq!(a.body, Body::Text(b"Range Not Satisfiable\n"));
    assert_eq!(
        fields(&a),
        "Content-Type: text/plain; charset=utf-8\nContent-Length: 22\n\
         Accept-Ranges: bytes\nContent-Range: bytes */100\n"
    );

    // Ignored: several ranges, bad syntax; and for HEAD (RFC 9110 14.2).
    for pairs in [
        &[("Range", "bytes=0-1,5-6")][..],
        &[("Range", "bytes=x")],
        &[("HEAD", ""), ("Range", "bytes=0-1")],
    ] {
        let a = run(&req(pairs));
        assert_eq!((a.status, a.content_length), (200, Some(100)), "{pairs:?}");
        assert_eq!(a.content_range, None);
    }
}

#[test]
fn if_range() {
    let t = tag();
    let weak = format!("W/{t}");
    let cases: &[(&str, u16)] = &[
        (&t, 206),
        (&weak, 200),
        ("\"other\"", 200),
        (LM, 206),
        (AFTER, 200),
        (BEFORE, 200),
        ("garbage", 200),
    ];
    for (v, want) in cases {
        let a = run(&req(&[("Range", "bytes=0-0"), ("If-Range", v)]));
        assert_eq!(a.status, *want, "If-Range: {v}");
    }
    // If-Range without Range does nothing.
    assert_eq!(run(&req(&[("If-Range", "\"other\"")])).status, 200);
}

#[test]
fn last_modified_is_never_in_the_future() {
    let future = Representation {
        meta: Meta {
            mtime_secs: NOW + 3600,
            ..META
        },
        encoding: None,
    };
    let a = decide(&FileRequest::get(), &future, false, NOW);
    assert_eq!(a.last_modified, Some(NOW));
    let old = Representation {
        meta: Meta {
            mtime_secs: -1,
            ..META
        },
        encoding: None,
    };
    let a = decide(&FileRequest::get(), &old, false, NOW);
    assert_eq!(a.last_modified, None);
    assert!(!fields(&a).contains("Last-Modified"));
    // No date to compare: If-Modified-Since and If-Unmodified-Since ignored.
    let r = req(&[("If-Modified-Since", LM)]);
    assert_eq!(decide(&r, &old, false, NOW).status, 200);
    let r = req(&[("If-Unmodified-Since", LM)]);
    assert_eq!(decide(&r, &old, false, NOW).status, 200);
}

#[test]
fn variants() {
    let br = Meta {
        size: 30,
        ino: 43,
        ..META
    };
    let gz = Meta {
        size: 40,
        ino: 44,
        ..META
    };
    let variants = [(Encoding::Br, br), (Encoding::Gzip, gz)];
    let among = |ae: Option<&str>, vs: &[(Encoding, Meta)]| {
        let mut r = FileRequest::get();
        r.accept_encoding = ae.map(str::as_bytes);
        decide_among(&r, &META, vs, true, NOW)
    };
    let a = among(Some("gzip, br"), &variants);
    assert_eq!(
        (a.encoding, a.content_length),
        (Some(Encoding::Br), Some(30))
    );
    assert_eq!(a.etag, ETag::of(&br));
    let f = fields(&a);
    assert!(
        f.contains("Content-Encoding: br\nVary: Accept-Encoding\n"),
        "{f}"
    );
    // Content-Type is the requested file's.
    assert!(
        f.starts_with("Content-Type: text/css; charset=utf-8\n"),
        "{f}"
    );

    let a = among(Some("gzip"), &variants);
    assert_eq!(a.encoding, Some(Encoding::Gzip));
    // Only the gzip file exists: gzip wins although br is preferred.
    let a = among(Some("br;q=1, gzip;q=0.5"), &variants[1..]);
    assert_eq!(a.encoding, Some(Encoding::Gzip));
    // Identity, still with Vary.
    for ae in [None, Some("identity"), Some("deflate")] {
        let a = among(ae, &variants);
        assert_eq!((a.encoding, a.content_length), (None, Some(100)), "{ae:?}");
        let f = fields(&a);
        assert!(f.contains("Vary: Accept-Encoding\n") && !f.contains("Content-Encoding"));
    }
    let a = among(Some("br"), &[]);
    assert_eq!(a.encoding, None);

    // A range of the chosen representation, validated by its own tag.
    let br_tag = String::from_utf8(ETag::of(&br).as_bytes().to_vec()).unwrap();
    let mut r = req(&[("Range", "bytes=20-"), ("If-Range", &br_tag)]);
    r.accept_encoding = Some(b"br");
    let a = decide_among(&r, &META, &variants, true, NOW);
    assert_eq!(
        (a.status, a.body),
        (
            206,
            Body::File {
                offset: 20,
                len: 10
            }
        )
    );
    assert!(fields(&a).contains("Content-Range: bytes 20-29/30\n"));
    // The identity file's tag does not validate the br variant.
    let id_tag = tag();
    let mut r = req(&[("If-None-Match", &id_tag)]);
    r.accept_encoding = Some(b"br");
    assert_eq!(decide_among(&r, &META, &variants, true, NOW).status, 200);
    // 304 keeps Vary, drops Content-Encoding.
    let mut r = req(&[("If-None-Match", &br_tag)]);
    r.accept_encoding = Some(b"br");
    let a = decide_among(&r, &META, &variants, true, NOW);
    assert_eq!(a.status, 304);
    let f = fields(&a);
    assert!(f.contains("Vary: Accept-Encoding\n") && !f.contains("Content-Encoding"));
}

#[test]
fn huge_numbers_fit() {
    let big = Representation {
        meta: Meta {
            size: u64::MAX,
            ..META
        },
        encoding: None,
    };
    let a = decide(&req(&[("Range", "bytes=1-")]), &big, false, NOW);
    let f = fields(&a);
    let want = format!("Content-Range: bytes 1-{}/{}\n", u64::MAX - 1, u64::MAX);
    assert!(f.contains(&want), "{f}");
}
