//! The conformance table: the RFC 9113 sections h2spec covers (preface,
//! frame sizes, stream states, flow control, SETTINGS, HPACK errors,
//! CONTINUATION rules, malformed requests), each case sent after the
//! preface and SETTINGS to the real binary on an `h2c` listener, each
//! expecting the frame (GOAWAY for a connection error, RST_STREAM for a
//! stream error) and the error code the RFC names.

use super::client::*;
use super::common::{tool, Nginx, Server};

/// One case: what is sent, and the error expected.
struct Case {
    section: &'static str,
    what: &'static str,
    send: Vec<u8>,
    kind: u8,
    code: u32,
}

fn case(section: &'static str, what: &'static str, send: Vec<u8>, kind: u8, code: u32) -> Case {
    Case {
        section,
        what,
        send,
        kind,
        code,
    }
}

/// A request block with one more field.
fn with_field(name: &str, value: &str) -> Vec<u8> {
    let mut b = request_block("/", "t");
    b.extend(literal(name, value));
    b
}

#[rustfmt::skip] // a table: one case a line
fn cases() -> Vec<Case> {
    let open = |id| frame(HEADERS, END_HEADERS, id, &request_block("/", "t"));
    let get = |id| get_frame(id, "/");
    let whole = |block: Vec<u8>| frame(HEADERS, END_HEADERS | END_STREAM, 1, &block);
    let no_path = [vec![0x82, 0x86], literal(":authority", "t")].concat();
    let max_window = 0x7fff_ffffu32.to_be_bytes();
    vec![
        case("3.4", "a PING before the client's SETTINGS", frame(PING, 0, 0, &[0; 8]), GOAWAY, PROTOCOL_ERROR),
        case("4.2", "DATA larger than SETTINGS_MAX_FRAME_SIZE", [open(1), frame(DATA, 0, 1, &[0; 16_385])].concat(), GOAWAY, FRAME_SIZE_ERROR),
        case("4.3", "a header block that does not decode", whole(vec![0x80]), GOAWAY, COMPRESSION_ERROR),
        case("5.1", "DATA on an idle stream", frame(DATA, 0, 1, b"x"), GOAWAY, PROTOCOL_ERROR),
        case("5.1", "HEADERS on a half-closed (remote) stream", [get(1), get(1)].concat(), RST_STREAM, STREAM_CLOSED),
        case("5.1.1", "an even stream id from the client", get(2), GOAWAY, PROTOCOL_ERROR),
        case("5.1.1", "a stream id lower than one already opened", [get(5), get(3)].concat(), GOAWAY, PROTOCOL_ERROR),
        case("6.1", "DATA on stream 0", frame(DATA, 0, 0, b"x"), GOAWAY, PROTOCOL_ERROR),
        case("6.2", "HEADERS on stream 0", frame(HEADERS, END_HEADERS, 0, &request_block("/", "t")), GOAWAY, PROTOCOL_ERROR),
        case("6.3", "PRIORITY of 4 bytes", frame(PRIORITY, 0, 1, &[0; 4]), RST_STREAM, FRAME_SIZE_ERROR),
        case("6.4", "RST_STREAM on an idle stream", frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]), GOAWAY, PROTOCOL_ERROR),
        case("6.4", "RST_STREAM of 3 bytes", [open(1), frame(RST_STREAM, 0, 1, &[0; 3])].concat(), GOAWAY, FRAME_SIZE_ERROR),
        case("6.5", "SETTINGS ACK with a payload", frame(SETTINGS, ACK, 0, &[0; 6]), GOAWAY, FRAME_SIZE_ERROR),
        case("6.5", "SETTINGS on a stream", frame(SETTINGS, 0, 1, &[]), GOAWAY, PROTOCOL_ERROR),
        case("6.5", "SETTINGS of 3 bytes", frame(SETTINGS, 0, 0, &[0; 3]), GOAWAY, FRAME_SIZE_ERROR),
        case("6.5.2", "SETTINGS_ENABLE_PUSH of 2", settings(&[(2, 2)]), GOAWAY, PROTOCOL_ERROR),
        case("6.5.2", "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", settings(&[(4, 1 << 31)]), GOAWAY, FLOW_CONTROL_ERROR),
        case("6.5.2", "SETTINGS_MAX_FRAME_SIZE below 16384", settings(&[(5, 16_383)]), GOAWAY, PROTOCOL_ERROR),
        case("6.7", "PING of 7 bytes", frame(PING, 0, 0, &[0; 7]), GOAWAY, FRAME_SIZE_ERROR),
        case("6.7", "PING on a stream", frame(PING, 0, 1, &[0; 8]), GOAWAY, PROTOCOL_ERROR),
        case("6.8", "GOAWAY on a stream", frame(GOAWAY, 0, 1, &[0; 8]), GOAWAY, PROTOCOL_ERROR),
        case("6.9", "WINDOW_UPDATE of 0 on the connection", frame(WINDOW_UPDATE, 0, 0, &[0; 4]), GOAWAY, PROTOCOL_ERROR),
        case("6.9", "WINDOW_UPDATE of 0 on a stream", [open(1), frame(WINDOW_UPDATE, 0, 1, &[0; 4])].concat(), RST_STREAM, PROTOCOL_ERROR),
        case("6.9", "WINDOW_UPDATE of 3 bytes", frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1]), GOAWAY, FRAME_SIZE_ERROR),
        case("6.9.1", "a connection window past 2^31-1", frame(WINDOW_UPDATE, 0, 0, &max_window), GOAWAY, FLOW_CONTROL_ERROR),
        case("6.10", "CONTINUATION without HEADERS", frame(CONTINUATION, END_HEADERS, 1, &request_block("/", "t")), GOAWAY, PROTOCOL_ERROR),
        case("6.10", "DATA inside a header block", [frame(HEADERS, 0, 1, &[0x82]), frame(DATA, 0, 1, b"x")].concat(), GOAWAY, PROTOCOL_ERROR),
        case("6.10", "CONTINUATION on another stream", [frame(HEADERS, 0, 1, &[0x82]), frame(CONTINUATION, END_HEADERS, 3, &[0x86])].concat(), GOAWAY, PROTOCOL_ERROR),
        case("8.2", "an upper-case field name", whole(with_field("X-Upper", "a")), RST_STREAM, PROTOCOL_ERROR),
        case("8.2.2", "a connection-specific field", whole(with_field("connection", "keep-alive")), RST_STREAM, PROTOCOL_ERROR),
        case("8.3.1", "no :path", whole(no_path), RST_STREAM, PROTOCOL_ERROR),
    ]
}

fn name(kind: u8) -> &'static str {
    if kind == GOAWAY {
        "GOAWAY"
    } else {
        "RST_STREAM"
    }
}

/// Each case's outcome at `addr` that differs from what RFC 9113 names
/// (a server that sends neither frame within `wait` shows as `none`).
fn run_table(addr: std::net::SocketAddr, wait: std::time::Duration) -> Vec<String> {
    let mut failed = Vec::new();
    for c in cases() {
        // §3.4's case sends its frame in place of the SETTINGS.
        let mut h2 = if c.section == "3.4" {
            H2::with_settings(addr, &c.send)
        } else {
            let mut h2 = H2::connect(addr);
            h2.send(&c.send);
            h2
        };
        let got = h2.within(wait, |f| match f.kind {
            GOAWAY | RST_STREAM => Some((f.kind, f.code())),
            _ => None,
        });
        if got != Some((c.kind, c.code)) {
            let got = got.map_or("none".to_owned(), |(k, code)| {
                format!("{} {code:#x}", name(k))
            });
            failed.push(format!(
                "§{} {}: expected {} {:#x}, got {got}",
                c.section,
                c.what,
                name(c.kind),
                c.code,
            ));
        }
    }
    failed
}

#[test]
fn conformance_table_rfc9113() {
    let server = Server::start("listen = [\"{addr} h2c\"]\nworkers = 1\n");
    let failed = run_table(server.addr, super::common::WAIT);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    server.finish();
}

/// The same table against nginx (`listen ... http2`), for comparison: a
/// report, not a check (`cargo test --test h2 -- --ignored --nocapture
/// nginx_against`); nginx is not ours to fix.
#[test]
#[ignore]
fn nginx_against_the_conformance_table() {
    if tool("nginx", "nginx-light").is_none() {
        return;
    }
    let (_nginx, addr) =
        Nginx::start("listen {addr} http2;\n    location / { return 200 \"hi\\n\"; }");
    let failed = run_table(addr, std::time::Duration::from_secs(2));
    eprintln!(
        "nginx: {} of {} cases differ from RFC 9113:\n{}",
        failed.len(),
        cases().len(),
        failed.join("\n")
    );
}
