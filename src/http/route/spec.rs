//! A validated `[[route]]` as the configuration hands it over
//! ([`RouteSpec`](crate::http::route::spec::RouteSpec)), and the set of
//! methods a route takes. `config/` builds these; `Router::new` turns them
//! into precomputed answers.

use crate::http::cidr::Cidr;
use crate::http::files::config::FilesConfig;
use crate::http::parse::Method;
use crate::http::template::ResponseSpec;
use crate::obs::metrics::Page;

/// The methods a route may list (OPTIONS is always answered, with `Allow`).
pub const METHOD_NAMES: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

/// A set of [`METHOD_NAMES`], one bit each in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Methods(u8);

impl Methods {
    /// GET and HEAD: what a route answers unless it says otherwise.
    pub const DEFAULT: Methods = Methods(0b11);

    /// The set from names; `None` names the first unknown one. GET brings
    /// HEAD with it (RFC 9110 9.1: a server that has GET has HEAD).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Methods, &'a str> {
        let mut bits = 0u8;
        for name in names {
            let i = METHOD_NAMES.iter().position(|m| *m == name).ok_or(name)?;
            bits |= 1 << i;
        }
        if bits & 1 != 0 {
            bits |= 0b10;
        }
        Ok(Methods(bits))
    }

    /// Every method of `self` is in `other`.
    pub fn within(self, other: Methods) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn overlaps(self, other: Methods) -> bool {
        self.0 & other.0 != 0
    }

    pub(super) fn contains(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// `Allow: GET, HEAD, OPTIONS\r\n`, in [`METHOD_NAMES`] order.
    pub(super) fn allow_header(self) -> String {
        let mut names: Vec<&str> = METHOD_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, m)| *m)
            .collect();
        names.push("OPTIONS");
        format!("Allow: {}\r\n", names.join(", "))
    }
}

/// The bit of a request's method in a [`Methods`] set (0: none; OPTIONS
/// is decided apart).
pub(super) fn method_bit(method: Method, token: &[u8]) -> u8 {
    match method {
        Method::Get => 1,
        Method::Head => 2,
        Method::Options => 0,
        Method::Other => match token {
            b"POST" => 4,
            b"PUT" => 8,
            b"DELETE" => 16,
            b"PATCH" => 32,
            _ => 0,
        },
    }
}

/// Which paths a route answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// The path (before any `?`) is exactly this.
    Exact(String),
    /// The path starts with this.
    Prefix(String),
}

/// What a route answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A fixed response, configured like `[response]`.
    Static(ResponseSpec),
    /// `Location` to `location`; with `keep_path`, the rest of the path
    /// after the prefix and the query are appended.
    Redirect {
        status: u16,
        location: String,
        keep_path: bool,
        headers: Vec<(String, String)>,
    },
    /// 200 `ok` while the worker serves, 503 `draining` once it drains.
    Health,
    /// A status page built per request from the scoreboard, for clients
    /// in `allow` (others get 403).
    Status { page: Page, allow: Vec<Cidr> },
    /// Files beneath a root (`kind = "files"`), looked up by the path
    /// after the prefix.
    Files(FilesConfig),
}

/// One validated `[[route]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub path: PathMatch,
    /// Lower case, without a port.
    pub host: Option<String>,
    pub methods: Methods,
    pub answer: Answer,
}
