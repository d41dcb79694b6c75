//! Live carrier rating through the fake FedEx and UPS APIs: a carrier that
//! hangs costs the caller nothing but the live price.

use std::time::{Duration, Instant};

use stockroute::adapters::http::carriers::fake::FakeCarrierServer;
use stockroute::app;
use stockroute::pb;

use crate::helpers::{connect, line, test_config, us, write_small_world};

/// With both carriers hanging, Quote and RateShipment still answer within the
/// caller's deadline, priced from the tables and saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_carriers_fall_back_to_tables_within_the_deadline() {
    let fake = FakeCarrierServer::start().await.expect("fake carriers");
    fake.set_latency(Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    write_small_world(dir.path());
    let mut config = test_config(dir.path());
    config.feeds.schedule = false;
    config.carriers = fake.config();
    let running = app::start(config).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), running.wait_ready())
        .await
        .unwrap();
    let channel = connect(running.grpc_addr).await;

    let mut fulfillment = pb::fulfillment_client::FulfillmentClient::new(channel.clone());
    let mut request = tonic::Request::new(pb::QuoteRequest {
        lines: vec![line("SR-000001", 1), line("SR-000002", 1)],
        ship_to: us("10001"),
        options: Some(pb::QuoteOptions {
            allow_partial: true,
            ..Default::default()
        }),
    });
    request.set_timeout(Duration::from_millis(600));
    let started = Instant::now();
    let plan = fulfillment
        .quote(request)
        .await
        .expect("an answer built from what arrived in time")
        .into_inner()
        .plan
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(600), "answered after {took:?}");
    assert!(!plan.shipments.is_empty());
    assert!(plan.shipments.iter().all(|s| !s.freight_live));

    let s = &plan.shipments[0];
    let mut catalog = pb::catalog_client::CatalogClient::new(channel);
    let mut rate = tonic::Request::new(pb::RateShipmentRequest {
        origin: s.origin.clone(),
        destination: us("10001"),
        lines: s.lines.iter().map(|l| line(&l.sku, l.quantity)).collect(),
        supplier_id: s.supplier_id.clone(),
    });
    rate.set_timeout(Duration::from_millis(400));
    let rated = catalog
        .rate_shipment(rate)
        .await
        .expect("rate shipment")
        .into_inner();
    assert!(rated.rates.iter().all(|r| !r.live));
    let same = rated
        .rates
        .iter()
        .find(|r| r.carrier == s.carrier && r.service == s.service)
        .unwrap();
    assert_eq!(same.amount, s.freight, "table prices agree too");

    // The carriers recover: live prices come back (the failures were not cached).
    fake.set_latency(Duration::ZERO);
    let mut catalog_req = tonic::Request::new(pb::RateShipmentRequest {
        origin: s.origin.clone(),
        destination: us("10001"),
        lines: s.lines.iter().map(|l| line(&l.sku, l.quantity)).collect(),
        supplier_id: s.supplier_id.clone(),
    });
    catalog_req.set_timeout(Duration::from_secs(5));
    let rated = catalog
        .rate_shipment(catalog_req)
        .await
        .unwrap()
        .into_inner();
    assert!(rated.rates.iter().any(|r| r.live), "{:?}", rated.rates);
    running.shutdown().await;
    fake.shutdown().await;
}
