use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::*;
use crate::domain::address::Address;
use crate::domain::catalog::Catalog;
use crate::domain::clock::ManualClock;
use crate::domain::feeds::{FeedBoard, FeedRules};
use crate::domain::freight::Freight;
use crate::domain::index::{sort_dedup, OfferBatch, OfferIndex};
use crate::domain::planner::{Objective, PlanOptions};
use crate::domain::quoting::{QuoteInput, StockSource};
use crate::domain::suppliers::SupplierRegistry;

/// Now, in Unix seconds, for every test world.
const NOW_S: u32 = 1_767_225_600;
/// When the feeds were loaded.
const FEED_S: u32 = NOW_S - 600;

/// Three suppliers: SUP0 feed-only, SUP1 and SUP2 real-time. Products P0..P3.
fn world() -> World {
    let mut csv = String::from("sku,mpn,ean,name,weight_g,length_mm,width_mm,height_mm\n");
    for i in 0..4 {
        csv.push_str(&format!("P{i},,,Product {i},500,100,100,100\n"));
    }
    let catalog = Catalog::from_csv(csv.as_bytes()).unwrap().catalog;
    let origin = r#"origin = { country_code = "US", postal_code = "10001" }"#;
    let suppliers = SupplierRegistry::from_toml(
        &format!(
            "[[supplier]]\nid = \"SUP0\"\n{origin}\n\
             [[supplier]]\nid = \"SUP1\"\n{origin}\nrealtime = {{ base_url = \"http://127.0.0.1:1\" }}\n\
             [[supplier]]\nid = \"SUP2\"\n{origin}\nrealtime = {{ base_url = \"http://127.0.0.1:1\" }}\n"
        ),
        "USD",
    )
    .unwrap();
    let index = OfferIndex::new(3, catalog.len());
    // (supplier, product, qty, cost)
    let rows: [(u16, u32, u32, u32); 6] = [
        (0, 0, 5, 100_000),
        (1, 0, 0, 90_000),
        (2, 0, 3, 95_000),
        (1, 1, 4, 50_000),
        (2, 2, 8, 70_000),
        (0, 3, 1, 10_000),
    ];
    for s in 0..3u16 {
        let mut b = OfferBatch::default();
        for &(_, p, q, c) in rows.iter().filter(|r| r.0 == s) {
            b.push(p, q, c, FEED_S, format!("S{s}-P{p}").as_bytes());
        }
        sort_dedup(&mut b);
        index.apply_full(s, &b, i64::from(FEED_S) * 1000);
    }
    World {
        catalog,
        suppliers,
        freight: Freight::sample(),
        index,
        mappings: vec![None, None, None],
        feed_rules: FeedRules::default(),
        feeds: FeedBoard::new(3),
        currency: "USD".into(),
        clock: ManualClock::new(i64::from(NOW_S) * 1000),
        ledger: std::sync::OnceLock::new(),
        origins: std::sync::OnceLock::new(),
    }
}

fn demand(world: &World, sku: &str, qty: u32) -> Demand {
    Demand {
        line: 0,
        sku: sku.into(),
        product: world.catalog.by_sku(sku.as_bytes()),
        qty,
    }
}

/// A gateway that answers from a script and remembers what it was asked.
#[derive(Default)]
struct Scripted {
    answers: HashMap<SupplierId, (AskOutcome, Vec<ItemAnswer>)>,
    asked: Mutex<Vec<SupplierQuestion>>,
}

impl StockGateway for Scripted {
    fn ask<'a>(
        &'a self,
        questions: &'a [SupplierQuestion],
        _budget: Duration,
    ) -> BoxFuture<'a, Vec<SupplierAnswer>> {
        self.asked.lock().extend(questions.iter().cloned());
        let answers = questions
            .iter()
            .map(|q| {
                let (outcome, items) = self
                    .answers
                    .get(&q.supplier)
                    .cloned()
                    .unwrap_or((AskOutcome::TimedOut, Vec::new()));
                SupplierAnswer {
                    supplier: q.supplier,
                    outcome,
                    items,
                }
            })
            .collect();
        Box::pin(async move { answers })
    }
}

fn known(product: ProductId, available: u32, cost: CostUnits, as_of_s: u32) -> ItemAnswer {
    ItemAnswer {
        product,
        state: ItemState::Known { available, cost },
        as_of_s,
        cached: false,
    }
}

/// Only real-time suppliers that carry a basket product are asked, once each, about all of
/// their basket products; excluded suppliers and unknown SKUs are left out.
#[test]
fn questions_batch_per_real_time_supplier() {
    let w = world();
    let lines = vec![
        demand(&w, "P0", 2),
        demand(&w, "P1", 1),
        demand(&w, "P2", 4),
        demand(&w, "P3", 1),
        demand(&w, "NOPE", 1),
    ];
    let qs = questions(&w, &lines, &[]);
    assert_eq!(qs.len(), 2, "{qs:?}");
    assert_eq!(qs[0].supplier, 1);
    let items: Vec<(ProductId, &str, u32)> = qs[0]
        .items
        .iter()
        .map(|i| (i.product, i.supplier_sku.as_str(), i.quantity))
        .collect();
    assert_eq!(items, vec![(0, "S1-P0", 2), (1, "S1-P1", 1)]);
    assert_eq!(qs[1].supplier, 2);
    assert_eq!(qs[1].items.len(), 2);
    let qs = questions(&w, &lines, &[2]);
    assert_eq!(qs.len(), 1);
    assert!(questions(&w, &[demand(&w, "P3", 1)], &[]).is_empty());
}

/// Fresh answers replace the feed's numbers, cached ones say so, unknown items read as
/// none, and an answer older than the index's data loses to it.
#[test]
fn overlay_prefers_the_newest_data() {
    let w = world();
    let answers = vec![
        SupplierAnswer {
            supplier: 1,
            outcome: AskOutcome::Answered,
            items: vec![
                known(0, 7, 85_000, NOW_S - 1),
                ItemAnswer {
                    product: 1,
                    state: ItemState::Unknown,
                    as_of_s: NOW_S - 1,
                    cached: false,
                },
            ],
        },
        SupplierAnswer {
            supplier: 2,
            outcome: AskOutcome::TimedOut,
            items: vec![
                ItemAnswer {
                    cached: true,
                    ..known(0, 1, 95_000, NOW_S - 30)
                },
                // Older than the feed: the feed's row stands.
                known(2, 99, 1, FEED_S - 1),
            ],
        },
    ];
    let overlay = Overlay::from_answers(&answers, NOW_S);
    let view = w.index.view();
    let seen = |s: SupplierId, p: ProductId| overlay.see(&view.offer(s, p).unwrap());
    assert_eq!(
        seen(1, 0),
        SeenOffer {
            available: 7,
            cost: 85_000,
            as_of_s: NOW_S - 1,
            source: StockSource::Realtime
        }
    );
    assert_eq!(
        seen(1, 1),
        SeenOffer {
            available: 0,
            cost: 50_000,
            as_of_s: NOW_S - 1,
            source: StockSource::Realtime
        },
        "unknown to the supplier: none available, the feed's cost kept"
    );
    assert_eq!(seen(2, 0).source, StockSource::CachedRealtime);
    assert_eq!(seen(2, 0).available, 1);
    assert_eq!(seen(2, 2).source, StockSource::Feed);
    assert_eq!(seen(2, 2).available, 8);
    assert_eq!(seen(0, 0).source, StockSource::Feed);
    assert_eq!(
        overlay.freshness(),
        Freshness {
            queried: 2,
            answered: 1,
            timed_out: 1,
            failed: 0,
            cached: 0
        }
    );
}

/// An answer dated in the future counts as now, so a feed loaded a moment later still wins.
#[test]
fn future_answers_count_as_now() {
    let answers = vec![SupplierAnswer {
        supplier: 1,
        outcome: AskOutcome::Answered,
        items: vec![known(0, 7, 85_000, NOW_S + 86_400)],
    }];
    let overlay = Overlay::from_answers(&answers, NOW_S);
    let rows: Vec<_> = overlay.fresh_rows().collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.as_of_s, NOW_S);
}

/// Freshness counts every outcome; cached suppliers are not counted as queried.
#[test]
fn freshness_counts_outcomes() {
    let answer = |supplier, outcome| SupplierAnswer {
        supplier,
        outcome,
        items: Vec::new(),
    };
    let overlay = Overlay::from_answers(
        &[
            answer(0, AskOutcome::Answered),
            answer(1, AskOutcome::Cached),
            answer(2, AskOutcome::Failed("circuit open".into())),
            answer(3, AskOutcome::TimedOut),
            answer(4, AskOutcome::TimedOut),
        ],
        NOW_S,
    );
    assert_eq!(
        overlay.freshness(),
        Freshness {
            queried: 4,
            answered: 1,
            timed_out: 2,
            failed: 1,
            cached: 1
        }
    );
}

/// Gathered answers feed the quote (with their source) and, once flushed, the index; a
/// later, older reading does not move the index back.
#[tokio::test]
async fn gathered_answers_reach_the_quote_and_the_index() {
    let w = world();
    let mut gateway = Scripted::default();
    // SUP1's feed says P0 is out of stock; it now has 6, cheapest of all.
    gateway.answers.insert(
        1,
        (AskOutcome::Answered, vec![known(0, 6, 80_000, NOW_S - 2)]),
    );
    let realtime = RealtimeStock::new(Arc::new(gateway));
    let lines = vec![demand(&w, "P0", 2)];
    let overlay = realtime
        .gather(&w, &lines, &[], Duration::from_millis(100))
        .await;
    assert_eq!(overlay.freshness().answered, 1);
    assert_eq!(overlay.freshness().timed_out, 1, "SUP2 had no script");

    let input = QuoteInput {
        lines: lines.clone(),
        ship_to: Address {
            country_code: "US".into(),
            postal_code: "10001".into(),
            residential: false,
        },
        options: PlanOptions {
            objective: Objective::Cheapest,
            allow_partial: false,
            allow_split_lines: false,
            max_shipments: 0,
            arrive_within_days: 0,
        },
        excluded: Vec::new(),
    };
    let quote = w.quote(&input, &overlay, 60).unwrap();
    assert_eq!(quote.freshness, overlay.freshness());
    let s = &quote.plan.shipments[0];
    assert_eq!(s.supplier, 1, "the real-time stock made SUP1 possible");
    assert_eq!(s.allocations[0].as_of_s, NOW_S - 2);
    assert_eq!(quote.sources[&(1, 0)], StockSource::Realtime);
    let feed_only = w.quote(&input, &Overlay::default(), 60).unwrap();
    assert_ne!(feed_only.plan.shipments[0].supplier, 1);

    // Not in the index until flushed; then it is, as an earlier real-time answer.
    assert_eq!(w.offers(0)[1].available, 0);
    assert!(realtime.has_pending());
    assert_eq!(realtime.flush(&w.index), 1);
    assert!(!realtime.has_pending());
    let o = &w.offers(0)[1];
    assert_eq!((o.available, o.cost, o.as_of_s), (6, 80_000, NOW_S - 2));
    assert_eq!(o.source, StockSource::CachedRealtime);
    let stock = w.check_stock(&lines, &Overlay::default());
    assert_eq!(stock[0].available, 5 + 6 + 3);

    // An older reading (a slow answer overtaken by a newer one) changes nothing.
    let mut older = Scripted::default();
    older.answers.insert(
        1,
        (AskOutcome::Answered, vec![known(0, 1, 99_000, NOW_S - 20)]),
    );
    let stale = RealtimeStock::new(Arc::new(older));
    let overlay = stale
        .gather(&w, &lines, &[], Duration::from_millis(100))
        .await;
    let view = w.index.view();
    assert_eq!(overlay.see(&view.offer(1, 0).unwrap()).available, 6);
    assert_eq!(stale.flush(&w.index), 0);
    assert_eq!(w.offers(0)[1].available, 6);
}

/// A basket that no real-time supplier carries asks nobody.
#[tokio::test]
async fn feed_only_baskets_ask_nobody() {
    let w = world();
    let gateway = Arc::new(Scripted::default());
    let realtime = RealtimeStock::new(gateway.clone());
    let overlay = realtime
        .gather(&w, &[demand(&w, "P3", 1)], &[], Duration::from_millis(100))
        .await;
    assert!(overlay.is_empty());
    assert_eq!(overlay.freshness(), Freshness::default());
    assert!(gateway.asked.lock().is_empty());
}
