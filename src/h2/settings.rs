//! SETTINGS (RFC 9113 §6.5): ours, as configured and advertised, with the
//! defence budgets; and the peer's, validated as §6.5.2 says.

use super::frame::{
    self, ErrorCode, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW, MAX_MAX_FRAME_SIZE, MAX_WINDOW,
};

pub const HEADER_TABLE_SIZE: u16 = 0x1;
pub const ENABLE_PUSH: u16 = 0x2;
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const MAX_FRAME_SIZE: u16 = 0x5;
pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Our side of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Streams the client may have open at once; more are refused.
    pub max_concurrent_streams: u32,
    /// Each stream's receive window, and the connection's. At least
    /// 65,535: a peer may send that much before it sees our SETTINGS.
    pub initial_window_size: u32,
    /// The largest frame we accept (we advertise it).
    pub max_frame_size: u32,
    /// Decoded header list size (RFC 9113 §6.5.2) past which a request
    /// gets 431 (from `max_request_header_bytes`).
    pub max_header_list_size: u32,
    /// Our HPACK decoder's dynamic table size.
    pub header_table_size: u32,
    pub budgets: Budgets,
}

/// Limits on what a peer may make us do, each a defence with a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Streams the client may reset before we finish them, per second
    /// (rapid reset, CVE-2023-44487).
    pub resets_per_sec: u32,
    /// PING, SETTINGS, PRIORITY, WINDOW_UPDATE, empty DATA and unknown
    /// frames per second.
    pub control_frames_per_sec: u32,
    /// CONTINUATION frames in one header block (CONTINUATION flood).
    pub max_continuations: u32,
    /// Compressed header block bytes we buffer; past this the connection
    /// ends at once (the block can no longer be decoded, so HPACK state is lost).
    pub max_header_block: u32,
    /// Output waiting for the socket plus queued body bytes, in total.
    pub max_buffered_output: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_concurrent_streams: 128,
            initial_window_size: DEFAULT_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 16 * 1024,
            header_table_size: 4096,
            budgets: Budgets::default(),
        }
    }
}

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets {
            resets_per_sec: 200,
            control_frames_per_sec: 5000,
            max_continuations: 32,
            max_header_block: 32 * 1024,
            max_buffered_output: 1024 * 1024,
        }
    }
}

impl Settings {
    /// The values made consistent: windows and frame sizes within §6.5.2's
    /// ranges, the window at least the default (see the field).
    pub fn normalized(mut self) -> Settings {
        self.initial_window_size = self.initial_window_size.clamp(DEFAULT_WINDOW, MAX_WINDOW);
        self.max_frame_size = self
            .max_frame_size
            .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
        self
    }

    /// Appends our SETTINGS frame (push disabled: a server's setting tells
    /// the client nothing, but it is harmless and explicit).
    pub fn write(&self, out: &mut Vec<u8>) {
        frame::write_settings(
            out,
            &[
                (HEADER_TABLE_SIZE, self.header_table_size),
                (MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
                (INITIAL_WINDOW_SIZE, self.initial_window_size),
                (MAX_FRAME_SIZE, self.max_frame_size),
                (MAX_HEADER_LIST_SIZE, self.max_header_list_size),
            ],
        );
    }
}

/// What the client told us; each starts at its §6.5.2 initial value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSettings {
    pub header_table_size: u32,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    pub max_header_list_size: Option<u32>,
}

/// What applying a SETTINGS frame changed that the session must act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// New INITIAL_WINDOW_SIZE minus the old: added to every stream's
    /// send window (§6.9.2).
    pub window_delta: i64,
    pub table_size_changed: bool,
}

impl Default for PeerSettings {
    fn default() -> PeerSettings {
        PeerSettings {
            header_table_size: 4096,
            initial_window_size: DEFAULT_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: None,
        }
    }
}

impl PeerSettings {
    /// Applies one SETTINGS frame's parameters in order; unknown ones are
    /// ignored (§6.5.2). An invalid value is the error code §6.5.2 names.
    pub fn apply(&mut self, params: &[u8]) -> Result<Applied, ErrorCode> {
        let mut applied = Applied::default();
        let old_window = self.initial_window_size;
        for (id, value) in frame::settings(params) {
            match id {
                HEADER_TABLE_SIZE => {
                    applied.table_size_changed |= value != self.header_table_size;
                    self.header_table_size = value;
                }
                ENABLE_PUSH if value > 1 => return Err(ErrorCode::ProtocolError),
                INITIAL_WINDOW_SIZE if value > MAX_WINDOW => {
                    return Err(ErrorCode::FlowControlError)
                }
                INITIAL_WINDOW_SIZE => self.initial_window_size = value,
                MAX_FRAME_SIZE
                    if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) =>
                {
                    return Err(ErrorCode::ProtocolError)
                }
                MAX_FRAME_SIZE => self.max_frame_size = value,
                MAX_HEADER_LIST_SIZE => self.max_header_list_size = Some(value),
                _ => {}
            }
        }
        applied.window_delta = i64::from(self.initial_window_size) - i64::from(old_window);
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(u16, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::write_settings(&mut out, list);
        out.split_off(frame::HEAD_LEN)
    }

    #[test]
    fn values_checked_as_6_5_2_says() {
        let mut p = PeerSettings::default();
        assert_eq!(
            p.apply(&params(&[(ENABLE_PUSH, 2)])),
            Err(ErrorCode::ProtocolError)
        );
        assert_eq!(
            p.apply(&params(&[(INITIAL_WINDOW_SIZE, MAX_WINDOW + 1)])),
            Err(ErrorCode::FlowControlError)
        );
        assert_eq!(
            p.apply(&params(&[(MAX_FRAME_SIZE, 16_383)])),
            Err(ErrorCode::ProtocolError)
        );
        assert_eq!(
            p.apply(&params(&[(MAX_FRAME_SIZE, 1 << 24)])),
            Err(ErrorCode::ProtocolError)
        );
        let applied = p
            .apply(&params(&[
                (ENABLE_PUSH, 1),
                (INITIAL_WINDOW_SIZE, 100),
                (0xff, 7),
                (HEADER_TABLE_SIZE, 0),
            ]))
            .unwrap();
        assert_eq!(
            applied,
            Applied {
                window_delta: 100 - 65_535,
                table_size_changed: true
            }
        );
        assert_eq!(
            p.apply(&params(&[(MAX_FRAME_SIZE, 1 << 20)]))
                .unwrap()
                .window_delta,
            0
        );
        assert_eq!(p.max_frame_size, 1 << 20);
    }

    #[test]
    fn ours_are_normalized() {
        let s = Settings {
            initial_window_size: 10,
            max_frame_size: 1,
            ..Settings::default()
        }
        .normalized();
        assert_eq!((s.initial_window_size, s.max_frame_size), (65_535, 16_384));
    }
}
