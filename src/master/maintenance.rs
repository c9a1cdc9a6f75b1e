//! `-s maintenance on|off`, the master's side: the switch lives in the
//! scoreboard (every worker reads its slot's flag per request), is logged,
//! is shown by `-s status`, and goes on to the new master of an upgrade
//! (`crate::os::exec` carries it in the environment). What the workers
//! answer while it is on is `http/answer.rs`'s (its template, `http/template.rs`).

use super::upgrade::Upgrade;
use super::Master;

impl Master {
    /// Maintenance: the switch a master we replace (USR2) passed on.
    pub(super) fn with_inherited_maintenance(self) -> Self {
        if crate::os::exec::inherited_maintenance() {
            self.set_maintenance(true);
        }
        self
    }

    /// `-s maintenance on|off`: every worker (and every worker started
    /// later, reloads included) answers with `[maintenance]`, health routes
    /// excepted. Returns the answer for `-s` (an `error: ` line when
    /// refused).
    pub(super) fn set_maintenance(&self, on: bool) -> String {
        let word = if on { "on" } else { "off" };
        if let Upgrade::Spawned(new) = self.upgrade {
            // The new master got the switch at its start: a change now
            // would be lost when it takes over.
            log::warn!("master maintenance={word} refused: upgrade to pid={new} in progress");
            return format!(
                "error: an upgrade is in progress (new master pid={new}); switch once it is done\n"
            );
        }
        log::info!("master maintenance={word}");
        self.scoreboard.set_maintenance(on);
        format!("maintenance {word}\n")
    }

    /// `on` or `off`, for `-s status`.
    pub(super) fn maintenance_word(&self) -> &'static str {
        if self.scoreboard.maintenance() {
            "on"
        } else {
            "off"
        }
    }
}
