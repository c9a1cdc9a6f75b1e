//! The default response, byte for byte, and a clean graceful stop.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use common::*;

#[test]
fn default_response_byte_for_byte() {
    let server = Server::start("workers = 1\n");
    let response = server.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let date = response
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .expect("a Date header");
    assert!(
        httpdate::parse_http_date(date).is_ok(),
        "Date {date:?} is an IMF-fixdate"
    );
    let expected = format!(
        "HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: preforkd\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 14\r\nConnection: close\r\n\r\nHello, World!\n"
    );
    assert_eq!(response, expected);
    server.finish();
}
