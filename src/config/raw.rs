//! The configuration file's tables as serde reads them: every key
//! optional, unknown keys refused, values already checked by their types
//! in `values.rs`, spans kept where a later check must point at a key.
//!
//! Leaves defaults and meaning to `mod.rs`, `tables.rs` and `routes.rs`.

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{
    AccessFormat, Cidrs, Dur, Facility, FieldValue, Headers, Level, ListenAddr, NonNegative,
    Positive, Rate, Size, Status, Workers,
};
use crate::obs::log::LogTarget;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub listen: Option<Vec<ListenAddr>>,
    pub proxy_protocol_from: Option<Cidrs>,
    pub workers: Option<Workers>,
    pub backlog: Option<Positive>,
    pub worker_connections: Option<Positive>,
    pub shutdown_timeout: Option<Dur>,
    pub keepalive_timeout: Option<Dur>,
    pub header_timeout: Option<Dur>,
    pub drain_idle_grace: Option<Dur>,
    pub max_request_header_bytes: Option<Positive>,
    pub max_request_body_bytes: Option<Positive>,
    pub max_requests_per_worker: Option<NonNegative>,
    pub min_request_rate: Option<Rate>,
    pub max_connections_per_client: Option<NonNegative>,
    pub max_connections_per_client_exempt: Option<Cidrs>,
    pub pid_file: Option<PathBuf>,
    pub worker_timeout: Option<Dur>,
    pub user: Option<toml::Spanned<String>>,
    pub group: Option<toml::Spanned<String>>,
    pub response: Option<RawResponse>,
    pub route: Option<Vec<toml::Spanned<RawRoute>>>,
    pub maintenance: Option<RawMaintenance>,
    pub log: Option<RawLog>,
    pub access_log: Option<toml::Spanned<RawAccessLog>>,
    pub tls: Option<toml::Spanned<RawTls>>,
}

/// One `[[route]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub path: Option<toml::Spanned<String>>,
    pub prefix: Option<toml::Spanned<String>>,
    pub methods: Option<toml::Spanned<Vec<String>>>,
    pub host: Option<toml::Spanned<String>>,
    pub kind: Option<toml::Spanned<String>>,
    pub status: Option<toml::Spanned<i64>>,
    pub body: Option<toml::Spanned<String>>,
    pub body_file: Option<toml::Spanned<PathBuf>>,
    pub content_type: Option<toml::Spanned<FieldValue>>,
    pub headers: Option<toml::Spanned<Headers>>,
    pub location: Option<toml::Spanned<FieldValue>>,
    pub keep_path: Option<toml::Spanned<bool>>,
    pub allow: Option<toml::Spanned<Cidrs>>,
    pub root: Option<toml::Spanned<String>>,
    pub index: Option<toml::Spanned<Vec<String>>>,
    pub precompressed: Option<toml::Spanned<Vec<String>>>,
    pub cache_control: Option<toml::Spanned<String>>,
    pub dotfiles: Option<toml::Spanned<String>>,
    pub listing: Option<toml::Spanned<bool>>,
    pub fallback: Option<toml::Spanned<String>>,
}

/// `[maintenance]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    pub status: Option<Status>,
    pub retry_after: Option<Dur>,
    pub body: Option<String>,
    pub body_file: Option<toml::Spanned<PathBuf>>,
    pub content_type: Option<FieldValue>,
    pub headers: Option<toml::Spanned<Headers>>,
}

/// `[response]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResponse {
    pub status: Option<Status>,
    pub body: Option<String>,
    pub body_file: Option<toml::Spanned<PathBuf>>,
    pub content_type: Option<FieldValue>,
    pub headers: Option<Headers>,
}

/// `[log]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub target: Option<LogTarget>,
    pub facility: Option<Facility>,
    pub ident: Option<String>,
    pub level: Option<Level>,
    pub syslog_socket: Option<PathBuf>,
}

/// `[access_log]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccessLog {
    pub path: Option<toml::Spanned<String>>,
    pub format: Option<AccessFormat>,
    pub buffer: Option<Size>,
    pub flush: Option<Dur>,
}

/// `[tls]`: the certificate chain and key the master loads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub protocols: Option<toml::Spanned<Vec<String>>>,
    pub alpn: Option<toml::Spanned<Vec<String>>>,
}
