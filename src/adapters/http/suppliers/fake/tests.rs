use std::time::{Duration, Instant};

use super::*;
use crate::adapters::http::suppliers::wire::{PurchaseOrderLine, StockRequestItem};

fn item(sku: &str, available: u32, cents: i64) -> FakeItem {
    FakeItem {
        supplier_sku: sku.into(),
        available,
        unit_cost: Decimal::new(cents, 2),
    }
}

async fn server() -> (FakeSupplierServer, String) {
    let fake = FakeSupplierServer::start(7).await.unwrap();
    let base = fake.add_supplier("SUP001", vec![item("A-1", 5, 1234), item("B-2", 0, 99)]);
    (fake, base)
}

fn ask(skus: &[&str]) -> StockRequest {
    StockRequest {
        items: skus
            .iter()
            .map(|s| StockRequestItem {
                supplier_sku: (*s).into(),
                quantity: 2,
            })
            .collect(),
    }
}

async fn post_stock(base: &str, skus: &[&str]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{STOCK_PATH}"))
        .json(&ask(skus))
        .send()
        .await
        .unwrap()
}

fn order(po: &str, qty: u32) -> PurchaseOrderRequest {
    PurchaseOrderRequest {
        po_number: po.into(),
        order_ref: "ORD-1".into(),
        currency: "USD".into(),
        lines: vec![PurchaseOrderLine {
            supplier_sku: "A-1".into(),
            quantity: qty,
            unit_cost: "12.34".into(),
        }],
        ship_to: None,
    }
}

async fn post_order(base: &str, order: &PurchaseOrderRequest) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{base}{PURCHASE_ORDERS_PATH}"))
        .json(order)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Known items come back in the order asked, unknown ones are left out, and `as_of` is RFC 3339.
#[tokio::test]
async fn answers_known_items_and_leaves_out_unknown_ones() {
    let (fake, base) = server().await;
    let resp = post_stock(&base, &["B-2", "NOPE", "A-1"]).await;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["supplier_sku"], "B-2");
    assert_eq!(items[1]["available"], 5);
    assert_eq!(items[1]["unit_cost"], "12.34");
    assert_eq!(items[1]["currency"], "USD");
    let as_of = v["as_of"].as_str().unwrap();
    time::OffsetDateTime::parse(as_of, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(
        fake.calls("SUP001"),
        FakeSupplierCalls {
            stock: 1,
            items_asked: 3,
            purchase_orders: 0
        }
    );
    assert_eq!(
        fake.stock_requests("SUP001"),
        vec![vec!["B-2", "NOPE", "A-1"]]
    );
}

/// A body that is not a stock request is a 400, an unknown supplier a 404.
#[tokio::test]
async fn refuses_bad_requests_and_unknown_suppliers() {
    let (fake, base) = server().await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{base}{STOCK_PATH}"))
        .body("{\"items\": 3}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: ErrorBody = resp.json().await.unwrap();
    assert!(body.error.contains("stock request"), "{}", body.error);
    let resp = post_stock(&fake.base_url("SUP999"), &["A-1"]).await;
    assert_eq!(resp.status(), 404);
}

/// A purchase order is recorded once however often it is sent, takes its units off the
/// stock once, and a different order under the same number is refused.
#[tokio::test]
async fn purchase_orders_are_idempotent_by_po_number() {
    let (fake, base) = server().await;
    let (status, first) = post_order(&base, &order("PO-1", 2)).await;
    assert_eq!(status, 201, "{first}");
    let ack: PurchaseOrderAck = serde_json::from_str(&first).unwrap();
    assert_eq!(ack.po_number, "PO-1");
    assert_eq!(ack.status, "accepted");
    let (status, again) = post_order(&base, &order("PO-1", 2)).await;
    assert_eq!(status, 200);
    assert_eq!(again, first, "a repeat gets the same acknowledgement");
    let (status, body) = post_order(&base, &order("PO-1", 3)).await;
    assert_eq!(status, 409, "{body}");
    let received = fake.purchase_orders("SUP001");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].times_received, 2);
    assert_eq!(fake.item("SUP001", "A-1").unwrap().available, 3);
    assert_eq!(fake.calls("SUP001").purchase_orders, 3);

    let mut bad = order("PO-2", 0);
    let (status, body) = post_order(&base, &bad).await;
    assert_eq!(status, 400);
    assert!(body.contains("quantity"), "{body}");
    bad = order("", 1);
    assert_eq!(post_order(&base, &bad).await.0, 400);
    bad = order("PO-3", 1);
    bad.lines[0].unit_cost = "-1".into();
    assert_eq!(post_order(&base, &bad).await.0, 400);
    assert_eq!(fake.purchase_orders("SUP001").len(), 1);
}

/// A status fault answers that status and records no purchase order.
#[tokio::test]
async fn status_faults_answer_the_status() {
    let (fake, base) = server().await;
    fake.set_behaviour("SUP001", FakeBehaviour::with_fault(Fault::Status(503)));
    assert_eq!(post_stock(&base, &["A-1"]).await.status(), 503);
    assert_eq!(post_order(&base, &order("PO-1", 1)).await.0, 503);
    assert!(fake.purchase_orders("SUP001").is_empty());
    fake.set_behaviour("SUP001", FakeBehaviour::default());
    assert_eq!(post_stock(&base, &["A-1"]).await.status(), 200);
}

/// Malformed, wrong-typed and negative answers look the way their names say.
#[tokio::test]
async fn body_faults_spoil_the_answer() {
    let (fake, base) = server().await;
    fake.set_behaviour("SUP001", FakeBehaviour::with_fault(Fault::Malformed));
    let text = post_stock(&base, &["A-1"]).await.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );

    fake.set_behaviour("SUP001", FakeBehaviour::with_fault(Fault::WrongTypes));
    let v: serde_json::Value = post_stock(&base, &["A-1"]).await.json().await.unwrap();
    assert!(v["items"][0]["available"].is_string());
    assert!(v["items"][0]["unit_cost"].is_number());

    fake.set_behaviour("SUP001", FakeBehaviour::with_fault(Fault::NegativeStock));
    let v: serde_json::Value = post_stock(&base, &["A-1"]).await.json().await.unwrap();
    assert_eq!(v["items"][0]["available"], -5);

    fake.set_behaviour(
        "SUP001",
        FakeBehaviour::with_fault(Fault::Oversized { bytes: 300_000 }),
    );
    let resp = post_stock(&base, &["A-1"]).await;
    assert_eq!(resp.content_length(), None, "sent without a length");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len(), 300_000);
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["items"][0]["supplier_sku"], "A-1");
}

/// A slow drip delivers a valid answer, but only after a pause per chunk.
#[tokio::test]
async fn slow_drip_takes_a_pause_per_chunk() {
    let (fake, base) = server().await;
    fake.set_behaviour(
        "SUP001",
        FakeBehaviour::with_fault(Fault::SlowDrip {
            chunk_bytes: 40,
            pause: Duration::from_millis(10),
        }),
    );
    let started = Instant::now();
    let text = post_stock(&base, &["A-1", "B-2"])
        .await
        .text()
        .await
        .unwrap();
    let chunks = text.len().div_ceil(40) as u32;
    assert!(chunks >= 3);
    assert!(started.elapsed() >= Duration::from_millis(10) * chunks);
    serde_json::from_str::<serde_json::Value>(&text).unwrap();
}

/// A hanging supplier does not answer; stopping the server ends the hang.
#[tokio::test]
async fn hangs_until_stopped() {
    let (fake, base) = server().await;
    fake.set_behaviour("SUP001", FakeBehaviour::with_fault(Fault::Hang));
    let client = reqwest::Client::new();
    let err = client
        .post(format!("{base}{STOCK_PATH}"))
        .json(&ask(&["A-1"]))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let pending = tokio::spawn(
        client
            .post(format!("{base}{STOCK_PATH}"))
            .json(&ask(&["A-1"]))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(Duration::from_secs(5), fake.shutdown())
        .await
        .expect("shutdown does not wait for hanging answers");
    let _ = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the hanging call ended");
}

/// Faults on a share of the calls hit about that share, the same calls for the same seed.
#[tokio::test]
async fn fault_share_is_deterministic_for_a_seed() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (fake, base) = server().await;
        fake.set_behaviour(
            "SUP001",
            FakeBehaviour {
                fault: Some(Fault::Status(500)),
                fault_per_mille: 300,
                ..FakeBehaviour::default()
            },
        );
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(post_stock(&base, &["A-1"]).await.status().as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    let failed = runs[0].iter().filter(|&&s| s == 500).count();
    assert!((4..=24).contains(&failed), "{failed} of 40 failed");
}

/// Dropped connections fail the call before any answer; later ones are served.
#[tokio::test]
async fn dropped_connections_fail_before_an_answer() {
    let (fake, base) = server().await;
    fake.drop_next_connections(1);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let err = client
        .post(format!("{base}{STOCK_PATH}"))
        .json(&ask(&["A-1"]))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err}");
    let ok = client
        .post(format!("{base}{STOCK_PATH}"))
        .json(&ask(&["A-1"]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        fake.calls("SUP001").stock,
        1,
        "the dropped call never arrived"
    );
}

/// The fake speaks cleartext HTTP/2 to a client that knows it does.
#[tokio::test]
async fn speaks_http2_with_prior_knowledge() {
    let (_fake, base) = server().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = client
        .post(format!("{base}{STOCK_PATH}"))
        .json(&ask(&["A-1"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
}

/// Feed rows become items; drift is deterministic per seed and moves some items.
#[test]
fn feed_items_and_drift() {
    let csv = b"qty,supplier_sku,warehouse,unit_cost\n5,A-1,X,12.34\nbad,B-2,X,1\n7,C-3,Y,0.5\n";
    let items = items_from_feed_csv(csv).unwrap();
    assert_eq!(items, vec![item("A-1", 5, 1234), item("C-3", 7, 50)]);
    let err = items_from_feed_csv(b"sku,qty\n").unwrap_err();
    assert!(err.contains("supplier_sku"), "{err}");

    let many: Vec<FakeItem> = (0..400)
        .map(|i| item(&format!("S-{i}"), 20, 1000))
        .collect();
    let a = drifted(1, "SUP001", many.clone());
    assert_eq!(a, drifted(1, "SUP001", many.clone()));
    assert_ne!(a, drifted(2, "SUP001", many.clone()));
    let changed = a.iter().zip(&many).filter(|(x, y)| x != y).count();
    assert!((80..=240).contains(&changed), "{changed} of 400 drifted");
    assert!(a.iter().any(|i| i.available == 0));
    assert!(a.iter().any(|i| i.unit_cost == Decimal::new(1030, 2)));
}
