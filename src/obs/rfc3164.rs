//! RFC 3164 framing, one for the whole program: the header
//! `<PRI>Mmm dd hh:mm:ss ident[pid]: ` that both the daemon's log
//! (`log.rs`) and the access log's syslog sink put before a message, the
//! day padded by a space as 4.1.2 asks.
//!
//! Leaves the socket, its reconnecting and the timestamp's clock to the
//! callers.

/// The fixed part of a sender's header: facility, ident and pid.
#[derive(Clone, Debug)]
pub struct Header {
    facility: u8,
    /// `ident[pid]: `
    tag: Vec<u8>,
}

impl Header {
    pub fn new(facility: syslog::Facility, ident: &str, pid: u32) -> Header {
        Header {
            facility: facility as u8,
            tag: format!("{ident}[{pid}]: ").into_bytes(),
        }
    }

    /// Writes `<PRI>timestamp ident[pid]: ` for a message of `severity`;
    /// `timestamp` is `Mmm dd hh:mm:ss` (`obs::clock`).
    pub fn push(&self, buf: &mut Vec<u8>, severity: syslog::Severity, timestamp: &[u8; 15]) {
        let priority = self.facility | severity as u8;
        buf.push(b'<');
        crate::obs::clock::push_u64(buf, u64::from(priority));
        buf.push(b'>');
        buf.extend_from_slice(timestamp);
        buf.push(b' ');
        buf.extend_from_slice(&self.tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header() {
        let h = Header::new(syslog::Facility::LOG_LOCAL0, "web", 42);
        let mut b = Vec::new();
        h.push(&mut b, syslog::Severity::LOG_INFO, b"Nov  6 08:49:37");
        assert_eq!(b, b"<134>Nov  6 08:49:37 web[42]: ");
    }
}
