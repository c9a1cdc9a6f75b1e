//! Address ranges as written in the config (`"10.0.0.0/8"`, `"::1/128"`,
//! or a bare address for one host): who may read a status route (`allow`)
//! and who may send a PROXY protocol header (`proxy_protocol_from`).
//! Parsing and matching only; which list applies is the caller's.

use std::fmt;
use std::net::IpAddr;

/// One range: an address and how many leading bits of it must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `ip` is in the range. An IPv4 client on an IPv6 listener
    /// (`::ffff:a.b.c.d`) is taken as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.bits,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.bits)
            }
            _ => false,
        }
    }

    /// Loopback only: `127.0.0.0/8` and `::1/128`.
    pub fn loopback() -> Vec<Cidr> {
        Cidr::v4_and_v6_loopback([127, 0, 0, 0], 8)
    }

    /// `127.0.0.1/32` and `::1/128`: this host's own usual address, the
    /// default of a status route's `allow` and of the per-client cap's
    /// exemptions (a local proxy or health checker connects from it).
    pub fn localhost() -> Vec<Cidr> {
        Cidr::v4_and_v6_loopback([127, 0, 0, 1], 32)
    }

    fn v4_and_v6_loopback(v4: [u8; 4], bits: u8) -> Vec<Cidr> {
        vec![
            Cidr {
                addr: IpAddr::from(v4),
                bits,
            },
            Cidr {
                addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                bits: 128,
            },
        ]
    }
}

/// Whether `ip` is in any of `list`.
pub fn any_contains(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

fn prefix_eq(a: u128, b: u128, bits: u8) -> bool {
    if bits == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(bits));
    a & mask == b & mask
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address range: expected \"ADDRESS/BITS\" (\"10.0.0.0/8\", \"::1/128\") or an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => match b.parse::<u8>() {
                Ok(n) if n <= max && !b.starts_with('+') => n,
                _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
            },
        };
        let c = Cidr { addr, bits };
        // Bits set past the prefix are a typo more often than not
        // (10.0.0.1/8): refused, as iptables and nginx's `allow` warn.
        if host_bits(addr, bits) {
            return Err(format!(
                "{s:?}: address bits are set past the /{bits} prefix"
            ));
        }
        Ok(c)
    }
}

fn host_bits(addr: IpAddr, bits: u8) -> bool {
    let (v, width) = match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
        IpAddr::V6(a) => (u128::from(a), 128u32),
    };
    let host = width - u32::from(bits);
    let mask = match host {
        0 => 0,
        128 => u128::MAX,
        n => (1u128 << n) - 1,
    };
    v & mask != 0
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_match_what_they_name() {
        assert!(c("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(c("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!c("127.0.0.1/32").contains(ip("127.0.0.2")));
        assert!(c("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!c("0.0.0.0/0").contains(ip("::2")), "families do not mix");
        assert!(c("::1/128").contains(ip("::1")));
        assert!(c("fd00::/8").contains(ip("fd12::1")));
        assert!(!c("fd00::/8").contains(ip("fe80::1")));
        assert!(c("::/0").contains(ip("2001:db8::1")));
        assert!(
            c("127.0.0.0/8").contains(ip("::ffff:127.0.0.3")),
            "a v4 client on a v6 socket"
        );
        assert_eq!(c("10.0.0.0/8").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "localhost",
            "10.0.0.1/8",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults() {
        assert!(any_contains(&Cidr::loopback(), ip("127.0.0.9")));
        assert!(!any_contains(&Cidr::localhost(), ip("127.0.0.9")));
        assert!(any_contains(&Cidr::localhost(), ip("::1")));
    }
}
