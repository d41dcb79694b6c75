//! Reservations belong to the key that made them: a cart sees and releases
//! only its own, without learning whether another's exists.

use stockroute::pb;
use tonic::Code;

use crate::auth::{spawn_with_keys, with_key, CART_KEY, ORDERS_KEY, OTHER_CART_KEY};
use crate::helpers::{line, us, TestApp};

/// SKUs with stock, found with the cart's key.
async fn stocked(app: &TestApp, want: usize) -> Vec<String> {
    let lines = (1..=200).map(|i| line(&format!("SR-{i:06}"), 1)).collect();
    let stock = app
        .fulfillment()
        .check_stock(with_key(
            pb::CheckStockRequest {
                lines,
                ship_to: None,
                realtime_budget_ms: 0,
            },
            CART_KEY,
        ))
        .await
        .expect("check stock")
        .into_inner();
    stock
        .lines
        .into_iter()
        .filter(|l| l.available >= 2)
        .map(|l| l.sku)
        .take(want)
        .collect()
}

async fn reserve(app: &TestApp, key: &str, idempotency_key: &str, sku: &str) -> pb::Reservation {
    app.fulfillment()
        .reserve(with_key(
            pb::ReserveRequest {
                idempotency_key: idempotency_key.into(),
                source: Some(pb::reserve_request::Source::Basket(pb::QuoteRequest {
                    lines: vec![line(sku, 1)],
                    ship_to: us("10001"),
                    options: None,
                })),
                hold_seconds: 300,
            },
            key,
        ))
        .await
        .expect("reserve")
        .into_inner()
}

async fn get(app: &TestApp, key: &str, id: &str) -> Result<pb::Reservation, tonic::Status> {
    app.fulfillment()
        .get_reservation(with_key(
            pb::GetReservationRequest {
                reservation_id: id.into(),
            },
            key,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn release(app: &TestApp, key: &str, id: &str) -> Result<pb::Reservation, tonic::Status> {
    app.fulfillment()
        .release(with_key(
            pb::ReleaseRequest {
                reservation_id: id.into(),
                reason: "changed my mind".into(),
                ..Default::default()
            },
            key,
        ))
        .await
        .map(|r| r.into_inner())
}

/// Another cart's reservation is NOT_FOUND with the very message an unknown
/// id gets, for reading and for releasing; the owner and an order service
/// see it; and the other cart's failed release changed nothing.
#[tokio::test]
async fn a_cart_cannot_see_or_release_another_carts_reservation() {
    let app = spawn_with_keys().await;
    let skus = stocked(&app, 1).await;
    let mine = reserve(&app, CART_KEY, "web-1", &skus[0]).await;
    let id = mine.reservation_id.clone();
    assert_eq!(mine.state, pb::reservation::State::Held as i32);

    let missing = get(&app, OTHER_CART_KEY, "no-such-reservation")
        .await
        .unwrap_err();
    let hidden = get(&app, OTHER_CART_KEY, &id).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    assert_eq!(
        hidden.message().replace(id.as_str(), "ID"),
        missing.message().replace("no-such-reservation", "ID"),
        "no existence leak"
    );
    let refused = release(&app, OTHER_CART_KEY, &id).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(
        refused.message().replace(id.as_str(), "ID"),
        release(&app, OTHER_CART_KEY, "no-such-reservation")
            .await
            .unwrap_err()
            .message()
            .replace("no-such-reservation", "ID"),
    );

    let seen = get(&app, CART_KEY, &id).await.expect("the owner sees it");
    assert_eq!(
        seen.state,
        pb::reservation::State::Held as i32,
        "still held"
    );
    get(&app, ORDERS_KEY, &id)
        .await
        .expect("an order service sees every reservation");

    // The same idempotency key from another cart is that cart's own key.
    let theirs = reserve(&app, OTHER_CART_KEY, "web-1", &skus[0]).await;
    assert_ne!(theirs.reservation_id, id);

    let released = release(&app, CART_KEY, &id)
        .await
        .expect("the owner releases");
    assert_eq!(released.state, pb::reservation::State::Released as i32);
}
