//! The status routes' bodies, built per scrape from a scoreboard
//! [`Snapshot`](crate::obs::scoreboard::Snapshot): nginx's stub_status text (so that tools written for nginx,
//! such as prometheus-nginx-exporter, read preforkd unchanged) and the
//! Prometheus text exposition format 0.0.4. Counting is the workers' (into
//! their slots) and the master's (into the totals); who may read a page is
//! the route's `allow`, checked in `http/route/`.

use std::fmt::Write;

use crate::obs::scoreboard::{Board, Eviction, Restart, Snapshot};

/// Which status page a route serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `kind = "stub_status"`.
    StubStatus,
    /// `kind = "metrics"`.
    Metrics,
}

impl Page {
    pub fn content_type(self) -> &'static str {
        match self {
            Page::StubStatus => "text/plain",
            Page::Metrics => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The page's body now, from `board` (zeroes without one: tests,
    /// fuzzing), for the request being answered.
    pub fn render(self, board: Option<Board>) -> String {
        let mut snap = board.map(|b| b.snapshot()).unwrap_or_default();
        // The request being answered counts, and its connection is
        // writing, as nginx counts them (its slot has neither yet).
        snap.requests += 1;
        snap.writing += 1;
        self.body(&snap)
    }

    /// The page's body from `snap`, which counts the request being
    /// answered among `requests` and `writing` already, as nginx does.
    pub fn body(self, snap: &Snapshot) -> String {
        match self {
            Page::StubStatus => stub_status(snap),
            Page::Metrics => prometheus(snap),
        }
    }
}

/// nginx's stub_status text, byte for byte (the spaces before the line
/// ends included): `handled` is `accepts` (preforkd refuses no accepted
/// connection for want of resources), and, as nginx derives it, `Waiting`
/// is every open connection neither reading nor writing.
pub fn stub_status(s: &Snapshot) -> String {
    format!(
        "Active connections: {} \nserver accepts handled requests\n {} {} {} \nReading: {} Writing: {} Waiting: {} \n",
        s.open,
        s.accepted,
        s.accepted,
        s.requests,
        s.reading,
        s.writing,
        waiting(s)
    )
}

/// Open connections neither reading nor writing (idle).
fn waiting(s: &Snapshot) -> u64 {
    s.open.saturating_sub(s.reading + s.writing)
}

/// The metric name of an eviction kind's label.
fn eviction_label(kind: Eviction) -> &'static str {
    match kind {
        Eviction::Idle => "idle",
        Eviction::Lingering => "lingering",
        Eviction::Head => "head",
        Eviction::Slow => "slow",
        Eviction::ClientCap => "client_cap",
        Eviction::Full => "full_busy",
    }
}

/// One family: HELP, TYPE, then its samples (`labels` may be empty).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP preforkd_{name} {help}");
    let _ = writeln!(out, "# TYPE preforkd_{name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "preforkd_{name} {value}");
        } else {
            let _ = writeln!(out, "preforkd_{name}{{{labels}}} {value}");
        }
    }
}

fn one(value: u64) -> [(String, u64); 1] {
    [(String::new(), value)]
}

fn labelled<'a>(key: &str, pairs: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<(String, u64)> {
    pairs
        .into_iter()
        .map(|(l, v)| (format!("{key}=\"{l}\""), v))
        .collect()
}

/// The Prometheus text exposition format 0.0.4 (HELP and TYPE for every
/// family, `_total` on counters), clean under `promtool check metrics`.
pub fn prometheus(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "build_info",
        "gauge",
        "Always 1; the version label names the running build.",
        &[(format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), 1)],
    );
    family(
        &mut out,
        "start_time_seconds",
        "gauge",
        "Unix time the master process started.",
        &one(s.start_time),
    );
    family(
        &mut out,
        "requests_total",
        "counter",
        "Requests answered, by live and exited workers.",
        &one(s.requests),
    );
    family(
        &mut out,
        "responses_total",
        "counter",
        "Responses sent, by status class.",
        &labelled(
            "code",
            ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .into_iter()
                .zip(s.responses),
        ),
    );
    family(
        &mut out,
        "connections_accepted_total",
        "counter",
        "Client connections accepted.",
        &one(s.accepted),
    );
    family(
        &mut out,
        "connections",
        "gauge",
        "Open client connections, by what they are doing.",
        &labelled(
            "state",
            [
                ("reading", s.reading),
                ("writing", s.writing),
                ("waiting", waiting(s)),
            ],
        ),
    );
    family(
        &mut out,
        "workers",
        "gauge",
        "Worker processes, by state.",
        &labelled(
            "state",
            ["starting", "accepting", "draining"]
                .into_iter()
                .zip(s.workers),
        ),
    );
    supervision_families(&mut out, s);
    layer_families(&mut out, s);
    out
}

/// The master's side: restarts, generations, reloads, upgrades, maintenance.
fn supervision_families(out: &mut String, s: &Snapshot) {
    family(
        out,
        "worker_restarts_total",
        "counter",
        "Workers replaced, by cause.",
        &labelled(
            "cause",
            Restart::ALL.iter().map(|r| r.label()).zip(s.restarts),
        ),
    );
    family(
        out,
        "generation",
        "gauge",
        "Configuration generation serving now (each reload adds one).",
        &one(s.generation),
    );
    family(
        out,
        "reloads_total",
        "counter",
        "Reloads, by result.",
        &labelled("result", [("ok", s.reloads[0]), ("failed", s.reloads[1])]),
    );
    family(
        out,
        "upgrades_total",
        "counter",
        "Binary upgrades this master took over (ok) or failed to start (failed).",
        &labelled("result", [("ok", s.upgrades[0]), ("failed", s.upgrades[1])]),
    );
    family(
        out,
        "maintenance",
        "gauge",
        "1 while the maintenance page answers.",
        &one(u64::from(s.maintenance)),
    );
}

/// The layers' own counters: the access log, TLS, HTTP/2 and evictions.
fn layer_families(out: &mut String, s: &Snapshot) {
    family(
        out,
        "access_log_lost_lines_total",
        "counter",
        "Access log lines lost to write failures.",
        &one(s.log_lost),
    );
    for (name, help, value) in [
        (
            "tls_handshakes_total",
            "TLS handshakes completed.",
            s.tls[0],
        ),
        (
            "tls_resumed_total",
            "TLS handshakes that resumed a session.",
            s.tls[1],
        ),
        (
            "tls_handshake_failures_total",
            "TLS connections closed before a handshake completed.",
            s.tls[2],
        ),
    ] {
        family(out, name, "counter", help, &one(value));
    }
    crate::obs::h2stats::families(out, &s.h2, family);
    family(
        out,
        "evictions_total",
        "counter",
        "Connections closed under pressure, by kind (full_busy: times a worker full of busy connections stopped accepting).",
        &labelled(
            "kind",
            Eviction::ALL
                .iter()
                .map(|k| (eviction_label(*k), s.evictions.get(*k))),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::scoreboard::Evictions;

    fn snap() -> Snapshot {
        Snapshot {
            accepted: 7,
            requests: 12,
            responses: [0, 9, 1, 1, 0],
            evictions: Evictions([1, 0, 0, 2, 0, 0]),
            open: 4,
            reading: 1,
            writing: 1,
            workers: [0, 2, 1],
            restarts: [1, 2, 3, 4],
            reloads: [5, 6],
            upgrades: [0, 1],
            generation: 6,
            start_time: 1_700_000_000,
            maintenance: true,
            log_lost: 3,
            tls: [9, 4, 1],
            h2: std::array::from_fn(|i| i as u64),
        }
    }

    #[test]
    fn stub_status_is_nginx_text_byte_for_byte() {
        assert_eq!(
            stub_status(&snap()),
            "Active connections: 4 \nserver accepts handled requests\n 7 7 12 \nReading: 1 Writing: 1 Waiting: 2 \n"
        );
    }

    #[test]
    fn prometheus_families_have_help_type_and_values() {
        let text = prometheus(&snap());
        for line in [
            "preforkd_build_info{version=\"",
            "preforkd_start_time_seconds 1700000000\n",
            "preforkd_requests_total 12\n",
            "preforkd_responses_total{code=\"2xx\"} 9\n",
            "preforkd_responses_total{code=\"5xx\"} 0\n",
            "preforkd_connections_accepted_total 7\n",
            "preforkd_connections{state=\"writing\"} 1\n",
            "preforkd_workers{state=\"draining\"} 1\n",
            "preforkd_worker_restarts_total{cause=\"watchdog\"} 3\n",
            "preforkd_worker_restarts_total{cause=\"recycled\"} 4\n",
            "preforkd_generation 6\n",
            "preforkd_reloads_total{result=\"failed\"} 6\n",
            "preforkd_upgrades_total{result=\"failed\"} 1\n",
            "preforkd_maintenance 1\n",
            "preforkd_access_log_lost_lines_total 3\n",
            "preforkd_evictions_total{kind=\"slow\"} 2\n",
            "preforkd_tls_resumed_total 4\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        // Every sample's family has HELP and TYPE before it.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.iter().any(|d| d == name), "{name} undeclared");
            }
        }
        assert_eq!(text.matches("# HELP ").count(), declared.len());
    }
}
