//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a balancer
//! sends first on a connection to a `proxy_protocol` listener, turned into
//! the client's address, sans-IO. The connection (`conn/`) feeds it what
//! it has read, strips the header's bytes, and only then lets the HTTP
//! parser see a byte. Parsing is the `ppp` crate's; this file decides what
//! counts as complete, refused or still arriving, and bounds the header.
//! Who may send a header (`proxy_protocol_from`) is the worker's check.

use std::net::IpAddr;

use ppp::v1;
use ppp::v2;
use ppp::{HeaderResult, PartialResult};

/// The most header bytes waited for: a v1 header is at most 107 bytes; a
/// v2 one is 16 plus its addresses and TLVs (HAProxy sends a few dozen).
pub const MAX_HEADER: usize = 1024;

const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 header, CRLF included (the protocol's own limit).
const V1_MAX: usize = 107;
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// What the bytes read so far hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A header may still be arriving: read more (within header_timeout).
    Partial,
    /// A valid header of `len` bytes. `client` is the address it names;
    /// None keeps the connection's own peer (a v2 `LOCAL` header, as a
    /// balancer's health check sends, or `UNKNOWN`/unspecified addresses).
    Done { len: usize, client: Option<IpAddr> },
    /// Not a PROXY header, or a broken one: close without an answer.
    Invalid,
}

/// Parses the start of a connection's input.
pub fn parse(input: &[u8]) -> Parsed {
    // Refuse at once what cannot become a header (an HTTP request sent
    // straight to the listener), rather than wait for the timeout.
    let could_be = |prefix: &[u8]| {
        let n = input.len().min(prefix.len());
        input[..n] == prefix[..n]
    };
    let v1 = could_be(V1_PREFIX);
    if !v1 && !could_be(V2_SIGNATURE) {
        return Parsed::Invalid;
    }
    // A v1 header is one line of at most 107 bytes; ppp takes some of its
    // prefixes (one ending in a space) for broken ones, so it is given
    // the line only once the line is all there.
    let input = if v1 {
        match input.iter().take(V1_MAX).position(|&b| b == b'\n') {
            Some(end) => &input[..=end],
            None if input.len() >= V1_MAX => return Parsed::Invalid,
            None => return Parsed::Partial,
        }
    } else {
        input
    };
    let result = HeaderResult::parse(input);
    if result.is_incomplete() {
        return if input.len() >= MAX_HEADER {
            Parsed::Invalid
        } else {
            Parsed::Partial
        };
    }
    let (len, client) = match result {
        HeaderResult::V1(Ok(h)) => (
            h.header.len(),
            match h.addresses {
                v1::Addresses::Tcp4(a) => Some(IpAddr::V4(a.source_address)),
                v1::Addresses::Tcp6(a) => Some(IpAddr::V6(a.source_address)),
                v1::Addresses::Unknown => None,
            },
        ),
        HeaderResult::V2(Ok(h)) => (
            h.len(),
            match (h.command, h.addresses) {
                (v2::Command::Local, _) => None,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => Some(IpAddr::V4(a.source_address)),
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => Some(IpAddr::V6(a.source_address)),
                (v2::Command::Proxy, _) => None,
            },
        ),
        _ => return Parsed::Invalid,
    };
    if len == 0 || len > input.len() || len > MAX_HEADER {
        return Parsed::Invalid;
    }
    Parsed::Done { len, client }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addrs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h
    }

    #[test]
    fn v1_gives_the_source_address_and_its_length() {
        let h = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(h),
            Parsed::Done {
                len: 40,
                client: Some("192.0.2.7".parse().unwrap())
            }
        );
        let h = b"PROXY TCP6 2001:db8::1 ::1 5555 80\r\n";
        assert_eq!(
            parse(h),
            Parsed::Done {
                len: h.len(),
                client: Some("2001:db8::1".parse().unwrap())
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Done {
                len: 15,
                client: None
            }
        );
    }

    #[test]
    fn every_split_of_a_header_is_partial_until_complete() {
        let mut addrs = vec![198, 51, 100, 9, 127, 0, 0, 1];
        addrs.extend_from_slice(&4000u16.to_be_bytes());
        addrs.extend_from_slice(&80u16.to_be_bytes());
        for whole in [
            b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n".to_vec(),
            v2(1, 0x11, &addrs),
        ] {
            for cut in 1..whole.len() {
                assert_eq!(parse(&whole[..cut]), Parsed::Partial, "{cut}");
            }
            assert!(matches!(parse(&whole), Parsed::Done { len, .. } if len == whole.len()));
        }
        assert_eq!(
            parse(&v2(1, 0x11, &addrs)),
            Parsed::Done {
                len: 28,
                client: Some("198.51.100.9".parse().unwrap())
            }
        );
    }

    #[test]
    fn a_v2_local_header_keeps_the_real_peer() {
        assert_eq!(
            parse(&v2(0, 0x00, &[])),
            Parsed::Done {
                len: 16,
                client: None
            }
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"G",
            b"PROXY TCP4 999.0.2.7 127.0.0.1 5555 80\r\n",
            b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
            b"\r\n\r\n\0\r\nQUIT\n\x32\x11\x00\x0c",
        ] {
            assert_eq!(
                parse(bad),
                Parsed::Invalid,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A v1 header that never ends.
        let mut long = b"PROXY TCP4 ".to_vec();
        long.resize(MAX_HEADER, b'1');
        assert_eq!(parse(&long), Parsed::Invalid);
    }
}
