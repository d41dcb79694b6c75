//! Test data shared by the benchmarks: a deterministic generator and a
//! synthetic catalog. Each bench uses what it needs.
#![allow(dead_code)]

use std::io::Write;

/// splitmix64: small, deterministic, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A catalog of `products` products `SR-0000001`..., with mpn and ean filled in.
pub fn catalog_csv(products: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(products as usize * 80);
    out.extend_from_slice(b"sku,mpn,ean,name,weight_g,length_mm,width_mm,height_mm\n");
    for i in 1..=products {
        writeln!(
            out,
            "SR-{i:07},MPN-{i:07},{},Product {i},{},{},{},{}",
            4_006_381_000_000u64 + u64::from(i),
            50 + i % 5_000,
            10 + i % 600,
            10 + i % 400,
            5 + i % 300
        )
        .expect("write to a Vec");
    }
    out
}

/// The demo world (as `stockroute serve` builds it, deterministic for the
/// seed) with every supplier's feed applied, on a fixed clock.
pub fn demo_world(suppliers: u32, products: u32) -> stockroute::domain::world::World {
    use stockroute::config::Config;
    use stockroute::load::{self, WorldSource};
    let mut config = Config::default();
    config.data.demo_suppliers = suppliers;
    config.data.demo_products = products;
    let source = WorldSource::demo(&config);
    // 2026-01-01T00:00:00Z: quote validity and feed ages never depend on the day.
    let clock = stockroute::domain::clock::ManualClock::new(1_767_225_600_000);
    let world = load::load_world(&config, &source, clock).expect("demo world loads");
    let feeds: Vec<_> = world
        .suppliers
        .iter()
        .filter_map(|(id, s)| s.feed.clone().map(|f| (id, f)))
        .collect();
    for (id, feed) in feeds {
        let bytes = source.read(&feed.source).expect("demo feed exists");
        world
            .ingest(id, feed.kind, bytes.as_slice())
            .expect("demo feed applies");
    }
    world
}

/// `count` deterministic quote inputs of `lines` distinct in-stock products
/// each (1 or 2 units a line), to a US or an international destination.
pub fn quote_inputs(
    world: &stockroute::domain::world::World,
    lines: usize,
    count: usize,
    seed: u64,
    international: bool,
) -> Vec<stockroute::domain::quoting::QuoteInput> {
    use stockroute::domain::address::Address;
    use stockroute::domain::planner::{Objective, PlanOptions};
    use stockroute::domain::quoting::{Demand, QuoteInput};
    use stockroute::domain::realtime::Overlay;
    let products = world.catalog.len() as u64;
    let mut rng = Rng(seed);
    let destinations = if international {
        [("GB", "SW1A 1AA"), ("DE", "10115"), ("CA", "M5V 3L9")].as_slice()
    } else {
        [
            ("US", "10001"),
            ("US", "94105"),
            ("US", "60601"),
            ("US", "30301"),
        ]
        .as_slice()
    };
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut demands: Vec<Demand> = Vec::with_capacity(lines);
        while demands.len() < lines {
            let product = rng.below(products) as u32;
            if demands.iter().any(|d| d.product == Some(product)) {
                continue;
            }
            let demand = Demand {
                line: demands.len(),
                sku: world.catalog.sku(product).to_owned(),
                product: Some(product),
                qty: 1 + rng.below(2) as u32,
            };
            let stock = world.check_stock(std::slice::from_ref(&demand), &Overlay::default());
            if stock.first().is_some_and(|s| s.available >= demand.qty) {
                demands.push(demand);
            }
        }
        let (country, postal) = destinations[rng.below(destinations.len() as u64) as usize];
        out.push(QuoteInput {
            lines: demands,
            ship_to: Address {
                country_code: country.into(),
                postal_code: postal.into(),
                residential: rng.below(2) == 0,
            },
            options: PlanOptions {
                objective: Objective::Cheapest,
                allow_partial: false,
                allow_split_lines: false,
                max_shipments: 0,
                arrive_within_days: 0,
            },
            excluded: Vec::new(),
        });
    }
    out
}
