//! What a request meets on HTTP/1.1 holds on HTTP/2: the PROXY protocol
//! on an `h2c` listener (the header's address logged and capped),
//! `max_request_header_bytes` on the decoded header list (431 as a stream
//! error, the connection lives), `max_connections_per_client` counting h2
//! connections.

use std::net::IpAddr;
use std::time::Duration;

use super::client::*;
use super::common::*;
use super::peers::access_lines;

const ACCESS_LOG: &str = "[access_log]\npath = \"access.log\"\nbuffer = \"0\"\n";

// Proves: a PROXY v1 header before the h2 preface names the client: the
// access log shows its address, not the connection's.
#[test]
fn proxy_protocol_on_an_h2c_listener_logs_the_header_address() {
    let server = Server::start(&format!(
        "listen = [\"{{addr}} h2c proxy_protocol\"]\nworkers = 1\n{ACCESS_LOG}"
    ));
    let header = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n";
    let mut c = H2::over(server.open(), header, &settings(&[]));
    assert_eq!(c.get(1, "/").status, 200);
    let lines = access_lines(server.dir.path(), 1);
    assert!(
        lines[0].starts_with("192.0.2.7 - - [") && lines[0].contains("\"GET / HTTP/2.0\" 200 14 "),
        "{lines:#?}"
    );
    server.finish();
}

// Proves: a decoded header list past max_request_header_bytes gets a 431
// on its stream (HPACK stays in step, nothing resets the connection),
// and the next stream on the connection is answered.
#[test]
fn a_header_list_past_the_limit_is_a_431_on_its_stream() {
    let server = Server::start(&format!(
        "listen = [\"{{addr}} h2c\"]\nworkers = 1\nmax_request_header_bytes = 1024\n{ACCESS_LOG}"
    ));
    let mut c = H2::connect(server.addr);
    let mut block = request_block("/", "t");
    for i in 0..12 {
        block.extend(literal(&format!("x-pad-{i}"), &"p".repeat(100)));
    }
    c.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block));
    assert_eq!(c.response(1).status, 431);
    assert_eq!(c.get(3, "/").status, 200, "the connection lives");
    let lines = access_lines(server.dir.path(), 2);
    assert!(lines[0].contains("\" 431 "), "{lines:#?}");
    server.finish();
}

/// An h2 connection from `source` that has been answered once (idle).
fn answered_from(server: &Server, source: IpAddr) -> H2 {
    let mut c = H2::over(open_from(source, server.addr), b"", &settings(&[]));
    assert_eq!(c.get(1, "/").status, 200);
    c
}

// Proves: max_connections_per_client counts h2 connections: a client's
// third idle h2 connection past a cap of 2 closes its longest idle one;
// its other one and another client's are untouched.
#[test]
fn max_connections_per_client_counts_h2_connections() {
    let server = Server::start(
        "listen = [\"{addr} h2c\"]\nworkers = 1\nmax_connections_per_client = 2\n\
         keepalive_timeout = \"30s\"\nmin_request_rate = \"off\"\n",
    );
    let client: IpAddr = [127, 0, 0, 2].into();
    let mut first = answered_from(&server, client);
    let mut other = answered_from(&server, [127, 0, 0, 3].into());
    let mut second = answered_from(&server, client);
    let mut third = answered_from(&server, client);
    server.wait_for_log("client=127.0.0.2 at max_connections_per_client=2");
    assert!(first.closes_within(WAIT), "the idle-longest one goes");
    for (id, c) in [(3, &mut second), (3, &mut third), (3, &mut other)] {
        assert_eq!(c.get(id, "/").status, 200);
    }
    assert!(!second.closes_within(Duration::from_millis(300)));
    server.finish();
}

// Proves: behind a PROXY header, the cap counts the header's address on
// h2 connections too.
#[test]
fn max_connections_per_client_counts_h2_connections_by_proxy_address() {
    let server = Server::start(
        "listen = [\"{addr} h2c proxy_protocol\"]\nworkers = 1\nmax_connections_per_client = 1\n\
         keepalive_timeout = \"30s\"\nmin_request_rate = \"off\"\n",
    );
    let connect = |client: &str| {
        let header = format!("PROXY TCP4 {client} 127.0.0.1 5555 80\r\n");
        let mut c = H2::over(server.open(), header.as_bytes(), &settings(&[]));
        assert_eq!(c.get(1, "/").status, 200);
        c
    };
    let mut first = connect("192.0.2.9");
    let mut other = connect("192.0.2.10");
    let mut second = connect("192.0.2.9");
    server.wait_for_log("client=192.0.2.9 at max_connections_per_client=1");
    assert!(first.closes_within(WAIT));
    assert_eq!(second.get(3, "/").status, 200);
    assert_eq!(other.get(3, "/").status, 200);
    server.finish();
}
