//! Reserve throughput of the PostgreSQL ledger, against two baselines on the
//! same throwaway cluster in the same run:
//!
//! - `pgbench -N` (the built-in "simple update" script: three statements
//!   and an insert in a transaction), the database's own yardstick;
//! - the pattern common storefronts use: BEGIN, `SELECT qty ... FOR UPDATE`
//!   per line, check in the application, `UPDATE` per line, insert the order
//!   and its lines, COMMIT.
//!
//! For 1, 5 and 20 lines, with every basket on the same SKUs ("hot") or on
//! random ones out of 100,000 ("spread"). The cluster runs with
//! PostgreSQL's defaults (fsync and synchronous commit on).
//!
//! `cargo bench --bench ledger_pg` (release). `LEDGER_BENCH_SECS` sets the
//! length of each run (default 5), `LEDGER_BENCH_ROUNDS` how many times each
//! scenario runs (default 3; medians are reported), `LEDGER_BENCH_CLIENTS` the concurrency
//! (default 16), `LEDGER_BENCH_NOTIFY=0` turns LISTEN/NOTIFY off, `LEDGER_BENCH_ONLY` a subset (`1-hot,20-spread`).

#[path = "../tests/it/pg.rs"]
mod pg;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use stockroute::adapters::postgres::{PgLedger, PgSettings, Supply, SupplySource};
use stockroute::config::{LedgerConfig, LedgerKind};
use stockroute::domain::address::Address;
use stockroute::domain::catalog::ProductId;
use stockroute::domain::ledger::{
    HeldLine, IdempotencyKey, KeyResolver, Ledger, RequestFingerprint, ReserveLine, ReserveRequest,
    StockKey,
};
use stockroute::domain::suppliers::SupplierId;
use tokio_postgres::NoTls;

const SUPPLIERS: u32 = 100;
const PRODUCTS: u32 = 1_000;
const SUPPLY: u32 = 4_000_000_000;

struct Names;

impl KeyResolver for Names {
    fn product(&self, sku: &str) -> Option<ProductId> {
        sku.strip_prefix('P')?.parse().ok()
    }
    fn supplier(&self, supplier_id: &str) -> Option<SupplierId> {
        supplier_id.strip_prefix('S')?.parse().ok()
    }
}

struct NoFeeds;

impl SupplySource for NoFeeds {
    fn supply(&self, _: &str, _: &str) -> Option<Supply> {
        None
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Spread {
    Hot,
    Spread,
}

impl Spread {
    fn name(self) -> &'static str {
        match self {
            Spread::Hot => "hot",
            Spread::Spread => "spread",
        }
    }

    /// `lines` distinct (supplier, product) keys for one basket.
    fn keys(self, lines: usize, rng: &mut impl Rng) -> Vec<(u32, u32)> {
        match self {
            Spread::Hot => (0..lines as u32).map(|p| (0, p)).collect(),
            Spread::Spread => {
                let mut keys: Vec<(u32, u32)> = Vec::with_capacity(lines);
                while keys.len() < lines {
                    let k = (
                        rng.random_range(0..SUPPLIERS),
                        rng.random_range(0..PRODUCTS),
                    );
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                keys
            }
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `clients` loops of `op` for `secs`; returns completed ops per second.
async fn drive<F, Fut>(clients: usize, secs: u64, op: F) -> (f64, u64)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (op, stop, done, failed) = (
                Arc::clone(&op),
                Arc::clone(&stop),
                Arc::clone(&done),
                Arc::clone(&failed),
            );
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    if op(c, i).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    (
        done.load(Ordering::Relaxed) as f64 / elapsed,
        failed.load(Ordering::Relaxed),
    )
}

fn pgbench(cluster: &pg::PgCluster, clients: u64, secs: u64) -> f64 {
    let out = std::process::Command::new(cluster.bin().join("pgbench"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-N", "-M", "prepared", "-j", "2"])
        .args([
            "-c",
            &clients.to_string(),
            "-T",
            &secs.to_string(),
            "pgbench",
        ])
        .output()
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{text}"))
}

fn request(keys: &[(u32, u32)], n: u64, client: usize) -> ReserveRequest {
    let lines = keys
        .iter()
        .map(|&(s, p)| ReserveLine {
            line: HeldLine {
                key: StockKey {
                    supplier: s as u16,
                    product: p,
                },
                supplier_id: format!("S{s}"),
                sku: format!("P{p}"),
                supplier_sku: format!("S{s}-P{p}"),
                qty: 1,
                unit_cost: Decimal::new(1999, 2),
            },
            supply: SUPPLY,
            supply_as_of_ms: 0,
        })
        .collect();
    let key = format!("bench-{client}-{n}");
    ReserveRequest {
        fingerprint: RequestFingerprint::of(&[key.as_bytes()]),
        key: IdempotencyKey::parse(&key).unwrap(),
        lines,
        hold_ms: 600_000,
        plan: vec![0; 64],
        ship_to: Address {
            country_code: "US".into(),
            postal_code: "10001".into(),
            residential: false,
        },
        owner: None,
    }
}

async fn ledger_run(
    ledger: Arc<PgLedger>,
    clients: usize,
    secs: u64,
    lines: usize,
    spread: Spread,
) -> (f64, u64) {
    let tag = format!("{}-{}", lines, spread.name());
    drive(clients, secs, move |client, n| {
        let ledger = Arc::clone(&ledger);
        let mut rng = rand::rngs::SmallRng::seed_from_u64((client as u64) << 32 | n);
        let keys = spread.keys(lines, &mut rng);
        let req = request(&keys, n, client);
        let req = ReserveRequest {
            key: IdempotencyKey::parse(&format!("{}-{tag}", req.key)).unwrap(),
            ..req
        };
        async move { ledger.reserve(req).await.is_ok() }
    })
    .await
}

const STOREFRONT_SCHEMA: &str = "
CREATE TABLE sf_inventory (sku TEXT PRIMARY KEY, qty INT8 NOT NULL CHECK (qty >= 0));
CREATE TABLE sf_order (id BIGSERIAL PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE sf_order_line (order_id INT8 NOT NULL REFERENCES sf_order (id), sku TEXT NOT NULL, qty INT8 NOT NULL);
";

/// The storefront pattern on its own connections, one per client.
async fn storefront_run(
    url: &str,
    clients: usize,
    secs: u64,
    lines: usize,
    spread: Spread,
) -> (f64, u64) {
    let mut conns = Vec::new();
    for _ in 0..clients {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        tokio::spawn(connection);
        conns.push(Arc::new(tokio::sync::Mutex::new(client)));
    }
    let conns = Arc::new(conns);
    drive(clients, secs, move |client, n| {
        let conns = Arc::clone(&conns);
        let mut rng = rand::rngs::SmallRng::seed_from_u64((client as u64) << 32 | n);
        let mut skus: Vec<String> = spread
            .keys(lines, &mut rng)
            .into_iter()
            .map(|(s, p)| format!("S{s}/P{p}"))
            .collect();
        // Locked in one order, as careful storefronts do, or they deadlock.
        skus.sort();
        async move {
            let mut c = conns[client].lock().await;
            let tx = c.transaction().await.unwrap();
            let select = tx
                .prepare("SELECT qty FROM sf_inventory WHERE sku = $1 FOR UPDATE")
                .await
                .unwrap();
            let update = tx
                .prepare("UPDATE sf_inventory SET qty = qty - $2 WHERE sku = $1")
                .await
                .unwrap();
            let order = tx
                .prepare("INSERT INTO sf_order DEFAULT VALUES RETURNING id")
                .await
                .unwrap();
            let order_lines = tx
                .prepare(
                    "INSERT INTO sf_order_line (order_id, sku, qty)
                     SELECT $1, s, 1 FROM unnest($2::TEXT[]) AS s",
                )
                .await
                .unwrap();
            for sku in &skus {
                let row = tx.query_one(&select, &[sku]).await.unwrap();
                let qty: i64 = row.get(0);
                if qty < 1 {
                    return false;
                }
                tx.execute(&update, &[sku, &1i64]).await.unwrap();
            }
            let id: i64 = tx.query_one(&order, &[]).await.unwrap().get(0);
            tx.execute(&order_lines, &[&id, &skus]).await.unwrap();
            tx.commit().await.is_ok()
        }
    })
    .await
}

fn main() {
    let secs = env_or("LEDGER_BENCH_SECS", 5);
    let rounds = env_or("LEDGER_BENCH_ROUNDS", 3).max(1);
    let clients = env_or("LEDGER_BENCH_CLIENTS", 16) as usize;
    // e.g. "1-hot,20-spread": only those runs.
    let only = std::env::var("LEDGER_BENCH_ONLY").unwrap_or_default();
    let cluster = pg::PgCluster::start_with(pg::Durability::Full);
    for db in ["pgbench", "ledger", "storefront"] {
        cluster.create_database(db);
    }
    let init = std::process::Command::new(cluster.bin().join("pgbench"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-i", "-q", "-s", "10", "pgbench"])
        .output()
        .expect("pgbench -i");
    assert!(init.status.success(), "pgbench -i failed");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ledger = rt.block_on(async {
        let config = LedgerConfig {
            kind: LedgerKind::Postgres,
            postgres_url: cluster.url_for("ledger"),
            postgres_pool_size: clients,
            postgres_call_budget_ms: 30_000,
            postgres_notify: env_or("LEDGER_BENCH_NOTIFY", 1) == 1,
            ..LedgerConfig::default()
        };
        let l = PgLedger::start(
            PgSettings::from_config(&config).unwrap(),
            Arc::new(Names),
            Arc::new(NoFeeds),
        )
        .unwrap();
        l.wait_ready(Duration::from_secs(60)).await.unwrap();
        Arc::new(l)
    });
    // Stock rows for every key, as after a while in service.
    cluster
        .psql(
            "ledger",
            &format!(
                "INSERT INTO stock (supplier_id, sku, supply, supply_as_of_ms)
                 SELECT 'S' || s, 'P' || p, {SUPPLY}, 0
                 FROM generate_series(0, {}) s, generate_series(0, {}) p",
                SUPPLIERS - 1,
                PRODUCTS - 1
            ),
        )
        .unwrap();
    cluster.psql("storefront", STOREFRONT_SCHEMA).unwrap();
    cluster
        .psql(
            "storefront",
            &format!(
                "INSERT INTO sf_inventory (sku, qty)
                 SELECT 'S' || s || '/P' || p, {SUPPLY}
                 FROM generate_series(0, {}) s, generate_series(0, {}) p",
                SUPPLIERS - 1,
                PRODUCTS - 1
            ),
        )
        .unwrap();
    for db in ["pgbench", "ledger", "storefront"] {
        cluster.psql(db, "VACUUM ANALYZE").unwrap();
    }

    println!(
        "PostgreSQL ledger Reserve, {clients} concurrent callers, {rounds} rounds of {secs} s per run, fsync on"
    );
    // The machine is shared and its load drifts: each round runs pgbench, the
    // ledger and the storefront back to back, each ratio is taken within a
    // round, and the median round is reported.
    let mut rows = Vec::new();
    for lines in [1usize, 5, 20] {
        for spread in [Spread::Hot, Spread::Spread] {
            if !only.is_empty()
                && !only
                    .split(',')
                    .any(|o| o == format!("{lines}-{}", spread.name()))
            {
                continue;
            }
            let mut samples = Vec::new();
            for _ in 0..rounds {
                let base = pgbench(&cluster, clients as u64, secs);
                let (ledger_ops, ledger_failed) = rt.block_on(ledger_run(
                    Arc::clone(&ledger),
                    clients,
                    secs,
                    lines,
                    spread,
                ));
                let (sf_ops, sf_failed) = rt.block_on(storefront_run(
                    &cluster.url_for("storefront"),
                    clients,
                    secs,
                    lines,
                    spread,
                ));
                assert_eq!(ledger_failed + sf_failed, 0, "every reserve must succeed");
                println!(
                    "{lines:>2} lines {:<6} pgbench -N {base:>7.0} tps  ledger {ledger_ops:>7.0}/s  storefront {sf_ops:>7.0}/s",
                    spread.name()
                );
                samples.push((base, ledger_ops, sf_ops));
            }
            let deadlocks = cluster
                .psql(
                    "postgres",
                    "SELECT coalesce(sum(deadlocks), 0) FROM pg_stat_database",
                )
                .unwrap_or_default();
            println!("   deadlocks so far: {deadlocks}");
            rows.push((lines, spread, samples));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!();
    println!("| lines | SKUs | pgbench -N tps | ledger Reserve/s | ledger ÷ pgbench | storefront FOR UPDATE/s | ledger ÷ storefront |");
    println!("|---|---|---|---|---|---|---|");
    for (lines, spread, samples) in rows {
        println!(
            "| {lines} | {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} |",
            spread.name(),
            median(samples.iter().map(|s| s.0).collect()),
            median(samples.iter().map(|s| s.1).collect()),
            median(samples.iter().map(|s| s.1 / s.0).collect()),
            median(samples.iter().map(|s| s.2).collect()),
            median(samples.iter().map(|s| s.1 / s.2).collect()),
        );
    }
    println!("(medians over the rounds; each ratio within its round)");
    rt.block_on(async { ledger.flush().await.unwrap() });
}
