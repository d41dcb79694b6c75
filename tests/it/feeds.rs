//! Feeds pushed through `IngestFeed`: visibility, atomic swaps, bad rows and refusals.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use stockroute::pb;

use crate::helpers::{line, push_feed, spawn_app, us, TestApp};

async fn offer_of(app: &TestApp, sku: &str, supplier: &str) -> Option<pb::Offer> {
    app.catalog()
        .get_offers(pb::GetOffersRequest { sku: sku.into() })
        .await
        .expect("get offers")
        .into_inner()
        .offers
        .into_iter()
        .find(|o| o.supplier_id == supplier)
}

/// What IngestFeed applied is visible to the next CheckStock, streamed in small chunks.
/// (SUP003 has no real-time gateway, whose answers would take precedence.)
#[tokio::test]
async fn ingest_then_check_stock_sees_new_stock() {
    let app = spawn_app().await;
    let csv = "supplier_sku,sku,qty,unit_cost\nX-1,SR-000001,777,12.34\nX-2,SR-000002,5,1.5\n";
    let report = push_feed(&app, "SUP003", false, csv, 7)
        .await
        .expect("ingest");
    assert_eq!(
        (report.rows_read, report.rows_applied, report.rows_rejected),
        (2, 2, 0)
    );
    assert!(!report.refused);
    let r = app
        .fulfillment()
        .check_stock(pb::CheckStockRequest {
            lines: vec![line("SR-000001", 1)],
            ship_to: us("10001"),
            realtime_budget_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let offer = r.lines[0]
        .offers
        .iter()
        .find(|o| o.supplier_id == "SUP003")
        .expect("SUP003 offer");
    assert_eq!(offer.available, 777);
    assert_eq!(offer.supplier_sku, "X-1");
    assert_eq!(offer.unit_cost.as_ref().unwrap().amount, "12.34");
    assert_eq!(offer.source, pb::StockSource::Feed as i32);
    assert!(r.lines[0].available >= 777);
}

/// A full feed replaces everything the supplier offered; a delta changes only its rows.
#[tokio::test]
async fn full_replaces_and_delta_amends() {
    let app = spawn_app().await;
    let full = "supplier_sku,sku,qty,unit_cost\nA,SR-000010,4,1.00\nB,SR-000011,6,2.00\n";
    push_feed(&app, "SUP002", true, full, 1 << 16)
        .await
        .unwrap();
    let delta = "supplier_sku,sku,qty,unit_cost\nA,SR-000010,9,1.10\n";
    push_feed(&app, "SUP002", false, delta, 1 << 16)
        .await
        .unwrap();
    assert_eq!(
        offer_of(&app, "SR-000010", "SUP002")
            .await
            .unwrap()
            .available,
        9
    );
    assert_eq!(
        offer_of(&app, "SR-000011", "SUP002")
            .await
            .unwrap()
            .available,
        6
    );
    // Products the full feed did not name are gone for this supplier.
    let others = (12..40).map(|i| format!("SR-{i:06}")).collect::<Vec<_>>();
    for sku in others {
        assert!(
            offer_of(&app, &sku, "SUP002").await.is_none(),
            "{sku} still offered by SUP002"
        );
    }
}

/// Many readers while full feeds with distinguishable contents alternate:
/// every read sees one whole feed, never a mix of two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_feed_swap_is_atomic_under_concurrent_readers() {
    let app = Arc::new(spawn_app().await);
    let skus: Vec<String> = (100..140).map(|i| format!("SR-{i:06}")).collect();
    let feed = |qty: u32| {
        let mut csv = String::from("supplier_sku,sku,qty,unit_cost\n");
        for (i, sku) in skus.iter().enumerate() {
            csv.push_str(&format!("S{i},{sku},{qty},1.00\n"));
        }
        csv
    };
    let (a, b) = (feed(1111), feed(2222));
    push_feed(&app, "SUP003", true, &a, 1 << 16).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..6 {
        let (app, done, skus) = (Arc::clone(&app), Arc::clone(&done), skus.clone());
        readers.push(tokio::spawn(async move {
            let mut client = app.fulfillment();
            let mut reads = 0u32;
            let mut seen = std::collections::BTreeSet::new();
            while !done.load(Ordering::SeqCst) || reads < 5 {
                let r = client
                    .check_stock(pb::CheckStockRequest {
                        lines: skus.iter().map(|s| line(s, 1)).collect(),
                        ship_to: None,
                        realtime_budget_ms: 0,
                    })
                    .await
                    .expect("check stock")
                    .into_inner();
                let qtys: std::collections::BTreeSet<u32> = r
                    .lines
                    .iter()
                    .map(|l| {
                        l.offers
                            .iter()
                            .find(|o| o.supplier_id == "SUP003")
                            .map_or(0, |o| o.available)
                    })
                    .collect();
                assert_eq!(qtys.len(), 1, "a read mixed two feeds: {qtys:?}");
                seen.extend(qtys);
                reads += 1;
            }
            (reads, seen)
        }));
    }
    for round in 0..30 {
        let csv = if round % 2 == 0 { &b } else { &a };
        // Small chunks make each ingest take a while, widening the window for a torn read.
        let r = push_feed(&app, "SUP003", true, csv, 64).await.unwrap();
        assert_eq!(r.rows_applied, 40);
    }
    done.store(true, Ordering::SeqCst);
    let mut all_seen = std::collections::BTreeSet::new();
    for r in readers {
        let (reads, seen) = r.await.unwrap();
        assert!(reads >= 5);
        all_seen.extend(seen);
    }
    assert!(all_seen.is_subset(&[1111, 2222].into_iter().collect()));
}

/// Bad rows are rejected by line number with a reason; the rest applies.
#[tokio::test]
async fn bad_rows_are_reported_and_the_rest_applies() {
    let app = spawn_app().await;
    let mut csv = String::from("supplier_sku,sku,qty,unit_cost\n");
    for i in 0..40 {
        csv.push_str(&format!("G{i},SR-{:06},3,2.50\n", 200 + i));
    }
    csv.push_str("BAD1,SR-000300,-4,1.00\n"); // line 42
    csv.push_str("BAD2,NO-SUCH-SKU,1,1.00\n"); // line 43
    let r = push_feed(&app, "SUP004", true, &csv, 100).await.unwrap();
    assert_eq!((r.rows_read, r.rows_applied, r.rows_rejected), (42, 40, 2));
    assert!(!r.refused, "2 of 42 is under the 5% threshold");
    assert_eq!(r.errors[0].line, 42);
    assert!(
        r.errors[0].message.contains("qty"),
        "{}",
        r.errors[0].message
    );
    assert_eq!(r.errors[1].line, 43);
    assert!(r.errors[1].message.contains("NO-SUCH-SKU"));
    assert_eq!(
        offer_of(&app, "SR-000239", "SUP004")
            .await
            .unwrap()
            .available,
        3
    );
}

/// Over the threshold the feed is refused whole and the previous data stays;
/// an unreadable feed is INVALID_ARGUMENT and changes nothing either.
#[tokio::test]
async fn refused_feeds_keep_the_previous_snapshot() {
    let app = spawn_app().await;
    let good = "supplier_sku,sku,qty,unit_cost\nK,SR-000500,8,3.00\n";
    push_feed(&app, "SUP005", true, good, 1 << 16)
        .await
        .unwrap();
    let bad = "supplier_sku,sku,qty,unit_cost\nK,SR-000500,1,3.00\nL,SR-000501,x,3.00\n";
    let r = push_feed(&app, "SUP005", true, bad, 1 << 16).await.unwrap();
    assert!(r.refused);
    assert!(r.refusal.contains("threshold"), "{}", r.refusal);
    assert_eq!(r.rows_applied, 0);
    assert_eq!(
        offer_of(&app, "SR-000500", "SUP005")
            .await
            .unwrap()
            .available,
        8
    );

    let err = push_feed(&app, "SUP005", true, "sku,qty\nSR-000500,1\n", 1 << 16)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("supplier_sku"), "{}", err.message());
    let err = push_feed(&app, "NOPE", true, good, 1 << 16)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("NOPE"));
    assert_eq!(
        offer_of(&app, "SR-000500", "SUP005")
            .await
            .unwrap()
            .available,
        8
    );

    let readyz: serde_json::Value = reqwest::get(app.http("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failing = readyz["feeds_failing"].as_array().unwrap();
    assert!(
        failing.iter().any(|f| f["supplier"] == "SUP005"),
        "{readyz}"
    );
}
