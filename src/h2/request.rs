//! A decoded request head → [`Request`], checked as RFC 9113 §8.2 and
//! §8.3.1 say: field names lower-case and valid, no connection-specific
//! fields, `te` only `trailers`, pseudo-headers known, once each, before
//! the regular fields, the required ones present. Anything else is a
//! malformed request: a stream error PROTOCOL_ERROR (§8.1.1).

use super::hpack::HeaderList;

/// A request head, its fields in the decoder's one buffer.
#[derive(Debug)]
pub struct Request {
    pub stream: u32,
    /// No body follows.
    pub end_stream: bool,
    pub content_length: Option<u64>,
    fields: HeaderList,
    method: usize,
    scheme: Option<usize>,
    authority: Option<usize>,
    path: Option<usize>,
    /// Index of the first regular field.
    regular: usize,
}

impl Request {
    pub fn method(&self) -> &[u8] {
        self.value(Some(self.method)).unwrap_or_default()
    }

    /// Every field, pseudo-headers first, as decoded.
    pub fn fields(&self) -> &HeaderList {
        &self.fields
    }

    pub fn scheme(&self) -> Option<&[u8]> {
        self.value(self.scheme)
    }

    pub fn authority(&self) -> Option<&[u8]> {
        self.value(self.authority)
    }

    /// Absent only for CONNECT (§8.5).
    pub fn path(&self) -> Option<&[u8]> {
        self.value(self.path)
    }

    /// The regular fields, in order (name lower-case).
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().skip(self.regular)
    }

    fn value(&self, i: Option<usize>) -> Option<&[u8]> {
        self.fields.get(i?).map(|(_, v)| v)
    }
}

/// Why a request is malformed (all PROTOCOL_ERROR; the name is for logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    BadName,
    BadValue,
    UnknownPseudo,
    DuplicatePseudo,
    PseudoAfterRegular,
    MissingPseudo,
    ConnectionSpecific,
    BadTe,
    BadContentLength,
    EmptyPath,
    PseudoInTrailers,
}

/// Checks a request head and takes its fields.
pub fn request(fields: HeaderList, stream: u32, end_stream: bool) -> Result<Request, Malformed> {
    let (mut method, mut scheme, mut authority, mut path) = (None, None, None, None);
    let mut regular = None;
    let mut content_length = None;
    for (i, (name, value)) in fields.iter().enumerate() {
        check_value(value)?;
        if let Some(pseudo) = name.strip_prefix(b":") {
            if regular.is_some() {
                return Err(Malformed::PseudoAfterRegular);
            }
            let slot = match pseudo {
                b"method" => &mut method,
                b"scheme" => &mut scheme,
                b"authority" => &mut authority,
                b"path" => &mut path,
                _ => return Err(Malformed::UnknownPseudo),
            };
            if slot.replace(i).is_some() {
                return Err(Malformed::DuplicatePseudo);
            }
            continue;
        }
        regular.get_or_insert(i);
        check_regular(name, value)?;
        if name == b"content-length" {
            let n = parse_length(value)?;
            if content_length.is_some_and(|old| old != n) {
                return Err(Malformed::BadContentLength);
            }
            content_length = Some(n);
        }
    }
    let req = Request {
        stream,
        end_stream,
        content_length,
        method: method.ok_or(Malformed::MissingPseudo)?,
        scheme,
        authority,
        path,
        regular: regular.unwrap_or(fields.len()),
        fields,
    };
    check_pseudo_set(&req)?;
    Ok(req)
}

/// §8.3.1 (and §8.5 for CONNECT: `:authority` only).
fn check_pseudo_set(req: &Request) -> Result<(), Malformed> {
    if req.method() == b"CONNECT" {
        if req.authority.is_none() || req.scheme.is_some() || req.path.is_some() {
            return Err(Malformed::MissingPseudo);
        }
        return Ok(());
    }
    if req.scheme.is_none() {
        return Err(Malformed::MissingPseudo);
    }
    match req.path() {
        None => Err(Malformed::MissingPseudo),
        Some([]) => Err(Malformed::EmptyPath),
        Some(_) => Ok(()),
    }
}

/// Trailers: regular fields only (§8.1).
pub fn trailers(fields: &HeaderList) -> Result<(), Malformed> {
    for (name, value) in fields.iter() {
        check_value(value)?;
        if name.starts_with(b":") {
            return Err(Malformed::PseudoInTrailers);
        }
        check_regular(name, value)?;
    }
    Ok(())
}

fn check_regular(name: &[u8], value: &[u8]) -> Result<(), Malformed> {
    // Token characters, no upper case (§8.2.1, RFC 9110 §5.1).
    let token =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.iter().all(|&b| token(b)) {
        return Err(Malformed::BadName);
    }
    match name {
        b"connection" | b"proxy-connection" | b"keep-alive" | b"transfer-encoding" | b"upgrade" => {
            Err(Malformed::ConnectionSpecific)
        }
        b"te" if value != b"trailers" => Err(Malformed::BadTe),
        _ => Ok(()),
    }
}

/// No NUL, CR or LF; no leading or trailing whitespace (§8.2.1).
fn check_value(value: &[u8]) -> Result<(), Malformed> {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
        || value.first().is_some_and(ws)
        || value.last().is_some_and(ws)
    {
        return Err(Malformed::BadValue);
    }
    Ok(())
}

fn parse_length(value: &[u8]) -> Result<u64, Malformed> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Malformed::BadContentLength);
    }
    Ok(value.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(fields: &[(&str, &str)]) -> HeaderList {
        let mut l = HeaderList::new(usize::MAX);
        for (n, v) in fields {
            l.push(n.as_bytes(), v.as_bytes());
        }
        l
    }

    const BASE: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/x"),
        (":authority", "a"),
    ];

    fn with(extra: &[(&str, &str)]) -> Result<Request, Malformed> {
        let mut f = BASE.to_vec();
        f.extend_from_slice(extra);
        request(list(&f), 1, true)
    }

    #[test]
    fn good_request() {
        let r = with(&[
            ("accept", "*/*"),
            ("content-length", "0"),
            ("te", "trailers"),
        ])
        .unwrap();
        assert_eq!(
            (r.method(), r.scheme(), r.path(), r.authority()),
            (
                &b"GET"[..],
                Some(&b"https"[..]),
                Some(&b"/x"[..]),
                Some(&b"a"[..])
            )
        );
        assert_eq!(r.headers().count(), 3);
        assert_eq!(r.content_length, Some(0));
        let connect = request(
            list(&[(":method", "CONNECT"), (":authority", "h:443")]),
            3,
            false,
        )
        .unwrap();
        assert_eq!(connect.path(), None);
    }

    #[test]
    fn malformed_requests() {
        let cases: &[(&[(&str, &str)], Malformed)] = &[
            (
                &[
                    (":method", "GET"),
                    (":scheme", "https"),
                    (":path", "/"),
                    (":path", "/"),
                ],
                Malformed::DuplicatePseudo,
            ),
            (
                &[(":method", "GET"), (":scheme", "https")],
                Malformed::MissingPseudo,
            ),
            (
                &[(":scheme", "https"), (":path", "/")],
                Malformed::MissingPseudo,
            ),
            (
                &[(":method", "GET"), (":scheme", "https"), (":path", "")],
                Malformed::EmptyPath,
            ),
            (
                &[
                    (":method", "GET"),
                    (":scheme", "https"),
                    (":path", "/"),
                    (":status", "200"),
                ],
                Malformed::UnknownPseudo,
            ),
            (
                &[
                    (":method", "GET"),
                    ("a", "b"),
                    (":scheme", "https"),
                    (":path", "/"),
                ],
                Malformed::PseudoAfterRegular,
            ),
            (
                &[(":method", "CONNECT"), (":authority", "a"), (":path", "/")],
                Malformed::MissingPseudo,
            ),
        ];
        for (fields, want) in cases {
            assert_eq!(
                request(list(fields), 1, true).err(),
                Some(*want),
                "{fields:?}"
            );
        }
        for (extra, want) in [
            (("Accept", "x"), Malformed::BadName),
            (("", "x"), Malformed::BadName),
            (("a b", "x"), Malformed::BadName),
            (("connection", "close"), Malformed::ConnectionSpecific),
            (("keep-alive", "1"), Malformed::ConnectionSpecific),
            (
                ("transfer-encoding", "chunked"),
                Malformed::ConnectionSpecific,
            ),
            (("upgrade", "h2c"), Malformed::ConnectionSpecific),
            (("proxy-connection", "x"), Malformed::ConnectionSpecific),
            (("te", "gzip"), Malformed::BadTe),
            (("content-length", "1x"), Malformed::BadContentLength),
            (("content-length", ""), Malformed::BadContentLength),
            (("x", " lead"), Malformed::BadValue),
            (("x", "a\nb"), Malformed::BadValue),
        ] {
            assert_eq!(with(&[extra]).err(), Some(want), "{extra:?}");
        }
        assert_eq!(
            with(&[("content-length", "1"), ("content-length", "2")]).err(),
            Some(Malformed::BadContentLength)
        );
        assert!(with(&[("content-length", "1"), ("content-length", "1")]).is_ok());
    }

    #[test]
    fn trailer_rules() {
        assert_eq!(trailers(&list(&[("x", "y")])), Ok(()));
        assert_eq!(
            trailers(&list(&[(":path", "/")])),
            Err(Malformed::PseudoInTrailers)
        );
        assert_eq!(trailers(&list(&[("X", "y")])), Err(Malformed::BadName));
    }
}
