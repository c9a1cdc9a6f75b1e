//! HPACK's static Huffman code (RFC 7541 §5.2, Appendix B): encode, and a
//! decode that rejects EOS in a string and padding longer than 7 bits or
//! not all ones.
//!
//! The code is canonical (codes of one length are consecutive, in symbol
//! order, shorter lengths first), so the table here is only each symbol's
//! code length; codes and the decoding tables are derived at compile time.

/// Code length in bits of each symbol 0..=255 and EOS (256), from Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];
const MAX_LEN: usize = 30;
const EOS: u16 = 256;

/// Per code length: the first code, how many codes, and where their
/// symbols start in `SORTED`.
struct Canon {
    codes: [u32; 257],
    first: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    offset: [u16; MAX_LEN + 1],
    sorted: [u16; 257],
}

const CANON: Canon = canon();

const fn canon() -> Canon {
    let mut c = Canon {
        codes: [0; 257],
        first: [0; MAX_LEN + 1],
        count: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        sorted: [0; 257],
    };
    let mut code = 0u32;
    let mut n = 0u16;
    let mut len = 1;
    while len <= MAX_LEN {
        c.first[len] = code;
        c.offset[len] = n;
        let mut sym = 0;
        while sym < 257 {
            if LENGTHS[sym] as usize == len {
                c.codes[sym] = code;
                c.sorted[n as usize] = sym as u16;
                code += 1;
                n += 1;
                c.count[len] += 1;
            }
            sym += 1;
        }
        code <<= 1;
        len += 1;
    }
    c
}

/// Bad Huffman data: EOS inside, or bad padding (RFC 7541 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HuffmanError;

/// Decodes `src`, appending to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in src {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            if len > MAX_LEN {
                return Err(HuffmanError);
            }
            let index = code.wrapping_sub(CANON.first[len]);
            if code >= CANON.first[len] && index < CANON.count[len] {
                let sym = CANON.sorted[usize::from(CANON.offset[len]) + index as usize];
                if sym == EOS {
                    return Err(HuffmanError);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            }
        }
    }
    // What is left must be a prefix of EOS (all ones), at most 7 bits.
    if len > 7 || code != (1 << len) - 1 {
        return Err(HuffmanError);
    }
    Ok(())
}

/// Bytes `src` takes Huffman-encoded.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(LENGTHS[usize::from(b)]))
        .sum();
    bits.div_ceil(8)
}

/// Encodes `src`, appending to `out`, padded with the EOS prefix.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    let mut acc = 0u64;
    let mut bits = 0u32;
    for &b in src {
        let len = u32::from(LENGTHS[usize::from(b)]);
        acc = (acc << len) | u64::from(CANON.codes[usize::from(b)]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::hpack::tests::hex;

    #[test]
    fn known_codes() {
        // Spot checks against Appendix B.
        assert_eq!(
            (CANON.codes[usize::from(b'0')], LENGTHS[usize::from(b'0')]),
            (0x0, 5)
        );
        assert_eq!(
            (CANON.codes[usize::from(b' ')], LENGTHS[usize::from(b' ')]),
            (0x14, 6)
        );
        assert_eq!((CANON.codes[0], LENGTHS[0]), (0x1ff8, 13));
        assert_eq!((CANON.codes[255], LENGTHS[255]), (0x3ff_ffee, 26));
        assert_eq!((CANON.codes[256], LENGTHS[256]), (0x3fff_ffff, 30));
    }

    #[test]
    fn rfc_strings() {
        // RFC 7541 C.4.1 and C.6.1.
        for (text, wire) in [
            (&b"www.example.com"[..], "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
            (b"no-cache", "a8eb 1064 9cbf"),
            (b"custom-key", "25a8 49e9 5ba9 7d7f"),
            (b"custom-value", "25a8 49e9 5bb8 e8b4 bf"),
            (b"302", "6402"),
            (b"private", "aec3 771a 4b"),
            (
                b"Mon, 21 Oct 2013 20:13:21 GMT",
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            ),
            (
                b"https://www.example.com",
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            ),
        ] {
            let mut out = Vec::new();
            encode(text, &mut out);
            assert_eq!(out, hex(wire), "{}", String::from_utf8_lossy(text));
            assert_eq!(encoded_len(text), out.len());
            let mut back = Vec::new();
            decode(&out, &mut back).unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        encode(&all, &mut out);
        let mut back = Vec::new();
        decode(&out, &mut back).unwrap();
        assert_eq!(back, all);
    }

    #[test]
    fn bad_padding_and_eos() {
        let mut out = Vec::new();
        // 8 bits of ones: padding longer than 7 bits.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError));
        // '0' (00000) then padding of zeros: not a prefix of EOS.
        assert_eq!(decode(&[0b0000_0000], &mut out), Err(HuffmanError));
        // EOS itself (30 ones) plus two bits of padding.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError)
        );
        assert_eq!(decode(&[], &mut out), Ok(()));
        // '0' then three ones of padding.
        out.clear();
        assert_eq!(decode(&[0b0000_0111], &mut out), Ok(()));
        assert_eq!(out, b"0");
    }
}
