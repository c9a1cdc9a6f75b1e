//! `Accept-Encoding` (RFC 9110 12.5.3) against the route's `precompressed`
//! list: which precompressed variants the client takes, best first. The
//! caller tries them in that order and serves the first that exists, else
//! the file itself. Pure.
//!
//! - Each coding's weight is its own entry's `q`, else `*`'s, else 0 (not
//!   acceptable); `q=0` excludes. `x-gzip` is `gzip` (RFC 9110 8.4.1.3).
//!   Names are case-insensitive; a malformed entry is skipped.
//! - Higher `q` first; equal `q` in `precompressed` order.
//! - The file itself (identity) is the fallback, always served if nothing
//!   else is (RFC 9110 12.5.3 lets a server disregard the field rather
//!   than answer 415). It beats a variant only when the client gives
//!   `identity` (or `*`, if `identity` is not listed) a higher `q` than it.
//! - No `Accept-Encoding` at all → the file itself. (RFC 9110 would allow
//!   any coding then; a client that says nothing is usually one that cannot
//!   decode, as nginx's `gzip_static` assumes too.)

use super::validators::trim;
use super::Encoding;

/// Acceptable precompressed encodings, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preferred {
    list: [Encoding; 3],
    len: usize,
}

impl Preferred {
    pub fn as_slice(&self) -> &[Encoding] {
        &self.list[..self.len]
    }
}

/// Weights in thousandths, as qvalue has at most three decimals.
type Q = u16;

/// The encodings of `offered` (in configured order) that `accept`, an
/// `Accept-Encoding` field value, accepts, best first.
pub fn negotiate(accept: Option<&[u8]>, offered: &[Encoding]) -> Preferred {
    let mut out = Preferred {
        list: [Encoding::Br; 3],
        len: 0,
    };
    let Some(accept) = accept else {
        return out;
    };
    let star = weight(accept, b"*");
    let identity = weight(accept, b"identity").or(star);
    let mut scored: [(Q, usize, Encoding); 3] = [(0, 0, Encoding::Br); 3];
    for (i, &e) in offered.iter().enumerate().take(3) {
        let mut q = weight(accept, e.token().as_bytes());
        if e == Encoding::Gzip {
            q = q.or(weight(accept, b"x-gzip"));
        }
        let q = q.or(star).unwrap_or(0);
        if q > 0 && identity.is_none_or(|id| q >= id) {
            scored[out.len] = (q, i, e);
            out.len += 1;
        }
    }
    let scored = &mut scored[..out.len];
    scored.sort_by_key(|&(q, i, _)| (std::cmp::Reverse(q), i));
    for (slot, &(_, _, e)) in out.list.iter_mut().zip(scored.iter()) {
        *slot = e;
    }
    out
}

/// The weight the first well-formed entry named `name` gives; `None` if
/// there is none.
fn weight(accept: &[u8], name: &[u8]) -> Option<Q> {
    accept.split(|&b| b == b',').find_map(|entry| {
        let mut parts = entry.split(|&b| b == b';');
        let coding = trim(parts.next()?);
        if !coding.eq_ignore_ascii_case(name) {
            return None;
        }
        let mut q = 1000;
        for param in parts {
            let param = trim(param);
            let value = param
                .strip_prefix(b"q=")
                .or_else(|| param.strip_prefix(b"Q="))?;
            q = qvalue(value)?;
        }
        Some(q)
    })
}

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in
/// thousandths.
fn qvalue(s: &[u8]) -> Option<Q> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Q = 0;
    for (i, &d) in frac.iter().enumerate() {
        thousandths += Q::from(d - b'0') * [100, 10, 1][i];
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Br, Gzip, Zstd};

    fn run(accept: Option<&str>, offered: &[Encoding]) -> Vec<Encoding> {
        negotiate(accept.map(str::as_bytes), offered)
            .as_slice()
            .to_vec()
    }

    #[test]
    fn table() {
        let all = &Encoding::ALL;
        let cases: &[(Option<&str>, &[Encoding], &[Encoding])] = &[
            (None, all, &[]),
            (Some(""), all, &[]),
            (Some("gzip, deflate, br, zstd"), all, &[Br, Zstd, Gzip]),
            (Some("gzip, deflate, br, zstd"), &[Gzip, Br], &[Gzip, Br]),
            (Some("gzip"), all, &[Gzip]),
            (Some("x-gzip"), all, &[Gzip]),
            (Some("GZIP, Br"), all, &[Br, Gzip]),
            (Some("gzip;q=1.0, br;q=0.5"), all, &[Gzip, Br]),
            (
                Some("gzip;q=0.5, br;q=0.8, zstd;q=0.9"),
                all,
                &[Zstd, Br, Gzip],
            ),
            (Some("gzip; q=0.5 , br ; Q=0.5"), all, &[Br, Gzip]),
            (Some("br;q=0, gzip"), all, &[Gzip]),
            (Some("*"), all, &[Br, Zstd, Gzip]),
            (Some("*;q=0.5, gzip"), all, &[Gzip, Br, Zstd]),
            (Some("*, br;q=0"), all, &[Zstd, Gzip]),
            (Some("*;q=0"), all, &[]),
            (Some("identity"), all, &[]),
            (Some("identity;q=0, gzip"), all, &[Gzip]),
            // identity explicitly preferred over gzip.
            (Some("gzip;q=0.5, identity"), all, &[]),
            (Some("gzip;q=0.5, br, identity;q=0.8"), all, &[Br]),
            (Some("gzip, identity"), all, &[Gzip]),
            // `*` stands for identity when identity is not listed.
            (Some("br;q=0.5, *"), all, &[Zstd, Gzip]),
            // Malformed weights: the entry is skipped.
            (Some("gzip;q=2"), all, &[]),
            (Some("gzip;q=0.5000"), all, &[]),
            (Some("gzip;q=abc, br"), all, &[Br]),
            (Some("gzip;level=9"), all, &[]),
            (Some("gzip;q=1.001"), all, &[]),
            (Some("gzip;q=0.001"), all, &[Gzip]),
            (Some("gzip;q=0.000"), all, &[]),
            (Some("gzip, br"), &[], &[]),
        ];
        for (accept, offered, want) in cases {
            assert_eq!(run(*accept, offered), *want, "{accept:?} of {offered:?}");
        }
    }

    #[test]
    fn qvalues() {
        for (s, q) in [
            ("0", 0),
            ("0.", 0),
            ("0.5", 500),
            ("0.25", 250),
            ("1", 1000),
            ("1.000", 1000),
        ] {
            assert_eq!(qvalue(s.as_bytes()), Some(q), "{s}");
        }
        for s in ["", "2", "1.5", "0.1234", "-1", "0.a", ".5"] {
            assert_eq!(qvalue(s.as_bytes()), None, "{s}");
        }
    }
}
