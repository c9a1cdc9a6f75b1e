//! Telling systemd what the master is doing (`Type=notify`), through the
//! `sd-notify` crate: READY, RELOADING with MONOTONIC_USEC, STOPPING,
//! MAINPID after an upgrade, STATUS, and the watchdog keep-alive. Nothing is
//! sent when `NOTIFY_SOCKET` is unset; a failed send is logged, never fatal.
//! When to say what is the master's decision.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("sd_notify failed: {e}");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// After a USR2 upgrade: we are the service's main process now.
pub fn ready_as_main(status: &str) {
    send(&[
        NotifyState::MainPid(std::process::id()),
        NotifyState::Ready,
        NotifyState::Status(status),
    ]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading"),
        ]),
        Err(e) => log::warn!("sd_notify: cannot read the monotonic clock: {e}"),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// The watchdog: WATCHDOG=1 every half `WATCHDOG_USEC`, while the loop turns.
pub struct Watchdog {
    every: Option<Duration>,
    next: Instant,
}

impl Watchdog {
    pub fn from_env(now: Instant) -> Watchdog {
        Watchdog {
            every: sd_notify::watchdog_enabled().map(|d| d / 2),
            next: now,
        }
    }

    /// Pings if due; returns when it is due next.
    pub fn tick(&mut self, now: Instant) -> Option<Instant> {
        let every = self.every?;
        if now >= self.next {
            send(&[NotifyState::Watchdog]);
            self.next = now + every;
        }
        Some(self.next)
    }
}
