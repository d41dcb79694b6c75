//! API keys and roles: who may call what, and what a refused caller learns.

use stockroute::auth::{key_digest_hex, AuthMode, KeyEntry};
use stockroute::config::Config;
use stockroute::pb;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::helpers::{line, spawn_app_with, us, TestApp};

pub const CART_KEY: &str = "sr_cart_0123456789abcdef0123456789abcdef";
pub const OTHER_CART_KEY: &str = "sr_cart_fedcba9876543210fedcba9876543210";
pub const ORDERS_KEY: &str = "sr_orders_0123456789abcdef0123456789abcd";
pub const FEEDS_KEY: &str = "sr_feeds_0123456789abcdef0123456789abcde";

fn entry(id: &str, role: &str, key: &str) -> KeyEntry {
    KeyEntry {
        id: id.into(),
        roles: vec![role.into()],
        sha256: key_digest_hex(key),
    }
}

/// A server that wants keys: two carts, an order service and a feed pusher.
pub async fn spawn_with_keys() -> TestApp {
    spawn_with_keys_and(|_| {}).await
}

/// Like `spawn_with_keys`, with the config changed by `change` too.
pub async fn spawn_with_keys_and(change: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|c| {
        change(c);
        c.auth.mode = AuthMode::ApiKeys;
        c.auth.keys = vec![
            entry("web-cart", "cart", CART_KEY),
            entry("app-cart", "cart", OTHER_CART_KEY),
            entry("oms", "orders", ORDERS_KEY),
            entry("feeder", "feeds", FEEDS_KEY),
        ];
    })
    .await
}

/// A request carrying `key` as a bearer token.
pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut r = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {key}").parse().expect("header");
    r.metadata_mut().insert("authorization", value);
    r
}

fn quote() -> pb::QuoteRequest {
    pb::QuoteRequest {
        lines: vec![line("SR-000001", 1)],
        ship_to: us("10001"),
        options: Some(pb::QuoteOptions {
            allow_partial: true,
            ..Default::default()
        }),
    }
}

fn client(app: &TestApp) -> pb::fulfillment_client::FulfillmentClient<Channel> {
    app.fulfillment()
}

/// No key or a wrong one is UNAUTHENTICATED; health stays open for probes.
#[tokio::test]
async fn missing_or_wrong_keys_are_unauthenticated() {
    let app = spawn_with_keys().await;
    let mut c = client(&app);
    let err = c.quote(quote()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("authorization: Bearer"), "{err:?}");
    for wrong in ["sr_cart_0123456789abcdef0123456789abcdee", "x", ""] {
        let err = c.quote(with_key(quote(), wrong)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "key {wrong:?}: {err:?}");
        assert!(!err.message().contains(wrong) || wrong.is_empty());
    }
    // Another scheme is not a bearer key.
    let mut r = Request::new(quote());
    r.metadata_mut().insert(
        "authorization",
        format!("Basic {CART_KEY}").parse().unwrap(),
    );
    assert_eq!(c.quote(r).await.unwrap_err().code(), Code::Unauthenticated);
    // The catalog is guarded the same way.
    let err = app
        .catalog()
        .get_offers(pb::GetOffersRequest {
            sku: "SR-000001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // Probes carry no key.
    let health = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: "stockroute.v1.Fulfillment".into(),
        })
        .await
        .expect("health needs no key");
    assert_eq!(health.into_inner().status, 1);
    // The right key works.
    c.quote(with_key(quote(), CART_KEY))
        .await
        .expect("a cart may quote");
}

/// Each role reaches exactly its RPCs: a cart cannot commit, allocate or
/// push feeds; a feed pusher cannot quote; an order service may commit.
#[tokio::test]
async fn roles_limit_what_a_key_may_call() {
    let app = spawn_with_keys().await;
    let mut c = client(&app);
    let err = c
        .commit(with_key(
            pb::CommitRequest {
                reservation_id: "r-1".into(),
                order_ref: "o-1".into(),
            },
            CART_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("orders role"), "{err:?}");
    let err = c
        .allocate(with_key(pb::AllocateRequest::default(), CART_KEY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .catalog()
        .get_offers(with_key(
            pb::GetOffersRequest {
                sku: "SR-000001".into(),
            },
            CART_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c.quote(with_key(quote(), FEEDS_KEY)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    app.catalog()
        .get_offers(with_key(
            pb::GetOffersRequest {
                sku: "SR-000001".into(),
            },
            FEEDS_KEY,
        ))
        .await
        .expect("a feed pusher may inspect offers");
    c.quote(with_key(quote(), ORDERS_KEY))
        .await
        .expect("an order service may quote");
    // An order service passes admission for Commit; what the service then
    // says about this unknown reservation is not an auth answer.
    let err = c
        .commit(with_key(
            pb::CommitRequest {
                reservation_id: "r-1".into(),
                order_ref: "o-1".into(),
            },
            ORDERS_KEY,
        ))
        .await
        .unwrap_err();
    assert!(
        !matches!(err.code(), Code::PermissionDenied | Code::Unauthenticated),
        "{err:?}"
    );
}

/// A config that names no key and does not turn auth off refuses to start.
#[tokio::test]
async fn a_config_without_keys_must_turn_auth_off_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_small_world(dir.path());
    let mut config = crate::helpers::test_config(dir.path());
    config.auth.mode = AuthMode::ApiKeys;
    let err = stockroute::app::start(config).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("no API keys configured") && message.contains("auth.mode"),
        "{message}"
    );
}
