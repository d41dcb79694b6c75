//! The real-time clients against fake suppliers on loopback.

use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::fake::{FakeBehaviour, FakeItem, FakeSupplierServer, Fault, Latency};
use super::*;
use crate::domain::realtime::{ItemState, StockQuestion};

const BUDGET: Duration = Duration::from_millis(300);

fn config() -> RealtimeConfig {
    RealtimeConfig {
        breaker_failures: 3,
        breaker_open_ms: 200,
        breaker_timeout_min_ms: 10,
        ..RealtimeConfig::default()
    }
}

fn registry(n: usize, extra: &str) -> SupplierRegistry {
    let mut toml = String::new();
    for i in 0..n {
        toml.push_str(&format!(
            "[[supplier]]\nid = \"SUP{i}\"\norigin = {{ country_code = \"US\", postal_code = \"10001\" }}\nrealtime = {{ base_url = \"fake:SUP{i}\"{extra} }}\n"
        ));
    }
    SupplierRegistry::from_toml(&toml, "USD").unwrap()
}

fn items() -> Vec<FakeItem> {
    (0..5)
        .map(|i| FakeItem {
            supplier_sku: format!("X-{i}"),
            available: 10 + i,
            unit_cost: Decimal::new(1000 + i64::from(i), 2),
        })
        .collect()
}

/// A fake server with `n` suppliers and clients pointed at it.
async fn setup(
    n: usize,
    config: RealtimeConfig,
    extra: &str,
) -> (FakeSupplierServer, SupplierClients) {
    let fake = FakeSupplierServer::start(3).await.unwrap();
    let mut urls = HashMap::new();
    for i in 0..n {
        let id = format!("SUP{i}");
        urls.insert(id.clone(), fake.add_supplier(&id, items()));
    }
    let clients = SupplierClients::new(&config, &registry(n, extra), "USD", &urls).unwrap();
    (fake, clients)
}

fn question(supplier: SupplierId, skus: &[&str]) -> SupplierQuestion {
    SupplierQuestion {
        supplier,
        items: skus
            .iter()
            .enumerate()
            .map(|(i, s)| StockQuestion {
                product: i as ProductId,
                supplier_sku: (*s).into(),
                quantity: 1,
            })
            .collect(),
    }
}

async fn ask(clients: &SupplierClients, q: SupplierQuestion, budget: Duration) -> SupplierAnswer {
    let mut answers = clients.ask(&[q], budget).await;
    answers.pop().unwrap()
}

fn known(a: &SupplierAnswer, product: ProductId) -> Option<(u32, u32, bool)> {
    a.items
        .iter()
        .find(|i| i.product == product)
        .and_then(|i| match i.state {
            ItemState::Known { available, cost } => Some((available, cost, i.cached)),
            ItemState::Unknown => None,
        })
}

/// One batched call answers every item; the next request is served from the cache,
/// unknown items included, without calling the supplier.
#[tokio::test]
async fn answers_in_one_batch_then_from_the_cache() {
    let (fake, clients) = setup(1, config(), "").await;
    let a = ask(&clients, question(0, &["X-1", "X-3", "NOPE"]), BUDGET).await;
    assert_eq!(a.outcome, AskOutcome::Answered);
    assert_eq!(known(&a, 0), Some((11, 100_100, false)));
    assert_eq!(known(&a, 1), Some((13, 100_300, false)));
    let unknown = a.items.iter().find(|i| i.product == 2).unwrap();
    assert_eq!(unknown.state, ItemState::Unknown);
    assert_eq!(
        fake.stock_requests("SUP0"),
        vec![vec!["X-1", "X-3", "NOPE"]]
    );

    let b = ask(&clients, question(0, &["X-1", "X-3", "NOPE"]), BUDGET).await;
    assert_eq!(b.outcome, AskOutcome::Cached);
    assert_eq!(known(&b, 0), Some((11, 100_100, true)));
    assert_eq!(
        b.items.iter().find(|i| i.product == 2).unwrap().state,
        ItemState::Unknown
    );
    assert_eq!(fake.calls("SUP0").stock, 1);

    // Only the item missing from the cache is asked.
    let c = ask(&clients, question(0, &["X-1", "X-4"]), BUDGET).await;
    assert_eq!(c.outcome, AskOutcome::Answered);
    assert_eq!(fake.stock_requests("SUP0")[1], vec!["X-4"]);
}

/// Concurrent requests for the same items share one upstream call.
#[tokio::test]
async fn concurrent_requests_coalesce() {
    let (fake, clients) = setup(1, config(), "").await;
    fake.set_behaviour(
        "SUP0",
        FakeBehaviour::with_latency(Latency::Fixed(Duration::from_millis(80))),
    );
    let asks = (0..8).map(|_| ask(&clients, question(0, &["X-0", "X-2"]), BUDGET));
    let answers = futures::future::join_all(asks).await;
    for a in &answers {
        assert_eq!(a.outcome, AskOutcome::Answered);
        assert_eq!(known(a, 1), Some((12, 100_200, false)));
    }
    assert_eq!(fake.calls("SUP0").stock, 1);
}

/// Requests to several suppliers run at the same time, not one after another.
#[tokio::test]
async fn suppliers_are_asked_concurrently() {
    let (fake, clients) = setup(4, config(), "").await;
    for i in 0..4 {
        fake.set_behaviour(
            &format!("SUP{i}"),
            FakeBehaviour::with_latency(Latency::Fixed(Duration::from_millis(400))),
        );
    }
    let qs: Vec<SupplierQuestion> = (0..4).map(|s| question(s, &["X-0"])).collect();
    let answers = clients.ask(&qs, Duration::from_secs(10)).await;
    assert!(answers.iter().all(|a| a.outcome == AskOutcome::Answered));
    assert_eq!(fake.peak_concurrent_stock_calls(), 4);
}

/// A hanging supplier costs the budget and no more, and says it timed out. (The bounds in these
/// tests are loose: the machine may be busy; the latency goal lives in `benches/realtime.rs`.)
#[tokio::test]
async fn hangs_time_out_within_the_budget() {
    let (fake, clients) = setup(2, config(), "").await;
    fake.set_behaviour("SUP1", FakeBehaviour::with_fault(Fault::Hang));
    let started = Instant::now();
    let answers = clients
        .ask(
            &[question(0, &["X-0"]), question(1, &["X-0"])],
            Duration::from_millis(100),
        )
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(answers[0].outcome, AskOutcome::Answered);
    assert_eq!(answers[1].outcome, AskOutcome::TimedOut);
    assert!(answers[1].items.is_empty());
}

/// Broken answers are dropped for the request, each failing the supplier with its reason.
#[tokio::test]
async fn broken_answers_fail_the_supplier() {
    let mut cfg = config();
    cfg.response_bytes_max = 64 * 1024;
    cfg.breaker_failures = 100;
    let (fake, clients) = setup(1, cfg, "").await;
    let cases = [
        (Fault::Status(503), "HTTP 503"),
        (Fault::Malformed, "malformed"),
        (Fault::Oversized { bytes: 1_000_000 }, "over 65536 bytes"),
    ];
    for (fault, want) in cases {
        fake.set_behaviour("SUP0", FakeBehaviour::with_fault(fault));
        let a = ask(&clients, question(0, &["X-0"]), BUDGET).await;
        match &a.outcome {
            AskOutcome::Failed(why) => assert!(why.contains(want), "{fault:?}: {why}"),
            other => panic!("{fault:?}: {other:?}"),
        }
        assert!(a.items.is_empty());
    }
    // Wrong types and negative stock drop the items; the supplier answered.
    for fault in [Fault::WrongTypes, Fault::NegativeStock] {
        fake.set_behaviour("SUP0", FakeBehaviour::with_fault(fault));
        let a = ask(&clients, question(0, &["X-1", "X-2"]), BUDGET).await;
        assert_eq!(a.outcome, AskOutcome::Answered, "{fault:?}");
        assert!(a.items.is_empty(), "{fault:?}: dropped, not unknown");
    }
    // A slow drip longer than the budget is a timeout.
    fake.set_behaviour(
        "SUP0",
        FakeBehaviour::with_fault(Fault::SlowDrip {
            chunk_bytes: 8,
            pause: Duration::from_millis(50),
        }),
    );
    let started = Instant::now();
    let a = ask(&clients, question(0, &["X-3"]), Duration::from_millis(150)).await;
    assert_eq!(a.outcome, AskOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3));
    // Nothing broken was cached: a good answer is asked for and used.
    fake.set_behaviour("SUP0", FakeBehaviour::default());
    let a = ask(&clients, question(0, &["X-1"]), BUDGET).await;
    assert_eq!(known(&a, 0), Some((11, 100_100, false)));
}

/// Consecutive failures open the circuit (the supplier is then not called); after the open
/// period one probe goes through and, answered, closes it.
#[tokio::test]
async fn breaker_opens_and_probes() {
    let (fake, clients) = setup(1, config(), "").await;
    fake.set_behaviour("SUP0", FakeBehaviour::with_fault(Fault::Status(500)));
    for _ in 0..3 {
        let a = ask(&clients, question(0, &["X-0"]), BUDGET).await;
        assert!(matches!(a.outcome, AskOutcome::Failed(_)));
    }
    assert_eq!(clients.breaker_closed(0), Some(false));
    let a = ask(&clients, question(0, &["X-0"]), BUDGET).await;
    assert_eq!(a.outcome, AskOutcome::Failed("circuit open".into()));
    assert_eq!(fake.calls("SUP0").stock, 3, "an open circuit calls nobody");
    fake.set_behaviour("SUP0", FakeBehaviour::default());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let a = ask(&clients, question(0, &["X-0"]), BUDGET).await;
    assert_eq!(a.outcome, AskOutcome::Answered);
    assert_eq!(clients.breaker_closed(0), Some(true));
}

/// A caller's tiny budget does not count against the supplier.
#[tokio::test]
async fn short_budgets_do_not_trip_the_breaker() {
    let (fake, clients) = setup(1, config(), "").await;
    fake.set_behaviour(
        "SUP0",
        FakeBehaviour::with_latency(Latency::Fixed(Duration::from_millis(50))),
    );
    for i in 0..5 {
        let sku = format!("X-{i}");
        let a = ask(&clients, question(0, &[&sku]), Duration::from_millis(5)).await;
        assert_eq!(a.outcome, AskOutcome::TimedOut);
    }
    assert_eq!(clients.breaker_closed(0), Some(true));
}

/// A connection closed before any answer is retried once, within the budget.
#[tokio::test]
async fn connection_failures_are_retried_once() {
    let (fake, clients) = setup(1, config(), "").await;
    fake.drop_next_connections(1);
    let a = ask(&clients, question(0, &["X-0"]), BUDGET).await;
    assert_eq!(a.outcome, AskOutcome::Answered);
    assert_eq!(fake.calls("SUP0").stock, 1);

    let mut cfg = config();
    cfg.retry_connect = false;
    let (fake, clients) = setup(1, cfg, "").await;
    fake.drop_next_connections(1);
    let a = ask(&clients, question(0, &["X-0"]), BUDGET).await;
    assert!(
        matches!(&a.outcome, AskOutcome::Failed(why) if why.contains("connection")),
        "{:?}",
        a.outcome
    );
}

/// With hedging on, a call stalled past the supplier's observed p95 is overtaken by a second
/// request, and the answer comes long before the stall ends.
#[tokio::test]
async fn hedged_requests_overtake_stalls() {
    let mut cfg = config();
    cfg.hedge = true;
    cfg.hedge_min_samples = 10;
    cfg.cache_ttl_ms = 0;
    let (fake, clients) = setup(1, cfg, "").await;
    fake.set_behaviour(
        "SUP0",
        FakeBehaviour::with_latency(Latency::Fixed(Duration::from_millis(5))),
    );
    for _ in 0..16 {
        assert_eq!(
            ask(&clients, question(0, &["X-0"]), BUDGET).await.outcome,
            AskOutcome::Answered
        );
    }
    fake.set_behaviour(
        "SUP0",
        FakeBehaviour::with_latency(Latency::EveryNth {
            base: Duration::from_millis(5),
            slow: Duration::from_secs(20),
            n: 2,
        }),
    );
    let started = Instant::now();
    let a = ask(&clients, question(0, &["X-0"]), Duration::from_secs(25)).await;
    assert_eq!(a.outcome, AskOutcome::Answered);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        fake.calls("SUP0").stock,
        18,
        "the stalled request and its hedge"
    );
}

/// With every call slot busy on a hanging call, further requests wait within their budget.
#[tokio::test]
async fn saturated_suppliers_time_out() {
    let (fake, clients) = setup(1, config(), ", max_in_flight = 1").await;
    fake.set_behaviour("SUP0", FakeBehaviour::with_fault(Fault::Hang));
    let (a, b) = futures::future::join(
        ask(&clients, question(0, &["X-0"]), Duration::from_millis(150)),
        ask(&clients, question(0, &["X-1"]), Duration::from_millis(150)),
    )
    .await;
    assert_eq!(a.outcome, AskOutcome::TimedOut);
    assert_eq!(b.outcome, AskOutcome::TimedOut);
    assert_eq!(fake.calls("SUP0").stock, 1, "the second never got a slot");
}

/// A hot cached item past the refresh point is refreshed in the background while the cached
/// answer is served.
#[tokio::test]
async fn hot_items_refresh_ahead() {
    let mut cfg = config();
    cfg.cache_ttl_ms = 400;
    cfg.refresh_ahead_pct = 50;
    cfg.hot_hits = 2;
    let (fake, clients) = setup(1, cfg, "").await;
    ask(&clients, question(0, &["X-0"]), BUDGET).await;
    ask(&clients, question(0, &["X-0"]), BUDGET).await;
    fake.set_item(
        "SUP0",
        FakeItem {
            supplier_sku: "X-0".into(),
            available: 99,
            unit_cost: Decimal::new(1000, 2),
        },
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let a = ask(&clients, question(0, &["X-0"]), BUDGET).await;
    assert_eq!(a.outcome, AskOutcome::Cached);
    assert_eq!(
        known(&a, 0),
        Some((10, 100_000, true)),
        "served the cached answer"
    );
    let mut refreshed = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let a = ask(&clients, question(0, &["X-0"]), BUDGET).await;
        if known(&a, 0).is_some_and(|k| k.0 == 99) {
            refreshed = Some(a);
            break;
        }
    }
    let a = refreshed.expect("the refreshed answer reached the cache");
    assert_eq!(a.outcome, AskOutcome::Cached);
    assert_eq!(fake.calls("SUP0").stock, 2);
}

/// A supplier configured for HTTP/2 is spoken to in HTTP/2 from the first byte.
#[tokio::test]
async fn http2_suppliers_work() {
    let (_fake, clients) = setup(1, config(), ", http2 = true").await;
    let a = ask(&clients, question(0, &["X-2"]), BUDGET).await;
    assert_eq!(known(&a, 0), Some((12, 100_200, false)));
}

/// Configurations that cannot work are refused, naming the supplier.
#[test]
fn bad_configurations_are_refused() {
    let reg = registry(1, "");
    let err = SupplierClients::new(&config(), &reg, "USD", &HashMap::new()).unwrap_err();
    assert!(
        err.to_string().contains("SUP0") && err.to_string().contains("fake"),
        "{err}"
    );
    let urls = HashMap::from([("SUP0".to_string(), "ftp://x".to_string())]);
    let err = SupplierClients::new(&config(), &reg, "USD", &urls).unwrap_err();
    assert!(err.to_string().contains("http"), "{err}");
    let mut cfg = config();
    cfg.max_in_flight = 0;
    let urls = HashMap::from([("SUP0".to_string(), "http://127.0.0.1:1".to_string())]);
    let err = SupplierClients::new(&cfg, &reg, "USD", &urls).unwrap_err();
    assert!(err.to_string().contains("max_in_flight"), "{err}");
}
