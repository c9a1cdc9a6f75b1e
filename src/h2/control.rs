//! Receiving connection control: RST_STREAM (with the rapid-reset
//! budget), WINDOW_UPDATE (send windows, §6.9) and SETTINGS (the peer's
//! values applied, INITIAL_WINDOW_SIZE changes carried to open streams
//! per §6.9.2, acknowledged). PING, PRIORITY and GOAWAY are small enough
//! to stay in `session.rs`'s dispatch.

use std::time::Instant;

use super::frame::{self, ErrorCode, MAX_WINDOW};
use super::recv::Standing;
use super::session::{ConnError, Session};
use super::stream::Answer;

impl Session {
    pub(super) fn on_rst_stream(&mut self, id: u32, now: Instant) -> Result<(), ConnError> {
        if matches!(self.standing(id), Standing::Idle) {
            return Err(self.fail(ErrorCode::ProtocolError, "RST_STREAM on an idle stream"));
        }
        self.counters.resets_received += 1;
        let Some(s) = self.streams.get(&id) else {
            return Ok(());
        };
        // A reset before we finished is what rapid reset is made of.
        if s.answer != Answer::Done && !self.resets.spend(now) {
            self.counters.rapid_resets += 1;
            return Err(self.fail(ErrorCode::EnhanceYourCalm, "rapid reset"));
        }
        self.forget(id);
        Ok(())
    }

    pub(super) fn on_window_update(
        &mut self,
        id: u32,
        increment: u32,
        now: Instant,
    ) -> Result<(), ConnError> {
        self.spend_control(now)?;
        if id == 0 {
            if increment == 0 {
                return Err(self.fail(ErrorCode::ProtocolError, "WINDOW_UPDATE of 0"));
            }
            self.conn_send_window += i64::from(increment);
            if self.conn_send_window > i64::from(MAX_WINDOW) {
                return Err(self.fail(ErrorCode::FlowControlError, "connection window overflow"));
            }
            return Ok(());
        }
        match self.standing(id) {
            Standing::Idle => {
                Err(self.fail(ErrorCode::ProtocolError, "WINDOW_UPDATE on an idle stream"))
            }
            // §5.1: a closed stream may still get WINDOW_UPDATE for a while.
            Standing::Ignored | Standing::Closed => Ok(()),
            Standing::Known => {
                let s = self.streams.get_mut(&id).expect("standing is Known");
                s.send_window += i64::from(increment);
                if increment == 0 {
                    self.reset(id, ErrorCode::ProtocolError);
                } else if s.send_window > i64::from(MAX_WINDOW) {
                    self.reset(id, ErrorCode::FlowControlError);
                }
                Ok(())
            }
        }
    }

    pub(super) fn on_settings(
        &mut self,
        ack: bool,
        params: &[u8],
        now: Instant,
    ) -> Result<(), ConnError> {
        if ack {
            // Our one SETTINGS frame is acknowledged; nothing waits on it.
            return Ok(());
        }
        if self.settings_received {
            self.spend_control(now)?;
        }
        self.settings_received = true;
        let applied = match self.peer.apply(params) {
            Ok(applied) => applied,
            Err(code) => return Err(self.fail(code, "bad SETTINGS value")),
        };
        self.table_update_due |= applied.table_size_changed;
        if applied.window_delta != 0 {
            let mut overflow = false;
            for s in self.streams.values_mut() {
                s.send_window += applied.window_delta;
                overflow |= s.send_window > i64::from(MAX_WINDOW);
            }
            if overflow {
                return Err(self.fail(ErrorCode::FlowControlError, "stream window overflow"));
            }
        }
        frame::write_settings_ack(&mut self.tx);
        Ok(())
    }
}
