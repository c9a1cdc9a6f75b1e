//! `kind = "files"` routes over HTTP/2: a 3 MiB file to curl over h2c
//! and over TLS (byte for byte), a range (206), HEAD, the access log's
//! body bytes; and a client that resets the stream mid-file is logged
//! with what was sent, not the file's length.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::client::*;
use super::common::*;
use super::peers::access_lines;
use super::tls_config;

const BIG: usize = 3 << 20;

/// 3 MiB that no two offsets confuse (an LCG's high bytes).
fn big_bytes() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..BIG)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// A site (`www/` with index.html and big.bin) and its files route with
/// an access log.
fn site(dir: &TempDir) -> (PathBuf, String) {
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>\n").unwrap();
    std::fs::write(root.join("big.bin"), big_bytes()).unwrap();
    let tables = format!(
        "[access_log]\npath = \"access.log\"\nbuffer = \"0\"\n\
         [[route]]\nprefix = \"/\"\nkind = \"files\"\nroot = \"{}\"\n",
        root.display()
    );
    (root, tables)
}

/// curl with `args`, then `url`: its stdout (the body, or what `-w` and
/// `-I` print), within a minute.
fn curl(args: &[&str], url: &str) -> Vec<u8> {
    let out = output_within(
        Command::new("curl")
            .args(["-s", "--max-time", "50"])
            .args(args)
            .arg(url),
        b"",
        std::time::Duration::from_secs(60),
    );
    assert!(out.status.success(), "curl {args:?} {url}: {out:?}");
    out.stdout
}

/// The big file whole, a range of it and HEAD, with `proto` (curl's
/// flags for h2 prior knowledge or ALPN); each logged as HTTP/2.0 with the
/// body bytes sent.
fn big_file_over_h2(server: &Server, base: &str, proto: &[&str], root: &Path) {
    let want = std::fs::read(root.join("big.bin")).unwrap();
    let url = format!("{base}/big.bin");
    let body = curl(proto, &url);
    assert!(
        body == want,
        "{} bytes, not the file's {}",
        body.len(),
        want.len()
    );
    let ranged = server.dir.path().join("range.out");
    let ranged_arg = ranged.to_str().unwrap();
    let w = curl(
        &[
            proto,
            &[
                "-r",
                "100-199",
                "-o",
                ranged_arg,
                "-w",
                "%{http_code}|%{http_version}",
            ],
        ]
        .concat(),
        &url,
    );
    assert_eq!(String::from_utf8_lossy(&w), "206|2");
    assert_eq!(std::fs::read(&ranged).unwrap(), &want[100..200]);
    let head = String::from_utf8_lossy(&curl(&[proto, &["-I"]].concat(), &url)).into_owned();
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {BIG}\r\n")),
        "{head}"
    );
    let lines = access_lines(server.dir.path(), 3);
    for want in [
        format!("\"GET /big.bin HTTP/2.0\" 200 {BIG} "),
        "\"GET /big.bin HTTP/2.0\" 206 100 ".to_owned(),
        "\"HEAD /big.bin HTTP/2.0\" 200 0 ".to_owned(),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&want)),
            "{want}: {lines:#?}"
        );
    }
}

// Proves: a 3 MiB file over h2c comes back byte for byte, a range is a
// 206 with the right bytes, HEAD has the length and no body, and the
// access log shows the bytes sent for each.
#[test]
fn a_big_file_over_h2c_whole_ranged_and_head() {
    if tool("curl", "curl").is_none() {
        return;
    }
    let dir = TempDir::new();
    let (root, tables) = site(&dir);
    let server = Server::start(&format!(
        "listen = [\"{{addr}} h2c\"]\nworkers = 1\n{tables}"
    ));
    let base = format!("http://{}", server.addr);
    big_file_over_h2(&server, &base, &["--http2-prior-knowledge"], &root);
    server.finish();
}

// Proves: the same over TLS with ALPN h2.
#[test]
fn a_big_file_over_tls_h2_whole_ranged_and_head() {
    if tool("curl", "curl").is_none() {
        return;
    }
    let dir = TempDir::new();
    let (root, tables) = site(&dir);
    let server = Server::start(&tls_config("workers = 1", &tables));
    let base = format!("https://{}", server.addr);
    big_file_over_h2(&server, &base, &["--http2", "-k"], &root);
    server.finish();
}

// Proves: a client that resets a file's stream after the first window
// (65,535 bytes: it never sends WINDOW_UPDATE) is logged with the bytes
// sent, not the file's length; and the connection goes on.
#[test]
fn a_file_stream_reset_mid_body_is_logged_with_the_bytes_sent() {
    let dir = TempDir::new();
    let (_, tables) = site(&dir);
    let server = Server::start(&format!(
        "listen = [\"{{addr}} h2c\"]\nworkers = 1\n{tables}"
    ));
    let mut c = H2::connect(server.addr);
    c.send(&get_frame(1, "/big.bin"));
    let mut got = 0;
    while got < 65_535 {
        got += c.until("DATA", |f| {
            (f.kind == DATA && f.stream == 1).then_some(f.payload.len())
        });
    }
    assert_eq!(got, 65_535, "no more than the default window");
    c.send(&frame(RST_STREAM, 0, 1, &8u32.to_be_bytes())); // CANCEL
                                                           // The connection's window, spent on stream 1, opened again.
    c.send(&frame(WINDOW_UPDATE, 0, 0, &65_535u32.to_be_bytes()));
    assert_eq!(c.get(3, "/index.html").body, "<h1>home</h1>\n");
    let lines = access_lines(server.dir.path(), 2);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /big.bin HTTP/2.0\" 200 65535 ")),
        "{lines:#?}"
    );
    server.finish();
}
