//! Basket lookups in the offer index.
//!
//! World: 100,000 products, each offered by 1-8 of 120 suppliers (the demo
//! world's spread); supplier 0 carries every other product (50,000 offers).
//! A basket is 10 random products; each basket takes one `IndexView` (as a
//! request does) and collects every line's offers with `offers_into`.
//!
//! 1. Criterion: ns per basket for the index, and for the same lookups in a
//!    read-only `std::collections::HashMap<u32, Vec<Offer>>` of the same data.
//!    Goal: HashMap time / index time >= 0.5.
//! 2. Latency distribution (plain loop, HdrHistogram): per-basket latency
//!    idle, then while another thread applies supplier 0's 50,000-offer full
//!    feed back to back. Goal: no material change in p99.9.
//!
//! Run: `cargo bench --bench index`.

mod common;
use common::Rng;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hdrhistogram::Histogram;
use stockroute::domain::index::{sort_dedup, OfferBatch, OfferIndex, OfferRef};
use stockroute::domain::suppliers::SupplierId;

const PRODUCTS: u32 = 100_000;
const SUPPLIERS: usize = 120;
const BIG_SUPPLIER: SupplierId = 0;
const BASKET_LINES: usize = 10;
const BASKETS: usize = 4096;
const AS_OF_S: u32 = 1_767_225_600;
/// The demo world's weights for a product having 1..=8 suppliers.
const OFFER_COUNT_WEIGHTS: [u64; 8] = [10, 22, 26, 20, 12, 6, 3, 1];

/// One offer in the HashMap comparison.
#[derive(Debug, Clone)]
struct Offer {
    supplier: SupplierId,
    qty: u32,
    cost: u32,
    as_of_s: u32,
    supplier_sku: Box<str>,
    /// From a real-time answer (the index keeps this per row too).
    realtime: bool,
}

struct World {
    index: OfferIndex,
    map: HashMap<u32, Vec<Offer>>,
    /// Two versions of supplier 0's full feed (same products, other stock).
    big_feeds: [OfferBatch; 2],
    offers: usize,
}

fn supplier_sku(rng: &mut Rng) -> String {
    let a = (b'A' + rng.below(26) as u8) as char;
    let b = (b'A' + rng.below(26) as u8) as char;
    format!("{a}{b}-{:07}", rng.below(10_000_000))
}

fn build_world() -> World {
    let mut rng = Rng(7);
    let weight_total: u64 = OFFER_COUNT_WEIGHTS.iter().sum();
    // Per supplier, its offers in product order.
    let mut per_supplier: Vec<Vec<(u32, Offer)>> = vec![Vec::new(); SUPPLIERS];
    let mut map: HashMap<u32, Vec<Offer>> = HashMap::with_capacity(PRODUCTS as usize);
    let mut offers = 0;
    for p in 0..PRODUCTS {
        let mut draw = rng.below(weight_total);
        let mut wanted = 1;
        for (n, w) in OFFER_COUNT_WEIGHTS.iter().enumerate() {
            if draw < *w {
                wanted = n + 1;
                break;
            }
            draw -= w;
        }
        let mut chosen: Vec<SupplierId> = Vec::with_capacity(wanted);
        if p % 2 == 0 {
            chosen.push(BIG_SUPPLIER);
        }
        while chosen.len() < wanted {
            let s = 1 + rng.below(SUPPLIERS as u64 - 1) as SupplierId;
            if !chosen.contains(&s) {
                chosen.push(s);
            }
        }
        chosen.sort_unstable();
        let mut list = Vec::with_capacity(chosen.len());
        for s in chosen {
            let o = Offer {
                supplier: s,
                qty: if rng.below(8) == 0 {
                    0
                } else {
                    rng.below(500) as u32
                },
                cost: 10_000 + rng.below(2_000_000) as u32,
                as_of_s: AS_OF_S,
                supplier_sku: supplier_sku(&mut rng).into_boxed_str(),
                realtime: false,
            };
            per_supplier[s as usize].push((p, o.clone()));
            list.push(o);
        }
        offers += list.len();
        map.insert(p, list);
    }
    let index = OfferIndex::new(SUPPLIERS, PRODUCTS as usize);
    for (s, rows) in per_supplier.iter().enumerate() {
        let mut batch = OfferBatch::default();
        for (p, o) in rows {
            batch.push(*p, o.qty, o.cost, o.as_of_s, o.supplier_sku.as_bytes());
        }
        sort_dedup(&mut batch);
        index.apply_full(s as SupplierId, &batch, 1);
    }
    let big_feed = |bump: u32| {
        let mut batch = OfferBatch::default();
        for (p, o) in &per_supplier[BIG_SUPPLIER as usize] {
            batch.push(
                *p,
                o.qty + bump,
                o.cost,
                o.as_of_s + bump,
                o.supplier_sku.as_bytes(),
            );
        }
        sort_dedup(&mut batch);
        batch
    };
    let big_feeds = [big_feed(0), big_feed(1)];
    World {
        index,
        map,
        big_feeds,
        offers,
    }
}

fn baskets(rng: &mut Rng) -> Vec<[u32; BASKET_LINES]> {
    (0..BASKETS)
        .map(|_| std::array::from_fn(|_| rng.below(u64::from(PRODUCTS)) as u32))
        .collect()
}

/// One request's worth of work in the index: one view, every line's offers.
#[inline(never)]
fn basket_index(index: &OfferIndex, basket: &[u32; BASKET_LINES]) -> u64 {
    let view = index.view();
    let mut out: Vec<OfferRef<'_>> = Vec::new();
    let mut acc = 0u64;
    for &p in basket {
        out.clear();
        view.offers_into(p, &mut out);
        for o in &out {
            acc += u64::from(o.qty) + u64::from(o.cost) + o.supplier_sku.len() as u64;
        }
    }
    acc
}

/// The same in the HashMap.
#[inline(never)]
fn basket_map(map: &HashMap<u32, Vec<Offer>>, basket: &[u32; BASKET_LINES]) -> u64 {
    let mut out: Vec<OfferRef<'_>> = Vec::new();
    let mut acc = 0u64;
    for &p in basket {
        out.clear();
        if let Some(list) = map.get(&p) {
            out.extend(list.iter().map(|o| OfferRef {
                supplier: o.supplier,
                product: p,
                qty: o.qty,
                cost: o.cost,
                as_of_s: o.as_of_s,
                supplier_sku: &o.supplier_sku,
                realtime: o.realtime,
            }));
        }
        for o in &out {
            acc += u64::from(o.qty) + u64::from(o.cost) + o.supplier_sku.len() as u64;
        }
    }
    acc
}

/// ns per basket over `rounds` x `BASKETS` baskets.
fn time_baskets(
    rounds: usize,
    baskets: &[[u32; BASKET_LINES]],
    f: impl Fn(&[u32; 10]) -> u64,
) -> f64 {
    let start = Instant::now();
    let mut acc = 0;
    for _ in 0..rounds {
        for b in baskets {
            acc += f(b);
        }
    }
    black_box(acc);
    start.elapsed().as_nanos() as f64 / (rounds * baskets.len()) as f64
}

fn latency_run(world: &World, baskets: &[[u32; BASKET_LINES]], count: usize) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    let mut acc = 0;
    for b in baskets.iter().cycle().take(count) {
        let start = Instant::now();
        acc += basket_index(&world.index, b);
        let ns = start.elapsed().as_nanos() as u64;
        h.record(ns.max(1)).expect("in range");
    }
    black_box(acc);
    h
}

fn print_hist(label: &str, h: &Histogram<u64>) {
    println!(
        "{label:<32} n={:>8}  p50={:>7} ns  p99={:>7} ns  p99.9={:>7} ns  p99.99={:>8} ns  max={:>9} ns  mean={:>7.0} ns",
        h.len(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.value_at_quantile(0.9999),
        h.max(),
        h.mean()
    );
}

fn main() {
    let t = Instant::now();
    let world = build_world();
    let baskets = baskets(&mut Rng(99));
    // Same answers from both.
    for b in &baskets {
        assert_eq!(basket_index(&world.index, b), basket_map(&world.map, b));
    }
    println!(
        "setup: {} products, {} suppliers, {} offers (supplier 0: {}), {} baskets of {} lines, built in {:.1?}",
        PRODUCTS,
        SUPPLIERS,
        world.offers,
        world.big_feeds[0].rows.len(),
        BASKETS,
        BASKET_LINES,
        t.elapsed()
    );

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("basket_10_lines");
        g.sample_size(30)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .throughput(Throughput::Elements(1));
        g.bench_function("offer_index_view", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % BASKETS;
                basket_index(&world.index, &baskets[i])
            })
        });
        g.bench_function("std_hashmap", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % BASKETS;
                basket_map(&world.map, &baskets[i])
            })
        });
        g.finish();
    }
    c.final_summary();
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }

    // Summary figures: interleaved rounds, median per side.
    let (mut idx_ns, mut map_ns) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        idx_ns.push(time_baskets(50, &baskets, |b| {
            basket_index(&world.index, b)
        }));
        map_ns.push(time_baskets(50, &baskets, |b| basket_map(&world.map, b)));
    }
    idx_ns.sort_by(f64::total_cmp);
    map_ns.sort_by(f64::total_cmp);
    let (idx_m, map_m) = (idx_ns[3], map_ns[3]);
    println!("\n== basket lookup summary (median of 7 interleaved rounds of 204,800 baskets) ==");
    println!("offer index (view + offers_into): {idx_m:>8.1} ns per basket");
    println!("std HashMap<u32, Vec<Offer>>     : {map_m:>8.1} ns per basket");
    let ratio = map_m / idx_m;
    println!(
        "ratio HashMap_time / index_time  : {ratio:.3}  (goal >= 0.5: {})",
        if ratio >= 0.5 { "met" } else { "MISSED" }
    );

    // Latency distribution, idle then under back-to-back full feeds.
    const COUNT: usize = 1_000_000;
    println!("\n== per-basket latency, {COUNT} baskets each (HdrHistogram, ns) ==");
    latency_run(&world, &baskets, 100_000); // warm
    let idle = latency_run(&world, &baskets, COUNT);
    let stop = AtomicBool::new(false);
    let applied = AtomicU64::new(0);
    let apply_ns = AtomicU64::new(0);
    let busy = std::thread::scope(|s| {
        s.spawn(|| {
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                world
                    .index
                    .apply_full(BIG_SUPPLIER, &world.big_feeds[k % 2], 2 + k as i64);
                apply_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                applied.fetch_add(1, Ordering::Relaxed);
                k += 1;
            }
        });
        // Let the writer get going.
        while applied.load(Ordering::Relaxed) == 0 {
            std::hint::spin_loop();
        }
        let h = latency_run(&world, &baskets, COUNT);
        stop.store(true, Ordering::Relaxed);
        h
    });
    let idle2 = latency_run(&world, &baskets, COUNT);
    print_hist("idle", &idle);
    print_hist("while full feeds apply", &busy);
    print_hist("idle again (after)", &idle2);
    let feeds = applied.load(Ordering::Relaxed);
    println!(
        "full feeds of supplier 0 applied during the loaded run: {feeds} ({:.2} ms each on average)",
        apply_ns.load(Ordering::Relaxed) as f64 / feeds.max(1) as f64 / 1e6
    );
    let (a, b) = (
        idle.value_at_quantile(0.999) as f64,
        busy.value_at_quantile(0.999) as f64,
    );
    println!("p99.9 loaded / idle: {:.2}x", b / a);
}
