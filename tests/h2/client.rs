//! The tests' tiny HTTP/2 client over raw TCP: frames built by hand,
//! request blocks from the static table and literals (no Huffman, no
//! dynamic table), frames read back with a deadline; an answer's block is
//! decoded with the library's own HPACK decoder.
#![allow(dead_code)] // not every test uses every helper

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::common::WAIT;
use preforkd::h2::hpack::{Decoder, HeaderList};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types and flags (RFC 9113 §6).
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const PRIORITY: u8 = 2;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

// Error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0;
pub const PROTOCOL_ERROR: u32 = 1;
pub const FLOW_CONTROL_ERROR: u32 = 3;
pub const STREAM_CLOSED: u32 = 5;
pub const FRAME_SIZE_ERROR: u32 = 6;
pub const REFUSED_STREAM: u32 = 7;
pub const COMPRESSION_ERROR: u32 = 9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A literal field without indexing, new name, no Huffman (RFC 7541 §6.2.2).
pub fn literal(name: &str, value: &str) -> Vec<u8> {
    assert!(name.len() < 127 && value.len() < 127);
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

/// A request block: `:method GET` and `:scheme http` from the static
/// table (indexes 2 and 6), `:path` and `:authority` as literals.
pub fn request_block(path: &str, authority: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86];
    b.extend(literal(":path", path));
    b.extend(literal(":authority", authority));
    b
}

pub fn get_frame(stream: u32, path: &str) -> Vec<u8> {
    frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        stream,
        &request_block(path, "t"),
    )
}

pub fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in params {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }

    pub fn last_stream(&self) -> u32 {
        u32::from_be_bytes(self.payload[..4].try_into().unwrap()) & 0x7fff_ffff
    }
}

/// A tiny HTTP/2 client over raw TCP.
pub struct H2 {
    s: TcpStream,
    buf: Vec<u8>,
    decoder: Decoder,
}

/// What a response on one stream was.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub fields: Vec<(String, String)>,
    pub body: String,
}

impl H2 {
    /// Connects, sends the preface and `first` (the client's SETTINGS).
    pub fn with_settings(addr: SocketAddr, first: &[u8]) -> H2 {
        let s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
        H2::over(s, b"", first)
    }

    /// Over a connected `s`: `prefix` (a PROXY header, say), the preface,
    /// then `first` (the client's SETTINGS).
    pub fn over(mut s: TcpStream, prefix: &[u8], first: &[u8]) -> H2 {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s.write_all(&[prefix, PREFACE, first].concat()).unwrap();
        H2 {
            s,
            buf: Vec::new(),
            decoder: Decoder::new(4096),
        }
    }

    pub fn connect(addr: SocketAddr) -> H2 {
        H2::with_settings(addr, &settings(&[]))
    }

    pub fn send(&mut self, bytes: &[u8]) {
        // The server may close first (a connection error): that is for
        // the reads to tell.
        let _ = self.s.write_all(bytes);
    }

    /// The next frame; None at EOF (or a reset) or after `within`.
    pub fn next(&mut self, within: Duration) -> Option<Frame> {
        let end = Instant::now() + within;
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes(self.buf[5..9].try_into().unwrap())
                            & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    return Some(f);
                }
            }
            if Instant::now() > end {
                return None;
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return None,
            }
        }
    }

    /// Frames until one `pick` takes, within `WAIT`.
    pub fn until<T>(&mut self, what: &str, pick: impl FnMut(&Frame) -> Option<T>) -> T {
        self.within(WAIT, pick)
            .unwrap_or_else(|| panic!("no {what} in time (or the connection closed first)"))
    }

    /// Frames until one `pick` takes, within `wait`; None at the end of
    /// the time or the connection.
    pub fn within<T>(
        &mut self,
        wait: Duration,
        mut pick: impl FnMut(&Frame) -> Option<T>,
    ) -> Option<T> {
        let end = Instant::now() + wait;
        while Instant::now() < end {
            let f = self.next(end - Instant::now())?;
            if let Some(v) = pick(&f) {
                return Some(v);
            }
        }
        None
    }

    /// The first GOAWAY or RST_STREAM: (kind, stream or last stream, code).
    pub fn error(&mut self) -> (u8, u32, u32) {
        self.until("GOAWAY or RST_STREAM", |f| match f.kind {
            GOAWAY => Some((GOAWAY, f.last_stream(), f.code())),
            RST_STREAM => Some((RST_STREAM, f.stream, f.code())),
            _ => None,
        })
    }

    pub fn goaway(&mut self) -> Frame {
        self.until("GOAWAY", |f| {
            (f.kind == GOAWAY).then(|| Frame {
                payload: f.payload.clone(),
                ..*f
            })
        })
    }

    /// A response block's `:status`, decoded (keeping the decoder's
    /// dynamic table in step).
    pub fn status_of(&mut self, block: &[u8]) -> u16 {
        let mut list = HeaderList::new(1 << 20);
        self.decoder.decode(block, &mut list).unwrap();
        let status = list
            .iter()
            .find(|(n, _)| *n == b":status")
            .map_or(0, |(_, v)| std::str::from_utf8(v).unwrap().parse().unwrap());
        status
    }

    /// The response on `stream`: its head and every DATA until END_STREAM.
    pub fn response(&mut self, stream: u32) -> Answer {
        let mut a = Answer {
            status: 0,
            fields: Vec::new(),
            body: String::new(),
        };
        let mut block = Vec::new();
        loop {
            let f = self.until("the response", |f| {
                Some(Frame {
                    payload: f.payload.clone(),
                    ..*f
                })
            });
            match f.kind {
                HEADERS | CONTINUATION if f.stream == stream => {
                    block.extend_from_slice(&f.payload);
                    if f.flags & END_HEADERS != 0 {
                        let mut list = HeaderList::new(1 << 20);
                        self.decoder.decode(&block, &mut list).unwrap();
                        for (n, v) in list.iter() {
                            let (n, v) = (String::from_utf8_lossy(n), String::from_utf8_lossy(v));
                            if n == ":status" {
                                a.status = v.parse().unwrap();
                            } else {
                                a.fields.push((n.into_owned(), v.into_owned()));
                            }
                        }
                    }
                }
                DATA if f.stream == stream => a.body += &String::from_utf8_lossy(&f.payload),
                RST_STREAM if f.stream == stream => panic!("stream {stream} reset: {f:?}"),
                GOAWAY => panic!("GOAWAY before the response: {f:?}"),
                _ => continue,
            }
            if f.stream == stream && f.flags & END_STREAM != 0 {
                return a;
            }
        }
    }

    pub fn get(&mut self, stream: u32, path: &str) -> Answer {
        self.send(&get_frame(stream, path));
        self.response(stream)
    }

    /// The connection ends (EOF or a reset) within `within`.
    pub fn closes_within(&mut self, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.next(Duration::from_millis(100)).is_none() && Instant::now() < end {
                let mut b = [0u8; 1];
                self.s
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                match self.s.read(&mut b) {
                    Ok(0) => return true,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return true,
                    Ok(_) => self.buf.push(b[0]),
                }
            }
        }
        false
    }
}
