//! The configuration's error, shown `path:line:col: message`, and the
//! [`Source`] that turns a TOML span into that line and column (naming the
//! key when the TOML parser's own message does not).
//!
//! Leaves the checks themselves to the files that parse each table.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A configuration error, shown `path:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// An error with no line to point at (a file that cannot be read, the
    /// configuration as a whole, a certificate file).
    pub(super) fn whole(path: PathBuf, message: String) -> Error {
        Error {
            path,
            line: 0,
            col: 0,
            message,
        }
    }
}

/// The text being parsed and the file it came from: what an error needs
/// to name `file:line:col`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a> {
    pub text: &'a str,
    pub path: &'a Path,
}

impl Source<'_> {
    /// An error about the value at `span`.
    pub fn at(self, span: Range<usize>, message: String) -> Error {
        let (line, col) = line_col(self.text, span.start);
        Error {
            path: self.path.to_owned(),
            line,
            col,
            message,
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line(self, offset: usize) -> usize {
        line_col(self.text, offset).0
    }

    /// Turns a TOML or validation error into `Error`, naming the key.
    pub fn toml_error(self, e: &toml::de::Error) -> Error {
        let message = e.message().trim().to_owned();
        let message = match message.strip_prefix("unknown field `") {
            Some(rest) => {
                let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
                let expected = expected.trim_start_matches(", ");
                format!("unknown key \"{key}\" ({})", expected.replace('`', "\""))
            }
            None => match e.span().and_then(|s| key_at(self.text, s.start)) {
                Some(key) if !message.contains(&key) => format!("{key}: {message}"),
                _ => message,
            },
        };
        match e.span() {
            Some(span) => self.at(span, message),
            None => Error::whole(self.path.to_owned(), message),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted key whose value sits at `offset`: the nearest `key =` at or
/// above that line (a multi-line array's elements have none), under the
/// last `[table]` header above it.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let this_line = text[line_start..].lines().next().unwrap_or("");
    let mut lines = std::iter::once(this_line).chain(before[..line_start].lines().rev());
    let key = lines.find_map(|line| {
        let line = line.trim();
        if line.starts_with('[') {
            return Some(None); // a table header: no key above it belongs to us
        }
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        plain.then(|| Some(key.to_owned()))
    })??;
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key,
    })
}
