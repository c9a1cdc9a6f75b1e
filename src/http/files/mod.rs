//! Serving a directory (`kind = "files"`): the pieces a route of that kind is
//! built from, one job each, so that the caller (router and connection) only
//! strings them together:
//!
//! 1. [`target::resolve`]: the path after the route's prefix → a relative
//!    path beneath root, or a refusal (400/404). Pure.
//! 2. [`open::Root::open`]: that path → an open file or directory and its
//!    [`Meta`], never leaving root (`openat2`, or a component walk). The one
//!    effectful step.
//! 3. [`negotiate::negotiate`]: `Accept-Encoding` → which precompressed
//!    variants to try, best first; then [`decide::decide`]: validators
//!    ([`validators`]) and `Range` ([`range`]) against the chosen file's
//!    metadata → a [`decide::Answer`] (status, fields, body plan). Pure.
//! 4. [`head::write_head`]: an answer → HTTP/1.1 head bytes; the body is a
//!    `(offset, len)` of the file, for `sendfile`.
//!
//! Between 2 and 3, [`steps::after`] says what a lookup's result leads to:
//! serve it, redirect to the trailing-slash form, try the next index file,
//! the listing, the fallback, or a status.
//!
//! Around them: [`config`] (the validated route keys), [`mime`] (extension →
//! `Content-Type`) and [`listing`] (an HTML index of a directory).
//!
//! Left to the caller: matching the prefix, opening precompressed
//! variants (`foo.css` + [`Encoding::suffix`], in negotiated order), building
//! a redirect's `Location`, writing the body, and logging.
//!
//! (The links are spelled out because this doc joins the one on `mod files`
//! in `http/mod.rs`, and rustdoc resolves the two together from there.)
//!
//! [`target::resolve`]: crate::http::files::target::resolve
//! [`open::Root::open`]: crate::http::files::open::Root::open
//! [`Meta`]: crate::http::files::Meta
//! [`negotiate::negotiate`]: crate::http::files::negotiate::negotiate
//! [`decide::decide`]: crate::http::files::decide::decide
//! [`validators`]: crate::http::files::validators
//! [`range`]: crate::http::files::range
//! [`decide::Answer`]: crate::http::files::decide::Answer
//! [`head::write_head`]: crate::http::files::head::write_head
//! [`config`]: crate::http::files::config
//! [`mime`]: crate::http::files::mime
//! [`listing`]: crate::http::files::listing
//! [`steps::after`]: crate::http::files::steps::after
//! [`Encoding::suffix`]: crate::http::files::Encoding::suffix

pub mod cache;
pub mod config;
pub mod decide;
pub mod head;
pub mod listing;
pub mod mime;
pub mod negotiate;
pub mod open;
pub mod range;
pub mod serve;
pub mod steps;
pub mod target;
pub mod validators;

#[cfg(test)]
mod prop;
#[cfg(test)]
mod testdir;

/// `dotfiles`: whether a path with a segment starting with `.` is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dotfiles {
    /// 404 (the default); `/.well-known/` is served all the same.
    Deny,
    Allow,
}

/// What the answer needs to know of a file, from `fstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    /// Modification time, seconds since the epoch (negative before 1970).
    pub mtime_secs: i64,
    pub mtime_nsecs: u32,
    pub ino: u64,
    pub dev: u64,
}

/// A content coding a precompressed sibling file (`foo.css.br`) carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    Br,
    Zstd,
    Gzip,
}

impl Encoding {
    /// Every encoding, in the default `precompressed` order (smallest first).
    pub const ALL: [Encoding; 3] = [Encoding::Br, Encoding::Zstd, Encoding::Gzip];

    /// The name in `precompressed`, `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    /// What is appended to a file's name to find this variant.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Br => ".br",
            Encoding::Zstd => ".zst",
            Encoding::Gzip => ".gz",
        }
    }

    /// The encoding a `precompressed` entry names (exact, lower case).
    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.token() == name)
    }
}
