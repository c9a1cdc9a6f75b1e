//! Raw bytes into one connection, as the worker would read them: every
//! 0xFF byte in the input is a cut (the bytes around it arrive in separate
//! reads) and is not itself delivered, so the seed corpus is plain HTTP. A
//! leading 0xFE byte and the byte after it limit how much the socket takes
//! per write. `preforkd::sim::run` panics when an invariant breaks: a
//! malformed response, a wrong Content-Length, an answer after an error,
//! a connection left open after an error, unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preforkd::sim;

fuzz_target!(|data: &[u8]| {
    let (budget, data) = match data {
        [0xFE, b, rest @ ..] => (Some(usize::from(*b) + 1), rest),
        _ => (None, data),
    };
    let mut input = Vec::with_capacity(data.len());
    let mut cuts = Vec::new();
    for &b in data {
        if b == 0xFF {
            cuts.push(input.len());
        } else {
            input.push(b);
        }
    }
    sim::run(&input, &cuts, budget);
});
