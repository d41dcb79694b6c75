//! Instruction-count cases of the hot paths, for the regression gates.
//!
//! Each case sets up outside `callgrind_measured` and runs its work
//! `ITERATIONS` times inside it; `stockroute-loadtest instructions` runs
//! `valgrind --tool=callgrind --toggle-collect=*callgrind_measured*` on
//! `instructions run CASE`, so only that work is counted, and compares the
//! count per iteration with `benches/instructions.baseline.toml`.
//! Single-threaded work only: callgrind counts a spawned thread's
//! instructions outside the toggled function, so feed ingest (two threads)
//! is left to the criterion bench.
//!
//! `instructions list` names the cases; run under `cargo bench` it runs each
//! once natively (a quick check that they still work). The gates:
//! `scripts/instructions` (add `--update` to rewrite the baseline).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use stockroute::domain::address::Address;
use stockroute::domain::freight::{Item, ItemLine};
use stockroute::domain::quoting::QuoteInput;
use stockroute::domain::realtime::Overlay;
use stockroute::domain::world::World;

/// Work repeated inside the measured function, so that one-off effects
/// (first allocation, cold tables) weigh little.
const ITERATIONS: usize = 64;
/// A world small enough to set up quickly under valgrind.
const SUPPLIERS: u32 = 24;
const PRODUCTS: u32 = 5_000;

/// A case: its name, and what builds its work from the (leaked, so
/// `'static`) world.
type Case = (&'static str, fn(&'static World) -> Box<dyn Fn(usize)>);

fn inputs(world: &World, lines: usize, international: bool) -> Vec<QuoteInput> {
    common::quote_inputs(world, lines, ITERATIONS, 11 + lines as u64, international)
}

/// Quotes planned to the end: under callgrind a quote runs tens of times
/// slower than natively, and the default planning budget would stop some
/// searches at a point that depends on the machine, not on the code.
fn quote_case(world: &'static World, lines: usize, international: bool) -> Box<dyn Fn(usize)> {
    let inputs = inputs(world, lines, international);
    Box::new(move |i| {
        let deadline = Instant::now() + Duration::from_secs(600);
        let input = &inputs[i % inputs.len()];
        let _ = black_box(world.quote_by(input, &Overlay::default(), 900, deadline));
    })
}

const CASES: [Case; 8] = [
    ("index_basket_10_lines", |world| {
        let baskets: Vec<Vec<u32>> = inputs(world, 10, false)
            .into_iter()
            .map(|q| q.lines.iter().filter_map(|d| d.product).collect())
            .collect();
        Box::new(move |i| {
            let view = world.index.view();
            // Room for every offer up front: no allocator work in the count.
            let mut offers = Vec::with_capacity(64);
            for &p in &baskets[i % baskets.len()] {
                offers.clear();
                view.offers_into(p, &mut offers);
                black_box(&offers);
            }
        })
    }),
    ("check_stock_5_lines", |world| {
        let inputs = inputs(world, 5, false);
        Box::new(move |i| {
            black_box(world.check_stock(&inputs[i % inputs.len()].lines, &Overlay::default()));
        })
    }),
    ("quote_1_line", |world| quote_case(world, 1, false)),
    ("quote_5_lines", |world| quote_case(world, 5, false)),
    ("quote_10_lines", |world| quote_case(world, 10, false)),
    ("quote_5_lines_international", |world| {
        quote_case(world, 5, true)
    }),
    ("rate_shipment_2_lines_domestic", |world| {
        let origin = Address {
            country_code: "US".into(),
            postal_code: "10001".into(),
            residential: false,
        };
        let destination = Address {
            country_code: "US".into(),
            postal_code: "94105".into(),
            residential: true,
        };
        let baskets: Vec<Vec<(u32, u32)>> = inputs(world, 2, false)
            .into_iter()
            .map(|q| {
                q.lines
                    .iter()
                    .filter_map(|d| Some((d.product?, d.qty)))
                    .collect()
            })
            .collect();
        Box::new(move |i| {
            let _ = black_box(world.rate_shipment(
                &origin,
                &destination,
                &baskets[i % baskets.len()],
                None,
            ));
        })
    }),
    ("pack_10_units", |world| {
        let lines: Vec<ItemLine> = (0..5u32)
            .map(|k| ItemLine {
                item: Item {
                    weight_g: 200 + 300 * k,
                    length_mm: 120 + 40 * k,
                    width_mm: 100 + 20 * k,
                    height_mm: 30 + 15 * k,
                },
                quantity: 2,
            })
            .collect();
        Box::new(move |_| {
            let _ = black_box(world.freight.pack(&lines));
        })
    }),
];

/// The only code callgrind counts.
#[inline(never)]
fn callgrind_measured(work: &dyn Fn(usize)) {
    for i in 0..ITERATIONS {
        work(i);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") => {
            for (name, _) in CASES {
                println!("{name}");
            }
        }
        Some("run") => {
            let Some(name) = args.get(1) else {
                eprintln!("usage: instructions run CASE");
                std::process::exit(2);
            };
            let Some((_, build)) = CASES.iter().find(|(n, _)| n == name) else {
                eprintln!("no case {name}");
                std::process::exit(2);
            };
            let world = setup();
            let work = build(world);
            // Once outside the count: lazy tables and first allocations.
            work(0);
            callgrind_measured(&*work);
            println!("iterations {ITERATIONS}");
        }
        _ => {
            // `cargo bench` runs every bench: check that each case works.
            let world = setup();
            for (name, build) in CASES {
                let work = build(world);
                let t = std::time::Instant::now();
                callgrind_measured(&*work);
                println!(
                    "{name}: {:.1} µs per iteration natively (gates count instructions: scripts/instructions)",
                    t.elapsed().as_secs_f64() * 1e6 / ITERATIONS as f64
                );
            }
        }
    }
}

/// The world, leaked: it lives as long as the process anyway.
fn setup() -> &'static World {
    Box::leak(Box::new(common::demo_world(SUPPLIERS, PRODUCTS)))
}
