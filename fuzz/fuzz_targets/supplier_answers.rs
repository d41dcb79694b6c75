//! A supplier's real-time stock answer (`POST {base}/v1/stock`): any body is
//! either refused whole with a reason or split into items that stand and items
//! dropped with a reason, never a panic; an answer never settles more items
//! than were asked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockroute::adapters::http::suppliers::parse_stock_answer;

/// What the fuzzed answers are taken to answer.
const ASKED: [&str; 4] = ["A-1", "A-2", "B 7", "ÜNICODE-9"];

fuzz_target!(|data: &[u8]| {
    if let Ok(counts) = parse_stock_answer(data, &ASKED, "USD") {
        assert!(counts.answered <= ASKED.len());
    }
});
