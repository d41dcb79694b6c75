//! gRPC requests as they come off the wire: any bytes that decode as a
//! `QuoteRequest` (or `CheckStockRequest`, `RateShipmentRequest`) are either
//! refused as INVALID_ARGUMENT naming a field, or validated into domain
//! types that the planner then handles without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use stockroute::adapters::grpc::convert;
use stockroute::config::QuoteConfig;
use stockroute::domain::quoting::QuoteInput;
use stockroute::domain::realtime::Overlay;
use stockroute::pb;

#[path = "world.rs"]
mod world;

/// A refusal must be INVALID_ARGUMENT with a short message.
fn check_refusal(status: &tonic::Status) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().len() < 512,
        "long echo: {}",
        status.message().len()
    );
}

fuzz_target!(|data: &[u8]| {
    let world = world::world();
    let limits = QuoteConfig::default();
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let Ok(req) = pb::QuoteRequest::decode(bytes) else {
                return;
            };
            let pb::QuoteRequest {
                lines,
                ship_to,
                options,
            } = req;
            let validated = convert::address(world, ship_to, "ship_to").and_then(|ship_to| {
                let (options, excluded, _) = convert::options(world, options)?;
                let lines = convert::demands(world, lines, &limits)?;
                Ok(QuoteInput {
                    lines,
                    ship_to,
                    options,
                    excluded,
                })
            });
            match validated {
                Ok(input) => {
                    // Keep each run short: the planner's own bounds are for
                    // production baskets, the fuzzer wants many runs.
                    if input.lines.len() <= 8 {
                        let _ = world.quote(&input, &Overlay::default(), 60);
                    }
                }
                Err(status) => check_refusal(&status),
            }
        }
        1 => {
            let Ok(req) = pb::CheckStockRequest::decode(bytes) else {
                return;
            };
            match convert::demands(world, req.lines, &limits) {
                Ok(lines) => {
                    let stock = world.check_stock(&lines, &Overlay::default());
                    assert_eq!(stock.len(), lines.len());
                }
                Err(status) => check_refusal(&status),
            }
        }
        _ => {
            let Ok(req) = pb::RateShipmentRequest::decode(bytes) else {
                return;
            };
            let origin = convert::address(world, req.origin, "origin");
            let destination = convert::address(world, req.destination, "destination");
            let lines = convert::demands(world, req.lines, &limits);
            match (origin, destination, lines) {
                (Ok(o), Ok(d), Ok(lines)) => {
                    let items: Vec<_> = lines
                        .iter()
                        .filter_map(|l| l.product.map(|p| (p, l.qty)))
                        .collect();
                    if !items.is_empty() {
                        let _ = world.rate_shipment(&o, &d, &items, None);
                    }
                }
                (o, d, l) => {
                    for e in [o.err(), d.err(), l.err()].into_iter().flatten() {
                        check_refusal(&e);
                    }
                }
            }
        }
    }
});
