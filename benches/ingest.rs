//! Feed ingest throughput: a 1,000,000-row full feed parsed, matched to a
//! 1,000,000-product catalog, sorted and applied to a fresh index, against
//! the same bytes read by the `csv` crate alone (every field read, `qty`
//! parsed as `u32`, `unit_cost` as `f64`, nothing else). Goal: ingest runs at
//! least 0.3 times the baseline's rows per second.
//!
//! Run: `cargo bench --bench ingest`. Criterion prints its own estimates;
//! the summary at the end gives the median of every timed iteration of each
//! and their ratio.

mod common;
use common::{catalog_csv, Rng};

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use stockroute::domain::catalog::Catalog;
use stockroute::domain::feeds::{apply_parsed, parse_feed, FeedRules};
use stockroute::domain::index::OfferIndex;
use stockroute::domain::suppliers::FeedKind;

const PRODUCTS: u32 = 1_000_000;
const ROWS: usize = 1_000_000;
const AS_OF_S: u32 = 1_767_225_600;
const NOW_MS: i64 = 1_767_225_600_000;

/// One row per product, in a shuffled order (as a distributor exports by its
/// own item code): `supplier_sku,sku,qty,unit_cost,currency`.
fn feed_csv(products: u32, rows: usize, rng: &mut Rng) -> Vec<u8> {
    use std::io::Write;
    let mut order: Vec<u32> = (1..=products).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut out = Vec::with_capacity(rows * 48);
    out.extend_from_slice(b"supplier_sku,sku,qty,unit_cost,currency\n");
    for &p in order.iter().cycle().take(rows) {
        let a = b'A' + rng.below(26) as u8;
        let b = b'A' + rng.below(26) as u8;
        let qty = if rng.below(10) == 0 {
            0
        } else {
            rng.below(500)
        };
        let cents = 100 + rng.below(200_000);
        write!(
            out,
            "{}{}-{:07},SR-{p:07},{qty},",
            a as char,
            b as char,
            rng.below(10_000_000)
        )
        .expect("write to a Vec");
        if rng.below(10) == 0 {
            // Some suppliers quote four decimal places.
            let units = cents * 100 + rng.below(100);
            write!(out, "{}.{:04}", units / 10_000, units % 10_000).expect("write to a Vec");
        } else {
            write!(out, "{}.{:02}", cents / 100, cents % 100).expect("write to a Vec");
        }
        out.extend_from_slice(b",USD\n");
    }
    out
}

/// The baseline: the `csv` crate alone, reading every field and parsing the numbers.
fn csv_only(bytes: &[u8]) -> (u64, u64, f64) {
    let mut rdr = csv::ReaderBuilder::new().from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    let (mut text_bytes, mut qty_sum, mut cost_sum) = (0u64, 0u64, 0f64);
    while rdr.read_byte_record(&mut rec).expect("valid csv") {
        let ssku = &rec[0];
        let sku = &rec[1];
        let currency = &rec[4];
        text_bytes += (ssku.len() + sku.len() + currency.len()) as u64;
        let qty: u32 = std::str::from_utf8(&rec[2])
            .expect("utf8")
            .parse()
            .expect("qty");
        let cost: f64 = std::str::from_utf8(&rec[3])
            .expect("utf8")
            .parse()
            .expect("unit_cost");
        qty_sum += u64::from(qty);
        cost_sum += cost;
    }
    (text_bytes, qty_sum, cost_sum)
}

/// Parse, match, sort and apply into `index`; returns rows applied.
fn ingest(bytes: &[u8], catalog: &Catalog, rules: &FeedRules, index: &OfferIndex) -> u64 {
    let parsed = parse_feed(bytes, catalog, None, rules, AS_OF_S).expect("readable feed");
    let report = apply_parsed(index, 0, FeedKind::Full, parsed, rules, NOW_MS);
    report.rows_applied
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let t = Instant::now();
    let catalog_bytes = catalog_csv(PRODUCTS);
    let catalog = Catalog::from_csv(catalog_bytes.as_slice())
        .expect("catalog loads")
        .catalog;
    drop(catalog_bytes);
    let feed = feed_csv(PRODUCTS, ROWS, &mut Rng(42));
    let rules = FeedRules::default();
    println!(
        "setup: catalog of {} products, feed of {} rows ({:.1} MB), built in {:.1?}",
        catalog.len(),
        ROWS,
        feed.len() as f64 / 1e6,
        t.elapsed()
    );

    // Sanity: every row is accepted, and the baseline sees every row.
    let index = OfferIndex::new(1, catalog.len());
    let parsed = parse_feed(feed.as_slice(), &catalog, None, &rules, AS_OF_S).expect("readable");
    assert_eq!(parsed.report.rows_read, ROWS as u64);
    assert_eq!(parsed.report.rows_rejected, 0, "{:?}", parsed.report.errors);
    let report = apply_parsed(&index, 0, FeedKind::Full, parsed, &rules, NOW_MS);
    assert_eq!(report.rows_applied, ROWS as u64);
    assert_eq!(index.offers_total(), ROWS as u64);
    drop(index);

    let ingest_times = RefCell::new(Vec::new());
    let csv_times = RefCell::new(Vec::new());

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("ingest_1m_rows");
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(8))
            .throughput(Throughput::Elements(ROWS as u64));
        g.bench_function("csv_crate_only", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    black_box(csv_only(black_box(&feed)));
                    let took = start.elapsed();
                    csv_times.borrow_mut().push(took);
                    total += took;
                }
                total
            })
        });
        g.bench_function("parse_match_sort_apply", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh index each time; building and dropping it is not timed.
                    let index = OfferIndex::new(1, catalog.len());
                    let start = Instant::now();
                    black_box(ingest(black_box(&feed), &catalog, &rules, &index));
                    let took = start.elapsed();
                    ingest_times.borrow_mut().push(took);
                    total += took;
                    drop(index);
                }
                total
            })
        });
        g.finish();
    }
    c.final_summary();

    let (mut csv_t, mut ing_t) = (csv_times.into_inner(), ingest_times.into_inner());
    if csv_t.is_empty() || ing_t.is_empty() {
        return; // filtered out, or run as a test
    }
    let (csv_n, ing_n) = (csv_t.len(), ing_t.len());
    let (csv_m, ing_m) = (median(&mut csv_t), median(&mut ing_t));
    let rate = |d: Duration| ROWS as f64 / d.as_secs_f64();
    println!("\n== ingest summary (median of every timed iteration) ==");
    println!(
        "csv crate only (baseline): {:>9.1?} per feed, {:>12.0} rows/s  ({csv_n} runs)",
        csv_m,
        rate(csv_m)
    );
    println!(
        "parse+match+sort+apply   : {:>9.1?} per feed, {:>12.0} rows/s  ({ing_n} runs)",
        ing_m,
        rate(ing_m)
    );
    let ratio = rate(ing_m) / rate(csv_m);
    println!(
        "ratio ingest/baseline    : {ratio:.3}  (goal >= 0.3: {})",
        if ratio >= 0.3 { "met" } else { "MISSED" }
    );
}
