//! The configuration's value types: a `listen` entry, and each string or
//! number a key may hold (durations, sizes, rates, counts, statuses,
//! header fields, syslog facility, log level), checked as serde reads them
//! so that an error carries the value's span.
//!
//! Leaves the tables that hold them to `raw.rs` and what they mean to the
//! files that turn tables into the `Config`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer};

use crate::http::cidr::Cidr;
use crate::obs::access_log::Format;

/// One `listen` entry: an address and the flags that may follow it,
/// `"0.0.0.0:8443 tls"`, `"127.0.0.1:8889 proxy_protocol"`. A listener
/// gets its flags from the config by its address, whoever bound it (us,
/// systemd, the old master of an upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    /// Serve HTTPS with `[tls]`.
    pub tls: bool,
    /// Every connection starts with a PROXY protocol header (v1 or v2).
    pub proxy_protocol: bool,
    /// HTTP/2 with prior knowledge (RFC 9113 §3.3) besides HTTP/1.1: told
    /// apart by the connection preface.
    pub h2c: bool,
}

impl Listen {
    pub fn plain(addr: SocketAddr) -> Listen {
        Listen {
            addr,
            tls: false,
            proxy_protocol: false,
            h2c: false,
        }
    }
}

impl std::str::FromStr for Listen {
    type Err = String;

    /// `host:port` (IPv4 or `[IPv6]`), then flags separated by spaces.
    fn from_str(s: &str) -> Result<Listen, String> {
        let mut words = s.split_whitespace();
        let addr = words.next().unwrap_or("");
        let mut l = Listen::plain(addr.parse().map_err(|_| {
            format!(
                "invalid listen address \"{addr}\": expected \"host:port\" with an IPv4 address or [IPv6] address, then flags (\"tls\", \"proxy_protocol\", \"h2c\")"
            )
        })?);
        for flag in words {
            match flag {
                "tls" => l.tls = true,
                "proxy_protocol" => l.proxy_protocol = true,
                "h2c" => l.h2c = true,
                _ => {
                    return Err(format!(
                        "unknown listen flag \"{flag}\" after {addr}: expected \"tls\", \"proxy_protocol\" or \"h2c\""
                    ))
                }
            }
        }
        Ok(l)
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.tls {
            f.write_str(" tls")?;
        }
        if self.proxy_protocol {
            f.write_str(" proxy_protocol")?;
        }
        if self.h2c {
            f.write_str(" h2c")?;
        }
        Ok(())
    }
}

/// The number of CPUs, at most `MAX_WORKERS`: what `workers = "auto"` means.
pub(super) fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().min(crate::obs::scoreboard::MAX_WORKERS))
}

/// combined, common or json.
#[derive(Clone, Copy)]
pub(super) struct AccessFormat(pub Format);

impl<'de> Deserialize<'de> for AccessFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, Format::parse, |s| {
            format!("unknown format \"{s}\": expected combined, common or json")
        })
        .map(AccessFormat)
    }
}

/// A key that takes an integer or a word (`4096` or `"4k"`, `2` or `"auto"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrWord {
    N(i64),
    S(String),
}

/// A size in bytes: `"0"`, `"4096"`, `"64k"`, `"1m"`, or an integer.
#[derive(Clone, Copy)]
pub(super) struct Size(pub usize);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bad = |shown: String| {
            de::Error::custom(format!(
                "invalid size {shown}: expected bytes, \"64k\" or \"1m\" (\"0\": no buffer), at most 64m"
            ))
        };
        match NumberOrWord::deserialize(d)? {
            NumberOrWord::N(n) => usize::try_from(n)
                .ok()
                .filter(|&n| n <= crate::obs::access_log::MAX_BUFFER)
                .map(Size)
                .ok_or_else(|| bad(n.to_string())),
            NumberOrWord::S(s) => crate::obs::access_log::parse_size(&s)
                .map(Size)
                .ok_or_else(|| bad(format!("\"{s}\""))),
        }
    }
}

/// `"host:port"`, IPv4 or `[IPv6]`, then flags: `"0.0.0.0:8443 tls"`.
#[derive(Clone, Copy)]
pub(super) struct ListenAddr(pub Listen);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(ListenAddr).map_err(de::Error::custom)
    }
}

/// A list of address ranges: `["10.0.0.0/8", "::1/128"]`.
pub(super) struct Cidrs(pub Vec<Cidr>);

impl<'de> Deserialize<'de> for Cidrs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(de::Error::custom))
            .collect::<Result<_, _>>()
            .map(Cidrs)
    }
}

/// `"auto"` (the number of CPUs) or an integer from 1 to `MAX_WORKERS`.
#[derive(Clone, Copy)]
pub(super) struct Workers(pub usize);

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bad = || {
            de::Error::custom(format!(
                "workers must be \"auto\" or an integer from 1 to {}",
                crate::obs::scoreboard::MAX_WORKERS
            ))
        };
        match NumberOrWord::deserialize(d).map_err(|_: D::Error| bad())? {
            NumberOrWord::N(n) if (1..=crate::obs::scoreboard::MAX_WORKERS as i64).contains(&n) => {
                Ok(Workers(n as usize))
            }
            NumberOrWord::S(s) if s == "auto" => Ok(Workers(cpu_count())),
            _ => Err(bad()),
        }
    }
}

/// An integer >= 1 (sizes, counts).
#[derive(Clone, Copy)]
pub(super) struct Positive(pub u64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if n < 1 || n > i64::from(i32::MAX) {
            return Err(de::Error::custom(format!(
                "{n} is out of range: expected an integer from 1 to {}",
                i32::MAX
            )));
        }
        Ok(Positive(n as u64))
    }
}

/// An integer >= 0 (0 meaning "no limit").
#[derive(Clone, Copy)]
pub(super) struct NonNegative(pub u64);

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u64::try_from(n).map(NonNegative).map_err(|_| {
            de::Error::custom(format!("{n} is negative: expected 0 (no limit) or more"))
        })
    }
}

/// A string value read through `parse`, or the error `expected` words
/// for it (which names the value).
fn parsed<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: impl FnOnce(&str) -> Option<T>,
    expected: impl FnOnce(&str) -> String,
) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).ok_or_else(|| de::Error::custom(expected(&s)))
}

/// A minimum data rate written `"512/s"` (bytes per second), or `"off"`
/// (the same as `"0/s"`).
#[derive(Clone, Copy)]
pub(super) struct Rate(pub u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, parse_rate, |s| {
            format!("invalid rate \"{s}\": expected bytes per second as \"512/s\", or \"off\"")
        })
        .map(Rate)
    }
}

/// `"512/s"` → 512; `"off"` and `"0/s"` → 0.
pub fn parse_rate(s: &str) -> Option<u64> {
    if s == "off" {
        return Some(0);
    }
    let n = s.strip_suffix("/s")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// A duration written `"250ms"`, `"5s"`, `"2m"` or `"1h"`, above zero.
#[derive(Clone, Copy)]
pub(super) struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, parse_duration, |s| {
            format!(
                "invalid duration \"{s}\": expected a positive number with a unit: ms, s, m or h (\"250ms\", \"5s\")"
            )
        })
        .map(Dur)
    }
}

pub fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..digits].parse().ok()?;
    let d = match &s[digits..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

/// A response status we can send with a body: 200..=599 but 204 and 304.
#[derive(Clone, Copy)]
pub(super) struct Status(pub u16);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u16::try_from(n) {
            Ok(s @ 200..=599) if s != 204 && s != 205 && s != 304 => Ok(Status(s)),
            _ => Err(de::Error::custom(format!(
                "status {n} is not allowed: expected 200 to 599, except 204, 205 and 304 (they carry no body)"
            ))),
        }
    }
}

/// A header field value: visible characters, spaces and tabs, no CR or LF.
pub(super) struct FieldValue(pub String);

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !valid_field_value(&s) {
            return Err(de::Error::custom(format!(
                "invalid header value {s:?}: control characters are not allowed"
            )));
        }
        Ok(FieldValue(s.trim().to_owned()))
    }
}

fn valid_field_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80)
}

/// Extra response headers: `{ "Name" = "value" }`.
pub(super) struct Headers(pub Vec<(String, String)>);

/// Headers the server writes itself; configuring them would break framing
/// or duplicate a field.
const RESERVED_HEADERS: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "content-type",
    "server",
];

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        let mut out = Vec::new();
        for (name, value) in map {
            if name.is_empty() || !name.bytes().all(crate::http::parse::is_tchar) {
                return Err(de::Error::custom(format!("invalid header name {name:?}")));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(de::Error::custom(format!(
                    "header {name:?} is set by the server (use content_type for Content-Type)"
                )));
            }
            if !valid_field_value(&value) {
                return Err(de::Error::custom(format!(
                    "invalid value for header {name:?}: control characters are not allowed"
                )));
            }
            out.push((name, value.trim().to_owned()));
        }
        Ok(Headers(out))
    }
}

/// A syslog facility name (`daemon`, `local0`…).
pub(super) struct Facility(pub String);

impl<'de> Deserialize<'de> for Facility {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if crate::obs::log::valid_facility(&s) {
            Ok(Facility(s))
        } else {
            Err(de::Error::custom(format!(
                "unknown syslog facility \"{s}\" (daemon, user, local0 to local7…)"
            )))
        }
    }
}

/// A log level: error, warn, info, debug or trace.
#[derive(Clone, Copy)]
pub(super) struct Level(pub ::log::LevelFilter);

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.parse() {
            Ok(l) if l != ::log::LevelFilter::Off => Ok(Level(l)),
            _ => Err(de::Error::custom(format!(
                "unknown log level \"{s}\": expected error, warn, info, debug or trace"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_entries_take_flags_after_the_address() {
        let l: Listen = "127.0.0.1:8443 tls".parse().unwrap();
        assert_eq!(l.addr, "127.0.0.1:8443".parse().unwrap());
        assert!(l.tls);
        assert_eq!(l.to_string(), "127.0.0.1:8443 tls");
        let l: Listen = "[::1]:80".parse().unwrap();
        assert!(!l.tls);
        assert_eq!(l.to_string().parse::<Listen>().unwrap(), l);
        let e = "127.0.0.1:1 tsl".parse::<Listen>().unwrap_err();
        assert!(e.contains("unknown listen flag \"tsl\""), "{e}");
        assert!("tls".parse::<Listen>().is_err());
        assert!("".parse::<Listen>().is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0/s"), Some(0));
        for bad in ["512", "/s", "-1/s", "5 /s", "1.5/s", "512/m"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["0s", "5", "s", "-1s", "1.5s", " 5s", "5 s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
