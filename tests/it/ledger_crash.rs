//! `kill -9` of the real binary in the middle of a reservation storm: after a
//! restart with the same arguments every acknowledged operation is there,
//! and the units held are exactly those of the reservations that exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stockroute::pb;
use tonic::Code;

use crate::helpers::{line, us, write_small_world, ServerProcess};

const SKU: &str = "SR-000077";
const UNITS: u32 = 5_000;

/// What the storm was told, per idempotency key.
#[derive(Debug, Clone, Default)]
struct Told {
    /// The reservation, once Reserve answered.
    id: Option<String>,
    /// Units it holds.
    units: u32,
    /// Commit answered OK.
    committed: bool,
    /// Release answered OK.
    released: bool,
}

fn basket(qty: u32) -> pb::QuoteRequest {
    pb::QuoteRequest {
        lines: vec![line(SKU, qty)],
        ship_to: us("10001"),
        options: Some(pb::QuoteOptions {
            // SUP002 has no real-time gateway: its feed file is all there is.
            exclude_suppliers: (1..=12)
                .map(|i| format!("SUP{i:03}"))
                .filter(|s| s != "SUP002")
                .collect(),
            ..pb::QuoteOptions::default()
        }),
    }
}

fn reserve(key: &str, qty: u32) -> pb::ReserveRequest {
    pb::ReserveRequest {
        idempotency_key: key.into(),
        source: Some(pb::reserve_request::Source::Basket(basket(qty))),
        hold_seconds: 3_000,
    }
}

fn start(dir: &std::path::Path) -> (ServerProcess, String) {
    let server = ServerProcess::spawn(
        &[
            "--data",
            dir.to_str().unwrap(),
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        &[
            ("STOCKROUTE_FEEDS__SCHEDULE", "false"),
            ("STOCKROUTE_SERVER__CONCURRENCY_MAX", "2000"),
            ("STOCKROUTE_PURCHASE_ORDERS__ENABLED", "false"),
            ("RUST_LOG", "info"),
        ],
    );
    let (grpc, _) = server.addresses();
    server.wait_for("ready", Duration::from_secs(120));
    (server, format!("http://{grpc}"))
}

async fn client(
    addr: &str,
) -> pb::fulfillment_client::FulfillmentClient<tonic::transport::Channel> {
    pb::fulfillment_client::FulfillmentClient::connect(addr.to_owned())
        .await
        .expect("connect")
}

async fn available(addr: &str) -> u32 {
    let r = client(addr)
        .await
        .check_stock(pb::CheckStockRequest {
            lines: vec![line(SKU, 1)],
            ship_to: us("10001"),
            realtime_budget_ms: 0,
        })
        .await
        .expect("check stock")
        .into_inner();
    r.lines[0]
        .offers
        .iter()
        .find(|o| o.supplier_id == "SUP002")
        .map_or(0, |o| o.available)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_storm_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    write_small_world(dir.path());
    // One supplier, one SKU, a known number of units, in the feed file itself
    // so that the restart loads the same stock (same file, same data time).
    std::fs::write(
        dir.path().join("feeds/SUP002.csv"),
        format!("supplier_sku,sku,qty,unit_cost\nX-77,{SKU},{UNITS},3.10\n"),
    )
    .unwrap();

    let (server, addr) = start(dir.path());
    let told: Arc<Mutex<HashMap<String, Told>>> = Arc::default();
    let storm_started = Instant::now();
    let workers: Vec<_> = (0..24)
        .map(|w| {
            let (addr, told) = (addr.clone(), Arc::clone(&told));
            tokio::spawn(async move {
                let mut f = client(&addr).await;
                for n in 0.. {
                    let key = format!("crash-{w}-{n}");
                    let qty = 1 + (n % 3) as u32;
                    told.lock().unwrap().insert(key.clone(), Told::default());
                    let r = match f.reserve(reserve(&key, qty)).await {
                        Ok(r) => r,
                        Err(e) if e.code() == Code::FailedPrecondition => {
                            // Answered: it did not happen.
                            told.lock().unwrap().remove(&key);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        }
                        // The server is gone: this one may or may not have happened.
                        Err(_) => return,
                    };
                    let id = r.into_inner().reservation_id;
                    {
                        let mut t = told.lock().unwrap();
                        let e = t.get_mut(&key).unwrap();
                        e.id = Some(id.clone());
                        e.units = qty;
                    }
                    let outcome = match n % 3 {
                        0 => f
                            .commit(pb::CommitRequest {
                                reservation_id: id.clone(),
                                order_ref: format!("O-{key}"),
                            })
                            .await
                            .map(|_| true),
                        1 => f
                            .release(pb::ReleaseRequest {
                                reservation_id: id.clone(),
                                reason: "storm".into(),
                                cancel_allocation: false,
                            })
                            .await
                            .map(|_| false),
                        _ => continue,
                    };
                    match outcome {
                        Ok(committed) => {
                            let mut t = told.lock().unwrap();
                            let e = t.get_mut(&key).unwrap();
                            e.committed = committed;
                            e.released = !committed;
                        }
                        Err(e) if e.code() == Code::Unavailable || e.code() == Code::Unknown => {
                            return
                        }
                        Err(_) => {}
                    }
                }
            })
        })
        .collect();
    // Let the storm run, then kill the server without warning.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let acked_before_kill = told
        .lock()
        .unwrap()
        .values()
        .filter(|t| t.id.is_some())
        .count();
    let mut server = server;
    let pid = server.pid();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    server.wait_exit(Duration::from_secs(10));
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }
    let told = told.lock().unwrap().clone();
    let acked = told.values().filter(|t| t.id.is_some()).count();
    assert!(
        acked >= 20 && acked >= acked_before_kill,
        "the storm made too few reservations to prove anything ({acked} in {:?})",
        storm_started.elapsed()
    );

    let unknown = told.values().filter(|t| t.id.is_none()).count();
    eprintln!("{acked} reservations acknowledged, {unknown} in flight at the kill");
    let (_server, addr) = start(dir.path());
    let mut f = client(&addr).await;
    let mut units_live = 0u32;
    for (key, t) in &told {
        match &t.id {
            Some(id) => {
                let r = f
                    .get_reservation(pb::GetReservationRequest {
                        reservation_id: id.clone(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("acknowledged reservation {id} ({key}) lost: {e}"))
                    .into_inner();
                let state = pb::reservation::State::try_from(r.state).unwrap();
                if t.committed {
                    assert_eq!(state, pb::reservation::State::Committed, "{key}");
                }
                if t.released {
                    assert_eq!(state, pb::reservation::State::Released, "{key}");
                }
                // The same key still answers the same reservation.
                let again = f.reserve(reserve(key, t.units)).await.unwrap().into_inner();
                assert_eq!(&again.reservation_id, id, "{key}");
                if matches!(
                    state,
                    pb::reservation::State::Held | pb::reservation::State::Committed
                ) {
                    units_live += t.units;
                }
            }
            None => {
                // Sent but never answered: it happened whole or not at all.
                // Asking again settles which (and reserves it if it did not).
                let qty = told_qty(key);
                if let Ok(r) = f.reserve(reserve(key, qty)).await {
                    let r = r.into_inner();
                    if matches!(
                        pb::reservation::State::try_from(r.state).unwrap(),
                        pb::reservation::State::Held | pb::reservation::State::Committed
                    ) {
                        units_live += qty;
                    }
                }
            }
        }
    }
    assert_eq!(
        available(&addr).await,
        UNITS - units_live,
        "every unit held belongs to a reservation that exists"
    );
}

/// Units the storm asked for under `key` (`crash-{w}-{n}` asks 1 + n % 3).
fn told_qty(key: &str) -> u32 {
    let n: u32 = key.rsplit('-').next().unwrap().parse().unwrap();
    1 + n % 3
}
