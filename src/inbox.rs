//! Messages from workers to their master over one pipe: "I am accepting"
//! (so a reload drains the old workers only once the new ones run) and "I
//! am retiring" (so a worker that recycles itself is replaced at once).
//! Each message is 8 bytes, below PIPE_BUF, so writes from many workers
//! never interleave.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    Ready(u32),
    Retiring(u32),
}

impl Message {
    fn encode(self) -> [u8; 8] {
        let (kind, pid) = match self {
            Message::Ready(pid) => (1u32, pid),
            Message::Retiring(pid) => (2u32, pid),
        };
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&kind.to_le_bytes());
        b[4..].copy_from_slice(&pid.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Message> {
        let kind = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
        let pid = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
        match kind {
            1 => Some(Message::Ready(pid)),
            2 => Some(Message::Retiring(pid)),
            _ => None,
        }
    }
}

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

    /// Every message waiting.
    pub fn drain(&self) -> Vec<Message> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = nix::unistd::read(&self.rx, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend(buf[..n].chunks_exact(8).filter_map(Message::decode));
        }
        out
    }

    /// In a worker: keep only the sending end.
    pub fn into_sender(self) -> Sender {
        Sender(self.tx)
    }
}

/// A worker's way to tell the master something.
pub struct Sender(OwnedFd);

impl Sender {
    pub fn send(&self, m: Message) {
        // Non-blocking: if the master is so far behind that the pipe is
        // full, a lost "ready" only delays a reload's drain.
        let _ = nix::unistd::write(&self.0, &m.encode());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let inbox = Inbox::new().unwrap();
        let s = Sender(inbox.tx.try_clone().unwrap());
        s.send(Message::Ready(42));
        s.send(Message::Retiring(7));
        assert_eq!(
            inbox.drain(),
            vec![Message::Ready(42), Message::Retiring(7)]
        );
        assert!(inbox.drain().is_empty());
    }
}
