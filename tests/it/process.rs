//! The real binary: default demo world start-up, a quote, and SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use stockroute::pb;

use crate::helpers::ServerProcess;

/// `stockroute serve` with no world builds the demo world, answers a quote,
/// and on SIGTERM finishes and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_default_world_quote_and_sigterm() {
    let started = Instant::now();
    let mut server = ServerProcess::spawn(
        &["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
        &[("RUST_LOG", "info")],
    );
    let (grpc, http) = server.addresses();
    server.wait_for("ready", Duration::from_secs(120));
    assert!(
        server.stderr_text().contains("AUTHENTICATION IS OFF"),
        "the built-in world runs open and says so"
    );
    eprintln!(
        "default world ready {:?} after spawn (debug build)",
        started.elapsed()
    );
    let readyz: serde_json::Value = reqwest::get(format!("http://{http}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(readyz["products"], 100_000);
    assert_eq!(readyz["feeds_configured"], 120);

    let mut client = pb::fulfillment_client::FulfillmentClient::connect(format!("http://{grpc}"))
        .await
        .expect("connect");
    let lines: Vec<pb::BasketLine> = (1..=40)
        .map(|i| pb::BasketLine {
            sku: format!("SR-{i:06}"),
            quantity: 1,
        })
        .collect();
    let stock = client
        .check_stock(pb::CheckStockRequest {
            lines,
            ship_to: None,
            realtime_budget_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let basket: Vec<pb::BasketLine> = stock
        .lines
        .iter()
        .filter(|l| l.available >= 2)
        .take(3)
        .map(|l| pb::BasketLine {
            sku: l.sku.clone(),
            quantity: 2,
        })
        .collect();
    assert_eq!(basket.len(), 3, "most demo products are in stock somewhere");
    let plan = client
        .quote(pb::QuoteRequest {
            lines: basket,
            ship_to: Some(pb::Address {
                country_code: "US".into(),
                postal_code: "60601".into(),
                residential: true,
            }),
            options: None,
        })
        .await
        .expect("quote on the demo world")
        .into_inner()
        .plan
        .unwrap();
    assert!(!plan.shipments.is_empty() && plan.unfulfilled.is_empty());

    // The bundled client prints the same plan as a table.
    let mut args = vec![
        "quote".to_owned(),
        "--addr".to_owned(),
        grpc.clone(),
        "--to".to_owned(),
        "US:60601".to_owned(),
    ];
    args.extend(
        plan.shipments
            .iter()
            .flat_map(|s| &s.lines)
            .map(|l| format!("{}:{}", l.sku, l.quantity)),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_stockroute"))
        .args(&args)
        .output()
        .expect("run stockroute quote");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("shipment 1 from SUP"), "{table}");
    assert!(
        table.contains("SUPPLIER SKU") && table.contains("total"),
        "{table}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_stockroute"))
        .args([
            "quote",
            "--addr",
            &grpc,
            "--to",
            "US:60601",
            "NO-SUCH-SKU:1",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown SKU"));

    server.terminate();
    server.wait_for("stopped", Duration::from_secs(15));
    let exit = server.wait_exit(Duration::from_secs(15));
    assert!(exit.success(), "exit status {exit:?}");
}
