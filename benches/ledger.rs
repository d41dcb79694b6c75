//! The embedded ledger's reserve throughput and latency, durable and in
//! memory, against the raw fsync rate of the same disk, all in one run.
//!
//! `cargo bench --bench ledger` (release). Five measurements, each for
//! `LEDGER_BENCH_SECS` seconds (default 5), in a directory on the disk under
//! test (`LEDGER_BENCH_DIR`, default `target/ledger-bench`):
//! 1. raw fsync: one writer appending 100 bytes and calling `fdatasync`, in a
//!    loop: what one durable write per reserve would allow;
//! 2. and 3. latency at a fixed offered rate (`LEDGER_BENCH_RATE`, default
//!    50,000 reserves/s, open loop: each call's latency counts from when it
//!    was due, so a stall is not hidden), in memory and durable: the added
//!    p99 is what durability costs a caller;
//! 4. in-memory ledger: `LEDGER_BENCH_CLIENTS` (default 256; 0 skips 4 and
//!    5) concurrent callers reserving one or three lines out of 20,000 keys,
//!    as fast as it answers;
//! 5. durable ledger: the same against the journal (group commit).
//!
//! The latency runs come first: the closed-loop storms leave a journal of
//! hundreds of MiB behind, and folding and deleting it after the storm
//! keeps the disk busy for seconds, which a run after it would measure.
//!
//! The open-loop generator is one thread that wakes every
//! `PACE_PERIOD` (100 µs) and issues every call due since its last wake-up
//! (call `i` is due at `i / rate` s) as one task driving them concurrently;
//! the closed-loop callers record into a few shared histograms made before
//! the clock starts. Both keep the generator's own CPU small next to the
//! ledger's on a 2-core machine; both ledgers get the same generator.
//!
//! `LEDGER_BENCH_SEGMENT_MB` sets the journal's segment size (default the
//! ledger's, 64 MiB): each closed segment is folded into a snapshot by the
//! compactor thread while the run goes on, so a larger one keeps compaction
//! out of a run to see the journal alone.
//!
//! It prints reserves/s and latency percentiles of each, and the durable
//! runs' ratios to the others. Closed-loop latency (runs 2 and 3) is mostly
//! queueing behind the other callers; the open-loop runs are the latency
//! figures.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use stockroute::domain::address::Address;
use stockroute::domain::clock::{Clock, SystemClock};
use stockroute::domain::ledger::embedded::{EmbeddedLedger, EmbeddedOptions};
use stockroute::domain::ledger::{
    HeldLine, IdempotencyKey, KeyResolver, Ledger, RequestFingerprint, ReserveLine, ReserveRequest,
    StockKey,
};

mod common;
use common::Rng;

/// Distinct (supplier, product) keys the callers spread over.
const KEYS: u64 = 20_000;
/// Suppliers the keys spread over (`key % SUPPLIERS`).
const SUPPLIERS: u64 = 100;
/// Histograms the callers of one run share (by caller or batch number).
const STRIPES: usize = 64;
/// How often the open-loop generator wakes to issue what has come due.
const PACE_PERIOD: Duration = Duration::from_micros(100);

struct Resolver;

impl KeyResolver for Resolver {
    fn product(&self, sku: &str) -> Option<u32> {
        sku.strip_prefix('P')?.parse().ok()
    }
    fn supplier(&self, id: &str) -> Option<u16> {
        id.strip_prefix('S')?.parse().ok()
    }
}

struct Outcome {
    ops: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, name: &str) {
        let h = &self.latency_us;
        println!(
            "{name:<22} {:>10.0} ops/s   p50 {:>6} us   p99 {:>6} us   p99.9 {:>6} us   max {:>7} us",
            self.rate(),
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram")
}

/// Latency histograms (µs) shared by the callers of one run: made before
/// the run's clock starts, in stripes so that callers on different cores
/// rarely meet on one lock.
struct Latencies(Vec<Mutex<Histogram<u64>>>);

impl Latencies {
    fn new() -> Self {
        Self((0..STRIPES).map(|_| Mutex::new(histogram())).collect())
    }

    fn record(&self, stripe: usize, us: u64) {
        self.0[stripe % STRIPES].lock().saturating_record(us);
    }

    fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for h in &self.0 {
            all.add(&*h.lock()).expect("merge");
        }
        all
    }
}

/// The names a request carries, made once: the generator clones them
/// instead of formatting three strings per line.
struct Names {
    suppliers: Vec<String>,
    skus: Vec<String>,
    supplier_skus: Vec<String>,
}

impl Names {
    fn new() -> Self {
        let products = KEYS.div_ceil(SUPPLIERS);
        Self {
            suppliers: (0..SUPPLIERS).map(|s| format!("S{s}")).collect(),
            skus: (0..products).map(|p| format!("P{p}")).collect(),
            supplier_skus: (0..products).map(|p| format!("X{p}")).collect(),
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One durable write per operation: what the disk allows without batching.
fn raw_fsync(dir: &std::path::Path, secs: u64) -> Outcome {
    let path = dir.join("raw-fsync.bin");
    let mut f = std::fs::File::create(&path).expect("create fsync file");
    let mut latency_us = histogram();
    let started = Instant::now();
    let mut ops = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        let t = Instant::now();
        f.write_all(&[7u8; 100]).expect("write");
        f.sync_data().expect("fdatasync");
        latency_us.saturating_record(t.elapsed().as_micros() as u64);
        ops += 1;
    }
    let elapsed = started.elapsed();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Outcome {
        ops,
        elapsed,
        latency_us,
    }
}

fn request(rng: &mut Rng, names: &Names, n: u64) -> ReserveRequest {
    let lines_n = if rng.below(4) == 0 { 3 } else { 1 };
    let lines = (0..lines_n)
        .map(|_| {
            let k = rng.below(KEYS);
            let (s, p) = ((k % SUPPLIERS) as usize, (k / SUPPLIERS) as usize);
            ReserveLine {
                line: HeldLine {
                    key: StockKey {
                        supplier: s as u16,
                        product: p as u32,
                    },
                    supplier_id: names.suppliers[s].clone(),
                    sku: names.skus[p].clone(),
                    supplier_sku: names.supplier_skus[p].clone(),
                    qty: 1 + rng.below(3) as u32,
                    unit_cost: Decimal::new(1999, 2),
                },
                supply: u32::MAX / 2,
                supply_as_of_ms: 0,
            }
        })
        .collect();
    let key = format!("bench-{n}");
    ReserveRequest {
        fingerprint: RequestFingerprint::of(&[key.as_bytes()]),
        key: IdempotencyKey::parse(&key).expect("key"),
        lines,
        hold_ms: 600_000,
        plan: vec![0u8; 300],
        ship_to: Address {
            country_code: "US".into(),
            postal_code: "10001".into(),
            residential: false,
        },
        owner: None,
    }
}

/// `clients` callers reserving as fast as the ledger answers.
async fn storm(
    ledger: EmbeddedLedger,
    names: Arc<Names>,
    clients: u64,
    secs: u64,
    tag: u64,
) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Latencies::new());
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (ledger, stop) = (ledger.clone(), Arc::clone(&stop));
            let (names, latencies) = (Arc::clone(&names), Arc::clone(&latencies));
            tokio::spawn(async move {
                let mut rng = Rng(tag * 1_000_003 + c);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let req = request(&mut rng, &names, (tag << 48) | (c << 32) | n);
                    let t = Instant::now();
                    ledger.reserve(req).await.expect("reserve");
                    latencies.record(c as usize, t.elapsed().as_micros() as u64);
                    n += 1;
                    // An in-memory reserve completes without awaiting
                    // anything: give the other callers (and the timer that
                    // ends the run) their turn, as separate requests would.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client");
    }
    let elapsed = started.elapsed();
    let latency_us = latencies.merged();
    Outcome {
        ops: latency_us.len(),
        elapsed,
        latency_us,
    }
}

/// Reserves issued at `rate` per second for `secs`, whatever the answers
/// take (open loop); latency counts from when each call was due. Call `i` is
/// due `i / rate` s after the start; this thread wakes every `PACE_PERIOD`
/// and hands every call due by then to one task that drives them
/// concurrently, so a late wake-up (or a busy runtime) shows in the
/// latencies instead of being skipped.
fn paced(
    rt: &tokio::runtime::Runtime,
    ledger: &EmbeddedLedger,
    names: &Arc<Names>,
    rate: u64,
    secs: u64,
    tag: u64,
) -> Outcome {
    let total = rate * secs;
    let latencies = Arc::new(Latencies::new());
    let mut rng = Rng(tag);
    let mut batches = Vec::new();
    let mut issued = 0u64;
    let started = Instant::now();
    let due_at = |i: u64| {
        started + Duration::from_nanos((u128::from(i) * 1_000_000_000 / u128::from(rate)) as u64)
    };
    while issued < total {
        // Calls 0..=elapsed*rate are due.
        let elapsed = started.elapsed().as_nanos();
        let due = ((elapsed * u128::from(rate) / 1_000_000_000) as u64 + 1).min(total);
        if due > issued {
            let calls: Vec<(ReserveRequest, Instant)> = (issued..due)
                .map(|i| (request(&mut rng, names, (tag << 48) | i), due_at(i)))
                .collect();
            issued = due;
            let (ledger, latencies) = (ledger.clone(), Arc::clone(&latencies));
            let stripe = batches.len();
            batches.push(rt.spawn(async move {
                let ledger = &ledger;
                let mut running: FuturesUnordered<_> = calls
                    .into_iter()
                    .map(|(req, due)| async move {
                        ledger.reserve(req).await.expect("reserve");
                        due.elapsed().as_micros() as u64
                    })
                    .collect();
                while let Some(us) = running.next().await {
                    latencies.record(stripe, us);
                }
            }));
        }
        std::thread::sleep(PACE_PERIOD);
    }
    rt.block_on(async {
        for b in batches {
            b.await.expect("batch");
        }
    });
    let elapsed = started.elapsed();
    let latency_us = latencies.merged();
    Outcome {
        ops: latency_us.len(),
        elapsed,
        latency_us,
    }
}

fn main() {
    let secs = env_u64("LEDGER_BENCH_SECS", 5);
    let clients = env_u64("LEDGER_BENCH_CLIENTS", 256);
    let dir = std::env::var("LEDGER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ledger-bench"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!(
        "ledger bench: {secs} s per run, {clients} concurrent callers, {KEYS} keys, dir {}",
        dir.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let names = Arc::new(Names::new());
    let segment_bytes_max = std::env::var("LEDGER_BENCH_SEGMENT_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(EmbeddedOptions::default().segment_bytes_max, |mb| mb << 20);

    let fsync = raw_fsync(&dir, secs);
    fsync.print("raw fsync (1 per op)");

    let rate = env_u64("LEDGER_BENCH_RATE", 50_000);
    let memory_paced = paced(
        &rt,
        &EmbeddedLedger::in_memory(Arc::clone(&clock)),
        &names,
        rate,
        secs,
        3,
    );
    memory_paced.print(&format!("in-memory @ {rate}/s"));
    let open_durable = |name: &str| {
        let options = EmbeddedOptions {
            dir: Some(dir.join(name)),
            segment_bytes_max,
            ..EmbeddedOptions::default()
        };
        EmbeddedLedger::open(&options, Arc::clone(&clock), &Resolver).expect("open ledger")
    };
    let ledger = open_durable("journal-paced");
    let durable_paced = paced(&rt, &ledger, &names, rate, secs, 4);
    durable_paced.print(&format!("durable @ {rate}/s"));
    let (records, syncs) = ledger.journal_progress();
    rt.block_on(ledger.flush()).expect("flush");
    drop(ledger);
    let q = |o: &Outcome, p: f64| o.latency_us.value_at_quantile(p) as i64;
    println!(
        "open loop @ {rate}/s: {records} records in {syncs} syncs ({:.1} per sync); \
         added p50 {} us, added p99 {} us",
        records as f64 / syncs.max(1) as f64,
        q(&durable_paced, 0.5) - q(&memory_paced, 0.5),
        q(&durable_paced, 0.99) - q(&memory_paced, 0.99),
    );

    if clients == 0 {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let memory = rt.block_on(storm(
        EmbeddedLedger::in_memory(Arc::clone(&clock)),
        Arc::clone(&names),
        clients,
        secs,
        1,
    ));
    memory.print("in-memory ledger");

    let ledger = open_durable("journal");
    let durable = rt.block_on(storm(ledger.clone(), Arc::clone(&names), clients, secs, 2));
    durable.print("durable ledger");
    let (records, syncs) = ledger.journal_progress();
    println!(
        "group commit: {records} records in {syncs} syncs, {:.1} records per sync",
        records as f64 / syncs.max(1) as f64
    );
    rt.block_on(ledger.flush()).expect("flush");

    println!(
        "closed loop: durable / raw fsync: {:.1}x   durable / in-memory: {:.2}",
        durable.rate() / fsync.rate(),
        durable.rate() / memory.rate(),
    );

    let _ = std::fs::remove_dir_all(&dir);
}
