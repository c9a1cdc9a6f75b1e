//! Session tickets that every worker can open: one random secret drawn by
//! the master before it forks (so all workers, and only they, share it),
//! from which each ticket period's AES-256-GCM key is derived with
//! HMAC-SHA256. rustls' own ticketers draw keys per process, which would
//! make a ticket from one worker useless at the next.

use std::fmt;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{aead, hmac, rand};
use rustls::server::ProducesTickets;

use super::TICKET_PERIOD_SECS;

/// The master's ticket secret: made once, on the first load (in the
/// master, before the first fork), and kept across reloads, so every
/// worker of every generation derives the same keys and a ticket issued by
/// one is taken by any other. A new master (USR2) makes a new one.
pub(super) fn secret() -> Result<[u8; 32], String> {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    if let Some(s) = SECRET.get() {
        return Ok(*s);
    }
    let mut s = [0u8; 32];
    rand::fill(&mut s)
        .map_err(|_| "cannot get random bytes for the session ticket secret".to_owned())?;
    Ok(*SECRET.get_or_init(|| s))
}

/// Stateless session tickets (RFC 5077; TLS 1.3 tickets alike): AES-256-GCM
/// under a key derived from the master's secret and the 12-hour period
/// number, HMAC-SHA256(secret, "preforkd ticket key" || period). rustls'
/// own ticketers draw their keys at random in each process, so forked
/// workers would disagree after their first rotation; these agree without
/// talking. A ticket is `period (8, big-endian) || nonce (12) ||
/// ciphertext || tag (16)`, the first 20 bytes authenticated as AAD.
pub struct Tickets {
    secret: hmac::Key,
}

impl Tickets {
    pub fn new(secret: [u8; 32]) -> Tickets {
        Tickets {
            secret: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        }
    }

    fn key(&self, period: u64) -> Option<aead::LessSafeKey> {
        let mut ctx = hmac::Context::with_key(&self.secret);
        ctx.update(b"preforkd ticket key");
        ctx.update(&period.to_be_bytes());
        let tag = ctx.sign();
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, tag.as_ref()).ok()?;
        Some(aead::LessSafeKey::new(key))
    }

    /// Seals `plain` under `period`'s key.
    pub fn seal(&self, period: u64, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        rand::fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(8 + nonce.len() + plain.len() + aead::MAX_TAG_LEN);
        out.extend_from_slice(&period.to_be_bytes());
        out.extend_from_slice(&nonce);
        let head = out.len();
        out.extend_from_slice(plain);
        let (aad, body) = out.split_at_mut(head);
        let tag = self
            .key(period)?
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(&aad[..]),
                body,
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    /// Opens a ticket sealed in period `now` or `now - 1`.
    pub fn open(&self, now: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        let head = 8 + aead::NONCE_LEN;
        if ticket.len() < head + aead::MAX_TAG_LEN {
            return None;
        }
        let period = u64::from_be_bytes(ticket[..8].try_into().ok()?);
        if period != now && period.checked_add(1) != Some(now) {
            return None;
        }
        let nonce = aead::Nonce::try_assume_unique_for_key(&ticket[8..head]).ok()?;
        let mut body = ticket[head..].to_vec();
        let plain = self
            .key(period)?
            .open_in_place(nonce, aead::Aad::from(&ticket[..head]), &mut body)
            .ok()?;
        let n = plain.len();
        body.truncate(n);
        Some(body)
    }
}

impl fmt::Debug for Tickets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tickets")
    }
}

/// The ticket period of the wall clock now.
fn period_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / TICKET_PERIOD_SECS)
}

impl ProducesTickets for Tickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        TICKET_PERIOD_SECS as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(period_now(), plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open(period_now(), cipher)
    }
}
