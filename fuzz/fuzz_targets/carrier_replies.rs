//! The carriers' JSON answers (FedEx and UPS rate replies, OAuth token
//! replies): any body gives quotes or a reason to fall back, never a panic,
//! and a quote is never a negative charge.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockroute::adapters::http::carriers::{parse_rate_reply, parse_token_reply, CarrierApi};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 | 1 => {
            let api = if selector % 3 == 0 {
                CarrierApi::FedEx
            } else {
                CarrierApi::Ups
            };
            if let Ok(quotes) = parse_rate_reply(api, body) {
                for q in quotes {
                    assert!(
                        q.charge.is_zero() || !q.charge.is_sign_negative(),
                        "negative charge accepted"
                    );
                    assert!(!q.service_code.is_empty());
                }
            }
        }
        _ => {
            let _ = parse_token_reply(body, 3600);
        }
    }
});
