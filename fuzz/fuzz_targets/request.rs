//! Raw bytes into one connection, as the worker would read them: every
//! 0xFF byte in the input is a cut (the bytes around it arrive in separate
//! reads) and is not itself delivered, so the seed corpus is plain HTTP. A
//! leading 0xFE byte and the byte after it limit how much the socket takes
//! per write. A leading 0xFD byte and the byte after it set the worker's
//! state (bit 0: draining, bit 1: maintenance, bit 2: a `proxy_protocol`
//! listener, whose connection must answer what the same bytes without
//! their PROXY header get, or nothing without a valid one); the simulated
//! server has routes (`sim::routes`), a files route among them, and the
//! corpus holds requests for them (`files_*`: traversals too) and PROXY
//! headers (`proxy_*`).
//! `preforkd::sim::run_in` panics when an invariant breaks: a
//! malformed response, a wrong Content-Length, an answer after an error,
//! a connection left open after an error, unbounded memory, a byte of the
//! file outside the files route's root in any answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preforkd::sim;

fuzz_target!(|data: &[u8]| {
    sim::run_encoded(data);
});
