//! Time, formatted once for the whole program: the HTTP `Date`
//! (IMF-fixdate, RFC 9110 5.6.7), the syslog timestamp (RFC 3164 4.1.2,
//! UTC) and the access log's local-time strings of the current second,
//! all from one calendar (`Civil`) and one set of digit writers.
//!
//! Leaves reading the clock to the callers (the worker's loop turns the
//! second) and the time zone offset to `os/sys.rs`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];

/// `now` as an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(now: SystemTime) -> [u8; DATE_LEN] {
    let secs = unix_secs(now);
    let utc = Civil::of(secs);
    let mut b = Vec::with_capacity(DATE_LEN);
    // 1970-01-01 was a Thursday.
    b.extend_from_slice(DAYS[(secs.max(0) as u64 / 86_400 % 7) as usize]);
    b.extend_from_slice(b", ");
    utc.push_day_month_year(&mut b, b' ');
    b.push(b' ');
    utc.push_hms(&mut b, b':');
    b.extend_from_slice(b" GMT");
    let mut date = [b' '; DATE_LEN];
    copy_into(&mut date, &b);
    date
}

/// `now` as syslog's `Mmm dd hh:mm:ss` (UTC), the day padded by a space.
pub fn syslog_timestamp(now: SystemTime) -> [u8; 15] {
    let mut out = *b"Jan  1 00:00:00";
    push_syslog(&mut out, unix_secs(now));
    out
}

fn push_syslog(out: &mut [u8; 15], secs: i64) {
    let utc = Civil::of(secs);
    let mut b = Vec::with_capacity(15);
    b.extend_from_slice(MONTHS[utc.month as usize - 1]);
    b.push(b' ');
    if utc.day < 10 {
        b.push(b' ');
    }
    push_u64(&mut b, utc.day);
    b.push(b' ');
    utc.push_hms(&mut b, b':');
    copy_into(out, &b);
}

/// An HTTP-date in any of the three forms a recipient must accept (RFC
/// 9110 5.6.7): IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850
/// `Sunday, 06-Nov-94 08:49:37 GMT` (a two-digit year within 50 years from
/// now is taken as 19xx/20xx the RFC's way: 70-99 as 19xx, else 20xx) and
/// asctime `Sun Nov  6 08:49:37 1994`; seconds since the epoch, or None.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim_matches([' ', '\t']);
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let rest = rest.strip_suffix(" GMT")?;
        let (date, time) = rest.rsplit_once(' ')?;
        let parts: Vec<&str> = date.split([' ', '-']).collect();
        let [d, m, y] = parts.as_slice() else {
            return None;
        };
        let year: i64 = match y.len() {
            4 => y.parse().ok()?,
            2 => {
                let yy: i64 = y.parse().ok()?;
                if yy >= 70 {
                    1900 + yy
                } else {
                    2000 + yy
                }
            }
            _ => return None,
        };
        (d.parse::<i64>().ok()?, *m, year, time)
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994"
        let mut it = s.split_ascii_whitespace();
        let (_wday, m, d, time, y) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        (d.parse().ok()?, m, y.parse().ok()?, time)
    };
    let month = MONTHS
        .iter()
        .position(|n| n.as_slice() == month.as_bytes())? as i64
        + 1;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, se] = hms.as_slice() else {
        return None;
    };
    let valid = (1..=31).contains(&day)
        && (0..24).contains(h)
        && (0..60).contains(mi)
        && (0..61).contains(se)
        && year >= 1970;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard
/// Hinnant's days-from-civil, the inverse of `Civil::of`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64
}

/// Writes `n` in decimal.
pub fn push_u64(buf: &mut Vec<u8>, n: u64) {
    push_padded(buf, n, 1);
}

/// Writes `n` in decimal, zero-padded to `width` digits.
pub fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut m = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    let start = i.min(digits.len() - width.min(20));
    buf.extend_from_slice(&digits[start..]);
}

/// The access log's time strings of the current second, rebuilt when the
/// second turns.
pub struct Clock {
    /// The `Instant` at which this wall-clock second began (for JSON's ms).
    pub second_start: Instant,
    /// `10/Oct/2000:13:55:36 -0700`
    pub local: [u8; 26],
    /// `2000-10-10T13:55:36`
    pub iso: [u8; 19],
    /// `-07:00`
    pub iso_offset: [u8; 6],
    /// `Oct 10 20:55:36` (UTC, as the daemon's own syslog lines)
    pub syslog: [u8; 15],
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            second_start: Instant::now(),
            local: *b"01/Jan/1970:00:00:00 +0000",
            iso: *b"1970-01-01T00:00:00",
            iso_offset: *b"+00:00",
            syslog: *b"Jan  1 00:00:00",
        }
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl Clock {
    /// The wall clock turned a second; `now` is the same moment.
    pub fn set(&mut self, wall: SystemTime, now: Instant) {
        let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() as i64;
        self.second_start = now
            .checked_sub(Duration::from_nanos(u64::from(since.subsec_nanos())))
            .unwrap_or(now);
        let offset = crate::os::sys::utc_offset(secs).unwrap_or(0);
        self.fill(secs, offset);
    }

    /// Builds every string for `secs` since the epoch in a zone `offset`
    /// seconds east of UTC.
    pub fn fill(&mut self, secs: i64, offset: i32) {
        let local = Civil::of(secs + i64::from(offset));
        let sign = if offset < 0 { b'-' } else { b'+' };
        let off = offset.unsigned_abs();
        let (oh, om) = ((off / 3600) as u64, (off % 3600 / 60) as u64);
        let mut b = Vec::with_capacity(32);
        local.push_day_month_year(&mut b, b'/');
        b.push(b':');
        local.push_hms(&mut b, b':');
        b.push(b' ');
        b.push(sign);
        push_padded(&mut b, oh, 2);
        push_padded(&mut b, om, 2);
        copy_into(&mut self.local, &b);

        b.clear();
        push_padded(&mut b, local.year, 4);
        b.push(b'-');
        push_padded(&mut b, local.month, 2);
        b.push(b'-');
        push_padded(&mut b, local.day, 2);
        b.push(b'T');
        local.push_hms(&mut b, b':');
        copy_into(&mut self.iso, &b);

        b.clear();
        b.push(sign);
        push_padded(&mut b, oh, 2);
        b.push(b':');
        push_padded(&mut b, om, 2);
        copy_into(&mut self.iso_offset, &b);

        push_syslog(&mut self.syslog, secs);
    }
}

fn copy_into<const N: usize>(dst: &mut [u8; N], src: &[u8]) {
    let n = N.min(src.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// A broken-down proleptic Gregorian date and time.
pub struct Civil {
    pub year: u64,
    pub month: u64,
    pub day: u64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

impl Civil {
    /// From seconds since 1970-01-01 00:00:00 (Howard Hinnant's
    /// days-to-civil algorithm); times before 1970 are shown as 1970.
    pub fn of(secs: i64) -> Civil {
        let secs = secs.max(0) as u64;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// `dd Mmm yyyy`, with `sep` between.
    pub fn push_day_month_year(&self, b: &mut Vec<u8>, sep: u8) {
        push_padded(b, self.day, 2);
        b.push(sep);
        b.extend_from_slice(MONTHS[self.month as usize - 1]);
        b.push(sep);
        push_padded(b, self.year, 4);
    }

    /// `hh:mm:ss`, with `sep` between.
    pub fn push_hms(&self, b: &mut Vec<u8>, sep: u8) {
        push_padded(b, self.hour, 2);
        b.push(sep);
        push_padded(b, self.minute, 2);
        b.push(sep);
        push_padded(b, self.second, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_strings() {
        let mut c = Clock::default();
        // 2000-10-10 20:55:36 UTC, shown at -07:00 like Apache's example.
        c.fill(971_211_336, -7 * 3600);
        assert_eq!(&c.local, b"10/Oct/2000:13:55:36 -0700");
        assert_eq!(&c.iso, b"2000-10-10T13:55:36");
        assert_eq!(&c.iso_offset, b"-07:00");
        assert_eq!(&c.syslog, b"Oct 10 20:55:36");
        c.fill(951_782_400, 5 * 3600 + 30 * 60); // 2000-02-29 00:00:00 UTC
        assert_eq!(&c.local, b"29/Feb/2000:05:30:00 +0530");
        assert_eq!(&c.syslog, b"Feb 29 00:00:00");
        c.fill(0, 0);
        assert_eq!(&c.local, b"01/Jan/1970:00:00:00 +0000");
        assert_eq!(&c.syslog, b"Jan  1 00:00:00");
    }

    #[test]
    fn http_dates() {
        assert_eq!(&http_date(UNIX_EPOCH), b"Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(&http_date(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 86_399);
        assert_eq!(&http_date(t), b"Tue, 29 Feb 2000 23:59:59 GMT");
    }

    #[test]
    fn http_dates_parse_in_all_three_forms() {
        let at = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), at);
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "yesterday",
            "Sun, 06 Foo 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
        for secs in (0..4_102_444_800u64).step_by(7_777_777) {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            let text = std::str::from_utf8(&http_date(t)).unwrap().to_owned();
            assert_eq!(parse_http_date(&text), Some(secs as i64), "{text}");
        }
    }

    #[test]
    fn http_dates_match_httpdate() {
        for secs in (0..4_102_444_800u64)
            .step_by(7_777_777)
            .chain([1_700_000_000])
        {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(
                http_date(t).as_slice(),
                httpdate::fmt_http_date(t).as_bytes(),
                "{secs}"
            );
        }
    }
}
