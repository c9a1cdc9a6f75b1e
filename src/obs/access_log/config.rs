//! The access log's own config types (`[access_log]`: destination, format,
//! buffer, flush) and their limits; `config/` reads the table into them.
//!
//! Leaves reading TOML to `config/` and writing lines to the other files here.

use std::path::PathBuf;
use std::time::Duration;

/// Line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// nginx's `combined`: `$remote_addr - $remote_user [$time_local]
    /// "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`.
    Combined,
    /// The first seven fields of `combined` (up to `$body_bytes_sent`).
    Common,
    /// One JSON object per line.
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "combined" => Some(Format::Combined),
            "common" => Some(Format::Common),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Where lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A file, opened `O_APPEND`, created mode 0640.
    File(PathBuf),
    /// The `[log]` syslog socket, facility and ident, severity info; one
    /// datagram per line.
    Syslog,
}

/// The `[access_log]` table of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogConfig {
    pub destination: Destination,
    pub format: Format,
    /// Bytes buffered per worker before a write; 0 writes each line at once.
    pub buffer: usize,
    /// A buffered line is written within this.
    pub flush: Duration,
}

/// Default `buffer`: nginx's usual `buffer=64k`.
pub const DEFAULT_BUFFER: usize = 64 * 1024;
/// Default `flush`.
pub const DEFAULT_FLUSH: Duration = Duration::from_secs(1);
/// The largest `buffer` accepted.
pub const MAX_BUFFER: usize = 64 * 1024 * 1024;

/// `"0"`, `"4096"`, `"64k"`, `"1m"` → bytes (up to [`MAX_BUFFER`]).
pub fn parse_size(s: &str) -> Option<usize> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return None;
    }
    let n: usize = s[..digits].parse().ok()?;
    let unit = match &s[digits..] {
        "" => 1,
        "k" | "K" => 1024,
        "m" | "M" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(unit).filter(|&b| b <= MAX_BUFFER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        for bad in ["", "k", "-1", "1g", "1.5k", " 1k", "100m"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
