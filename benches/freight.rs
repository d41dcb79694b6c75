//! Freight: rating from tables and packing, on the SAMPLE tables.
//!
//! 1. Criterion: one `Freight::rate` call for a 2-unit domestic shipment (every
//!    domestic service of both carriers: 9 rates), a residential one (8 rates) and an
//!    international one (4 rates); ns per rating (packing included).
//! 2. Criterion: `Freight::pack` for 1, 10 and 50 units (exact search up to 8 units,
//!    heuristic above).
//! 3. Printed: freight saved by the packer against one unit per box, over a
//!    deterministic sample of 40 shipments per size: the cheapest rate's amount (freight
//!    plus boxes) and its carrier charge alone, summed over the sample.
//!
//! Run: `cargo bench --bench freight`.

use std::hint::black_box;

use criterion::Criterion;
use rust_decimal::Decimal;
use stockroute::domain::freight::{Endpoint, Freight, Item, ItemLine, Packing, RateRequest};

/// Typical e-commerce units: (weight g, length, width, height mm).
const CATALOG: [(u32, u32, u32, u32); 10] = [
    (250, 150, 100, 20),    // phone case
    (450, 230, 150, 30),    // paperback
    (400, 120, 120, 100),   // mug
    (900, 330, 210, 120),   // shoes
    (1_200, 250, 200, 100), // small appliance
    (150, 200, 150, 10),    // t-shirt, folded
    (2_500, 380, 280, 150), // kettle
    (600, 180, 180, 180),   // candle set
    (5_000, 450, 350, 250), // toolbox
    (80, 100, 60, 30),      // cable
];

fn us(zip: &str, residential: bool) -> Endpoint<'_> {
    Endpoint {
        country_code: "US",
        postal_code: zip,
        residential,
    }
}

fn item(i: usize) -> Item {
    let (w, l, wi, h) = CATALOG[i % CATALOG.len()];
    Item {
        weight_g: w,
        length_mm: l,
        width_mm: wi,
        height_mm: h,
    }
}

/// A deterministic shipment of exactly `units` units over 1-5 lines.
fn shipment(seed: u64, units: u32) -> Vec<ItemLine> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let lines = 1 + (next() % 5) as u32;
    let mut out = Vec::new();
    let mut left = units;
    for l in 0..lines {
        if left == 0 {
            break;
        }
        let q = if l + 1 == lines {
            left
        } else {
            1 + (next() % u64::from(left)) as u32
        };
        out.push(ItemLine {
            item: item(next() as usize),
            quantity: q.min(left),
        });
        left -= q.min(left);
    }
    out
}

const DESTS: [&str; 8] = [
    "10401", "94105", "60601", "30301", "73301", "04630", "98101", "02108",
];

fn report_savings(f: &Freight) {
    println!("\nfreight saved against one unit per box (cheapest rate, 40 shipments per size):");
    for units in [1u32, 10, 50] {
        let (mut opt_amount, mut one_amount) = (Decimal::ZERO, Decimal::ZERO);
        let (mut opt_freight, mut one_freight) = (Decimal::ZERO, Decimal::ZERO);
        let (mut parcels_opt, mut parcels_one) = (0usize, 0usize);
        for seed in 0..40u64 {
            let lines = shipment(seed + 1, units);
            let req = RateRequest {
                origin: us("10001", false),
                destination: us(DESTS[seed as usize % DESTS.len()], seed % 3 == 0),
                lines: &lines,
                handling_fee: Decimal::ZERO,
            };
            let opt = f.rate_with(&req, Packing::Optimised).expect("rates");
            let one = f.rate_with(&req, Packing::OnePerBox).expect("rates");
            opt_amount += opt.rates[0].amount;
            one_amount += one.rates[0].amount;
            opt_freight += opt.carrier_charge(&opt.rates[0]);
            one_freight += one.carrier_charge(&one.rates[0]);
            parcels_opt += opt.parcels.len();
            parcels_one += one.parcels.len();
        }
        let pct = |a: Decimal, b: Decimal| {
            if b.is_zero() {
                Decimal::ZERO
            } else {
                ((b - a) * Decimal::ONE_HUNDRED / b).round_dp(1)
            }
        };
        println!(
            "  {units:>2} units: amount {opt_amount} vs {one_amount} ({}% saved); \
             carrier charge {opt_freight} vs {one_freight} ({}% saved); parcels {parcels_opt} vs {parcels_one}",
            pct(opt_amount, one_amount),
            pct(opt_freight, one_freight),
        );
    }
}

fn main() {
    let f = Freight::sample();
    report_savings(&f);

    let mut c = Criterion::default().configure_from_args();
    let two = [
        ItemLine {
            item: item(0),
            quantity: 1,
        },
        ItemLine {
            item: item(3),
            quantity: 1,
        },
    ];
    let domestic = RateRequest {
        origin: us("10001", false),
        destination: us("94105", false),
        lines: &two,
        handling_fee: Decimal::ZERO,
    };
    assert_eq!(f.rate(&domestic).unwrap().rates.len(), 9);
    c.bench_function("rate/domestic_commercial_2_units_9_services", |b| {
        b.iter(|| f.rate(black_box(&domestic)).unwrap())
    });
    let residential = RateRequest {
        destination: us("04631", true),
        ..domestic
    };
    c.bench_function("rate/domestic_residential_das_2_units_8_services", |b| {
        b.iter(|| f.rate(black_box(&residential)).unwrap())
    });
    let intl = RateRequest {
        destination: Endpoint {
            country_code: "GB",
            postal_code: "SW1A 1AA",
            residential: false,
        },
        ..domestic
    };
    assert_eq!(f.rate(&intl).unwrap().rates.len(), 4);
    c.bench_function("rate/international_2_units_4_services", |b| {
        b.iter(|| f.rate(black_box(&intl)).unwrap())
    });
    for units in [1u32, 10, 50] {
        let lines = shipment(7, units);
        c.bench_function(&format!("pack/{units}_units"), |b| {
            b.iter(|| f.pack(black_box(&lines)).unwrap())
        });
        let req = RateRequest {
            lines: &lines,
            ..domestic
        };
        c.bench_function(&format!("rate/{units}_units_9_services"), |b| {
            b.iter(|| f.rate(black_box(&req)).unwrap())
        });
    }
    c.final_summary();
}
