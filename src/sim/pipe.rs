//! The in-memory socket of the simulations: [`Scripted`](crate::sim::Scripted)
//! hands a connection its input in scripted pieces and collects what it
//! writes, taking only part of a write when its budget says so. What the
//! output means is the oracle's (`oracle.rs`); when to read and write, the
//! driver's (`mod.rs`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// Input delivered in scripted pieces, output collected; a write may take
/// only part of what it is given, to exercise the pending-output path.
/// `tls/sim.rs` runs rustls over it too.
#[derive(Default)]
pub struct Scripted {
    pub(crate) pieces: VecDeque<Vec<u8>>,
    /// After the last piece: EOF (the client closed) or "nothing yet".
    pub eof: bool,
    pub written: Vec<u8>,
    /// Bytes the next write calls may take before WouldBlock (None: all).
    pub write_budget: Option<usize>,
    pub shut: bool,
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(piece) = self.pieces.front_mut() else {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        piece.drain(..n);
        if piece.is_empty() {
            self.pieces.pop_front();
        }
        Ok(n)
    }
}

impl Write for Scripted {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = match &mut self.write_budget {
            None => data.len(),
            Some(0) => return Err(io::ErrorKind::WouldBlock.into()),
            Some(budget) => {
                let n = data.len().min(*budget);
                *budget -= n;
                n
            }
        };
        self.written.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl crate::http::transport::Transport for Scripted {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shut = true;
        Ok(())
    }
}
