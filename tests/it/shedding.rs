//! A Reserve storm at three times the concurrency limit: the excess is
//! refused fast with RESOURCE_EXHAUSTED, admitted calls answer within their
//! deadline, and retrying every refused call with its idempotency key ends
//! with exactly one reservation per key and every unit accounted for.
//!
//! The assertions are on counts and invariants; the only timing checks are
//! against the calls' own deadline, so a loaded machine slows the test down
//! without failing it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockroute::pb;
use tonic::transport::Channel;
use tonic::Code;

use crate::helpers::{connect, line, push_feed, spawn_app_with, us};
use crate::reservations::{basket, held_units, reserve, SUPPLIER};

const LIMIT: usize = 4;
const CALLERS: usize = 3 * LIMIT;
const KEYS_PER_CALLER: usize = 20;
/// Each call's deadline: generous, so that only a real stall misses it.
const DEADLINE: Duration = Duration::from_secs(10);
const SKUS: [&str; 3] = ["SR-000061", "SR-000062", "SR-000063"];
/// Units beyond the storm's demand: what must be left available at the end
/// (less would mean a doubled hold, more a lost one).
const SLACK: u32 = 7;

/// The key's basket: one SKU, 1 to 3 units.
fn demand(caller: usize, k: usize) -> (String, &'static str, u32) {
    let n = caller * KEYS_PER_CALLER + k;
    (
        format!("storm-{caller}-{k}"),
        SKUS[n % SKUS.len()],
        1 + (n % 3) as u32,
    )
}

#[derive(Default)]
struct Caller {
    /// key → (reservation id, units asked for)
    accepted: Vec<(String, String, u32)>,
    accepted_us: Vec<u64>,
    refused_us: Vec<u64>,
    /// Anything but an answer or an overload refusal.
    other: Vec<String>,
}

/// One caller on its own connection: every key reserved once, each refused
/// attempt retried with the same key after a short pause until it is taken.
async fn storm_caller(channel: Channel, caller: usize) -> Caller {
    let mut f = pb::fulfillment_client::FulfillmentClient::new(channel);
    let mut out = Caller::default();
    for k in 0..KEYS_PER_CALLER {
        let (key, sku, qty) = demand(caller, k);
        loop {
            let mut request = tonic::Request::new(reserve(&key, basket(sku, qty)));
            request.set_timeout(DEADLINE);
            let t = Instant::now();
            let answer = f.reserve(request).await;
            let us = t.elapsed().as_micros() as u64;
            match answer {
                Ok(r) => {
                    out.accepted_us.push(us);
                    let r = r.into_inner();
                    out.accepted.push((key.clone(), r.reservation_id, qty));
                    break;
                }
                Err(e)
                    if e.code() == Code::ResourceExhausted
                        && e.message().contains("server overloaded") =>
                {
                    out.refused_us.push(us);
                    tokio::time::sleep(Duration::from_millis(1 + (caller % 3) as u64)).await;
                }
                Err(e) => {
                    out.other
                        .push(format!("{key}: {:?}: {}", e.code(), e.message()));
                    break;
                }
            }
        }
    }
    out
}

/// `SUPPLIER`'s available units of each of `SKUS`, retrying refused calls.
async fn availability(channel: Channel) -> Vec<u32> {
    let mut f = pb::fulfillment_client::FulfillmentClient::new(channel);
    loop {
        let answer = f
            .check_stock(pb::CheckStockRequest {
                lines: SKUS.iter().map(|s| line(s, 1)).collect(),
                ship_to: us("10001"),
                realtime_budget_ms: 0,
            })
            .await;
        match answer {
            Ok(r) => {
                return r
                    .into_inner()
                    .lines
                    .iter()
                    .map(|l| {
                        l.offers
                            .iter()
                            .find(|o| o.supplier_id == SUPPLIER)
                            .map_or(0, |o| o.available)
                    })
                    .collect()
            }
            Err(e) if e.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(e) => panic!("check stock: {e:?}"),
        }
    }
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_storm_at_3x_the_limit_sheds_and_loses_or_doubles_nothing() {
    let app = spawn_app_with(|c| c.server.concurrency_max = LIMIT).await;

    // Exactly the storm's demand plus SLACK, from the one supplier the baskets may use.
    let mut stock: HashMap<&str, u32> = SKUS.iter().map(|s| (*s, SLACK)).collect();
    for caller in 0..CALLERS {
        for k in 0..KEYS_PER_CALLER {
            let (_, sku, qty) = demand(caller, k);
            *stock.get_mut(sku).unwrap() += qty;
        }
    }
    let mut csv = String::from("supplier_sku,sku,qty,unit_cost\n");
    for sku in SKUS {
        csv += &format!("X-{sku},{sku},{},4.25\n", stock[sku]);
    }
    let r = push_feed(&app, SUPPLIER, true, &csv, 1 << 16)
        .await
        .expect("feed");
    assert_eq!(r.rows_applied, SKUS.len() as u64);
    let initial: Vec<u32> = SKUS.iter().map(|s| stock[s]).collect();
    assert_eq!(availability(app.channel.clone()).await, initial);

    // While the storm runs, availability only goes down and never below SLACK.
    let storming = Arc::new(AtomicBool::new(true));
    let watcher = {
        let storming = Arc::clone(&storming);
        let channel = app.channel.clone();
        let initial = initial.clone();
        tokio::spawn(async move {
            let mut last = initial;
            let mut samples = 0;
            while storming.load(Ordering::Relaxed) {
                let now = availability(channel.clone()).await;
                for (i, (n, l)) in now.iter().zip(&last).enumerate() {
                    assert!(
                        n <= l && *n >= SLACK,
                        "{}: availability went from {l} to {n} during the storm",
                        SKUS[i]
                    );
                }
                last = now;
                samples += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        })
    };

    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|c| {
            let addr = app.app.grpc_addr;
            tokio::spawn(async move { storm_caller(connect(addr).await, c).await })
        })
        .collect();
    let mut all = Caller::default();
    for c in callers {
        let r = tokio::time::timeout(Duration::from_secs(300), c)
            .await
            .expect("the storm ends")
            .unwrap();
        all.accepted.extend(r.accepted);
        all.accepted_us.extend(r.accepted_us);
        all.refused_us.extend(r.refused_us);
        all.other.extend(r.other);
    }
    let storm = started.elapsed();
    storming.store(false, Ordering::Relaxed);
    let samples = watcher.await.expect("availability stayed sane");

    assert!(all.other.is_empty(), "{:#?}", all.other);
    let keys = CALLERS * KEYS_PER_CALLER;
    assert_eq!(all.accepted.len(), keys, "every key taken in the end");
    let (accepted_max, refused_max) = (
        all.accepted_us.iter().copied().max().unwrap_or(0),
        all.refused_us.iter().copied().max().unwrap_or(0),
    );
    let (accepted_p50, refused_p50) = (
        percentile(&mut all.accepted_us, 0.5),
        percentile(&mut all.refused_us, 0.5),
    );
    eprintln!(
        "storm of {keys} keys from {CALLERS} callers against a limit of {LIMIT} in {storm:?}: \
         {} refusals (p50 {refused_p50} us, max {refused_max} us), accepted p50 \
         {accepted_p50} us, max {accepted_max} us; {samples} availability samples",
        all.refused_us.len(),
    );
    assert!(
        !all.refused_us.is_empty(),
        "{CALLERS} callers against a limit of {LIMIT} must be shed"
    );
    let deadline_us = DEADLINE.as_micros() as u64;
    assert!(
        accepted_max < deadline_us,
        "accepted calls within the deadline"
    );
    assert!(
        refused_max < deadline_us,
        "every refusal ({refused_max} us at most) came before a call's deadline"
    );

    // One distinct reservation per key, each holding what its key asked for.
    let mut ids = HashMap::new();
    for (key, id, _) in &all.accepted {
        assert!(
            ids.insert(id.clone(), key.clone()).is_none(),
            "{id} for two keys"
        );
    }
    let mut f = app.fulfillment();
    let mut held: HashMap<&str, u32> = HashMap::new();
    for (caller, k) in (0..CALLERS).flat_map(|c| (0..KEYS_PER_CALLER).map(move |k| (c, k))) {
        let (key, sku, qty) = demand(caller, k);
        let (_, id, _) = all.accepted.iter().find(|(k, _, _)| *k == key).unwrap();
        let got = f
            .get_reservation(pb::GetReservationRequest {
                reservation_id: id.clone(),
            })
            .await
            .expect("acknowledged reservation exists")
            .into_inner();
        assert_eq!(got.state, pb::reservation::State::Held as i32, "{key}");
        assert_eq!(held_units(&got), qty, "{key} holds what it asked for");
        // The key answers with that same reservation from now on.
        let again = f
            .reserve(reserve(&key, basket(sku, qty)))
            .await
            .expect("replay")
            .into_inner();
        assert_eq!(&again.reservation_id, id, "{key} replays its reservation");
        *held.entry(sku).or_default() += held_units(&got);
    }

    // Units held are the sum over the reservations, and nothing else is held.
    let after = availability(app.channel.clone()).await;
    for (i, sku) in SKUS.iter().enumerate() {
        assert_eq!(held[sku] + SLACK, stock[sku], "{sku}: demand adds up");
        assert_eq!(
            after[i], SLACK,
            "{sku}: available = stock {} - held {}",
            stock[sku], held[sku]
        );
    }
}
