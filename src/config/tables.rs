//! The tables beside the top-level keys: `[response]`, `[maintenance]`,
//! `[log]`, `[access_log]`, `[tls]`, and `user`/`group` resolved to ids.
//! Each turns its raw table into the component's own config type, reading
//! files now (bodies, certificates) so that `-t` and a reload fail early.
//!
//! Leaves `[[route]]` to `routes.rs` and the top-level keys to `mod.rs`.

use std::path::{Path, PathBuf};

use super::error::{Error, Source};
use super::raw::{RawAccessLog, RawLog, RawMaintenance, RawResponse, RawTls};
use crate::http::template::ResponseSpec;
use crate::obs::access_log::{AccessLogConfig, Destination};
use crate::obs::log::LogConfig;
use crate::os::credentials::Credentials;
use crate::tls::TlsConfig;

/// Puts `value` in `slot` if there is one.
pub(super) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// The built-in `[response]`: 200, plain text, "Hello, World!".
pub(super) fn default_response() -> ResponseSpec {
    ResponseSpec {
        status: 200,
        content_type: "text/plain; charset=utf-8".into(),
        headers: Vec::new(),
        body: b"Hello, World!\n".to_vec(),
    }
}

/// `[response]`, over the built-in one.
pub(super) fn response(
    src: Source<'_>,
    base: &Path,
    spec: &mut ResponseSpec,
    r: RawResponse,
) -> Result<(), Error> {
    set(&mut spec.status, r.status.map(|s| s.0));
    set(&mut spec.content_type, r.content_type.map(|t| t.0));
    set(&mut spec.headers, r.headers.map(|h| h.0));
    set(
        &mut spec.body,
        read_body(src, base, "response", r.body, r.body_file)?,
    );
    Ok(())
}

/// `body` or `body_file` (relative to the config file), not both.
pub(super) fn read_body(
    src: Source<'_>,
    base: &Path,
    table: &str,
    body: Option<String>,
    body_file: Option<toml::Spanned<PathBuf>>,
) -> Result<Option<Vec<u8>>, Error> {
    match (body, body_file) {
        (Some(_), Some(file)) => Err(src.at(
            file.span(),
            format!("{table}.body and {table}.body_file exclude each other"),
        )),
        (Some(body), None) => Ok(Some(body.into_bytes())),
        (None, Some(file)) => {
            let file_path = base.join(file.get_ref());
            std::fs::read(&file_path).map(Some).map_err(|e| {
                src.at(
                    file.span(),
                    format!(
                        "{table}.body_file: cannot read {}: {e}",
                        file_path.display()
                    ),
                )
            })
        }
        (None, None) => Ok(None),
    }
}

/// `[maintenance]`: like `[response]`, 503 by default, with `Retry-After`
/// from `retry_after` (whole seconds, rounded up).
pub(super) fn maintenance(
    src: Source<'_>,
    base: &Path,
    m: RawMaintenance,
) -> Result<ResponseSpec, Error> {
    let mut spec = crate::http::answer::default_maintenance();
    set(&mut spec.status, m.status.map(|s| s.0));
    set(&mut spec.content_type, m.content_type.map(|t| t.0));
    if let Some(h) = m.headers {
        let span = h.span();
        spec.headers = h.into_inner().0;
        if m.retry_after.is_some()
            && spec
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
        {
            return Err(src.at(
                span,
                "maintenance.headers: Retry-After is set by maintenance.retry_after".into(),
            ));
        }
    }
    if let Some(d) = m.retry_after {
        let secs = d.0.as_millis().div_ceil(1000);
        spec.headers.push(("Retry-After".into(), secs.to_string()));
    }
    if let Some(body) = read_body(src, base, "maintenance", m.body, m.body_file)? {
        spec.body = body;
    }
    Ok(spec)
}

/// `[log]`, over the defaults.
pub(super) fn log(log: &mut LogConfig, l: RawLog, base: &Path) {
    set(&mut log.target, l.target);
    set(&mut log.facility, l.facility.map(|f| f.0));
    set(&mut log.ident, l.ident);
    set(&mut log.level, l.level.map(|l| l.0));
    set(
        &mut log.syslog_socket,
        l.syslog_socket.map(|p| base.join(p)),
    );
}

/// directory must exist, as nginx -t checks that it can open its logs.
pub(super) fn access_log(
    src: Source<'_>,
    table: toml::Spanned<RawAccessLog>,
    base: &Path,
) -> Result<AccessLogConfig, Error> {
    let span = table.span();
    let raw = table.into_inner();
    let Some(path) = raw.path else {
        return Err(src.at(
            span,
            "access_log.path is required: a file, or \"syslog\"".into(),
        ));
    };
    let destination = match path.get_ref().as_str() {
        "" => return Err(src.at(path.span(), "access_log.path: must not be empty".into())),
        "syslog" => Destination::Syslog,
        p => {
            // Absolute now: `-d` and an upgraded master may run elsewhere.
            let file = std::path::absolute(base.join(p)).unwrap_or_else(|_| base.join(p));
            if file.is_dir() {
                return Err(src.at(
                    path.span(),
                    format!("access_log.path: {} is a directory", file.display()),
                ));
            }
            match file.parent() {
                Some(dir) if !dir.is_dir() => {
                    return Err(src.at(
                        path.span(),
                        format!(
                            "access_log.path: directory {} does not exist",
                            dir.display()
                        ),
                    ))
                }
                _ => {}
            }
            Destination::File(file)
        }
    };
    Ok(AccessLogConfig {
        destination,
        format: raw
            .format
            .map_or(crate::obs::access_log::Format::Combined, |f| f.0),
        buffer: raw
            .buffer
            .map_or(crate::obs::access_log::DEFAULT_BUFFER, |b| b.0),
        flush: raw
            .flush
            .map_or(crate::obs::access_log::DEFAULT_FLUSH, |d| d.0),
    })
}

/// `[tls]`: certificate and key are required and read now, so that `-t`
/// and a reload fail on a missing file, bad PEM or a key that does not
/// match (`file: reason`), and the master holds them before it forks.
pub(super) fn tls(
    src: Source<'_>,
    table: toml::Spanned<RawTls>,
    base: &Path,
) -> Result<TlsConfig, Error> {
    use crate::tls::alpn::Alpn;
    use crate::tls::Version;
    let span = table.span();
    let raw = table.into_inner();
    let (Some(certificate), Some(key)) = (raw.certificate, raw.key) else {
        return Err(src.at(span, "tls: certificate and key are both required".into()));
    };
    let protocols = match raw.protocols {
        None => vec![Version::Tls12, Version::Tls13],
        Some(p) => names(
            src,
            p,
            "tls.protocols",
            "version",
            Version::parse,
            "\"1.2\", \"1.3\"",
        )?,
    };
    let alpn = match raw.alpn {
        None => crate::tls::alpn::DEFAULT.to_vec(),
        Some(a) => names(
            src,
            a,
            "tls.alpn",
            "protocol",
            Alpn::parse,
            "\"h2\", \"http/1.1\"",
        )?,
    };
    // Absolute now: `-d` and an upgraded master may run elsewhere.
    let abs = |p: &Path| std::path::absolute(base.join(p)).unwrap_or_else(|_| base.join(p));
    crate::tls::load(&abs(&certificate), &abs(&key), &protocols)
        .map(|t| crate::tls::alpn::with_alpn(t, &alpn))
        .map_err(|e| Error::whole(e.path, e.reason))
}

/// A list of known names (`tls.protocols`, `tls.alpn`): each parsed, at
/// least one, duplicates dropped, in the order given.
fn names<T: PartialEq>(
    src: Source<'_>,
    list: toml::Spanned<Vec<String>>,
    key: &str,
    what: &str,
    parse: fn(&str) -> Option<T>,
    known: &str,
) -> Result<Vec<T>, Error> {
    let span = list.span();
    let mut out = Vec::new();
    for name in list.into_inner() {
        let v = parse(&name).ok_or_else(|| {
            src.at(
                span.clone(),
                format!(
                    "{key}: unknown {what} \"{name}\": expected {}",
                    known.replace(", ", " or ")
                ),
            )
        })?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(src.at(span, format!("{key}: at least one of {known}")));
    }
    Ok(out)
}

/// Resolves `user` and `group` to ids now, so that `-t` rejects names that
/// do not exist and workers need no lookups after fork.
pub(super) fn credentials(
    src: Source<'_>,
    user: Option<toml::Spanned<String>>,
    group: Option<toml::Spanned<String>>,
) -> Result<Option<Credentials>, Error> {
    use nix::unistd::{Group, User};
    let group_id = match &group {
        Some(g) => match Group::from_name(g.get_ref()) {
            Ok(Some(found)) => Some(found.gid),
            _ => {
                return Err(src.at(
                    g.span(),
                    format!("group: no group named \"{}\"", g.get_ref()),
                ))
            }
        },
        None => None,
    };
    match user {
        Some(u) => match User::from_name(u.get_ref()) {
            Ok(Some(found)) => Ok(Some(Credentials {
                name: Some(found.name),
                uid: Some(found.uid),
                // group defaults to the user's primary group.
                gid: group_id.unwrap_or(found.gid),
            })),
            _ => Err(src.at(u.span(), format!("user: no user named \"{}\"", u.get_ref()))),
        },
        None => Ok(group_id.map(|gid| Credentials {
            name: None,
            uid: None,
            gid,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::config::parse;
    use crate::config::tests::{expect_error, parse_str};

    #[test]
    fn access_log_table() {
        let c = parse_str("").unwrap();
        assert_eq!(c.access_log, None);
        let dir = std::env::temp_dir();
        let c = parse_str(&format!(
            "[access_log]\npath = \"{}/a.log\"\n",
            dir.display()
        ))
        .unwrap();
        let a = c.access_log.unwrap();
        assert_eq!(a.destination, Destination::File(dir.join("a.log")));
        assert_eq!(a.format, crate::obs::access_log::Format::Combined);
        assert_eq!(a.buffer, 64 * 1024);
        assert_eq!(a.flush, Duration::from_secs(1));
        let c = parse_str(
            "[access_log]\npath = \"syslog\"\nformat = \"json\"\nbuffer = \"0\"\nflush = \"250ms\"\n",
        )
        .unwrap();
        let a = c.access_log.unwrap();
        assert_eq!(a.destination, Destination::Syslog);
        assert_eq!(a.format, crate::obs::access_log::Format::Json);
        assert_eq!(a.buffer, 0);
        assert_eq!(a.flush, Duration::from_millis(250));
        assert_eq!(
            parse_str("[access_log]\npath = \"syslog\"\nbuffer = 4096\n")
                .unwrap()
                .access_log
                .unwrap()
                .buffer,
            4096
        );
        // Relative to the config file's directory, made absolute.
        let c = parse("[access_log]\npath = \"x.log\"\n", &dir.join("p.toml")).unwrap();
        assert_eq!(
            c.access_log.unwrap().destination,
            Destination::File(dir.join("x.log"))
        );
    }

    #[test]
    fn access_log_errors_name_file_line_and_key() {
        expect_error(
            "[access_log]\nformat = \"json\"\n",
            "test.toml:1:1: access_log.path is required",
        );
        expect_error(
            "[access_log]\npath = \"syslog\"\nformat = \"apache\"\n",
            "test.toml:3:10: access_log.format: unknown format \"apache\"",
        );
        expect_error(
            "[access_log]\npath = \"syslog\"\nbuffer = \"1g\"\n",
            "test.toml:3:10: access_log.buffer: invalid size \"1g\"",
        );
        expect_error(
            "[access_log]\npath = \"syslog\"\nflush = \"0s\"\n",
            "test.toml:3:9: access_log.flush",
        );
        expect_error(
            "[access_log]\npath = \"/no/such/dir/a.log\"\n",
            "test.toml:2:8: access_log.path: directory /no/such/dir does not exist",
        );
        expect_error(
            "[access_log]\npath = \"syslog\"\nbufer = 1\n",
            "test.toml:3:1: unknown key \"bufer\"",
        );
        expect_error(
            "[access_log]\npath = \"\"\n",
            "test.toml:2:8: access_log.path: must not be empty",
        );
    }
}
