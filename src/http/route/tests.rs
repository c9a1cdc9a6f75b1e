//! The router's unit tests: file order, methods and hosts, keep_path,
//! health, status pages.

use super::*;
use crate::http::parse::Body;
use crate::http::template::ResponseSpec;

/// `Router::answer` for a GET, as a status.
fn ask(
    r: &Router,
    out: &mut Vec<u8>,
    choice: Choice,
    tail: &[u8],
    persistence: Persistence,
    draining: bool,
    asker: Asker,
) -> u16 {
    let request = Request {
        method: Method::Get,
        http10: false,
        keep_alive: true,
        body: Body::None,
        expect_continue: false,
    };
    let q = Question {
        request: &request,
        choice,
        tail,
        head: &[],
        persistence,
        maintenance: false,
        draining,
        asker,
    };
    r.answer(out, &q).status
}
use crate::http::parse::{parse_head, Limits, Parsed};

fn stat(body: &str) -> Answer {
    Answer::Static(ResponseSpec {
        status: 200,
        content_type: TEXT.into(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    })
}

fn route(path: PathMatch, answer: Answer) -> RouteSpec {
    RouteSpec {
        path,
        host: None,
        methods: Methods::DEFAULT,
        answer,
    }
}

fn exact(p: &str) -> PathMatch {
    PathMatch::Exact(p.into())
}

fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

fn choose(r: &Router, req: &str) -> (Choice, String) {
    let limits = Limits {
        max_header_bytes: 8192,
        max_body_bytes: 1 << 20,
    };
    let Ok(Parsed::Complete(request, n)) = parse_head(req.as_bytes(), &limits) else {
        panic!("not a request: {req:?}");
    };
    let (c, tail) = r.choose(&request, &req.as_bytes()[..n]);
    (c, String::from_utf8(tail.to_vec()).unwrap())
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: a.example\r\n\r\n")
}

#[test]
fn file_order_decides_between_prefix_and_exact() {
    let r = Router::new(&[
        route(prefix("/a"), stat("p")),
        route(exact("/a/b"), stat("e")),
        route(exact("/x"), stat("x")),
        route(prefix("/x"), stat("px")),
    ]);
    assert_eq!(choose(&r, &get("/a/b")).0, Choice::Route(0));
    assert_eq!(choose(&r, &get("/x")).0, Choice::Route(2));
    assert_eq!(choose(&r, &get("/x/y")).0, Choice::Route(3));
    assert_eq!(choose(&r, &get("/y")).0, Choice::Default);
    // "/" as a prefix is met by every path, in its file place.
    let r2 = Router::new(&[
        route(exact("/"), stat("root")),
        route(prefix("/b"), stat("b")),
        route(prefix("/"), stat("all")),
        route(prefix("/a"), stat("a: never")),
    ]);
    assert_eq!(choose(&r2, &get("/")).0, Choice::Route(0));
    assert_eq!(choose(&r2, &get("/b/c")).0, Choice::Route(1));
    assert_eq!(choose(&r2, &get("/a")).0, Choice::Route(2));
    assert_eq!(choose(&r2, &get("/zz")).0, Choice::Route(2));
    assert_eq!(choose(&r, &get("/x?q=1")).0, Choice::Route(2));
    assert_eq!(
        choose(
            &r,
            "GET http://h.example/x?q HTTP/1.1\r\nHost: h.example\r\n\r\n"
        )
        .0,
        Choice::Route(2)
    );
    assert_eq!(
        choose(&r, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").0,
        Choice::Default
    );
}

#[test]
fn methods_and_hosts_take_part_in_matching() {
    let mut post = route(exact("/p"), stat("post"));
    post.methods = Methods::parse(["POST"]).unwrap();
    let mut hosted = route(exact("/p"), stat("host"));
    hosted.host = Some("b.example".into());
    let r = Router::new(&[post, hosted, route(exact("/p"), stat("get"))]);
    let req = |m: &str, host: &str| format!("{m} /p HTTP/1.1\r\nHost: {host}\r\n\r\n");
    assert_eq!(choose(&r, &req("POST", "x")).0, Choice::Route(0));
    assert_eq!(
        choose(&r, &req("GET", "B.Example:8080")).0,
        Choice::Route(1)
    );
    assert_eq!(choose(&r, &req("GET", "a.example")).0, Choice::Route(2));
    assert_eq!(
        choose(&r, &req("PUT", "a.example")).0,
        Choice::NotAllowed(0)
    );
    assert_eq!(
        choose(&r, &req("OPTIONS", "a.example")).0,
        Choice::Options(0)
    );
}

#[test]
fn keep_path_tail_and_bytes() {
    let redirect = |keep_path| Answer::Redirect {
        status: 308,
        location: "https://new.example/n".into(),
        keep_path,
        headers: Vec::new(),
    };
    let mut r = Router::new(&[
        route(prefix("/old/"), redirect(true)),
        route(exact("/e"), redirect(true)),
        route(exact("/plain"), redirect(false)),
    ]);
    r.set_date(b"Sun, 06 Nov 1994 08:49:37 GMT");
    let (c, tail) = choose(&r, &get("/old/a/b?x=1"));
    assert_eq!((c, tail.as_str()), (Choice::Route(0), "a/b?x=1"));
    let (c, tail) = choose(&r, &get("/e?q"));
    assert_eq!((c, tail.as_str()), (Choice::Route(1), "?q"));
    let (c, tail) = choose(&r, &get("/plain?q"));
    assert_eq!((c, tail.as_str()), (Choice::Route(2), ""));
    let mut out = Vec::new();
    ask(
        &r,
        &mut out,
        Choice::Route(0),
        b"a/b?x=1",
        Persistence::KeepAlive,
        false,
        Asker::default(),
    );
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.starts_with("HTTP/1.1 308 Permanent Redirect\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
        "{s}"
    );
    assert!(
        s.contains("\r\nLocation: https://new.example/na/b?x=1\r\n\r\n"),
        "{s}"
    );
}

#[test]
fn health_drains_and_methods_parse() {
    let r = Router::new(&[route(exact("/healthz"), Answer::Health)]);
    let mut out = Vec::new();
    ask(
        &r,
        &mut out,
        Choice::Route(0),
        &[],
        Persistence::KeepAlive,
        false,
        Asker::default(),
    );
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n") && out.ends_with(b"\r\n\r\nok\n"));
    out.clear();
    ask(
        &r,
        &mut out,
        Choice::Route(0),
        &[],
        Persistence::Close,
        true,
        Asker::default(),
    );
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.starts_with("HTTP/1.1 503 ")
            && s.contains("Connection: close\r\n")
            && s.ends_with("draining\n"),
        "{s}"
    );
    assert!(r.bypasses_maintenance(Choice::Route(0)));
    assert_eq!(Methods::parse(["GET"]), Ok(Methods::DEFAULT));
    assert_eq!(Methods::parse(["GET", "TRACE"]), Err("TRACE"));
    assert_eq!(
        Methods::parse(["POST", "GET"]).unwrap().allow_header(),
        "Allow: GET, HEAD, POST, OPTIONS\r\n"
    );
}

#[test]
fn a_status_route_answers_its_allow_list_and_403_to_others() {
    let allow = vec!["10.0.0.0/8".parse().unwrap()];
    let r = Router::new(&[
        route(
            exact("/status"),
            Answer::Status {
                page: Page::StubStatus,
                allow,
            },
        ),
        route(
            exact("/metrics"),
            Answer::Status {
                page: Page::Metrics,
                allow: crate::http::cidr::Cidr::localhost(),
            },
        ),
    ]);
    assert!(r.has_status());
    assert!(r.bypasses_maintenance(Choice::Route(1)));
    let answer = |i: u16, client: Option<&str>| {
        let mut out = Vec::new();
        let status = ask(
            &r,
            &mut out,
            Choice::Route(i),
            &[],
            Persistence::KeepAlive,
            false,
            Asker {
                client: client.map(|c| c.parse().unwrap()),
                board: None,
            },
        );
        (status, String::from_utf8(out).unwrap())
    };
    let (status, s) = answer(0, Some("10.1.2.3"));
    assert_eq!(status, 200);
    assert!(s.contains("\r\nContent-Type: text/plain\r\n"), "{s}");
    assert!(s.contains("\r\n\r\nActive connections: "), "{s}");
    assert!(s.ends_with(" \n"), "{s}");
    for client in [Some("11.0.0.1"), Some("127.0.0.1"), None] {
        let (status, s) = answer(0, client);
        assert_eq!(status, 403, "{client:?}");
        assert!(s.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{s}");
    }
    let (status, s) = answer(1, Some("::1"));
    assert_eq!(status, 200);
    assert!(
        s.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{s}"
    );
    assert!(
        s.contains("# TYPE preforkd_requests_total counter\n"),
        "{s}"
    );
    assert_eq!(answer(1, Some("127.0.0.2")).0, 403);
}
