//! Feeds fetched over HTTP on a schedule, from a real server on loopback.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use stockroute::app;
use stockroute::pb;
use tonic::transport::Channel;

use crate::helpers::{connect, test_config, write_small_world};

/// What the fake supplier serves as its feed, and a gate that holds the
/// answer back until the test opens it.
#[derive(Clone)]
struct FeedState {
    body: Arc<Mutex<String>>,
    open: tokio::sync::watch::Receiver<bool>,
}

async fn serve_feed(State(mut state): State<FeedState>) -> (StatusCode, String) {
    let _ = state.open.wait_for(|open| *open).await;
    let body = state.body.lock().clone();
    (StatusCode::OK, body)
}

/// SUP001's available units of SR-000001, as GetOffers reports them.
async fn sup001_available(catalog: &mut pb::catalog_client::CatalogClient<Channel>) -> Option<u32> {
    catalog
        .get_offers(pb::GetOffersRequest {
            sku: "SR-000001".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .offers
        .into_iter()
        .find(|o| o.supplier_id == "SUP001")
        .map(|o| o.available)
}

/// A supplier whose feed is a URL: the service is not ready until it has
/// loaded, then it reloads on its interval; a supplier whose URL fails is
/// reported, and serving goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_feeds_load_reload_and_report_failures() {
    let (gate, open) = tokio::sync::watch::channel(false);
    let body = Arc::new(Mutex::new(
        "supplier_sku,sku,qty,unit_cost\nU-1,SR-000001,11,4.00\n".to_owned(),
    ));
    let router = Router::new()
        .route("/feed.csv", get(serve_feed))
        .route(
            "/broken.csv",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .with_state(FeedState {
            body: Arc::clone(&body),
            open,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed_addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let feed_server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });

    let dir = tempfile::tempdir().unwrap();
    write_small_world(dir.path());
    let registry = std::fs::read_to_string(dir.path().join("suppliers.toml")).unwrap();
    let registry: String = registry
        .lines()
        .map(|l| {
            if l.starts_with("feed = ") && l.contains("feeds/SUP001.csv") {
                format!(r#"feed = {{ source = "http://{feed_addr}/feed.csv", kind = "full", interval_secs = 1 }}"#)
            } else if l.starts_with("feed = ") && l.contains("feeds/SUP002.csv") {
                format!(r#"feed = {{ source = "http://{feed_addr}/broken.csv", kind = "full", interval_secs = 3600 }}"#)
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert!(
        registry.contains("/feed.csv") && registry.contains("/broken.csv"),
        "demo registry changed shape"
    );
    std::fs::write(dir.path().join("suppliers.toml"), registry).unwrap();

    let config = test_config(dir.path());
    let running = app::start(config).await.unwrap();

    // The feed has not arrived yet: serving, but not ready.
    let readyz = reqwest::get(format!("http://{}/readyz", running.http_addr))
        .await
        .unwrap();
    assert_eq!(readyz.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let detail: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(detail["ready"], false);
    assert!(
        detail["feeds_pending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "SUP001"),
        "{detail}"
    );
    let channel = connect(running.grpc_addr).await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "stockroute.v1.Fulfillment".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    gate.send_replace(true);
    tokio::time::timeout(Duration::from_secs(30), running.wait_ready())
        .await
        .unwrap();
    let mut catalog = pb::catalog_client::CatalogClient::new(channel);
    assert_eq!(sup001_available(&mut catalog).await, Some(11));

    let readyz: serde_json::Value = reqwest::get(format!("http://{}/readyz", running.http_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        readyz["ready"], true,
        "a failing feed does not keep the service unready"
    );
    let failing = readyz["feeds_failing"].as_array().unwrap();
    assert!(
        failing
            .iter()
            .any(|f| f["supplier"] == "SUP002" && f["error"].as_str().unwrap().contains("503")),
        "{readyz}"
    );
    let metrics = reqwest::get(format!("http://{}/metrics", running.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("stockroute_feed_ingests_total")
                && l.contains(r#"supplier="SUP002""#)
                && l.contains(r#"result="unreadable""#)),
        "feed failure not in metrics"
    );

    // The supplier publishes a new feed; the schedule picks it up.
    *body.lock() = "supplier_sku,sku,qty,unit_cost\nU-1,SR-000001,22,4.00\n".to_owned();
    let mut seen = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = sup001_available(&mut catalog).await;
        if seen == Some(22) {
            break;
        }
    }
    assert_eq!(seen, Some(22), "the scheduled reload did not apply");

    running.shutdown().await;
    let _ = stop_tx.send(());
    feed_server.await.unwrap().unwrap();
}
