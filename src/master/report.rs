//! What the master tells about itself: the one-line summary for systemd's
//! `STATUS=`, and the `-s status` report (one line per worker from the
//! scoreboard, then totals) served on the control socket, which also takes
//! `-s maintenance on|off` (see `maintenance.rs`).

use std::fmt::Write;

use super::Master;
use crate::control::Request;
use crate::obs::scoreboard;

impl Master {
    pub(super) fn listen_list(&self) -> String {
        let addrs: Vec<String> = self
            .listeners
            .iter()
            .map(|l| {
                let flags = self.config.listen_for(l.addr);
                let mut text = l.addr.to_string();
                if flags.tls {
                    text.push_str("/tls");
                }
                if flags.proxy_protocol {
                    text.push_str("/proxy_protocol");
                }
                text
            })
            .collect();
        addrs.join(",")
    }

    /// One line for STATUS= and the head of `-s status`.
    pub(super) fn summary(&self) -> String {
        let serving = self.workers.iter().filter(|w| !w.retiring).count();
        let mut s = format!("workers={serving} generation={}", self.generation);
        if !self.last_error.is_empty() {
            s.push_str("; last error: ");
            s.push_str(&self.last_error);
        }
        s
    }

    /// `-s status`: one line per worker from the scoreboard, then totals.
    fn status_report(&self) -> String {
        let mono = scoreboard::monotonic_ms();
        let mut out = format!(
            "master pid={} version={} uptime={}s listen={} maintenance={} {}\n",
            self.pid,
            env!("CARGO_PKG_VERSION"),
            self.started.elapsed().as_secs(),
            self.listen_list(),
            self.maintenance_word(),
            self.summary()
        );
        let (mut requests, mut open, mut accepted) = (0, 0, 0);
        let mut workers = self.workers.clone();
        workers.sort_by_key(|w| (w.generation, w.slot));
        for w in &workers {
            let s = self.scoreboard.slot(w.board);
            let (r, o, a) = (s.requests(), s.open(), s.accepted());
            requests += r;
            open += o;
            accepted += a;
            let _ = writeln!(
                out,
                "worker={} pid={} generation={} state={} age={}s heartbeat={}ms requests={r} open={o} accepted={a} {}",
                w.slot,
                w.pid,
                w.generation,
                s.state().as_str(),
                w.started.elapsed().as_secs(),
                mono.saturating_sub(s.heartbeat()),
                s.evictions(),
            );
        }
        let _ = write!(
            out,
            "total workers={} requests={requests} open={open} accepted={accepted} access_log_lost={} {}",
            workers.len(),
            crate::obs::access_log::lost_lines(&self.scoreboard),
            // Since the master started: exited workers' counts included.
            self.scoreboard.snapshot().evictions,
        );
        if self.config.tls.is_some() {
            let (handshakes, resumed, failures) = self.scoreboard.tls_totals();
            let _ = write!(
                out,
                " tls_handshakes={handshakes} tls_resumed={resumed} tls_handshake_failures={failures}"
            );
        }
        out.push('\n');
        out
    }

    /// Answers waiting `-s status` and `-s maintenance` clients (the
    /// socket has refused a state change from a stranger already).
    pub(super) fn answer_status(&self) {
        if let Some(s) = &self.own.status_socket {
            s.serve(|request| match request {
                Request::Status => self.status_report(),
                Request::Maintenance(on) => self.set_maintenance(on),
            });
        }
    }
}
