//! HUP: the reload hand-over. `Idle` → (HUP, config valid) `Pending` →
//! (the new generation is complete and accepting) `Idle`, with the outcome
//! published for `-s reload`. A config that does not load or bind fails the
//! reload at once and changes nothing: the old workers keep serving.

use super::{Master, Phase};
use crate::config;
use crate::control::Outcome;
use crate::os::{listener, notify};

/// Where a reload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reload {
    Idle,
    /// The new configuration is loaded; its workers (this generation) are
    /// starting. Done once they all accept.
    Pending {
        generation: u64,
    },
}

impl Master {
    /// HUP: validate the whole config first; on error keep everything and
    /// say why. Otherwise bind new addresses and start a new generation of
    /// workers; the old one drains once the new one runs (the plan).
    pub(super) fn start_reload(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        self.state.reloads += 1;
        notify::reloading();
        match self.prepare_reload() {
            Ok(()) => {
                self.generation += 1;
                self.scoreboard.set_generation(self.generation);
                self.target = self.config.workers;
                self.reload = Reload::Pending {
                    generation: self.generation,
                };
                log::info!(
                    "reload generation={} listen={} workers={}",
                    self.generation,
                    self.listen_list(),
                    self.target
                );
            }
            Err(e) => {
                let reason = format!("{e:#}");
                log::error!("reload failed: {reason}");
                self.scoreboard.count_reload(false);
                self.state.reload = Outcome::failed(&reason);
                self.last_error = format!("reload failed: {reason}");
                self.publish();
                // Still serving the old config: systemd must see us ready again.
                notify::ready(&self.summary());
            }
        }
    }

    /// Loads the config and rebinds; changes nothing unless all of it works.
    fn prepare_reload(&mut self) -> anyhow::Result<()> {
        let mut config = config::load(self.args.config.as_deref(), &self.args.overrides)?;
        if !config.listen_given {
            // Sockets we were handed (systemd, upgrade) stay what we listen on.
            config.listen = self
                .listeners
                .iter()
                .map(|l| config::Listen::plain(l.addr))
                .collect();
        }
        // Old workers keep their own copies of dropped listeners until they
        // drain; the master's copies go now, so new workers never get them.
        // A kept socket takes its flags (tls, proxy_protocol) from the new
        // config: the new workers look them up by address.
        listener::reconcile(&mut self.listeners, &config.listen_addrs(), config.backlog)?;
        crate::obs::log::init(&config.log);
        self.config = config;
        Ok(())
    }

    /// The current generation serves: a pending reload is done.
    pub(super) fn finish_reload(&mut self) {
        if let Reload::Pending { generation } = self.reload {
            self.reload = Reload::Idle;
            log::info!("reload done generation={generation}");
            self.scoreboard.count_reload(true);
            self.state.reload = Outcome::Ok;
            self.publish();
            notify::ready(&self.summary());
        }
    }
}
