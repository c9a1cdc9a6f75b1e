//! The chunked body decoder (RFC 9112 7.1): a request body framed in chunks,
//! decoded (and discarded) byte by byte across reads, holding only a few
//! counters. It shares the parser's strictness and its `Reject`s; the
//! connection (`http/conn/`) owns the buffers it is fed from.

use crate::http::parse::{is_tchar, Limits, Reject};

/// Decodes (and discards) a chunked body (RFC 9112 7.1), byte by byte
/// across reads, holding only a few counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Data bytes seen so far, against the body limit.
    total: u64,
    /// Bytes of chunk extensions or trailer fields so far, against the header limit.
    meta: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Reading hex digits of a chunk size; `digits` so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// Whitespace after the size, before a `;` (BWS).
    SizeBws {
        size: u64,
    },
    /// Inside chunk extensions.
    Ext {
        size: u64,
        ext: ExtState,
    },
    /// CR seen after the size line; LF expected.
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// In a trailer field line; `colon` once the name has ended.
    TrailerLine {
        colon: bool,
    },
    TrailerLf,
    EndLf,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExtState {
    /// After `;`, before the name (BWS allowed).
    BeforeName,
    Name,
    /// After the name, before `=`, `;` or CR.
    AfterName,
    /// After `=`, before the value.
    BeforeValue,
    Token,
    Quoted,
    QuotedEscape,
    /// Right after a quoted value.
    AfterValue,
    /// Whitespace after a value: only ";" may follow.
    ValueWs,
}

/// What a decoder step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// All of the input was consumed; the body goes on.
    NeedMore,
    /// The body ended after this many input bytes.
    Done(usize),
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size { size: 0, digits: 0 },
            total: 0,
            meta: 0,
        }
    }

    /// Consumes body bytes from `input`.
    pub fn decode(&mut self, input: &[u8], limits: &Limits) -> Result<Decoded, Reject> {
        let mut i = 0;
        while i < input.len() {
            if let ChunkState::Data { left } = self.state {
                let take = left.min((input.len() - i) as u64);
                i += take as usize;
                self.state = if take == left {
                    ChunkState::DataCr
                } else {
                    ChunkState::Data { left: left - take }
                };
                continue;
            }
            let b = input[i];
            i += 1;
            self.step(b, limits)?;
            if self.state == ChunkState::Done {
                return Ok(Decoded::Done(i));
            }
        }
        Ok(Decoded::NeedMore)
    }

    fn step(&mut self, b: u8, limits: &Limits) -> Result<(), Reject> {
        use ChunkState::*;
        self.state = match (self.state, b) {
            (Size { size, digits }, _) if b.is_ascii_hexdigit() => {
                // 16 hex digits fill a u64; more is refused even when they
                // are leading zeros: parsers that overflow disagree on such
                // sizes, and a disagreement is how smuggling starts.
                if digits >= 16 {
                    return Err(Reject::BadRequest);
                }
                let size = size << 4 | u64::from(hex_value(b));
                if self.total.saturating_add(size) > limits.max_body_bytes {
                    return Err(Reject::BodyTooLarge);
                }
                Size {
                    size,
                    digits: digits + 1,
                }
            }
            (Size { digits: 0, .. }, _) => return Err(Reject::BadRequest),
            (Size { size, .. } | SizeBws { size }, b' ' | b'\t') => SizeBws { size },
            (Size { size, .. } | SizeBws { size }, b';') => Ext {
                size,
                ext: ExtState::BeforeName,
            },
            (Size { size, .. }, b'\r') => SizeLf { size },
            (Ext { size, ext }, _) => {
                self.meta += 1;
                if self.meta > limits.max_header_bytes {
                    return Err(Reject::BadRequest);
                }
                match next_ext(ext, b)? {
                    Some(ext) => Ext { size, ext },
                    None => SizeLf { size },
                }
            }
            (SizeLf { size: 0 }, b'\n') => TrailerStart,
            (SizeLf { size }, b'\n') => {
                self.total += size;
                Data { left: size }
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size { size: 0, digits: 0 },
            (TrailerStart, b'\r') => EndLf,
            (EndLf, b'\n') => Done,
            (TrailerStart, _) if is_tchar(b) => {
                self.trailer_byte(TrailerLine { colon: false }, limits)?
            }
            (TrailerLine { colon: false }, b':') => {
                self.trailer_byte(TrailerLine { colon: true }, limits)?
            }
            (TrailerLine { colon: false }, _) if is_tchar(b) => {
                self.trailer_byte(self.state, limits)?
            }
            (TrailerLine { colon: true }, b'\r') => TrailerLf,
            (TrailerLine { colon: true }, _) if is_field_vchar(b) => {
                self.trailer_byte(self.state, limits)?
            }
            (TrailerLf, b'\n') => TrailerStart,
            _ => return Err(Reject::BadRequest),
        };
        Ok(())
    }

    fn trailer_byte(&mut self, next: ChunkState, limits: &Limits) -> Result<ChunkState, Reject> {
        self.meta += 1;
        if self.meta > limits.max_header_bytes {
            return Err(Reject::HeaderTooLarge);
        }
        Ok(next)
    }
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val =
/// token / quoted-string. Returns the next state, or `None` at the CR that
/// ends the size line.
fn next_ext(state: ExtState, b: u8) -> Result<Option<ExtState>, Reject> {
    use ExtState::*;
    let ws = b == b' ' || b == b'\t';
    Ok(Some(match (state, b) {
        (Quoted, b'"') => AfterValue,
        (Quoted, b'\\') => QuotedEscape,
        (Quoted, _) if is_field_vchar(b) => Quoted,
        (QuotedEscape, _) if is_field_vchar(b) => Quoted,
        (Quoted | QuotedEscape, _) => return Err(Reject::BadRequest),
        (BeforeName, _) if ws => BeforeName,
        (BeforeName | Name, _) if is_tchar(b) => Name,
        // BWS is allowed before "=" and ";", never before the CR.
        (Name | AfterName, _) if ws => AfterName,
        (Name | AfterName, b'=') => BeforeValue,
        (BeforeValue, _) if ws => BeforeValue,
        (BeforeValue, b'"') => Quoted,
        (BeforeValue | Token, _) if is_tchar(b) => Token,
        (Token | AfterValue | ValueWs, _) if ws => ValueWs,
        (Name | AfterName | Token | AfterValue | ValueWs, b';') => BeforeName,
        (Name | Token | AfterValue, b'\r') => return Ok(None),
        _ => return Err(Reject::BadRequest),
    }))
}

/// field-vchar, SP and HTAB: what a field value may hold (RFC 9110 5.5).
fn is_field_vchar(b: u8) -> bool {
    b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 8192,
        max_body_bytes: 1 << 20,
    };

    fn decode_all(body: &[u8]) -> Result<Decoded, Reject> {
        ChunkedDecoder::new().decode(body, &LIMITS)
    }

    #[test]
    fn chunked_bodies() {
        let body = b"5;a=b;c=\"d\\\"\"\r\nhello\r\n0\r\nX-T: v\r\n\r\nNEXT";
        assert_eq!(decode_all(body), Ok(Decoded::Done(body.len() - 4)));
        // One byte at a time gives the same result.
        let mut d = ChunkedDecoder::new();
        let mut end = None;
        for (i, b) in body.iter().enumerate() {
            if let Decoded::Done(n) = d.decode(std::slice::from_ref(b), &LIMITS).unwrap() {
                assert_eq!(n, 1);
                end = Some(i + 1);
                break;
            }
        }
        assert_eq!(end, Some(body.len() - 4));
    }

    #[test]
    fn chunked_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"5 x\r\n",
            b"5\r\nhelloX",
            b"5\n",
            b"11111111111111111\r\n",
            b"0\r\n bad\r\n\r\n",
            b"0\r\n: v\r\n\r\n",
            b"5;\"a\"\r\n",
            b"5;a=b \r\n",
            b"5;a \r\n",
            b"5;a=\"q\" \r\n",
            b"0;a\t\r\n",
            b"-5\r\n",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(decode_all(b"200000\r\n"), Err(Reject::BodyTooLarge));
    }
}
