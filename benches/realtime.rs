//! Real-time supplier stock: what it costs a Quote, and whether hanging
//! suppliers can make a Quote late.
//!
//! Both parts run the default demo world (120 suppliers, 15 of them real-time
//! fakes on loopback, 100,000 products) in this process, started as
//! `stockroute serve` starts it.
//!
//! 1. Criterion, in-process (no gRPC): planning a 3-line basket whose lines
//!    real-time suppliers carry, (a) from the feeds alone, and (b) with the
//!    real-time step in front, every answer already in the cache (gather:
//!    questions, cache lookups, overlay; then the same planning through the
//!    overlay). Goal: (b) − (a) ≤ 20 µs.
//! 2. Deadline under hangs (plain loop, HdrHistogram): Quote over gRPC with
//!    `realtime_budget_ms = 50`, 4 callers, every basket holding a product of
//!    one of the 2 hanging suppliers, cache off so that every call asks.
//!    Once with the default breaker (the hanging suppliers' circuits open and
//!    are probed every 5 s) and once with the breaker effectively off, so
//!    every call waits for the hanging suppliers for its whole budget.
//!    Goal: p99 ≤ budget + 5 ms and no call fails.
//!
//! Run: `cargo bench --bench realtime`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hdrhistogram::Histogram;
use stockroute::adapters::http::suppliers::fake::{FakeBehaviour, Fault};
use stockroute::app::{self, RunningApp};
use stockroute::config::Config;
use stockroute::domain::address::Address;
use stockroute::domain::planner::{Objective, PlanOptions};
use stockroute::domain::quoting::{Demand, QuoteInput};
use stockroute::domain::realtime::Overlay;
use stockroute::domain::suppliers::SupplierId;
use stockroute::pb;

const BUDGET_MS: u32 = 50;
const CALLERS: usize = 4;
const HANG_RUN: Duration = Duration::from_secs(15);
const GOAL_SLACK_MS: u64 = 5;
const OVERHEAD_GOAL_US: f64 = 20.0;

fn config(cache: bool, breaker: bool) -> Config {
    let mut c = Config::default();
    c.server.grpc_addr = "127.0.0.1:0".into();
    c.server.http_addr = "127.0.0.1:0".into();
    c.feeds.schedule = false;
    c.log.level = "warn".into();
    // The bench's callers share the process: its CPU is not the server's.
    c.server.shed_cpu_percent = 0;
    if !cache {
        c.realtime.cache_ttl_ms = 0;
    } else {
        // Long enough that nothing expires or refreshes during the measurement.
        c.realtime.cache_ttl_ms = 600_000;
        c.realtime.refresh_ahead_pct = 0;
    }
    if !breaker {
        c.realtime.breaker_failures = u32::MAX;
    }
    c
}

async fn start(config: Config) -> RunningApp {
    let running = app::start(config).await.expect("server starts");
    tokio::time::timeout(Duration::from_secs(120), running.wait_ready())
        .await
        .expect("ready");
    running
}

/// Products carried by real-time suppliers, by supplier (first `per` of each).
fn realtime_products(running: &RunningApp, per: usize) -> HashMap<SupplierId, Vec<Demand>> {
    let world = &running.world;
    let live: Vec<SupplierId> = world
        .suppliers
        .iter()
        .filter(|(_, s)| s.realtime.is_some())
        .map(|(id, _)| id)
        .collect();
    let view = world.index.view();
    let mut out: HashMap<SupplierId, Vec<Demand>> = HashMap::new();
    for p in 0..world.catalog.len() as u32 {
        for o in view.offers(p) {
            if live.contains(&o.supplier) {
                let list = out.entry(o.supplier).or_default();
                if list.len() < per {
                    let sku = world
                        .catalog
                        .get(p)
                        .map(|x| x.sku.to_string())
                        .unwrap_or_default();
                    list.push(Demand {
                        line: 0,
                        sku,
                        product: Some(p),
                        qty: 1,
                    });
                }
            }
        }
    }
    out
}

fn ship_to() -> Address {
    Address {
        country_code: "US".into(),
        postal_code: "10001".into(),
        residential: false,
    }
}

/// Part 1: the cache-hit path against feed-only planning.
fn cache_hit_overhead(c: &mut Criterion, rt: &tokio::runtime::Runtime) -> Paired {
    let running = rt.block_on(start(config(true, true)));
    let realtime = running
        .realtime
        .clone()
        .expect("the demo world has real-time suppliers");
    let world = running.world.clone();
    let by_supplier = realtime_products(&running, 40);
    let suppliers: Vec<SupplierId> = by_supplier.keys().copied().collect();
    // 3-line baskets, each line from a different real-time supplier.
    let baskets: Vec<QuoteInput> = (0..64)
        .map(|i| QuoteInput {
            lines: (0..3)
                .map(|k| {
                    let s = suppliers[(i + k * 5) % suppliers.len()];
                    let list = &by_supplier[&s];
                    Demand {
                        line: k,
                        ..list[(i * 7 + k) % list.len()].clone()
                    }
                })
                .collect(),
            ship_to: ship_to(),
            options: PlanOptions {
                objective: Objective::Cheapest,
                allow_partial: true,
                allow_split_lines: false,
                max_shipments: 0,
                arrive_within_days: 0,
            },
            excluded: Vec::new(),
        })
        .collect();
    // Warm the cache until every basket is answered from it. One pass is not
    // always enough: answers flow into the index, and an offer they change
    // can change which suppliers the next pass asks.
    let mut passes = 0;
    loop {
        passes += 1;
        let mut asked = 0;
        for b in &baskets {
            let o = rt.block_on(realtime.gather(&world, &b.lines, &[], Duration::from_secs(2)));
            let f = o.freshness();
            assert!(f.timed_out == 0 && f.failed == 0, "{f:?}");
            asked += f.queried;
        }
        if asked == 0 {
            break;
        }
        assert!(
            passes < 5,
            "still {asked} suppliers asked after {passes} passes"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut group = c.benchmark_group("quote_3_lines");
    let mut i = 0;
    group.bench_function("feed_only", |b| {
        b.iter(|| {
            i = (i + 1) % baskets.len();
            let input = &baskets[i];
            rt.block_on(async { world.quote(input, &Overlay::default(), 900).is_ok() })
        })
    });
    let mut k = 0;
    group.bench_function("realtime_step_alone_cached", |b| {
        b.iter(|| {
            k = (k + 1) % baskets.len();
            let input = &baskets[k];
            rt.block_on(async {
                realtime
                    .gather(
                        &world,
                        &input.lines,
                        &input.excluded,
                        Duration::from_millis(50),
                    )
                    .await
                    .is_empty()
            })
        })
    });
    let mut e = 0;
    group.bench_function("empty_block_on", |b| {
        b.iter(|| {
            e = (e + 1) % baskets.len();
            rt.block_on(async { baskets[e].lines.len() })
        })
    });
    let mut j = 0;
    group.bench_function("realtime_cache_hit", |b| {
        b.iter(|| {
            j = (j + 1) % baskets.len();
            let input = &baskets[j];
            rt.block_on(async {
                let fresh = realtime
                    .gather(
                        &world,
                        &input.lines,
                        &input.excluded,
                        Duration::from_millis(50),
                    )
                    .await;
                world.quote(input, &fresh, 900).is_ok()
            })
        })
    });
    group.finish();
    let paired = paired(rt, &world, &realtime, &baskets);
    rt.block_on(running.shutdown());
    let read = |name: &str| -> f64 {
        let path = format!("target/criterion/quote_3_lines/{name}/new/estimates.json");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["mean"]["point_estimate"].as_f64().unwrap_or(f64::NAN)
    };
    println!(
        "\nreal-time step alone, all cached: {:.2} µs (an empty block_on: {:.2} µs)",
        read("realtime_step_alone_cached") / 1000.0,
        read("empty_block_on") / 1000.0
    );
    println!(
        "criterion means, cases run tens of seconds apart: feed only {:.1} µs, real-time all cached {:.1} µs",
        read("feed_only") / 1000.0,
        read("realtime_cache_hit") / 1000.0
    );
    paired
}

/// Rounds of the paired measurement.
const PAIRED_ROUNDS: usize = 60;

/// Feed-only and cache-hit quotes of the same baskets, alternated round by
/// round (and which goes first, too), so that the machine's load, which
/// moves over the tens of seconds between criterion's cases, weighs on both
/// alike. Returns the median per-quote time of each (ns) and the median of
/// the per-round differences (ns).
fn paired(
    rt: &tokio::runtime::Runtime,
    world: &stockroute::domain::world::World,
    realtime: &std::sync::Arc<stockroute::domain::realtime::RealtimeStock>,
    baskets: &[QuoteInput],
) -> Paired {
    let per = |d: Duration| d.as_nanos() as f64 / baskets.len() as f64;
    let feed_only = || {
        let t = Instant::now();
        for input in baskets {
            std::hint::black_box(world.quote(input, &Overlay::default(), 900).is_ok());
        }
        per(t.elapsed())
    };
    let cache_hit = || {
        let t = Instant::now();
        for input in baskets {
            rt.block_on(async {
                let fresh = realtime
                    .gather(
                        world,
                        &input.lines,
                        &input.excluded,
                        Duration::from_millis(50),
                    )
                    .await;
                std::hint::black_box(world.quote(input, &fresh, 900).is_ok());
            });
        }
        per(t.elapsed())
    };
    let (mut feeds, mut hits, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..PAIRED_ROUNDS {
        let (feed, hit) = if round % 2 == 0 {
            let f = feed_only();
            (f, cache_hit())
        } else {
            let h = cache_hit();
            (feed_only(), h)
        };
        feeds.push(feed);
        hits.push(hit);
        diffs.push(hit - feed);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Paired {
        feed_ns: median(&mut feeds),
        hit_ns: median(&mut hits),
        added_ns: median(&mut diffs),
    }
}

/// What [`paired`] measured.
struct Paired {
    feed_ns: f64,
    hit_ns: f64,
    added_ns: f64,
}

struct HangRun {
    calls: u64,
    failed: u64,
    hist: Histogram<u64>,
    timed_out: u64,
    circuit_skips: u64,
}

/// Part 2: Quote latency with 2 of the 15 real-time suppliers hanging.
fn hanging_suppliers(rt: &tokio::runtime::Runtime, breaker: bool) -> HangRun {
    rt.block_on(async {
        let running = start(config(false, breaker)).await;
        let by_supplier = realtime_products(&running, 200);
        let mut live: Vec<SupplierId> = by_supplier.keys().copied().collect();
        live.sort_unstable();
        let hanging = [live[0], live[1]];
        let fake = running.fake_suppliers().expect("demo fakes");
        for s in hanging {
            let id = running.world.suppliers.get(s).unwrap().id.clone();
            fake.set_behaviour(&id, FakeBehaviour::with_fault(Fault::Hang));
        }
        let channel =
            tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
                .unwrap()
                .connect()
                .await
                .unwrap();
        // Baskets: a product of a hanging supplier plus two of other real-time suppliers.
        let others: Vec<SupplierId> = live
            .iter()
            .copied()
            .filter(|s| !hanging.contains(s))
            .collect();
        let baskets: Vec<Vec<pb::BasketLine>> = (0..256)
            .map(|i| {
                let h = &by_supplier[&hanging[i % 2]];
                let a = &by_supplier[&others[i % others.len()]];
                let b = &by_supplier[&others[(i * 3 + 1) % others.len()]];
                [
                    &h[i % h.len()],
                    &a[(i * 7) % a.len()],
                    &b[(i * 11) % b.len()],
                ]
                .iter()
                .map(|d| pb::BasketLine {
                    sku: d.sku.clone(),
                    quantity: 1,
                })
                .collect()
            })
            .collect();
        let until = Instant::now() + HANG_RUN;
        let tasks: Vec<_> = (0..CALLERS)
            .map(|w| {
                let channel = channel.clone();
                let baskets = baskets.clone();
                tokio::spawn(async move {
                    let mut client = pb::fulfillment_client::FulfillmentClient::new(channel);
                    let mut run = HangRun {
                        calls: 0,
                        failed: 0,
                        hist: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
                        timed_out: 0,
                        circuit_skips: 0,
                    };
                    let mut i = w;
                    while Instant::now() < until {
                        i = (i + CALLERS) % baskets.len();
                        let started = Instant::now();
                        let r = client
                            .quote(pb::QuoteRequest {
                                lines: baskets[i].clone(),
                                ship_to: Some(pb::Address {
                                    country_code: "US".into(),
                                    postal_code: "10001".into(),
                                    residential: false,
                                }),
                                options: Some(pb::QuoteOptions {
                                    allow_partial: true,
                                    realtime_budget_ms: BUDGET_MS,
                                    ..Default::default()
                                }),
                            })
                            .await;
                        let _ = run.hist.record(started.elapsed().as_micros() as u64);
                        run.calls += 1;
                        match r {
                            Ok(resp) => {
                                let f = resp
                                    .into_inner()
                                    .plan
                                    .and_then(|p| p.freshness)
                                    .unwrap_or_default();
                                run.timed_out += u64::from(f.suppliers_timed_out);
                                run.circuit_skips += u64::from(f.suppliers_failed);
                            }
                            Err(_) => run.failed += 1,
                        }
                    }
                    run
                })
            })
            .collect();
        let mut total = HangRun {
            calls: 0,
            failed: 0,
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
            timed_out: 0,
            circuit_skips: 0,
        };
        for t in tasks {
            let r = t.await.unwrap();
            total.calls += r.calls;
            total.failed += r.failed;
            total.timed_out += r.timed_out;
            total.circuit_skips += r.circuit_skips;
            total.hist.add(&r.hist).unwrap();
        }
        running.shutdown().await;
        total
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(50)
        .measurement_time(Duration::from_secs(8));
    let overhead = cache_hit_overhead(&mut c, &rt);
    let runs = [
        ("default breaker", hanging_suppliers(&rt, true)),
        ("breaker off", hanging_suppliers(&rt, false)),
    ];
    println!("\n== summary ==");
    let added_us = overhead.added_ns / 1000.0;
    println!(
        "quote, 3 lines, paired over {PAIRED_ROUNDS} rounds: feed only {:.1} µs, real-time all cached {:.1} µs (medians); added {added_us:.1} µs (median of the rounds' differences; ratio {:.2}); goal ≤ {OVERHEAD_GOAL_US} µs: {}",
        overhead.feed_ns / 1000.0,
        overhead.hit_ns / 1000.0,
        overhead.hit_ns / overhead.feed_ns,
        if added_us <= OVERHEAD_GOAL_US { "met" } else { "NOT met" }
    );
    let goal_us = u64::from(BUDGET_MS) * 1000 + GOAL_SLACK_MS * 1000;
    for (name, r) in &runs {
        let p = |q: f64| r.hist.value_at_quantile(q) as f64 / 1000.0;
        let p99_us = r.hist.value_at_quantile(0.99);
        println!(
            "2 of 15 hanging, budget {BUDGET_MS} ms, {name}: {} calls, {} failed; supplier timeouts {}, failed/skipped {}; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; p99 / (budget + {GOAL_SLACK_MS} ms) = {:.3}: {}",
            r.calls,
            r.failed,
            r.timed_out,
            r.circuit_skips,
            p(0.5),
            p(0.9),
            p(0.99),
            p(0.999),
            r.hist.max() as f64 / 1000.0,
            p99_us as f64 / goal_us as f64,
            if p99_us <= goal_us && r.failed == 0 { "met" } else { "NOT met" }
        );
    }
}
