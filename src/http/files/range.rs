//! A `Range` field (RFC 9110 14.2) against a representation's length: the
//! one byte range to send, "not satisfiable", or "send it whole". Pure.
//!
//! Choices where the RFC lets a server choose:
//! - More than one range → the whole representation (200). RFC 9110 14.2
//!   lets a server ignore `Range`; answering several ranges means a
//!   `multipart/byteranges` body assembled around many `sendfile`s, which
//!   few clients ask for and which has been a denial-of-service lever
//!   (many small or overlapping ranges, CVE-2011-3192). nginx sends
//!   multipart; a client gets the same bytes from us, in one piece.
//! - A malformed field, another unit, or `last < first` → ignored (200).
//! - A zero-length representation → ignored (200): no `Content-Range` can
//!   describe a part of it (RFC 9110 14.1.1 calls `-n` satisfiable then).
//! - Numbers too big for 64 bits: a last-pos or suffix-length saturates
//!   (it only means "to the end"), a first-pos past any file is unsatisfiable.

use super::validators::trim;

/// What to send of a representation of some length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// 200: no range applies.
    Whole,
    /// 206 with bytes `first..=last`.
    Part { first: u64, last: u64 },
    /// 416: the one range starts at or past the end.
    Unsatisfiable,
}

/// Evaluates a `Range` field value against a representation of `len` bytes.
pub fn evaluate(field: &[u8], len: u64) -> RangeOutcome {
    let field = trim(field);
    let Some(eq) = field.iter().position(|&b| b == b'=') else {
        return RangeOutcome::Whole;
    };
    if !field[..eq].eq_ignore_ascii_case(b"bytes") || len == 0 {
        return RangeOutcome::Whole;
    }
    // 1#range-spec: empty list elements are allowed (RFC 9110 5.6.1.2).
    let mut specs = field[eq + 1..]
        .split(|&b| b == b',')
        .map(trim)
        .filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeOutcome::Whole;
    };
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeOutcome::Whole;
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (number(first), number(last)) {
        // suffix-range = "-" suffix-length
        (None, Some(n)) if first.is_empty() => {
            if n == 0 {
                return RangeOutcome::Unsatisfiable;
            }
            RangeOutcome::Part {
                first: len - n.min(len),
                last: len - 1,
            }
        }
        // int-range = first-pos "-" [ last-pos ]
        (Some(a), b) if last.is_empty() || b.is_some() => {
            let b = b.unwrap_or(u64::MAX);
            if b < a {
                RangeOutcome::Whole
            } else if a >= len {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Part {
                    first: a,
                    last: b.min(len - 1),
                }
            }
        }
        _ => RangeOutcome::Whole,
    }
}

/// 1*DIGIT, saturating at `u64::MAX`; `None` if empty or not digits.
fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::RangeOutcome::{Part, Unsatisfiable, Whole};
    use super::*;

    #[test]
    fn table() {
        let part = |first, last| Part { first, last };
        let cases: &[(&str, u64, RangeOutcome)] = &[
            ("bytes=0-0", 10, part(0, 0)),
            ("bytes=0-9", 10, part(0, 9)),
            ("bytes=2-5", 10, part(2, 5)),
            ("bytes=5-", 10, part(5, 9)),
            ("bytes=5-100", 10, part(5, 9)),
            ("bytes=9-9", 10, part(9, 9)),
            ("bytes=-3", 10, part(7, 9)),
            ("bytes=-10", 10, part(0, 9)),
            ("bytes=-100", 10, part(0, 9)),
            ("BYTES=1-2", 10, part(1, 2)),
            (" bytes=1-2 ", 10, part(1, 2)),
            ("bytes= 1-2 ,", 10, part(1, 2)),
            ("bytes=0-99999999999999999999999", 10, part(0, 9)),
            ("bytes=-99999999999999999999999", 10, part(0, 9)),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=99999999999999999999999-", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            // Ignored: whole representation.
            ("bytes=5-2", 10, Whole),
            ("bytes=0-1,3-4", 10, Whole),
            ("bytes=0-1, 20-30", 10, Whole),
            ("bytes=", 10, Whole),
            ("bytes=,", 10, Whole),
            ("bytes=-", 10, Whole),
            ("bytes=a-b", 10, Whole),
            ("bytes=1-2x", 10, Whole),
            ("bytes=+1-2", 10, Whole),
            ("bytes=1", 10, Whole),
            ("bytes = 1-2", 10, Whole),
            ("items=0-1", 10, Whole),
            ("0-1", 10, Whole),
            ("", 10, Whole),
            ("bytes=0-0", 0, Whole),
            ("bytes=-1", 0, Whole),
        ];
        for (field, len, want) in cases {
            assert_eq!(evaluate(field.as_bytes(), *len), *want, "{field} of {len}");
        }
    }
}
