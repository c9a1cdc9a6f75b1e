//! One stream's state (RFC 9113 §5.1) as the server sees it: whether the
//! client may still send, how far our answer is, both windows, the
//! request's declared length, and the answer bytes waiting for window.
//!
//! A stream is in the session's table while open or half-closed (either
//! way); idle and closed streams are not stored, the session tells them
//! apart by the highest stream id opened.

/// How far our answer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Nothing sent yet.
    Awaiting,
    /// HEADERS sent; DATA under way.
    Body,
    /// END_STREAM sent: half-closed (local) or closed.
    Done,
}

#[derive(Debug)]
pub struct Stream {
    /// The client has not sent END_STREAM: open or half-closed (local).
    pub recv_open: bool,
    pub answer: Answer,
    /// The caller was told of this stream (a request or a 431), so a reset
    /// must be told too.
    pub announced: bool,
    /// What we may still send (§6.9.1); negative after the peer shrinks
    /// INITIAL_WINDOW_SIZE (§6.9.2).
    pub send_window: i64,
    /// What the client may still send us.
    pub recv_window: i64,
    /// The request's content-length, if it gave one and it was checked.
    pub content_length: Option<u64>,
    pub received: u64,
    /// Body bytes waiting for window; `queue[sent..]` is unsent.
    pub queue: Vec<u8>,
    pub sent: usize,
    /// END_STREAM goes with the last queued byte.
    pub end_queued: bool,
    /// The caller feeds the body through `send_data` when asked.
    pub pull: bool,
    /// Body bytes framed so far (for the access log: what was sent).
    pub framed: u64,
}

impl Stream {
    pub fn new(send_window: u32, recv_window: u32, end_stream: bool) -> Stream {
        Stream {
            recv_open: !end_stream,
            answer: Answer::Awaiting,
            announced: false,
            send_window: i64::from(send_window),
            recv_window: i64::from(recv_window),
            content_length: None,
            received: 0,
            queue: Vec::new(),
            sent: 0,
            end_queued: false,
            pull: false,
            framed: 0,
        }
    }

    /// Queued body bytes not yet framed.
    pub fn queued(&self) -> usize {
        self.queue.len() - self.sent
    }

    /// Both sides have ended: the stream leaves the table.
    pub fn is_closed(&self) -> bool {
        !self.recv_open && self.answer == Answer::Done
    }

    /// Counts received body bytes; false if they contradict content-length
    /// (§8.1.1: more than declared, or fewer at END_STREAM).
    pub fn receive_body(&mut self, len: usize, end_stream: bool) -> bool {
        self.received = self.received.saturating_add(len as u64);
        match self.content_length {
            Some(n) => self.received <= n && (!end_stream || self.received == n),
            None => true,
        }
    }

    /// Takes up to `max` unsent bytes as the next frame's; the queue is
    /// emptied (keeping its allocation) once all is framed.
    pub fn take(&mut self, max: usize) -> (usize, usize) {
        let n = self.queued().min(max);
        let start = self.sent;
        self.sent += n;
        (start, start + n)
    }

    pub fn compact(&mut self) {
        if self.sent == self.queue.len() {
            self.queue.clear();
            self.sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_enforced() {
        let mut s = Stream::new(10, 10, false);
        s.content_length = Some(5);
        assert!(s.receive_body(3, false));
        assert!(!s.receive_body(1, true));
        let mut s = Stream::new(10, 10, false);
        s.content_length = Some(2);
        assert!(!s.receive_body(3, false));
    }

    #[test]
    fn queue_is_taken_in_pieces() {
        let mut s = Stream::new(10, 10, true);
        s.queue.extend_from_slice(b"abcdef");
        assert_eq!(s.take(4), (0, 4));
        s.compact();
        assert_eq!(&s.queue[s.sent..], b"ef");
        assert_eq!(s.take(4), (4, 6));
        s.compact();
        assert!(s.queue.is_empty());
    }
}
