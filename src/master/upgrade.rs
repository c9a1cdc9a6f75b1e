//! USR2: the upgrade hand-over, seen from both masters. The old one goes
//! `Idle` → `Spawned(new)` (pid file renamed to `.oldbin`, new binary
//! started) and back to `Idle` if the new master fails (pid file taken
//! back, outcome published); if it succeeds, the new master QUITs it. The
//! new one starts `Replacing(old)` and, once its first generation serves,
//! takes the service over (MAINPID, status socket, state file) and QUITs
//! the old one. Starting the binary itself is `crate::os::exec`'s.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{Master, Phase};
use crate::control::{Outcome, StatusSocket};
use crate::os::notify;
use crate::os::signals::Signals;

/// Where an upgrade is, for this master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upgrade {
    Idle,
    /// We started this new master; it QUITs us once it serves.
    Spawned(Pid),
    /// An upgrade started us to replace this master; we QUIT it once our
    /// workers serve.
    Replacing(Pid),
}

impl Master {
    /// USR2: start the new binary with our sockets; it QUITs us when it serves.
    pub(super) fn start_upgrade(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        match self.upgrade {
            Upgrade::Idle => {}
            Upgrade::Spawned(pid) => {
                self.state.upgrades += 1;
                log::warn!("upgrade already in progress (new master pid={pid}); ignored");
                // `-s upgrade` goes on waiting for the one under way.
                self.publish();
                return;
            }
            Upgrade::Replacing(old) => {
                // The pid file and the state file are not ours yet.
                log::warn!("upgrade ignored: still taking over from old master pid={old}");
                return;
            }
        }
        self.state.upgrades += 1;
        if let Some(p) = self.pid_file.as_mut() {
            if let Err(e) = p.rename_to_oldbin() {
                let why = format!("cannot rename the pid file: {e}");
                log::error!("upgrade failed: {why}");
                self.scoreboard.count_upgrade(false);
                self.state.upgrade = Outcome::failed(&why);
                self.publish();
                return;
            }
        }
        let argv = self.args.to_argv();
        let result = Signals::blocked(|| {
            crate::os::exec::spawn_new_master(
                &self.exec,
                &argv,
                &self.listeners,
                self.pid,
                self.scoreboard.maintenance(),
            )
        })
        .map_err(anyhow::Error::from)
        .and_then(|spawned| spawned);
        match result {
            Ok(pid) => {
                log::info!(
                    "upgrade started new master pid={pid} exe={}",
                    self.exec.exe.display()
                );
                self.upgrade = Upgrade::Spawned(pid);
                self.state.upgrade = Outcome::Started {
                    new: pid.as_raw() as u32,
                };
                self.publish();
            }
            Err(e) => self.upgrade_failed(&format!("{e:#}")),
        }
    }

    /// A child ended: if it is the new master we started, the upgrade
    /// failed (or, once it QUIT us, it just went away). Returns whether it
    /// was.
    pub(super) fn upgrade_child_ended(&mut self, pid: Pid, how: &str) -> bool {
        if self.upgrade != Upgrade::Spawned(pid) {
            return false;
        }
        self.upgrade_failed(&format!("new master pid={pid} {how}"));
        true
    }

    fn upgrade_failed(&mut self, why: &str) {
        if matches!(self.upgrade, Upgrade::Spawned(_)) {
            self.upgrade = Upgrade::Idle;
        }
        if self.phase != Phase::Running {
            // The new master took over and we are draining: nothing to undo.
            log::info!("{why}");
            return;
        }
        log::error!("upgrade failed: {why}; the old master carries on");
        self.scoreboard.count_upgrade(false);
        if let Some(p) = self.pid_file.as_mut() {
            if let Err(e) = p.restore() {
                log::error!("cannot take the pid file back: {e:#}");
            }
        }
        self.state.upgrade = Outcome::failed(why);
        self.publish();
    }

    /// Our first generation serves: if we replace an old master, become
    /// the service's main process and tell the old one to drain.
    pub(super) fn take_over(&mut self) {
        let Upgrade::Replacing(old) = self.upgrade else {
            return;
        };
        if self.target == 0 {
            return;
        }
        self.upgrade = Upgrade::Idle;
        // Counted by the master that took over (the old one's counters go
        // with it): its upgrades_total{result="ok"} is 1.
        self.scoreboard.count_upgrade(true);
        // Become the service's main process before the old one goes.
        notify::ready_as_main(&self.summary());
        self.announced = true;
        if let Some(p) = &self.pid_file {
            match StatusSocket::bind(p.path_original()) {
                Ok(s) => self.own.status_socket = Some(s),
                Err(e) => log::warn!("cannot take over the status socket: {e}"),
            }
        }
        // The state file names us before the old master hears QUIT: on
        // exit it removes the status socket and the state file unless they
        // are ours, and by then they must be (else it could take the socket
        // we just bound).
        self.state.upgrade = Outcome::From {
            old: old.as_raw() as u32,
        };
        self.publish();
        log::info!("upgrade: telling old master pid={old} to drain");
        let _ = kill(old, Signal::SIGQUIT);
    }
}
