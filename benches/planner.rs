//! The planner on the demo world: the default 120 suppliers and 100,000
//! products with their feeds, the SAMPLE carrier tables, to US destinations.
//!
//! A basket of `n` lines takes `n` distinct random products that are in
//! stock at `k` or more suppliers and offers each line at `k` of them
//! (chosen at random); quantities are 1 (70%), 2 (20%) or 3-5.
//!
//! 1. Printed: per basket size (1, 5, 10, 20, 50 lines) and offers per SKU
//!    (2, 4, 8), over a deterministic sample of baskets, the CHEAPEST
//!    plan's planning time (p50, p99, max), the share proven optimal, and the
//!    saving against greedy sourcing (each line from its cheapest supplier,
//!    freight priced afterwards), and the mean ratings and search nodes per
//!    basket. Baskets up to 20 lines search with no time
//!    limit, 50-line baskets under a 5 ms budget.
//! 2. Criterion: planning time of the CHEAPEST plan per size and offers.
//!
//! Run: `cargo bench --bench planner` (`-- --quick` for the figures only;
//! `PLANNER_FIGURES=10x8,20x4` prints only those cells of the figures;
//! `PLANNER_DETAIL=1` adds a row per basket, `PLANNER_BASKETS=0,7` plans
//! only those baskets of each cell; `PLANNER_COUNT=200` draws 200 baskets a
//! cell instead of 30 (the first 30 are the usual ones), so that p99 is not
//! simply the slowest; `PLANNER_REPEATS=5` plans each basket
//! five times from scratch and counts its least time, which a shared
//! machine disturbs least; `PLANNER_BUDGET_US=1000` also plans each basket
//! of up to 20 lines afresh under that budget, as a caller's deadline would,
//! and adds a row of its times, the share proven and its cost gap to the
//! plan found without one; `PLANNER_OBJECTIVE=fastest` or `fewest` plans
//! under that objective instead of CHEAPEST, and that row also counts the
//! plans that lose on the objective's own measure).

mod common;
use common::Rng;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use hdrhistogram::Histogram;
use rust_decimal::Decimal;
use stockroute::config::Config;
use stockroute::domain::address::Address;
use stockroute::domain::catalog::ProductId;
use stockroute::domain::clock::SystemClock;
use stockroute::domain::planner::{
    arrival_days, LineInput, Objective, PlanOptions, PlanOutcome, Planner, Rater,
};
use stockroute::domain::quoting::{Demand, QuoteInput};
use stockroute::domain::realtime::Overlay;
use stockroute::domain::world::World;
use stockroute::load::{load_world, WorldSource};

const SIZES: [usize; 5] = [1, 5, 10, 20, 50];
const OFFERS: [usize; 3] = [2, 4, 8];
/// Baskets a cell draws unless `PLANNER_COUNT` says otherwise.
const BASKETS: usize = 30;
/// Budget of the 50-line baskets.
const LARGE_BUDGET: Duration = Duration::from_millis(5);
/// "No limit" for smaller baskets: far beyond any search seen.
const UNLIMITED: Duration = Duration::from_secs(2);

const DESTINATIONS: [(&str, bool); 8] = [
    ("10001", false),
    ("94107", true),
    ("60614", true),
    ("30303", false),
    ("73301", true),
    ("98109", false),
    ("33101", true),
    ("80202", false),
];

fn demo_world() -> World {
    let config = Config::default();
    let source = WorldSource::demo(&config);
    let world = load_world(&config, &source, std::sync::Arc::new(SystemClock))
        .expect("the demo world loads");
    let WorldSource::Memory(files) = &source else {
        unreachable!("the demo world lives in memory")
    };
    let feeds: Vec<_> = world
        .suppliers
        .iter()
        .filter_map(|(id, s)| s.feed.as_ref().map(|f| (id, f.kind, f.source.clone())))
        .collect();
    for (id, kind, rel) in feeds {
        if let Some(bytes) = files.get(&rel) {
            world.ingest(id, kind, bytes.as_slice()).expect("demo feed");
        }
    }
    world
}

/// Products by how many suppliers have them in stock.
fn stocked(world: &World) -> Vec<(ProductId, usize)> {
    let view = world.index.view();
    let mut out = Vec::new();
    let mut offers = Vec::new();
    for p in 0..world.catalog.len() as ProductId {
        offers.clear();
        view.offers_into(p, &mut offers);
        let n = offers.iter().filter(|o| o.qty > 0).count();
        if n > 0 {
            out.push((p, n));
        }
    }
    out
}

struct Basket {
    lines: Vec<LineInput>,
    ship_to: Address,
}

fn basket(
    world: &World,
    stocked: &[(ProductId, usize)],
    rng: &mut Rng,
    n: usize,
    k: usize,
) -> Basket {
    let pool: Vec<ProductId> = stocked.iter().filter(|p| p.1 >= k).map(|p| p.0).collect();
    let mut products: Vec<ProductId> = Vec::with_capacity(n);
    while products.len() < n {
        let p = pool[rng.below(pool.len() as u64) as usize];
        if !products.contains(&p) {
            products.push(p);
        }
    }
    let (zip, residential) = DESTINATIONS[rng.below(DESTINATIONS.len() as u64) as usize];
    let ship_to = Address {
        country_code: "US".into(),
        postal_code: zip.into(),
        residential,
    };
    let input = QuoteInput {
        lines: products
            .iter()
            .enumerate()
            .map(|(i, &p)| Demand {
                line: i,
                sku: String::new(),
                product: Some(p),
                qty: match rng.below(10) {
                    0..=6 => 1,
                    7..=8 => 2,
                    _ => 3 + rng.below(3) as u32,
                },
            })
            .collect(),
        ship_to: ship_to.clone(),
        options: options(Objective::Cheapest),
        excluded: Vec::new(),
    };
    let mut lines = world.plan_inputs(&input, &Overlay::default());
    for l in &mut lines {
        // k of the suppliers with stock, at random; enough for the quantity.
        l.candidates.retain(|c| c.available > 0);
        while l.candidates.len() > k {
            let i = rng.below(l.candidates.len() as u64) as usize;
            l.candidates.remove(i);
        }
        for c in &mut l.candidates {
            c.available = c.available.max(l.qty);
        }
    }
    Basket { lines, ship_to }
}

fn options(objective: Objective) -> PlanOptions {
    PlanOptions {
        objective,
        allow_partial: false,
        allow_split_lines: false,
        max_shipments: 0,
        arrive_within_days: 0,
    }
}

fn plan(lines: &[LineInput], rater: &dyn Rater, budget: Duration) -> PlanOutcome {
    let mut planner =
        Planner::new(lines, &options(Objective::Cheapest), rater).expect("baskets are in stock");
    planner
        .plan(Objective::Cheapest, Instant::now() + budget)
        .expect("a plan")
}

/// Greedy sourcing: each line from its cheapest supplier (lowest id on
/// ties), then every resulting shipment rated and shipped at its cheapest.
/// `None` when a greedy shipment cannot be rated at all.
fn greedy_total(lines: &[LineInput], rater: &dyn Rater) -> Option<Decimal> {
    let mut by_supplier: HashMap<u16, Vec<(ProductId, u32)>> = HashMap::new();
    let mut goods = Decimal::ZERO;
    for l in lines {
        let c = l
            .candidates
            .iter()
            .min_by_key(|c| (c.cost, c.supplier))
            .expect("in stock");
        goods += Decimal::new(i64::from(c.cost), 4) * Decimal::from(l.qty);
        by_supplier
            .entry(c.supplier)
            .or_default()
            .push((l.product.expect("known"), l.qty));
    }
    let mut freight = Decimal::ZERO;
    for (s, mut items) in by_supplier {
        items.sort_unstable();
        let r = rater.rate(s, &items).ok()?;
        freight += r.rates.iter().map(|r| r.amount).min()?;
    }
    Some(goods + freight)
}

/// Prints the figures of the module comment for every size and offers.
fn figures(world: &World, stocked: &[(ProductId, usize)]) {
    println!(
        "{:>5} {:>6} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "lines", "offers", "p50 us", "p99 us", "max us", "proven", "saving", "ratings", "nodes"
    );
    let only = std::env::var("PLANNER_FIGURES").ok();
    let detail = std::env::var_os("PLANNER_DETAIL").is_some();
    let repeats: u32 = std::env::var("PLANNER_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
        .max(1);
    let under: Option<Duration> = std::env::var("PLANNER_BUDGET_US")
        .ok()
        .and_then(|b| b.parse().ok())
        .map(Duration::from_micros);
    let objective = match std::env::var("PLANNER_OBJECTIVE").as_deref() {
        Ok("fastest") => Objective::Fastest,
        Ok("fewest") => Objective::FewestShipments,
        _ => Objective::Cheapest,
    };
    let count: usize = std::env::var("PLANNER_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(BASKETS);
    let picked: Option<Vec<usize>> = std::env::var("PLANNER_BASKETS")
        .ok()
        .map(|v| v.split(',').filter_map(|i| i.parse().ok()).collect());
    for &n in &SIZES {
        for &k in &OFFERS {
            if only
                .as_deref()
                .is_some_and(|o| !o.split(',').any(|c| c == format!("{n}x{k}")))
            {
                continue;
            }
            let mut rng = Rng(0x5EED ^ (n as u64) << 8 ^ k as u64);
            let budget = if n >= 50 { LARGE_BUDGET } else { UNLIMITED };
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut planned, mut proven, mut ratings, mut nodes) = (0usize, 0usize, 0u64, 0u64);
            let (mut planned_total, mut greedy_sum) = (Decimal::ZERO, Decimal::ZERO);
            // Under `PLANNER_BUDGET_US`: times, proofs and gaps (percent).
            let mut budgeted = Histogram::<u64>::new(3).expect("histogram");
            let (mut budget_proven, mut gaps, mut worse) = (0usize, Vec::<Decimal>::new(), 0usize);
            for i in 0..count {
                let b = basket(world, stocked, &mut rng, n, k);
                if picked.as_ref().is_some_and(|p| !p.contains(&i)) {
                    continue;
                }
                let rater = world.rater(&b.ship_to);
                let started = Instant::now();
                let mut planner =
                    Planner::new(&b.lines, &options(objective), &rater).expect("in stock");
                // Baskets no plan can ship (an item over every carrier's
                // limits) are left out of every figure.
                let Ok(p) = planner.plan(objective, Instant::now() + budget) else {
                    continue;
                };
                // Planning only: greedy's own ratings are not the planner's time.
                let mut elapsed = started.elapsed();
                // Repeats plan afresh (new rater, new planner) and keep the
                // least time: the figure least disturbed by a shared machine.
                for _ in 1..repeats {
                    let rater = world.rater(&b.ship_to);
                    let started = Instant::now();
                    let again = Planner::new(&b.lines, &options(objective), &rater)
                        .and_then(|mut p| p.plan(objective, Instant::now() + budget));
                    elapsed = elapsed.min(started.elapsed());
                    black_box(again).ok();
                }
                let Some(greedy) = greedy_total(&b.lines, &world.rater(&b.ship_to)) else {
                    continue;
                };
                hist.record(elapsed.as_micros() as u64).ok();
                if detail {
                    println!(
                        "  {n}x{k} #{i:<2} {:>9} us {:>7} nodes {:>5} ratings {} shipments, total {}{}",
                        elapsed.as_micros(),
                        planner.stats().nodes,
                        planner.stats().ratings,
                        p.shipments.len(),
                        p.goods + p.freight,
                        if p.proven_optimal {
                            ""
                        } else {
                            " (not proven)"
                        }
                    );
                }
                if let Some(limit) = under.filter(|_| n < 50) {
                    let rater = world.rater(&b.ship_to);
                    let started = Instant::now();
                    // As a quote does: the deadline counts the set-up too.
                    let mut again = Planner::new(&b.lines, &options(objective), &rater)
                        .expect("the same basket plans again");
                    let q = again
                        .plan(objective, started + limit)
                        .expect("the same basket plans again");
                    let took = started.elapsed();
                    budgeted.record(took.as_micros() as u64).ok();
                    budget_proven += usize::from(q.proven_optimal);
                    // Plans that lose on the objective's own measure
                    // (latest arrival, shipments) are counted apart; the
                    // gap is in cost.
                    let measure = |o: &PlanOutcome| match objective {
                        Objective::Cheapest => 0,
                        Objective::Fastest => {
                            o.shipments.iter().map(arrival_days).max().unwrap_or(0)
                        }
                        Objective::FewestShipments => o.shipments.len() as u32,
                    };
                    worse += usize::from(measure(&q) > measure(&p));
                    let best = p.goods + p.freight;
                    let gap = (q.goods + q.freight - best) / best * Decimal::ONE_HUNDRED;
                    if detail {
                        println!(
                            "        under the budget {:>6} us {:>7} nodes {:>5} ratings, gap {}%",
                            took.as_micros(),
                            again.stats().nodes,
                            again.stats().ratings,
                            gap.round_dp(3)
                        );
                    }
                    gaps.push(gap);
                }
                planned += 1;
                ratings += planner.stats().ratings;
                nodes += planner.stats().nodes;
                proven += usize::from(p.proven_optimal);
                planned_total += p.goods + p.freight;
                greedy_sum += greedy;
            }
            if planned == 0 {
                continue;
            }
            let saving = (greedy_sum - planned_total) / greedy_sum * Decimal::ONE_HUNDRED;
            println!(
                "{:>5} {:>6} {:>9} {:>9} {:>9} {:>6}% {:>8}% {:>9.1} {:>9.0}",
                n,
                k,
                hist.value_at_quantile(0.5),
                hist.value_at_quantile(0.99),
                hist.max(),
                proven * 100 / planned,
                saving.round_dp(2),
                ratings as f64 / planned as f64,
                nodes as f64 / planned as f64
            );
            if !gaps.is_empty() {
                gaps.sort_unstable();
                let at = |q: usize| gaps[(gaps.len() * q / 100).min(gaps.len() - 1)].round_dp(3);
                println!(
                    "{:>5} {:>6} {:>9} {:>9} {:>9} {:>6}%  gap to the plan without a budget: p50 {}%, p99 {}%, max {}% (budget {} us){}",
                    "", "", budgeted.value_at_quantile(0.5), budgeted.value_at_quantile(0.99), budgeted.max(),
                    budget_proven * 100 / gaps.len(), at(50), at(99), gaps[gaps.len() - 1].round_dp(3),
                    under.map_or(0, |u| u.as_micros()),
                    if objective == Objective::Cheapest {
                        String::new()
                    } else {
                        format!(", {worse} worse on {objective:?}'s own measure")
                    },
                );
            }
        }
    }
}

fn main() {
    let started = Instant::now();
    let world = demo_world();
    let stocked = stocked(&world);
    println!(
        "demo world: {} offers, built in {:.1} s",
        world.index.offers_total(),
        started.elapsed().as_secs_f64()
    );
    figures(&world, &stocked);
    if std::env::args().any(|a| a == "--quick") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("plan_cheapest");
    for &n in &SIZES {
        for &k in &OFFERS {
            let mut rng = Rng(0xC0FFEE ^ (n as u64) << 8 ^ k as u64);
            let baskets: Vec<Basket> = (0..16)
                .map(|_| basket(&world, &stocked, &mut rng, n, k))
                .collect();
            let budget = if n >= 50 { LARGE_BUDGET } else { UNLIMITED };
            let mut i = 0;
            group.bench_function(BenchmarkId::new(format!("{n}_lines"), k), |bch| {
                bch.iter(|| {
                    let b = &baskets[i % baskets.len()];
                    i += 1;
                    black_box(plan(&b.lines, &world.rater(&b.ship_to), budget))
                })
            });
        }
    }
    group.finish();
    c.final_summary();
}
