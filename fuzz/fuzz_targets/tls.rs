//! HTTP over TLS against plain HTTP: the input is cut into pieces at every
//! 0xFF byte (the bytes around it arrive in separate TLS records and reads;
//! the 0xFF itself is not sent, so the `request` corpus works here too), a
//! leading 0xFE byte and the byte after it limit how much the socket takes
//! per write (TLS records wait in rustls). `preforkd::tls::sim::check`
//! panics unless a rustls client over TLS 1.3 and 1.2 gets byte for byte
//! the answers a plain client gets, as soon as it would, and the
//! connection ends the same way. The raw input also goes straight into a
//! TLS connection, as a client that does not speak TLS: no panic, a close.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preforkd::tls::sim as tls_sim;

fuzz_target!(|data: &[u8]| {
    tls_sim::garbage(data);
    let (budget, data) = match data {
        [0xFE, b, rest @ ..] => (Some(usize::from(*b) + 1), rest),
        _ => (None, data),
    };
    let pieces: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    tls_sim::check(&pieces, budget);
});
