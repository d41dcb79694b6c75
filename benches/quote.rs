//! A quote end to end inside the process: `World::quote` on the demo world
//! (120 suppliers, 100,000 products, feeds applied), from validated input to
//! the plan with its alternatives, freight from the rate tables. No gRPC.
//!
//! 1. Criterion: µs per quote for 1, 5 and 10 in-stock lines to US
//!    destinations and 5 lines abroad; a stock check of the same 5-line
//!    baskets (the index reads a quote starts with) as the baseline.
//! 2. Printed: the 5-line quote's time as a multiple of the 5-line stock
//!    check, measured in the same run.
//!
//! Run: `cargo bench --bench quote`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use stockroute::domain::quoting::QuoteInput;
use stockroute::domain::realtime::Overlay;
use stockroute::domain::world::World;

const VALID_SECS: u64 = 900;
const INPUTS: usize = 256;

/// ns per call of `f` over the inputs, for about `budget`.
fn time_per_call(inputs: &[QuoteInput], budget: Duration, f: impl Fn(&QuoteInput)) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < budget {
        for i in inputs {
            f(i);
        }
        calls += inputs.len() as u64;
    }
    started.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let world: World = common::demo_world(120, 100_000);
    let mut c = Criterion::default().configure_from_args();
    let five = common::quote_inputs(&world, 5, INPUTS, 5, false);
    c.bench_function("check_stock/5_lines (baseline)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % five.len();
            world.check_stock(black_box(&five[i].lines), &Overlay::default())
        })
    });
    for (name, lines, international) in [
        ("quote/1_line_us", 1, false),
        ("quote/5_lines_us", 5, false),
        ("quote/10_lines_us", 10, false),
        ("quote/5_lines_international", 5, true),
    ] {
        let inputs = common::quote_inputs(&world, lines, INPUTS, lines as u64, international);
        c.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % inputs.len();
                world.quote(black_box(&inputs[i]), &Overlay::default(), VALID_SECS)
            })
        });
    }
    c.final_summary();

    // The summary block: both measured now, one after the other.
    let budget = Duration::from_secs(2);
    let check = time_per_call(&five, budget, |i| {
        black_box(world.check_stock(&i.lines, &Overlay::default()));
    });
    let quote = time_per_call(&five, budget, |i| {
        let _ = black_box(world.quote(i, &Overlay::default(), VALID_SECS));
    });
    println!(
        "\nsummary: 5-line quote {:.1} µs, 5-line stock check {:.2} µs: a quote costs {:.0}x the stock check of its basket",
        quote / 1000.0,
        check / 1000.0,
        quote / check
    );
}
