//! Resident memory of the offer index at 10,000,000 offers.
//!
//! 1,250,000 catalog products x 8 suppliers, each supplier's full feed
//! (supplier SKUs like `AB-1234567`) parsed and applied through the real
//! ingest path (`parse_feed` + `apply_parsed`), one supplier at a time, with
//! the feed bytes and the parsed batch dropped before the next. RSS (VmRSS
//! from /proc/self/status) is read after the catalog is loaded (the
//! baseline) and after every offer is applied. Goal: at most 48 bytes per
//! offer beyond the baseline.
//!
//! Run: `cargo bench --bench memory` (not criterion: one measurement, printed).

mod common;
use common::catalog_csv;

use std::io::Write;
use std::time::Instant;

use stockroute::domain::catalog::Catalog;
use stockroute::domain::feeds::{apply_parsed, parse_feed, FeedRules};
use stockroute::domain::index::OfferIndex;
use stockroute::domain::suppliers::{FeedKind, SupplierId};

const PRODUCTS: u32 = 1_250_000;
const SUPPLIERS: u32 = 8;
const AS_OF_S: u32 = 1_767_225_600;
const NOW_MS: i64 = 1_767_225_600_000;

/// (VmRSS, VmHWM) in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("{name} not in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Supplier `s`'s full feed: every product, `supplier_sku,sku,qty,unit_cost,currency`.
fn feed_csv(s: u32, products: u32) -> Vec<u8> {
    let prefix = [b'A' + (s % 26) as u8, b'B' + (s * 7 % 25) as u8];
    let mut out = Vec::with_capacity(products as usize * 48);
    out.extend_from_slice(b"supplier_sku,sku,qty,unit_cost,currency\n");
    let mut x: u32 = 2_654_435_761u32.wrapping_mul(s + 1);
    for i in 1..=products {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        writeln!(
            out,
            "{}{}-{:07},SR-{i:07},{},{}.{:02},USD",
            prefix[0] as char,
            prefix[1] as char,
            (i * 7 + s) % 10_000_000,
            x % 500,
            1 + x % 2_000,
            x % 100
        )
        .expect("write to a Vec");
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let t = Instant::now();
    let (start, _) = rss();

    let catalog = {
        let bytes = catalog_csv(PRODUCTS);
        Catalog::from_csv(bytes.as_slice())
            .expect("catalog loads")
            .catalog
    };
    let (with_catalog, _) = rss();

    let rules = FeedRules::default();
    let index = OfferIndex::new(SUPPLIERS as usize, catalog.len());
    for s in 0..SUPPLIERS {
        let feed = feed_csv(s, PRODUCTS);
        let parsed = parse_feed(feed.as_slice(), &catalog, None, &rules, AS_OF_S).expect("feed");
        drop(feed);
        assert_eq!(parsed.report.rows_rejected, 0, "{:?}", parsed.report.errors);
        let report = apply_parsed(
            &index,
            s as SupplierId,
            FeedKind::Full,
            parsed,
            &rules,
            NOW_MS,
        );
        assert_eq!(report.rows_applied, u64::from(PRODUCTS));
    }
    let offers = index.offers_total();
    assert_eq!(offers, u64::from(PRODUCTS) * u64::from(SUPPLIERS));
    let (with_offers, peak) = rss();

    // Sanity: the index answers.
    let view = index.view();
    assert_eq!(view.offers(12_345).len(), SUPPLIERS as usize);
    drop(view);

    let per_offer = (with_offers - with_catalog) as f64 / offers as f64;
    let per_offer_all = (with_offers - start) as f64 / offers as f64;
    println!(
        "== resident memory, {offers} offers ({PRODUCTS} products x {SUPPLIERS} suppliers) =="
    );
    println!("process start            : {:>9.1} MiB", mb(start));
    println!(
        "catalog loaded (baseline) : {:>9.1} MiB  (catalog: {:.1} MiB, {:.0} bytes/product)",
        mb(with_catalog),
        mb(with_catalog - start),
        (with_catalog - start) as f64 / f64::from(PRODUCTS)
    );
    println!(
        "all offers applied        : {:>9.1} MiB  (peak VmHWM {:.1} MiB)",
        mb(with_offers),
        mb(peak)
    );
    println!(
        "bytes per offer beyond baseline: {per_offer:.1}  (goal <= 48: {})",
        if per_offer <= 48.0 { "met" } else { "MISSED" }
    );
    println!("bytes per offer incl. catalog  : {per_offer_all:.1}");
    println!("built and measured in {:.1?}", t.elapsed());
    drop(index);
}
