//! SIGTERM under load, on the real binary: health turns NOT_SERVING first
//! while calls are still answered, the port closes after the drain delay, a
//! call in flight then still finishes, and a stuck client cannot hold the
//! exit past the grace period.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stockroute::pb;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::helpers::{connect, line, us, write_small_world, ServerProcess};

const DRAIN_DELAY_MS: u64 = 800;
const GRACE_MS: u64 = 2_500;

/// When each call of the load ended, and how.
type Outcomes = Arc<Mutex<Vec<(Instant, Result<(), Failure>)>>>;

/// How a call of the load failed.
#[derive(Debug)]
struct Failure {
    code: tonic::Code,
    message: String,
    /// The server's GOAWAY (reason NO_ERROR) refused the call before it was
    /// sent. tonic maps that reason to INTERNAL, though the server never saw
    /// the call.
    refused_by_go_away: bool,
}

impl Failure {
    fn of(status: &tonic::Status) -> Self {
        let mut source = std::error::Error::source(status);
        let mut refused_by_go_away = false;
        while let Some(e) = source {
            if let Some(h2) = e.downcast_ref::<h2::Error>() {
                refused_by_go_away =
                    h2.is_go_away() && h2.is_remote() && h2.reason() == Some(h2::Reason::NO_ERROR);
                break;
            }
            source = e.source();
        }
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            refused_by_go_away,
        }
    }
}

/// A feed push that sends one row every `gap` for `rows` rows.
fn slow_feed(rows: usize, gap: Duration) -> ReceiverStream<pb::FeedChunk> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let header = pb::FeedChunk {
            supplier_id: "SUP001".into(),
            data: b"supplier_sku,sku,qty,unit_cost\n".to_vec(),
            full_snapshot: false,
        };
        if tx.send(header).await.is_err() {
            return;
        }
        for i in 0..rows {
            tokio::time::sleep(gap).await;
            let row = format!("SLOW-{i},SR-{:06},5,1.00\n", i + 1);
            let chunk = pb::FeedChunk {
                data: row.into_bytes(),
                ..Default::default()
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_in_order_and_exits_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    write_small_world(dir.path());
    let drain = DRAIN_DELAY_MS.to_string();
    let grace = GRACE_MS.to_string();
    let mut server = ServerProcess::spawn(
        &[
            "--data",
            dir.path().to_str().unwrap(),
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        &[
            ("STOCKROUTE_SERVER__DRAIN_DELAY_MS", &drain),
            ("STOCKROUTE_SERVER__SHUTDOWN_GRACE_MS", &grace),
            ("STOCKROUTE_FEEDS__SCHEDULE", "false"),
            ("RUST_LOG", "info"),
        ],
    );
    let (grpc, _http) = server.addresses();
    server.wait_for("ready", Duration::from_secs(60));
    let addr = grpc.parse().unwrap();
    let channel = connect(addr).await;

    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "stockroute.v1.Fulfillment".into(),
        })
        .await
        .expect("health watch")
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    // Load: callers quoting in a loop, each on its own connection, logging
    // when each call ended and how.
    let outcomes: Outcomes = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = Vec::new();
    for c in 0..4 {
        let (outcomes, stop) = (Arc::clone(&outcomes), Arc::clone(&stop));
        let channel = connect(addr).await;
        callers.push(tokio::spawn(async move {
            let mut client = pb::fulfillment_client::FulfillmentClient::new(channel);
            let mut n = c;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let request = pb::QuoteRequest {
                    lines: vec![line(&format!("SR-{:06}", 1 + n % 500), 1)],
                    ship_to: us("10001"),
                    options: Some(pb::QuoteOptions {
                        allow_partial: true,
                        ..Default::default()
                    }),
                };
                let outcome = client
                    .quote(request)
                    .await
                    .map(|_| ())
                    .map_err(|e| Failure::of(&e));
                let failed = outcome.is_err();
                outcomes.lock().unwrap().push((Instant::now(), outcome));
                if failed {
                    break;
                }
            }
        }));
    }
    // A stuck client: opens a feed push and never finishes it.
    let (stuck_tx, stuck_rx) = tokio::sync::mpsc::channel::<pb::FeedChunk>(1);
    stuck_tx
        .send(pb::FeedChunk {
            supplier_id: "SUP002".into(),
            data: b"supplier_sku,qty,unit_cost\n".to_vec(),
            full_snapshot: false,
        })
        .await
        .unwrap();
    let mut stuck_client = pb::catalog_client::CatalogClient::new(connect(addr).await);
    let stuck = tokio::spawn(async move {
        stuck_client
            .ingest_feed(ReceiverStream::new(stuck_rx))
            .await
            .map(|_| ())
    });
    // A slow push that is in flight when the port closes and ends after it.
    let mut pusher = pb::catalog_client::CatalogClient::new(connect(addr).await);
    let slow = tokio::spawn(async move {
        pusher
            .ingest_feed(slow_feed(15, Duration::from_millis(100)))
            .await
            .map(|r| r.into_inner())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let term = Instant::now();
    server.terminate();
    let not_serving = loop {
        let m = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .expect("health changes within 5 s")
            .expect("watch stream")
            .expect("a status");
        if m.status == ServingStatus::NotServing as i32 {
            break Instant::now();
        }
    };
    drop(watch);

    let report = slow
        .await
        .unwrap()
        .expect("the push in flight when the port closed finishes");
    assert_eq!(report.rows_read, 15);
    assert_eq!(report.rows_applied, 15);
    let closed_by = term + Duration::from_millis(DRAIN_DELAY_MS);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let exit = server.wait_exit(Duration::from_millis(DRAIN_DELAY_MS + GRACE_MS + 5_000));
    let exited_after = term.elapsed();
    for c in callers {
        c.await.unwrap();
    }
    let _ = stuck.await;
    drop(stuck_tx);

    assert!(exit.success(), "exit status {exit:?}");
    // The stuck push held the exit until the grace ran out, and no longer.
    let floor = Duration::from_millis(DRAIN_DELAY_MS + GRACE_MS);
    assert!(
        exited_after >= floor && exited_after < floor + Duration::from_secs(4),
        "exited {exited_after:?} after SIGTERM"
    );
    let outcomes = outcomes.lock().unwrap();
    let first_failure = outcomes
        .iter()
        .filter(|(_, o)| o.is_err())
        .map(|(t, _)| *t)
        .min();
    let answered_while_draining = outcomes
        .iter()
        .filter(|(t, o)| o.is_ok() && *t > not_serving && *t < closed_by)
        .count();
    eprintln!(
        "NOT_SERVING {:?} after SIGTERM; {} calls answered while draining; first refused call {:?} after SIGTERM; exit after {:?}",
        not_serving - term,
        answered_while_draining,
        first_failure.map(|t| t - term),
        exited_after
    );
    for (t, o) in outcomes.iter() {
        if let Err(failure) = o {
            eprintln!(
                "failed {:?} after SIGTERM: {:?} {} (refused by GOAWAY: {})",
                *t - term,
                failure.code,
                failure.message,
                failure.refused_by_go_away
            );
        }
    }
    assert!(
        answered_while_draining > 0,
        "calls are still answered while health says NOT_SERVING"
    );
    if let Some(t) = first_failure {
        assert!(
            t > closed_by,
            "no call failed while draining (first failure {:?} after SIGTERM)",
            t - term
        );
    }
    // After the port closed, a caller's next call cannot reach the server: its
    // channel reports the closed connection (UNAVAILABLE, or CANCELLED when the
    // request was still queued in the client), or the server's GOAWAY refused
    // it before it was sent. Calls the server had taken finish: the slow push
    // above shows it.
    for (_, o) in outcomes.iter() {
        if let Err(failure) = o {
            assert!(
                matches!(
                    failure.code,
                    tonic::Code::Unavailable | tonic::Code::Cancelled
                ) || failure.refused_by_go_away,
                "calls after the port closed fail only for the closed connection: {failure:?}"
            );
        }
    }
}
