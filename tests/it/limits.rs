//! Hostile and excessive requests: each is refused cleanly with its own
//! status code, and the server stays healthy for everyone else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stockroute::pb;
use tonic::codec::CompressionEncoding;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::auth::{spawn_with_keys, with_key, CART_KEY, OTHER_CART_KEY};
use crate::helpers::{line, spawn_app, spawn_app_with, us, TestApp};

fn quote(lines: Vec<pb::BasketLine>) -> pb::QuoteRequest {
    pb::QuoteRequest {
        lines,
        ship_to: us("10001"),
        options: Some(pb::QuoteOptions {
            allow_partial: true,
            ..Default::default()
        }),
    }
}

/// The server still answers health and a normal quote.
async fn assert_healthy(app: &TestApp) {
    let status = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: "stockroute.v1.Fulfillment".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, 1, "SERVING");
    app.fulfillment()
        .quote(quote(vec![line("SR-000001", 1)]))
        .await
        .expect("a normal quote still works");
}

/// A message over `server.max_message_bytes` is OUT_OF_RANGE, refused from
/// its length prefix before it is buffered.
#[tokio::test]
async fn oversize_messages_are_out_of_range() {
    let app = spawn_app_with(|c| c.server.max_message_bytes = 64 * 1024).await;
    let lines = (0..10_000)
        .map(|i| line(&format!("SR-{i:06}"), 1))
        .collect();
    let err = app.fulfillment().quote(quote(lines)).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    let chunk = pb::FeedChunk {
        supplier_id: "SUP001".into(),
        data: vec![b'x'; 200 * 1024],
        full_snapshot: false,
    };
    let err = app
        .catalog()
        .ingest_feed(futures::stream::iter([chunk]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert_healthy(&app).await;
}

/// A gzip message that inflates past the limit is RESOURCE_EXHAUSTED:
/// decompression stops at the limit instead of filling memory.
#[tokio::test]
async fn compression_bombs_are_resource_exhausted() {
    let app = spawn_app().await;
    // 64 MiB of zeros is about 64 KiB of gzip, far under the 4 MiB limit on the wire.
    let chunk = pb::FeedChunk {
        supplier_id: "SUP001".into(),
        data: vec![0; 64 << 20],
        full_snapshot: false,
    };
    let err = app
        .catalog()
        .send_compressed(CompressionEncoding::Gzip)
        .ingest_feed(futures::stream::iter([chunk]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let err = app
        .fulfillment()
        .send_compressed(CompressionEncoding::Gzip)
        .quote(quote(vec![line(&"A".repeat(16 << 20), 1)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // Honest compressed traffic is welcome.
    app.fulfillment()
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip)
        .quote(quote(vec![line("SR-000001", 1)]))
        .await
        .expect("a gzip quote");
    assert_healthy(&app).await;
}

/// Over-long baskets, 1 MB SKUs and control characters are INVALID_ARGUMENT
/// naming the field, with a short message; every line is checked before any
/// is looked up, so a bad line late in a basket of unknown SKUs is what the
/// caller hears about, not the unknown SKUs.
#[tokio::test]
async fn malformed_baskets_are_refused_before_any_lookup() {
    let app = spawn_app().await;
    let mut client = app.fulfillment();
    let over = (0..201).map(|i| line(&format!("NOPE-{i}"), 1)).collect();
    let err = client.quote(quote(over)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("lines:"), "{}", err.message());

    let huge = "S".repeat(1 << 20);
    let mut cases = vec![
        (vec![line(&huge, 1)], "lines[0].sku"),
        (vec![line("SR-\u{0}00001", 1)], "lines[0].sku"),
        (vec![line("SR-000001\u{1b}[2J", 1)], "lines[0].sku"),
    ];
    let mut late_bad: Vec<pb::BasketLine> =
        (0..150).map(|i| line(&format!("NOPE-{i}"), 1)).collect();
    late_bad.push(line("SR-000001\r\nX-Injected: 1", 1));
    cases.push((late_bad, "lines[150].sku"));
    for (lines, field) in cases {
        let err = client.quote(quote(lines.clone())).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().starts_with(field), "{}", err.message());
        assert!(err.message().len() < 200, "no echo of the value");
        let err = client
            .check_stock(pb::CheckStockRequest {
                lines,
                ship_to: None,
                realtime_budget_ms: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
    }

    let mut with_bad_postcode = quote(vec![line("SR-000001", 1)]);
    with_bad_postcode.ship_to = us("100\u{7}01");
    let err = client.quote(with_bad_postcode).await.unwrap_err();
    assert!(err.message().starts_with("ship_to.postal_code"), "{err:?}");
    let mut with_bad_supplier = quote(vec![line("SR-000001", 1)]);
    with_bad_supplier.options = Some(pb::QuoteOptions {
        exclude_suppliers: vec![huge.clone()],
        ..Default::default()
    });
    let err = client.quote(with_bad_supplier).await.unwrap_err();
    assert!(err.message().len() < 200, "{}", err.message());

    let mut catalog = app.catalog();
    for sku in [huge.as_str(), "SR\u{0}1"] {
        let err = catalog
            .get_offers(pb::GetOffersRequest { sku: sku.into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().len() < 200);
    }
    let chunk = pb::FeedChunk {
        supplier_id: huge,
        data: b"supplier_sku,qty,unit_cost\n".to_vec(),
        full_snapshot: false,
    };
    let err = catalog
        .ingest_feed(futures::stream::iter([chunk]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().len() < 200);
    assert_healthy(&app).await;
}

/// Each client has its own rate limit: one that spends its burst is refused
/// with RESOURCE_EXHAUSTED saying when to retry, another is not affected.
#[tokio::test]
async fn each_client_has_its_own_rate_limit() {
    let app = crate::auth::spawn_with_keys_and(|c| {
        c.server.client_rate_per_sec = 2;
        c.server.client_burst = 5;
    })
    .await;
    let mut client = app.fulfillment();
    let mut refused = None;
    for i in 0..20 {
        match client
            .quote(with_key(quote(vec![line("SR-000001", 1)]), CART_KEY))
            .await
        {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (i, err) = refused.expect("the burst runs out");
    assert!((5..=7).contains(&i), "refused after {i} calls");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("rate limit") && err.message().contains("web-cart"),
        "{}",
        err.message()
    );
    client
        .quote(with_key(quote(vec![line("SR-000001", 1)]), OTHER_CART_KEY))
        .await
        .expect("another client has its own bucket");
}

/// A call with no deadline of its own gets the server's default: a feed push
/// that stalls is cut off with DEADLINE_EXCEEDED and applies nothing.
#[tokio::test]
async fn stalled_calls_hit_the_default_timeout() {
    let app = spawn_app_with(|c| c.server.feed_push_timeout_ms = 300).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::FeedChunk>(1);
    tx.send(pb::FeedChunk {
        supplier_id: "SUP001".into(),
        data: b"supplier_sku,qty,unit_cost\n".to_vec(),
        full_snapshot: true,
    })
    .await
    .unwrap();
    let started = Instant::now();
    let err = app
        .catalog()
        .ingest_feed(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_err();
    drop(tx);
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_healthy(&app).await;
}

/// Latencies of one load run, in microseconds.
#[derive(Default)]
struct Run {
    ok_us: Vec<u64>,
    shed_us: Vec<u64>,
    other: Vec<String>,
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// `clients` closed-loop callers quoting for `length`; a refused caller backs
/// off 2 ms before trying again, as a well-behaved client would.
async fn load(app: &TestApp, clients: usize, length: Duration, budget: Duration) -> Run {
    let skus = Arc::new(crate::helpers::in_stock_skus(app, 8).await);
    let until = Instant::now() + length;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let mut client = app.fulfillment();
            let skus = Arc::clone(&skus);
            tokio::spawn(async move {
                let mut run = Run::default();
                let mut n = c;
                while Instant::now() < until {
                    n += 1;
                    let lines = (0..3)
                        .map(|k| line(&skus[(n + k) % skus.len()], 1))
                        .collect();
                    let mut request = tonic::Request::new(quote(lines));
                    request.set_timeout(budget);
                    let t = Instant::now();
                    let answer = client.quote(request).await;
                    let us = t.elapsed().as_micros() as u64;
                    match answer {
                        Ok(_) => run.ok_us.push(us),
                        Err(e) if e.code() == Code::ResourceExhausted => {
                            run.shed_us.push(us);
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        Err(e) => run.other.push(format!("{:?}: {}", e.code(), e.message())),
                    }
                }
                run
            })
        })
        .collect();
    let mut all = Run::default();
    for t in tasks {
        let r = t.await.unwrap();
        all.ok_us.extend(r.ok_us);
        all.shed_us.extend(r.shed_us);
        all.other.extend(r.other);
    }
    all
}

/// Three times as many callers as the concurrency limit: the excess is
/// refused fast with RESOURCE_EXHAUSTED, every admitted call answers within
/// its deadline, nothing else fails, and the server is healthy afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_fast_and_admitted_calls_keep_their_budget() {
    const LIMIT: usize = 4;
    let app = spawn_app_with(|c| c.server.concurrency_max = LIMIT).await;
    let budget = Duration::from_secs(5);
    let mut base = load(&app, LIMIT, Duration::from_millis(1500), budget).await;
    let mut over = load(&app, 3 * LIMIT, Duration::from_secs(2), budget).await;
    assert!(
        base.other.is_empty() && over.other.is_empty(),
        "{:?}",
        over.other
    );
    assert!(!over.shed_us.is_empty(), "3x the limit must shed");
    let base_p99 = percentile(&mut base.ok_us, 0.99);
    let over_p50 = percentile(&mut over.ok_us, 0.5);
    let over_p99 = percentile(&mut over.ok_us, 0.99);
    let shed_p50 = percentile(&mut over.shed_us, 0.5);
    let shed_p99 = percentile(&mut over.shed_us, 0.99);
    eprintln!(
        "1x: {} ok, p99 {} us | 3x: {} ok (p50 {} us, p99 {} us = {:.2}x the 1x p99), \
         {} shed (p50 {} us, p99 {} us)",
        base.ok_us.len(),
        base_p99,
        over.ok_us.len(),
        over_p50,
        over_p99,
        over_p99 as f64 / base_p99.max(1) as f64,
        over.shed_us.len(),
        shed_p50,
        shed_p99,
    );
    assert!(
        over_p99 < budget.as_micros() as u64,
        "admitted calls within budget"
    );
    assert!(
        shed_p50 < over_p50,
        "a refusal ({shed_p50} us) is faster than an answer ({over_p50} us)"
    );
    assert_healthy(&app).await;
}

/// Keys are accepted through gzip-compressed calls too (auth reads headers only).
#[tokio::test]
async fn admission_runs_before_decompression() {
    let app = spawn_with_keys().await;
    let err = app
        .fulfillment()
        .send_compressed(CompressionEncoding::Gzip)
        .quote(quote(vec![line(&"A".repeat(16 << 20), 1)]))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unauthenticated,
        "an anonymous bomb is refused before it is inflated"
    );
}
