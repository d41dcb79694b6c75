//! Health, reflection, operator endpoints and not-yet-served RPCs.

use futures::StreamExt;
use stockroute::pb;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use crate::helpers::spawn_app;

/// Once ready, the standard health service reports both services SERVING.
#[tokio::test]
async fn health_reports_serving_after_ready() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in ["stockroute.v1.Fulfillment", "stockroute.v1.Catalog", ""] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(
            r.status,
            ServingStatus::Serving as i32,
            "service `{service}`"
        );
    }
}

/// Reflection lists both stockroute services, so grpcurl works without protos.
#[tokio::test]
async fn reflection_lists_both_services() {
    let app = spawn_app().await;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.next().await.expect("one answer").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "stockroute.v1.Fulfillment",
        "stockroute.v1.Catalog",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

/// /healthz, /readyz and /metrics answer; metrics count RPCs by name and status.
#[tokio::test]
async fn operator_endpoints_report_state_and_metrics() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let healthz = http.get(app.http("/healthz")).send().await.unwrap();
    assert!(healthz.status().is_success());
    let readyz: serde_json::Value = http
        .get(app.http("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(readyz["ready"], true);
    assert_eq!(readyz["feeds_configured"], 12);
    assert_eq!(readyz["feeds_loaded"], 12);
    assert!(readyz["offers"].as_u64().unwrap() > 1000);

    let mut client = app.fulfillment();
    let _ = client
        .check_stock(pb::CheckStockRequest {
            lines: vec![crate::helpers::line("SR-000001", 1)],
            ship_to: None,
            realtime_budget_ms: 0,
        })
        .await
        .expect("check stock");
    let _ = client
        .quote(pb::QuoteRequest::default())
        .await
        .expect_err("empty basket");
    let metrics = http
        .get(app.http("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |needle: &str| metrics.lines().any(|l| l.contains(needle));
    assert!(
        has(r#"rpc="stockroute.v1.Fulfillment/CheckStock",status="OK""#),
        "{metrics}"
    );
    assert!(
        has(r#"rpc="stockroute.v1.Fulfillment/Quote",status="INVALID_ARGUMENT""#),
        "{metrics}"
    );
    assert!(
        has("stockroute_grpc_request_seconds_bucket"),
        "latency histogram missing"
    );
    assert!(has("stockroute_index_offers"), "index size missing");
    assert!(has("stockroute_feed_age_seconds"), "feed ages missing");
}

/// Reservation RPCs name the field that is missing from an empty request.
#[tokio::test]
async fn empty_reservation_requests_name_the_missing_field() {
    let app = spawn_app().await;
    let mut client = app.fulfillment();
    let err = client
        .reserve(pb::ReserveRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("idempotency_key"),
        "{}",
        err.message()
    );
    let err = client
        .commit(pb::CommitRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("reservation_id"),
        "{}",
        err.message()
    );
    let err = client
        .allocate(pb::AllocateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = client
        .get_reservation(pb::GetReservationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}
