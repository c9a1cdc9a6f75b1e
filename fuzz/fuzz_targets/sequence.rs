//! Well-formed requests (bodies that hold request bytes included) followed
//! by arbitrary bytes, cut anywhere: each request must get exactly its own
//! answer, in order, and nothing in a body may be taken for a request
//! (request smuggling). Routed requests (`sim::ROUTED`) are among them, so
//! are GETs and HEADs beneath the files route with paths made of traversal
//! fragments (`sim::files::path_from`: no answer may hold a byte of the
//! file outside its root), and
//! the worker may be in maintenance or draining, which changes the expected
//! answers. `preforkd::sim::run_sequence_in` checks it.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use preforkd::sim::{self, Req};

#[derive(Arbitrary, Debug)]
enum FuzzReq {
    Get,
    Head,
    Options,
    PostLength(Vec<u8>),
    PostChunked(Vec<u8>, Vec<u8>, bool),
    Routed(u8),
    File(Vec<u8>, bool),
}

#[derive(Arbitrary, Debug)]
struct Case {
    requests: Vec<FuzzReq>,
    tail: Vec<u8>,
    cuts: Vec<u16>,
    budget: Option<u8>,
    maintenance: bool,
    draining: bool,
}

fuzz_target!(|case: Case| {
    let requests: Vec<Req> = case
        .requests
        .into_iter()
        .take(16)
        .map(|r| match r {
            FuzzReq::Get => Req::Get,
            FuzzReq::Head => Req::Head,
            FuzzReq::Options => Req::Options,
            // Within the simulated max_request_body_bytes (larger is a 413, checked elsewhere).
            FuzzReq::PostLength(body) => Req::PostLength(body.into_iter().take(1024).collect()),
            FuzzReq::PostChunked(mut body, sizes, fancy) => {
                body.truncate(1024);
                Req::PostChunked(body, sizes.into_iter().map(usize::from).collect(), fancy)
            }
            FuzzReq::Routed(i) => Req::Routed(usize::from(i)),
            // A few fragments keep the target under max_header_bytes.
            FuzzReq::File(choices, head) => Req::File {
                path: sim::files::path_from(&choices[..choices.len().min(24)]),
                head,
            },
        })
        .collect();
    let cuts: Vec<usize> = case.cuts.into_iter().map(usize::from).collect();
    let state = sim::State {
        maintenance: case.maintenance,
        draining: case.draining,
        // PROXY headers are the request target's (and the proptests').
        ..sim::State::default()
    };
    sim::run_sequence_in(
        state,
        &requests,
        &case.tail,
        &cuts,
        case.budget.map(|b| usize::from(b) + 1),
    );
});
