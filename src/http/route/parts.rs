//! What routing reads from a request head the parser has accepted: the
//! method token, the path (absolute-form included), the query after it and
//! the Host field's host without its port. Byte slices into the head; no
//! copies.

/// What routing needs from a request head already checked by the parser.
pub(super) struct Parts<'h> {
    pub(super) method: &'h [u8],
    /// The path of the target ("/" for an absolute-form target without one).
    pub(super) path: &'h [u8],
    /// The target from the start of its path to its end (query included).
    pub(super) after_path_start: &'h [u8],
    /// How long the path really is in `after_path_start`.
    pub(super) real_path_len: usize,
    /// The Host field's host, without port (empty when absent or not asked for).
    pub(super) host: &'h [u8],
}

impl<'h> Parts<'h> {
    /// None for a target without a path (`*`, authority-form).
    pub(super) fn of(head: &'h [u8], want_host: bool) -> Option<Parts<'h>> {
        let mut head = head;
        while let [b'\r', b'\n', rest @ ..] = head {
            head = rest;
        }
        let line_end = head.iter().position(|&b| b == b'\r')?;
        let line = &head[..line_end];
        let sp1 = line.iter().position(|&b| b == b' ')?;
        let method = &line[..sp1];
        let rest = &line[sp1 + 1..];
        let sp2 = rest.iter().position(|&b| b == b' ')?;
        let target = &rest[..sp2];
        let from = if target.first() == Some(&b'/') {
            0
        } else {
            // absolute-form: scheme "://" authority, then the path.
            let scheme_end = target.windows(3).position(|w| w == b"://")? + 3;
            scheme_end
                + target[scheme_end..]
                    .iter()
                    .position(|&b| b == b'/' || b == b'?')
                    .unwrap_or(target.len() - scheme_end)
        };
        let after_path_start = &target[from..];
        let real_path_len = after_path_start
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(after_path_start.len());
        let path: &[u8] = if real_path_len == 0 {
            b"/"
        } else {
            &after_path_start[..real_path_len]
        };
        let host = if want_host {
            host_field(&head[line_end..])
        } else {
            &[]
        };
        Some(Parts {
            method,
            path,
            after_path_start,
            real_path_len,
            host,
        })
    }
}

/// The host of the Host field (without its port), or empty.
pub(super) fn host_field(fields: &[u8]) -> &[u8] {
    for line in fields.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() < 5 || !line[..5].eq_ignore_ascii_case(b"host:") {
            continue;
        }
        let mut v = &line[5..];
        while let [b' ' | b'\t', rest @ ..] = v {
            v = rest;
        }
        while let [rest @ .., b' ' | b'\t'] = v {
            v = rest;
        }
        let end = if v.first() == Some(&b'[') {
            v.iter().position(|&b| b == b']').map_or(v.len(), |i| i + 1)
        } else {
            v.iter().position(|&b| b == b':').unwrap_or(v.len())
        };
        return &v[..end];
    }
    &[]
}
