//! Supplier feed CSV, as `IngestFeed`, a download or a file delivers it: any
//! bytes give a report or a clear error, never a panic, and what a delta
//! applies stays inside the catalog.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockroute::domain::suppliers::FeedKind;

#[path = "world.rs"]
mod world;

fuzz_target!(|data: &[u8]| {
    let world = world::world();
    let Some((&selector, csv)) = data.split_first() else {
        return;
    };
    let suppliers = world.suppliers.len() as u16;
    let supplier = u16::from(selector >> 1) % suppliers.max(1);
    // Full feeds replace a supplier's stock; both paths are fuzzed.
    let kind = if selector & 1 == 1 {
        FeedKind::Full
    } else {
        FeedKind::Delta
    };
    if let Ok(report) = world.ingest(supplier, kind, csv) {
        assert!(report.rows_applied + report.rows_rejected <= report.rows_read);
    }
});
