//! The PostgreSQL ledger against a throwaway cluster: lifecycle, idempotency,
//! expiry on the database's clock, never overselling (also with two replicas
//! and with a buggy client), the outbox, feeds, the holds cache across
//! replicas, and a database restart mid-storm.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rust_decimal::Decimal;
use stockroute::adapters::postgres::{PgLedger, PgSettings, Supply, SupplySource};
use stockroute::config::LedgerConfig;
use stockroute::domain::address::Address;
use stockroute::domain::catalog::ProductId;
use stockroute::domain::ledger::{
    AllocateRequest, CommitRequest, Delivery, DeliveryOutcome, HeldLine, IdempotencyKey,
    KeyResolver, Ledger, LedgerError, LedgerHealth, ReleaseRequest, RequestFingerprint,
    ReserveLine, ReserveRequest, State, StockKey,
};
use stockroute::domain::suppliers::SupplierId;

use crate::pg::PgCluster;

/// A simulated now for tests that drive the ledger's clock.
const T0: i64 = 1_700_000_000_000;

/// Names "S<n>" and "P<n>" resolve to n.
pub struct Names;

impl KeyResolver for Names {
    fn product(&self, sku: &str) -> Option<ProductId> {
        sku.strip_prefix('P')?.parse().ok()
    }
    fn supplier(&self, supplier_id: &str) -> Option<SupplierId> {
        supplier_id.strip_prefix('S')?.parse().ok()
    }
}

/// Supply figures a test sets by hand (what a replica's feeds would say).
#[derive(Default)]
pub struct Supplies(Mutex<HashMap<(String, String), Supply>>);

impl Supplies {
    pub fn set(&self, supplier: u16, product: u32, qty: u32, as_of_ms: i64) {
        self.0.lock().insert(
            (format!("S{supplier}"), format!("P{product}")),
            Supply { qty, as_of_ms },
        );
    }
}

impl SupplySource for Supplies {
    fn supply(&self, supplier_id: &str, sku: &str) -> Option<Supply> {
        self.0
            .lock()
            .get(&(supplier_id.to_owned(), sku.to_owned()))
            .copied()
    }
}

pub fn config(url: &str) -> LedgerConfig {
    LedgerConfig {
        kind: stockroute::config::LedgerKind::Postgres,
        postgres_url: url.to_owned(),
        postgres_pool_size: 8,
        postgres_call_budget_ms: 20_000,
        postgres_poll_ms: 500,
        ..LedgerConfig::default()
    }
}

pub async fn ledger_with(config: &LedgerConfig, supplies: Arc<Supplies>) -> PgLedger {
    let settings = PgSettings::from_config(config).expect("settings");
    let ledger = PgLedger::start(settings, Arc::new(Names), supplies).expect("ledger starts");
    ledger
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("ledger ready");
    ledger
}

pub async fn ledger(url: &str) -> PgLedger {
    ledger_with(&config(url), Arc::new(Supplies::default())).await
}

pub fn key(supplier: u16, product: u32) -> StockKey {
    StockKey { supplier, product }
}

/// A line of `qty` units of P<product> from S<supplier>, checked against `supply`.
pub fn line(supplier: u16, product: u32, qty: u32, supply: u32) -> ReserveLine {
    ReserveLine {
        line: HeldLine {
            key: key(supplier, product),
            supplier_id: format!("S{supplier}"),
            sku: format!("P{product}"),
            supplier_sku: format!("S{supplier}-P{product}"),
            qty,
            unit_cost: Decimal::new(1234, 2),
        },
        supply,
        supply_as_of_ms: 1_000,
    }
}

pub fn reserve(k: &str, lines: Vec<ReserveLine>) -> ReserveRequest {
    let fingerprint = RequestFingerprint::of(
        &lines
            .iter()
            .map(|l| format!("{}/{}/{}", l.line.supplier_id, l.line.sku, l.line.qty).into_bytes())
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice)
            .collect::<Vec<_>>(),
    );
    ReserveRequest {
        key: IdempotencyKey::parse(k).unwrap(),
        fingerprint,
        lines,
        hold_ms: 60_000,
        plan: b"plan".to_vec(),
        ship_to: Address {
            country_code: "US".into(),
            postal_code: "10001".into(),
            residential: true,
        },
        owner: None,
    }
}

fn commit(id: &stockroute::domain::ledger::ReservationId, order_ref: &str) -> CommitRequest {
    CommitRequest {
        id: id.clone(),
        order_ref: order_ref.into(),
        owner: None,
    }
}

fn release(id: &stockroute::domain::ledger::ReservationId, cancel: bool) -> ReleaseRequest {
    ReleaseRequest {
        id: id.clone(),
        reason: "customer changed their mind".into(),
        cancel_allocation: cancel,
        owner: None,
    }
}

/// `held + allocated` of a stock row, straight from the database.
fn stored(pg: &PgCluster, supplier: u16, product: u32) -> (i64, i64) {
    let out = pg
        .psql(
            "postgres",
            &format!("SELECT held, allocated FROM stock WHERE supplier_id = 'S{supplier}' AND sku = 'P{product}'"),
        )
        .unwrap();
    let mut parts = out
        .split('|')
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<i64>().unwrap());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_abuse_gets_distinct_answers() {
    let pg = PgCluster::start();
    let l = ledger(&pg.url()).await;

    let r = l
        .reserve(reserve("k1", vec![line(1, 1, 2, 10), line(2, 5, 1, 3)]))
        .await
        .unwrap();
    assert_eq!(r.state, State::Held);
    assert_eq!(stored(&pg, 1, 1), (2, 0));
    assert_eq!(r.expires_at_ms - r.created_at_ms, 60_000);

    let c1 = l.commit(commit(&r.id, "order-1")).await.unwrap();
    assert_eq!(c1.state, State::Committed);
    assert_eq!(c1.orders.len(), 2);
    assert_eq!(c1.orders[0].supplier_id, "S1");
    assert_eq!(c1.orders[0].supplier, 1);
    assert_eq!(c1.orders[1].lines[0].sku, "P5");
    assert!(matches!(
        c1.orders[0].delivery,
        Delivery::Pending { attempts: 0, .. }
    ));
    assert_eq!(stored(&pg, 1, 1), (0, 2), "the hold became an allocation");

    let c2 = l.commit(commit(&r.id, "order-1")).await.unwrap();
    assert_eq!(c2, c1, "committing twice answers the same");
    let other = l.commit(commit(&r.id, "order-2")).await.unwrap_err();
    assert!(
        matches!(other, LedgerError::CommittedToOtherOrder { .. }),
        "{other:?}"
    );

    let err = l.release(release(&r.id, false)).await.unwrap_err();
    assert!(
        matches!(err, LedgerError::Committed { ref order_ref, .. } if order_ref == "order-1"),
        "{err:?}"
    );
    let released = l.release(release(&r.id, true)).await.unwrap();
    assert_eq!(released.state, State::Released);
    assert!(released
        .orders
        .iter()
        .all(|o| o.delivery == Delivery::Cancelled));
    assert_eq!(stored(&pg, 1, 1), (0, 0), "replenished");
    let again = l.release(release(&r.id, true)).await.unwrap();
    assert_eq!(
        again.state,
        State::Released,
        "releasing twice answers as it stands"
    );

    let err = l.commit(commit(&r.id, "order-1")).await.unwrap_err();
    assert!(matches!(err, LedgerError::Released { .. }), "{err:?}");

    let missing = stockroute::domain::ledger::ReservationId::new("R-NOPE");
    assert!(matches!(
        l.get(&missing, None).await,
        Err(LedgerError::NotFound { .. })
    ));

    // Ownership: another caller may neither read nor change it.
    let mut owned = reserve("k2", vec![line(1, 1, 1, 10)]);
    owned.owner = Some("shop-a".into());
    let r = l.reserve(owned).await.unwrap();
    assert!(matches!(
        l.get(&r.id, Some("shop-b")).await,
        Err(LedgerError::NotOwner { .. })
    ));
    let mut c = commit(&r.id, "o");
    c.owner = Some("shop-b".into());
    assert!(matches!(
        l.commit(c).await,
        Err(LedgerError::NotOwner { .. })
    ));
    assert_eq!(l.get(&r.id, None).await.unwrap().state, State::Held);
    l.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_follows_the_ledger_clock() {
    let pg = PgCluster::start();
    let l = ledger(&pg.url()).await;
    l.freeze_clock_ms(T0);
    let mut req = reserve("e1", vec![line(1, 1, 1, 1)]);
    req.hold_ms = 1_000;
    let r = l.reserve(req).await.unwrap();
    assert_eq!(l.holds().counted(key(1, 1)), 1);

    // Nothing else is free while it is held.
    let err = l
        .reserve(reserve("e2", vec![line(1, 1, 1, 1)]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::InsufficientStock(ref s) if s[0].available == 0),
        "{err:?}"
    );

    l.advance_clock_ms(1_001);
    let read = l.get(&r.id, None).await.unwrap();
    assert_eq!(
        read.state,
        State::Expired,
        "past its time it reads expired, swept or not"
    );
    let err = l.commit(commit(&r.id, "late")).await.unwrap_err();
    assert!(
        matches!(err, LedgerError::Expired { expired_at_ms, .. } if expired_at_ms == r.expires_at_ms),
        "{err:?}"
    );
    // A reserve sweeps what is due before it says "insufficient".
    let r2 = l
        .reserve(reserve("e3", vec![line(1, 1, 1, 1)]))
        .await
        .unwrap();
    assert_eq!(r2.state, State::Held);
    assert_eq!(l.get(&r.id, None).await.unwrap().state, State::Expired);
    assert_eq!(stored(&pg, 1, 1), (1, 0));

    // The sweeper, and release of an unswept expired hold.
    let mut req = reserve("e4", vec![line(2, 2, 3, 10)]);
    req.hold_ms = 500;
    let a = l.reserve(req.clone()).await.unwrap();
    req.key = IdempotencyKey::parse("e5").unwrap();
    let b = l.reserve(req).await.unwrap();
    l.advance_clock_ms(500);
    let released = l.release(release(&a.id, false)).await.unwrap();
    assert_eq!(released.state, State::Expired);
    assert_eq!(
        l.expire_due().await.unwrap(),
        1,
        "b was due; r2 holds for a minute"
    );
    assert_eq!(l.expire_due().await.unwrap(), 0);
    assert_eq!(l.get(&b.id, None).await.unwrap().state, State::Expired);
    assert_eq!(stored(&pg, 2, 2), (0, 0));
    assert_eq!(l.holds().counted(key(2, 2)), 0);
    l.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_sent_fifty_times_at_once_executes_once() {
    let pg = PgCluster::start();
    let l = Arc::new(ledger(&pg.url()).await);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let l = Arc::clone(&l);
            tokio::spawn(
                async move { l.reserve(reserve("same", vec![line(1, 1, 2, 1_000)])).await },
            )
        })
        .collect();
    let mut ids = Vec::new();
    for c in calls {
        ids.push(c.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller sees the one reservation");
    assert_eq!(stored(&pg, 1, 1), (2, 0), "held once");

    let mut different = reserve("same", vec![line(1, 1, 3, 1_000)]);
    different.fingerprint = RequestFingerprint(7);
    let err = l.reserve(different).await.unwrap_err();
    assert!(
        matches!(err, LedgerError::KeyReused { ref existing, .. } if *existing == ids[0]),
        "{err:?}"
    );

    // Keys are per owner.
    let mut theirs = reserve("same", vec![line(1, 1, 2, 1_000)]);
    theirs.owner = Some("other".into());
    assert_ne!(l.reserve(theirs).await.unwrap().id, ids[0]);

    // A failed call binds nothing: the retry after stock arrives succeeds.
    let short = reserve("retry-me", vec![line(3, 3, 5, 4)]);
    assert!(matches!(
        l.reserve(short).await,
        Err(LedgerError::InsufficientStock(_))
    ));
    let mut enough = reserve("retry-me", vec![line(3, 3, 5, 5)]);
    enough.fingerprint = reserve("retry-me", vec![line(3, 3, 5, 4)]).fingerprint;
    assert_eq!(l.reserve(enough).await.unwrap().state, State::Held);

    // Reserve and allocate share the key space.
    let alloc = AllocateRequest {
        reserve: reserve("same", vec![line(1, 1, 2, 1_000)]),
        order_ref: "o".into(),
    };
    let mut alloc = alloc;
    alloc.reserve.fingerprint = RequestFingerprint(99);
    assert!(matches!(
        l.allocate(alloc).await,
        Err(LedgerError::KeyReused { .. })
    ));
    l.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sku_on_two_lines_never_holds_more_than_there_is() {
    let pg = PgCluster::start();
    let l = ledger(&pg.url()).await;
    let err = l
        .reserve(reserve("two", vec![line(1, 1, 3, 5), line(1, 1, 3, 5)]))
        .await
        .unwrap_err();
    let LedgerError::InsufficientStock(s) = err else {
        panic!("{err:?}")
    };
    assert_eq!((s.len(), s[0].requested, s[0].available), (1, 6, 5));
    assert_eq!(stored(&pg, 1, 1), (0, 0), "nothing held");
    // The smallest supply named for a key wins.
    let err = l
        .reserve(reserve("two-b", vec![line(1, 1, 2, 5), line(1, 1, 1, 2)]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::InsufficientStock(ref s) if s[0].available == 2),
        "{err:?}"
    );
    let r = l
        .reserve(reserve("two-c", vec![line(1, 1, 2, 5), line(1, 1, 3, 5)]))
        .await
        .unwrap();
    assert_eq!(r.lines.len(), 2, "lines stay as planned");
    assert_eq!(stored(&pg, 1, 1), (5, 0));
    l.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_an_oversold_row_whatever_the_client() {
    let pg = PgCluster::start();
    let l = ledger(&pg.url()).await;
    l.reserve(reserve("c1", vec![line(1, 1, 4, 5)]))
        .await
        .unwrap();
    let err = pg
        .psql(
            "postgres",
            "UPDATE stock SET held = held + 2 WHERE sku = 'P1'",
        )
        .unwrap_err();
    assert!(err.contains("stock_never_oversold"), "{err}");
    let err = pg
        .psql(
            "postgres",
            "UPDATE stock SET held = held - 9 WHERE sku = 'P1'",
        )
        .unwrap_err();
    assert!(err.contains("stock_held_not_negative"), "{err}");
    assert!(pg
        .psql(
            "postgres",
            "UPDATE stock SET held = held + 1 WHERE sku = 'P1'"
        )
        .is_ok());
    assert!(pg
        .psql("postgres", "UPDATE reservation SET state = 'lost'")
        .unwrap_err()
        .contains("reservation_state_known"));
    l.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let pg = PgCluster::start();
    let url = pg.url();
    let ledgers = futures::future::join_all((0..4).map(|_| {
        let url = url.clone();
        async move { ledger(&url).await }
    }))
    .await;
    let versions = pg
        .psql(
            "postgres",
            "SELECT count(*), max(version) FROM schema_migrations",
        )
        .unwrap();
    assert_eq!(versions, "1|1");
    // Starting again changes nothing.
    let again = ledger(&url).await;
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM schema_migrations")
            .unwrap(),
        "1"
    );
    again.flush().await.unwrap();
    for l in ledgers {
        l.flush().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_a_storm_never_oversell() {
    let pg = PgCluster::start();
    let a = Arc::new(ledger(&pg.url()).await);
    let b = Arc::new(ledger(&pg.url()).await);
    // 2,000 concurrent one-unit reserves for 100 units of a hot SKU, half
    // through each replica, some also taking a unit of a second SKU (so
    // baskets lock two rows, in both orders of their lines).
    let calls: Vec<_> = (0..2_000u32)
        .map(|i| {
            let l = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            tokio::spawn(async move {
                let mut lines = vec![line(1, 1, 1, 100)];
                if i % 3 == 0 {
                    lines.push(line(2, 2, 1, 1_000_000));
                }
                if i % 6 == 0 {
                    lines.reverse();
                }
                l.reserve(reserve(&format!("storm-{i}"), lines)).await
            })
        })
        .collect();
    let mut held = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => held += 1,
            Err(LedgerError::InsufficientStock(_)) => {}
            Err(e) => panic!("unexpected answer: {e:?}"),
        }
    }
    assert_eq!(held, 100, "exactly the supply is held");
    assert_eq!(stored(&pg, 1, 1), (100, 0));
    let lines = pg
        .psql(
            "postgres",
            "SELECT sum(qty) FROM reservation_line WHERE sku = 'P1' AND counts = 'held'",
        )
        .unwrap();
    assert_eq!(lines, "100", "the counter matches the lines");
    a.flush().await.unwrap();
    b.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_replicas_learn_holds_by_notify_and_by_polling() {
    let pg = PgCluster::start();
    let a = ledger(&pg.url()).await;
    let b = ledger(&pg.url()).await;
    let mut quiet = config(&pg.url());
    quiet.postgres_notify = false;
    quiet.postgres_poll_ms = 200;
    let c = ledger_with(&quiet, Arc::new(Supplies::default())).await;

    let r = a
        .reserve(reserve("n1", vec![line(4, 4, 3, 10)]))
        .await
        .unwrap();
    assert_eq!(a.holds().counted(key(4, 4)), 3, "its own at once");
    for (name, l) in [("notify", &b), ("polling", &c)] {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while l.holds().counted(key(4, 4)) != 3 {
            assert!(
                tokio::time::Instant::now() < until,
                "{name}: never saw the hold"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    a.release(release(&r.id, false)).await.unwrap();
    for (name, l) in [("notify", &b), ("polling", &c)] {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while l.holds().counted(key(4, 4)) != 0 {
            assert!(
                tokio::time::Instant::now() < until,
                "{name}: never saw the release"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for l in [a, b, c] {
        l.flush().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_orders_go_out_once_and_record_their_fate() {
    let pg = PgCluster::start();
    let a = ledger(&pg.url()).await;
    let b = ledger(&pg.url()).await;
    a.freeze_clock_ms(T0);
    b.freeze_clock_ms(T0);
    let r = a
        .allocate(AllocateRequest {
            reserve: reserve(
                "po",
                vec![line(2, 1, 1, 5), line(1, 2, 2, 5), line(2, 3, 1, 5)],
            ),
            order_ref: "order-9".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.state, State::Committed);
    assert_eq!(
        stored(&pg, 1, 2),
        (0, 2),
        "allocated without a visible hold"
    );
    let po: Vec<&str> = r.orders.iter().map(|o| o.po_number.as_str()).collect();
    assert_eq!(po.len(), 2);
    assert_eq!(r.orders[1].lines.len(), 2, "S2's two lines on one order");

    let due = a.due_orders(10, 60_000).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].order_ref, "order-9");
    assert!(
        b.due_orders(10, 60_000).await.unwrap().is_empty(),
        "leased to a"
    );

    a.record_delivery(po[0], DeliveryOutcome::Acknowledged)
        .await
        .unwrap();
    let retry_at = r.created_at_ms + 5_000;
    a.record_delivery(
        po[1],
        DeliveryOutcome::Failed {
            error: "503 from supplier".into(),
            retry_at_ms: retry_at,
        },
    )
    .await
    .unwrap();
    let now = a.get(&r.id, None).await.unwrap();
    assert!(matches!(
        now.orders[0].delivery,
        Delivery::Acknowledged { attempts: 1, .. }
    ));
    assert_eq!(
        now.orders[1].delivery,
        Delivery::Pending {
            attempts: 1,
            last_error: Some("503 from supplier".into()),
            next_attempt_at_ms: retry_at
        }
    );
    assert!(
        a.due_orders(10, 60_000).await.unwrap().is_empty(),
        "not before its time"
    );
    a.advance_clock_ms(5_000);
    b.advance_clock_ms(5_000);
    let due = b.due_orders(10, 60_000).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].order.po_number, po[1]);

    // Releasing the allocation cancels what was not acknowledged.
    let released = a.release(release(&r.id, true)).await.unwrap();
    assert!(matches!(
        released.orders[0].delivery,
        Delivery::Acknowledged { .. }
    ));
    assert_eq!(released.orders[1].delivery, Delivery::Cancelled);
    b.record_delivery(po[1], DeliveryOutcome::Acknowledged)
        .await
        .unwrap();
    assert_eq!(
        a.get(&r.id, None).await.unwrap().orders[1].delivery,
        Delivery::Cancelled,
        "late news changes nothing"
    );
    a.flush().await.unwrap();
    b.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_full_feed_retires_allocations_and_stale_replicas_cannot_raise_supply() {
    let pg = PgCluster::start();
    let supplies = Arc::new(Supplies::default());
    let a = ledger_with(&config(&pg.url()), Arc::clone(&supplies)).await;
    let r = a
        .allocate(AllocateRequest {
            reserve: reserve("f1", vec![line(1, 1, 3, 10)]),
            order_ref: "o".into(),
        })
        .await
        .unwrap();
    assert_eq!(a.holds().counted(key(1, 1)), 3);
    let committed = r.committed_at_ms.unwrap();

    // A feed from before the commit reflects nothing of it.
    supplies.set(1, 1, 10, committed - 1);
    a.supply_refreshed(1, "S1", committed - 1).await.unwrap();
    assert_eq!(stored(&pg, 1, 1), (0, 3));
    // One after it does: the supplier now has 7, and the allocation is in it.
    supplies.set(1, 1, 7, committed + 1);
    a.supply_refreshed(1, "S1", committed + 1).await.unwrap();
    assert_eq!(stored(&pg, 1, 1), (0, 0));
    assert_eq!(a.holds().counted(key(1, 1)), 0);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT supply, supply_as_of_ms FROM stock WHERE sku = 'P1'"
        )
        .unwrap(),
        format!("7|{}", committed + 1)
    );
    // A replica still on the old feed (10 units as of 1 s) gets only 7.
    let err = a
        .reserve(reserve("f2", vec![line(1, 1, 8, 10)]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::InsufficientStock(ref s) if s[0].available == 7),
        "{err:?}"
    );
    a.reserve(reserve("f3", vec![line(1, 1, 7, 10)]))
        .await
        .unwrap();
    a.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_storm_never_gives_a_false_ok() {
    let mut pg = PgCluster::start();
    let mut cfg = config(&pg.url());
    cfg.postgres_call_budget_ms = 1_500;
    cfg.postgres_connect_timeout_ms = 500;
    cfg.postgres_poll_ms = 200;
    let l = Arc::new(ledger_with(&cfg, Arc::new(Supplies::default())).await);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let request = |k: &str, i: u32| reserve(k, vec![line(1, i % 50, 1, 1_000_000)]);
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (l, stop) = (Arc::clone(&l), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut ok, mut unavailable) = (Vec::new(), Vec::new());
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let k = format!("w{w}-{i}");
                    match l.reserve(request(&k, i)).await {
                        Ok(r) => ok.push(r.id),
                        Err(LedgerError::Unavailable(_)) => unavailable.push((k, i)),
                        Err(e) => panic!("unexpected answer: {e:?}"),
                    }
                }
                (ok, unavailable)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    tokio::task::block_in_place(|| pg.crash());
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while l.health() == LedgerHealth::Ready {
        assert!(
            tokio::time::Instant::now() < until,
            "readiness never dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    tokio::task::block_in_place(|| pg.start_server());
    l.wait_ready(Duration::from_secs(20))
        .await
        .expect("ready again by itself");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut unavailable) = (Vec::new(), Vec::new());
    for w in workers {
        let (o, u) = w.await.unwrap();
        ok.extend(o);
        unavailable.extend(u);
    }
    assert!(!unavailable.is_empty(), "the outage was seen");
    assert!(
        ok.len() > 100,
        "work went on before and after: {}",
        ok.len()
    );
    // Every acknowledged reserve is there, held.
    for id in &ok {
        assert_eq!(l.get(id, None).await.unwrap().state, State::Held);
    }
    // A call that answered UNAVAILABLE may or may not have happened (its
    // COMMIT may have been on the wire); retried with its key, each
    // converges on exactly one reservation.
    for (k, i) in &unavailable {
        let r = l.reserve(request(k, *i)).await.expect("retry succeeds");
        assert_eq!(r.state, State::Held);
    }
    let held: i64 = pg
        .psql("postgres", "SELECT coalesce(sum(held), 0) FROM stock")
        .unwrap()
        .parse()
        .unwrap();
    let lines: i64 = pg
        .psql(
            "postgres",
            "SELECT count(*) FROM reservation_line WHERE counts = 'held'",
        )
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(held, lines, "counters and lines agree after recovery");
    assert_eq!(
        held,
        (ok.len() + unavailable.len()) as i64,
        "one reservation per key: nothing acknowledged lost, nothing doubled"
    );
    l.flush().await.unwrap();
}

/// (HTTP status of /readyz, its `ledger` field, gRPC health of Fulfillment).
async fn readiness(app: &crate::helpers::TestApp) -> (u16, String, i32) {
    let readyz = reqwest::get(app.http("/readyz")).await.unwrap();
    let code = readyz.status().as_u16();
    let detail: serde_json::Value = readyz.json().await.unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "stockroute.v1.Fulfillment".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    (
        code,
        detail["ledger"].as_str().unwrap_or_default().to_owned(),
        health,
    )
}

async fn until_readiness(
    app: &crate::helpers::TestApp,
    code: u16,
    what: &str,
) -> (u16, String, i32) {
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = readiness(app).await;
        if seen.0 == code {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{what}: still {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_drops_while_the_database_is_down_and_returns_by_itself() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut pg = PgCluster::start();
    let url = pg.url();
    let app = crate::helpers::spawn_app_with(|c| {
        c.ledger = LedgerConfig {
            postgres_call_budget_ms: 1_000,
            postgres_connect_timeout_ms: 500,
            postgres_poll_ms: 200,
            ..config(&url)
        };
    })
    .await;
    let ledger = app.app.ledger.clone().expect("a ledger");
    let (code, ledger_state, health) = readiness(&app).await;
    assert_eq!((code, ledger_state.as_str()), (200, "ready"));
    assert_eq!(health, ServingStatus::Serving as i32);

    tokio::task::block_in_place(|| pg.crash());
    let (_, ledger_state, health) = until_readiness(&app, 503, "readiness never dropped").await;
    assert!(ledger_state.starts_with("down: "), "{ledger_state}");
    assert_eq!(health, ServingStatus::NotServing as i32);
    // Calls answer UNAVAILABLE meanwhile, never a false OK.
    let err = ledger
        .reserve(reserve("down-1", vec![line(1, 1, 1, 5)]))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Unavailable(_)), "{err:?}");

    tokio::task::block_in_place(|| pg.start_server());
    let (_, ledger_state, health) = until_readiness(&app, 200, "readiness never came back").await;
    assert_eq!(ledger_state, "ready");
    assert_eq!(health, ServingStatus::Serving as i32);
    ledger
        .reserve(reserve("up-1", vec![line(1, 1, 1, 5)]))
        .await
        .expect("serves again");
    app.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cancelled_at_random_moments_leave_nothing_half_done() {
    use rand::{Rng, SeedableRng};
    let pg = PgCluster::start();
    let l = Arc::new(ledger(&pg.url()).await);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    // Callers that go away after 0 to 6 ms: tonic drops the handler's
    // future the same way when a client disconnects.
    let requests: Vec<ReserveRequest> = (0..240u32)
        .map(|i| {
            let mut lines = vec![line(1, rng.random_range(0..4), rng.random_range(1..3), 20)];
            if rng.random_bool(0.5) {
                lines.push(line(2, rng.random_range(0..4), 1, 20));
            }
            reserve(&format!("cancel-{i}"), lines)
        })
        .collect();
    for batch in requests.chunks(24) {
        let calls = batch.iter().cloned().map(|req| {
            let l = Arc::clone(&l);
            let after = Duration::from_micros(rng.random_range(0..6_000));
            async move { tokio::time::timeout(after, l.reserve(req)).await }
        });
        futures::future::join_all(calls).await;
    }
    // Retried with their keys, every request converges on one answer.
    let mut held = HashMap::new();
    for req in &requests {
        match l.reserve(req.clone()).await {
            Ok(r) => {
                let again = l.reserve(req.clone()).await.unwrap();
                assert_eq!(again.id, r.id, "one reservation per key");
                held.insert(req.key.as_str().to_owned(), r.id);
            }
            Err(LedgerError::InsufficientStock(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    // Commits and releases cut short too, then retried.
    let ids: Vec<_> = held.values().cloned().collect();
    let calls = ids.iter().enumerate().map(|(i, id)| {
        let l = Arc::clone(&l);
        let after = Duration::from_micros(rng.random_range(0..4_000));
        let id = id.clone();
        async move {
            let call = async {
                if i % 2 == 0 {
                    l.commit(commit(&id, &format!("order-{i}"))).await.map(drop)
                } else {
                    l.release(release(&id, false)).await.map(drop)
                }
            };
            let _ = tokio::time::timeout(after, call).await;
        }
    });
    futures::future::join_all(calls).await;
    for (i, id) in ids.iter().enumerate() {
        let state = if i % 2 == 0 {
            l.commit(commit(id, &format!("order-{i}")))
                .await
                .unwrap()
                .state
        } else {
            l.release(release(id, false)).await.unwrap().state
        };
        let want = if i % 2 == 0 {
            State::Committed
        } else {
            State::Released
        };
        assert_eq!(state, want);
    }
    // Every counter is the sum of the lines that count, and within supply.
    let mismatched = pg
        .psql(
            "postgres",
            "SELECT count(*) FROM stock s LEFT JOIN (
                SELECT supplier_id, sku,
                    sum(qty) FILTER (WHERE counts = 'held') AS held,
                    sum(qty) FILTER (WHERE counts = 'allocated') AS allocated
                FROM reservation_line GROUP BY supplier_id, sku) l
             USING (supplier_id, sku)
             WHERE s.held <> coalesce(l.held, 0) OR s.allocated <> coalesce(l.allocated, 0)
                OR s.held + s.allocated > s.supply",
        )
        .unwrap();
    assert_eq!(mismatched, "0");
    let orders = pg
        .psql(
            "postgres",
            "SELECT count(DISTINCT reservation_id) FROM purchase_order",
        )
        .unwrap();
    assert_eq!(
        orders,
        ids.iter().step_by(2).count().to_string(),
        "orders once per commit"
    );
    l.flush().await.unwrap();
}
