//! Reserve, Commit, Release, GetReservation and Allocate over gRPC against
//! the embedded ledger: lifecycle, idempotency, races, availability,
//! cancellation and purchase orders.

use std::collections::HashSet;
use std::time::Duration;

use prost::Message;
use stockroute::adapters::http::suppliers::fake::{FakeBehaviour, FakeSupplierServer, Fault};
use stockroute::pb;
use tonic::Code;

use crate::helpers::{
    connect, line, push_feed, spawn_app, spawn_app_with, test_config, us, write_small_world,
    TestApp,
};

/// The supplier whose stock the tests control (one without a real-time
/// gateway, so that its feed is all there is to know).
pub(crate) const SUPPLIER: &str = "SUP002";

/// Every supplier of the small world but `SUPPLIER`.
pub(crate) fn others() -> Vec<String> {
    (1..=12)
        .map(|i| format!("SUP{i:03}"))
        .filter(|s| s != SUPPLIER)
        .collect()
}

/// Makes `SUPPLIER` the only source of `sku` a basket may use, with `qty` units.
pub(crate) async fn stock(app: &TestApp, sku: &str, qty: u32) {
    let csv = format!("supplier_sku,sku,qty,unit_cost\nX-{sku},{sku},{qty},4.25\n");
    let r = push_feed(app, SUPPLIER, true, &csv, 1 << 16)
        .await
        .expect("feed");
    assert_eq!(r.rows_applied, 1);
}

pub(crate) fn basket(sku: &str, qty: u32) -> pb::QuoteRequest {
    pb::QuoteRequest {
        lines: vec![line(sku, qty)],
        ship_to: us("10001"),
        options: Some(pb::QuoteOptions {
            exclude_suppliers: others(),
            ..pb::QuoteOptions::default()
        }),
    }
}

pub(crate) fn reserve(key: &str, basket: pb::QuoteRequest) -> pb::ReserveRequest {
    pb::ReserveRequest {
        idempotency_key: key.into(),
        source: Some(pb::reserve_request::Source::Basket(basket)),
        hold_seconds: 0,
    }
}

fn release(id: &str, cancel_allocation: bool) -> pb::ReleaseRequest {
    pb::ReleaseRequest {
        reservation_id: id.into(),
        reason: "customer changed their mind".into(),
        cancel_allocation,
    }
}

fn commit(id: &str, order_ref: &str) -> pb::CommitRequest {
    pb::CommitRequest {
        reservation_id: id.into(),
        order_ref: order_ref.into(),
    }
}

/// Units a basket of `sku` can still get from `SUPPLIER`.
pub(crate) async fn available(app: &TestApp, sku: &str) -> u32 {
    let r = app
        .fulfillment()
        .check_stock(pb::CheckStockRequest {
            lines: vec![line(sku, 1)],
            ship_to: us("10001"),
            realtime_budget_ms: 0,
        })
        .await
        .expect("check stock")
        .into_inner();
    r.lines[0]
        .offers
        .iter()
        .find(|o| o.supplier_id == SUPPLIER)
        .map_or(0, |o| o.available)
}

pub(crate) fn held_units(r: &pb::Reservation) -> u32 {
    r.plan
        .iter()
        .flat_map(|p| &p.shipments)
        .flat_map(|s| &s.lines)
        .map(|l| l.quantity)
        .sum()
}

/// A reservation holds its units (CheckStock and GetOffers see fewer), a
/// commit turns it into purchase orders that keep the units counted, and a
/// newer full feed from the supplier retires them.
#[tokio::test]
async fn reserve_commit_and_availability() {
    let app = spawn_app().await;
    let sku = "SR-000050";
    stock(&app, sku, 10).await;
    let mut f = app.fulfillment();
    let r = f
        .reserve(reserve("flow-1", basket(sku, 3)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state, pb::reservation::State::Held as i32);
    assert!(r.reservation_id.starts_with("R-"));
    assert_eq!(held_units(&r), 3);
    let plan = r.plan.as_ref().unwrap();
    assert_eq!(plan.shipments[0].supplier_id, SUPPLIER);
    assert!(r.expires_at.unwrap().seconds > r.created_at.unwrap().seconds + 500);
    assert_eq!(available(&app, sku).await, 7);
    let offers = app
        .catalog()
        .get_offers(pb::GetOffersRequest { sku: sku.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        offers
            .offers
            .iter()
            .find(|o| o.supplier_id == SUPPLIER)
            .unwrap()
            .available,
        7
    );

    let c = f
        .commit(commit(&r.reservation_id, "ORDER-1"))
        .await
        .unwrap()
        .into_inner();
    let reservation = c.reservation.unwrap();
    assert_eq!(reservation.state, pb::reservation::State::Committed as i32);
    assert_eq!(reservation.order_ref, "ORDER-1");
    assert_eq!(c.purchase_orders.len(), 1);
    let po = &c.purchase_orders[0];
    assert_eq!(po.supplier_id, SUPPLIER);
    assert_eq!(po.lines[0].supplier_sku, format!("X-{sku}"));
    assert_eq!(po.lines[0].quantity, 3);
    assert_eq!(po.goods_total.as_ref().unwrap().amount, "12.75");
    assert!(po.po_number.starts_with("PO-"));
    // Committing again answers the same.
    let again = f
        .commit(commit(&r.reservation_id, "ORDER-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.purchase_orders[0].po_number, po.po_number);
    let got = f
        .get_reservation(pb::GetReservationRequest {
            reservation_id: r.reservation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.purchase_orders.len(), 1);
    assert_eq!(
        available(&app, sku).await,
        7,
        "the allocation stays counted"
    );

    // The supplier's next full feed reflects the order: no longer counted.
    // Its data time is when it arrives, in milliseconds, and only an
    // allocation committed before that is reflected: let the clock move on.
    tokio::time::sleep(Duration::from_millis(2)).await;
    stock(&app, sku, 7).await;
    // The ledger retires the allocation just after the feed is applied.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen = available(&app, sku).await;
    while seen != 7 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        seen = available(&app, sku).await;
    }
    assert_eq!(seen, 7, "the allocation is retired by the newer full feed");
}

/// Lifecycle abuse gets distinct, clear answers.
#[tokio::test]
async fn lifecycle_abuse_is_refused_clearly() {
    let app = spawn_app().await;
    let sku = "SR-000051";
    stock(&app, sku, 10).await;
    let mut f = app.fulfillment();
    let a = f
        .reserve(reserve("abuse-a", basket(sku, 1)))
        .await
        .unwrap()
        .into_inner();
    f.commit(commit(&a.reservation_id, "O-1")).await.unwrap();
    let e = f
        .commit(commit(&a.reservation_id, "O-2"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("already committed to order O-1"),
        "{e:?}"
    );
    let e = f
        .release(release(&a.reservation_id, false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("cancel_allocation"), "{e:?}");

    let b = f
        .reserve(reserve("abuse-b", basket(sku, 1)))
        .await
        .unwrap()
        .into_inner();
    let released = f
        .release(release(&b.reservation_id, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released.state, pb::reservation::State::Released as i32);
    assert_eq!(released.release_reason, "customer changed their mind");
    let e = f
        .commit(commit(&b.reservation_id, "O-3"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("was released"), "{e:?}");

    let e = f
        .get_reservation(pb::GetReservationRequest {
            reservation_id: "R-NOSUCH".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = f.commit(commit(&b.reservation_id, "")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("order_ref"), "{e:?}");
    let e = f.reserve(reserve("", basket(sku, 1))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("idempotency_key"), "{e:?}");
    let mut long_hold = reserve("abuse-c", basket(sku, 1));
    long_hold.hold_seconds = 1_000_000;
    let e = f.reserve(long_hold).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("hold_seconds"), "{e:?}");
    // Asking for more than there is names the line.
    let e = f
        .reserve(reserve("abuse-d", basket(sku, 50)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains(sku), "{e:?}");

    // Cancelling the allocation replenishes it.
    let before = available(&app, sku).await;
    let cancelled = f
        .release(release(&a.reservation_id, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, pb::reservation::State::Released as i32);
    assert_eq!(available(&app, sku).await, before + 1);
}

/// Fifty identical calls at once execute once; all see the one reservation;
/// the same key with another request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_fifty_times_at_once_reserves_once() {
    let app = spawn_app_with(|c| c.server.concurrency_max = 1_000).await;
    let sku = "SR-000052";
    stock(&app, sku, 100).await;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let mut f = app.fulfillment();
            tokio::spawn(async move { f.reserve(reserve("same-key", basket(sku, 2))).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for c in calls {
        ids.insert(
            c.await
                .unwrap()
                .expect("reserve")
                .into_inner()
                .reservation_id,
        );
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(available(&app, sku).await, 98, "held once");
    let e = app
        .fulfillment()
        .reserve(reserve("same-key", basket(sku, 3)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("already used for a different request"),
        "{e:?}"
    );
    // Allocate shares the key space.
    let e = app
        .fulfillment()
        .allocate(pb::AllocateRequest {
            idempotency_key: "same-key".into(),
            order_ref: "O".into(),
            basket: Some(basket(sku, 2)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

/// Many concurrent reserves for 100 units: exactly 100 are held, and every
/// refusal says how many were available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversell_storm_holds_exactly_the_stock() {
    let app = spawn_app_with(|c| c.server.concurrency_max = 1_000).await;
    let sku = "SR-000053";
    stock(&app, sku, 100).await;
    let calls: Vec<_> = (0..400)
        .map(|i| {
            let mut f = app.fulfillment();
            tokio::spawn(async move {
                f.reserve(reserve(&format!("storm-{i}"), basket(sku, 1)))
                    .await
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for c in calls {
        match c.await.unwrap() {
            Ok(r) => {
                assert_eq!(held_units(&r.into_inner()), 1);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (100, 300));
    assert_eq!(available(&app, sku).await, 0);
}

/// A quote's plan can be reserved exactly; when its stock or cost moved,
/// Reserve says what changed and holds nothing.
#[tokio::test]
async fn reserving_a_quote_holds_that_plan_or_says_what_changed() {
    let app = spawn_app().await;
    let sku = "SR-000054";
    stock(&app, sku, 5).await;
    let mut f = app.fulfillment();
    let q = f
        .quote(basket(sku, 4))
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    let from_quote = |key: &str, quote_id: &str| pb::ReserveRequest {
        idempotency_key: key.into(),
        source: Some(pb::reserve_request::Source::QuoteId(quote_id.into())),
        hold_seconds: 30,
    };
    let r = f
        .reserve(from_quote("q-1", &q.quote_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.plan.as_ref().unwrap().encode_to_vec(),
        q.encode_to_vec(),
        "exactly that plan"
    );
    assert_eq!(available(&app, sku).await, 1);

    // The same quote again: only one unit is left.
    let e = f.reserve(from_quote("q-2", &q.quote_id)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("can no longer be held as planned"),
        "{e:?}"
    );
    assert!(e.message().contains("4 requested, 1 available"), "{e:?}");

    // The cost moved since the quote.
    f.release(release(&r.reservation_id, false)).await.unwrap();
    let q2 = f
        .quote(basket(sku, 1))
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    let csv = format!("supplier_sku,sku,qty,unit_cost\nX-{sku},{sku},5,4.99\n");
    push_feed(&app, SUPPLIER, true, &csv, 1 << 16)
        .await
        .unwrap();
    let e = f
        .reserve(from_quote("q-3", &q2.quote_id))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("changed from 4.25 to 4.99"), "{e:?}");

    let e = f.reserve(from_quote("q-4", "Q-nope")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("unknown"), "{e:?}");
    assert_eq!(
        available(&app, sku).await,
        5,
        "nothing held by the failed calls"
    );
}

/// Allocate reserves and commits in one call, idempotently.
#[tokio::test]
async fn allocate_is_reserve_and_commit_in_one() {
    let app = spawn_app().await;
    let sku = "SR-000055";
    stock(&app, sku, 10).await;
    let req = pb::AllocateRequest {
        idempotency_key: "alloc-1".into(),
        order_ref: "ORDER-9".into(),
        basket: Some(basket(sku, 4)),
    };
    let mut f = app.fulfillment();
    let a = f.allocate(req.clone()).await.unwrap().into_inner();
    assert_eq!(
        a.reservation.as_ref().unwrap().state,
        pb::reservation::State::Committed as i32
    );
    assert_eq!(a.purchase_orders.len(), 1);
    // The stock is gone now, and yet the retry answers the first call.
    stock(&app, sku, 0).await;
    let b = f.allocate(req).await.unwrap().into_inner();
    assert_eq!(
        b.purchase_orders[0].po_number,
        a.purchase_orders[0].po_number
    );
}

/// Calls cut off at random moments (the client gives up) leave nothing half
/// done: retrying every call with its key converges, and the units held are
/// exactly those of the reservations that exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_leave_no_partial_state_and_retries_converge() {
    let app = spawn_app_with(|c| c.server.concurrency_max = 1_000).await;
    let sku = "SR-000056";
    stock(&app, sku, 60).await;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let calls: Vec<_> = (0..80)
        .map(|i| {
            let budget = Duration::from_micros(next() % 20_000);
            let addr = app.app.grpc_addr;
            tokio::spawn(async move {
                // Each caller on its own connection, as separate clients are.
                let mut f = pb::fulfillment_client::FulfillmentClient::new(connect(addr).await);
                let req = reserve(&format!("cancel-{i}"), basket(sku, 1));
                let _ = tokio::time::timeout(budget, f.reserve(req.clone())).await;
                // The retry, after whatever the first attempt did.
                f.reserve(req).await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for c in calls {
        match c.await.unwrap() {
            Ok(r) => assert!(
                ids.insert(r.into_inner().reservation_id),
                "one reservation per key"
            ),
            Err(e) => assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}"),
        }
    }
    assert_eq!(ids.len(), 60, "every unit went to exactly one key");
    assert_eq!(available(&app, sku).await, 0);
    // Releasing them all (some cut off first) gives every unit back.
    for id in &ids {
        let mut f = app.fulfillment();
        let _ = tokio::time::timeout(
            Duration::from_micros(next() % 3_000),
            f.release(release(id, false)),
        )
        .await;
        f.release(release(id, false)).await.unwrap();
    }
    assert_eq!(available(&app, sku).await, 60);
}

/// Purchase orders go to the supplier's order endpoint, are retried while it
/// fails, and show as acknowledged once it accepts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_orders_are_retried_until_acknowledged() {
    let fake = FakeSupplierServer::start(3).await.expect("fake suppliers");
    let dir = tempfile::tempdir().unwrap();
    write_small_world(dir.path());
    let registry = dir.path().join("suppliers.toml");
    let text = std::fs::read_to_string(&registry).unwrap();
    let mut rewritten = String::new();
    for l in text.lines() {
        match l
            .strip_prefix("orders = { base_url = \"fake:")
            .and_then(|r| r.strip_suffix("\" }"))
        {
            Some(id) => {
                let url = fake.add_supplier(id, Vec::new());
                rewritten.push_str(&format!("orders = {{ base_url = \"{url}\" }}\n"));
            }
            None => {
                rewritten.push_str(l);
                rewritten.push('\n');
            }
        }
    }
    std::fs::write(&registry, rewritten).unwrap();
    fake.set_behaviour(SUPPLIER, FakeBehaviour::with_fault(Fault::Status(503)));
    let mut config = test_config(dir.path());
    config.feeds.schedule = false;
    config.purchase_orders.retry_initial_ms = 20;
    config.purchase_orders.retry_max_ms = 100;
    config.purchase_orders.poll_interval_ms = 10;
    let app = stockroute::app::start(config).await.expect("starts");
    app.wait_ready().await;
    let app = TestApp {
        channel: connect(app.grpc_addr).await,
        app,
        _dir: dir,
    };
    let sku = "SR-000057";
    stock(&app, sku, 10).await;
    let mut f = app.fulfillment();
    let a = f
        .allocate(pb::AllocateRequest {
            idempotency_key: "po-1".into(),
            order_ref: "ORDER-77".into(),
            basket: Some(basket(sku, 2)),
        })
        .await
        .unwrap()
        .into_inner();
    let id = a.reservation.unwrap().reservation_id;
    let po_number = a.purchase_orders[0].po_number.clone();
    let status = |f: &mut pb::fulfillment_client::FulfillmentClient<_>| {
        let mut f = f.clone();
        let id = id.clone();
        async move {
            f.get_reservation(pb::GetReservationRequest { reservation_id: id })
                .await
                .unwrap()
                .into_inner()
                .purchase_orders[0]
                .clone()
        }
    };
    // Failing: pending, with attempts and the error.
    let mut po = status(&mut f).await;
    for _ in 0..200 {
        if po.attempts >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        po = status(&mut f).await;
    }
    assert_eq!(po.status, pb::purchase_order::Status::Pending as i32);
    assert!(po.attempts >= 2, "{po:?}");
    assert!(po.last_error.contains("503"), "{po:?}");
    // The supplier recovers: acknowledged.
    fake.set_behaviour(SUPPLIER, FakeBehaviour::default());
    for _ in 0..200 {
        po = status(&mut f).await;
        if po.status == pb::purchase_order::Status::Acknowledged as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        po.status,
        pb::purchase_order::Status::Acknowledged as i32,
        "{po:?}"
    );
    assert!(po.acknowledged_at.is_some());
    let received = fake.purchase_orders(SUPPLIER);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].order.po_number, po_number);
    assert_eq!(received[0].order.order_ref, "ORDER-77");
    assert_eq!(received[0].order.lines[0].quantity, 2);
    assert_eq!(received[0].order.lines[0].unit_cost, "4.25");
    assert_eq!(
        received[0].order.ship_to.as_ref().unwrap().postal_code,
        "10001"
    );
}

/// Without a data directory (built-in world) and with one, the journal goes
/// where the docs say; `spawn_app_with` serves a world directory.
#[tokio::test]
async fn the_journal_lives_under_the_data_directory() {
    let app = spawn_app_with(|_| {}).await;
    let journal = app._dir.path().join("ledger");
    assert!(journal.join("LOCK").exists(), "{journal:?}");
}

/// With API keys, a cart can reserve only its own quotes (another's answers
/// as unknown) and cannot commit; an order service commits any reservation.
/// (Reading and releasing others' reservations: `ownership.rs`.)
#[tokio::test]
async fn carts_reserve_only_their_own_quotes() {
    use crate::auth::{spawn_with_keys, with_key, CART_KEY, ORDERS_KEY, OTHER_CART_KEY};
    let app = spawn_with_keys().await;
    let mut f = app.fulfillment();
    let basket = pb::QuoteRequest {
        lines: (1..=6).map(|i| line(&format!("SR-{i:06}"), 1)).collect(),
        ship_to: us("10001"),
        options: Some(pb::QuoteOptions {
            allow_partial: true,
            ..pb::QuoteOptions::default()
        }),
    };
    let q = f
        .quote(with_key(basket, CART_KEY))
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    assert!(!q.shipments.is_empty(), "the small world has some of these");
    let from_quote = |key: &str| pb::ReserveRequest {
        idempotency_key: key.into(),
        source: Some(pb::reserve_request::Source::QuoteId(q.quote_id.clone())),
        hold_seconds: 0,
    };
    let e = f
        .reserve(with_key(from_quote("k-1"), OTHER_CART_KEY))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::FailedPrecondition,
        "another cart's quote is unknown"
    );
    let r = f
        .reserve(with_key(from_quote("k-1"), CART_KEY))
        .await
        .unwrap()
        .into_inner();
    let e = f
        .commit(with_key(commit(&r.reservation_id, "O-1"), CART_KEY))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "carts cannot commit");
    let c = f
        .commit(with_key(commit(&r.reservation_id, "O-1"), ORDERS_KEY))
        .await
        .unwrap()
        .into_inner();
    assert!(!c.purchase_orders.is_empty());
}
