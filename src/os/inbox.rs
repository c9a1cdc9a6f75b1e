//! The workers' doorbell: a pipe a worker writes one byte to when its state
//! changes in a way the master should act on soon (it accepts, so a reload
//! can drain the old workers; it retires on its own, so its replacement can
//! start). What changed is read from the scoreboard; the byte only wakes
//! the master from its sleep, so a byte lost to a full pipe costs nothing
//! but the master's next one-second tick.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;

/// The master's end (read) and the end workers inherit (write).
pub struct Inbox {
    rx: OwnedFd,
    tx: OwnedFd,
}

impl Inbox {
    pub fn new() -> nix::Result<Inbox> {
        let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Inbox { rx, tx })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }

    /// Empties the pipe; returns whether anything rang.
    pub fn drain(&self) -> bool {
        let mut rang = false;
        let mut buf = [0u8; 256];
        while let Ok(n) = nix::unistd::read(&self.rx, &mut buf) {
            if n == 0 {
                break;
            }
            rang = true;
        }
        rang
    }

    /// In a worker: keep only the sending end.
    pub fn into_sender(self) -> Sender {
        Sender(self.tx)
    }
}

/// A worker's end of the doorbell.
pub struct Sender(OwnedFd);

impl Sender {
    pub fn ring(&self) {
        // Non-blocking: a full pipe already wakes the master.
        let _ = nix::unistd::write(&self.0, &[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_and_drains() {
        let inbox = Inbox::new().unwrap();
        let s = Sender(inbox.tx.try_clone().unwrap());
        assert!(!inbox.drain());
        s.ring();
        s.ring();
        assert!(inbox.drain());
        assert!(!inbox.drain());
    }
}
