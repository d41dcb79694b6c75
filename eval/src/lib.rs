//! The planner against an exact solver.
//!
//! Random baskets whose freight is a fixed charge per shipment plus weight
//! breaks ([`BreakRater`]), a form a mixed-integer program states exactly:
//! the same instance goes to the planner and, as a MILP, to HiGHS, and the
//! two optima are compared (`tests/milp.rs` on a small set in CI,
//! `benches/milp.rs` for the figures). Money stays in whole ten-thousandths
//! on both sides; the MILP's objective is rounded back to them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use highs::{HighsModelStatus, RowProblem, Sense};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use stockroute::domain::catalog::ProductId;
use stockroute::domain::planner::breaks::{hectograms, Break, BreakRater, BreakTariff};
use stockroute::domain::planner::{
    Candidate, LineInput, Objective, PlanError, PlanOptions, Planner, Rater,
};
use stockroute::domain::suppliers::SupplierId;

/// What went wrong in an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The planner found no plan although the MILP (or the instance's
    /// construction) says one exists.
    #[error("the planner found no plan: {0}")]
    Planner(#[from] PlanError),
    /// HiGHS failed or did not prove an optimum.
    #[error("the MILP solver ended with {0}")]
    Solver(String),
}

/// The shape of a random instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Basket lines (distinct products).
    pub lines: usize,
    /// Suppliers to draw offers from.
    pub suppliers: usize,
    /// Offers per line (distinct suppliers).
    pub offers: usize,
    /// Whether a line's units may come from several suppliers; the stock
    /// offered then often covers only part of a line.
    pub split: bool,
}

/// One basket with its freight.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The basket as the planner takes it.
    pub lines: Vec<LineInput>,
    /// Freight: fixed charge and weight breaks per supplier.
    pub rater: BreakRater,
    /// Whether lines may split.
    pub split: bool,
}

/// splitmix64: deterministic instances from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

impl Instance {
    /// A random instance of `shape`, the same for the same seed. Tariffs
    /// have three breaks (the heavier ones cheaper per hectogram, with a
    /// base charge), so consolidating pays and light shipments may bill at
    /// a heavier break's minimum; every line can be fulfilled.
    pub fn random(shape: Shape, seed: u64) -> Self {
        let mut r = Rng(seed);
        let tariffs = (0..shape.suppliers)
            .map(|s| {
                let per = r.range(40, 400) as i64;
                let b1 = r.range(20, 120);
                let tariff = BreakTariff {
                    fixed: r.range(20_000, 150_000) as i64,
                    breaks: vec![
                        Break {
                            from_hg: 0,
                            up_to_hg: b1,
                            base: 0,
                            per_hg: per,
                        },
                        Break {
                            from_hg: b1,
                            up_to_hg: b1 * 3,
                            base: 5_000,
                            per_hg: per * 7 / 10,
                        },
                        Break {
                            from_hg: b1 * 3,
                            up_to_hg: u64::MAX,
                            base: 9_000,
                            per_hg: per / 2,
                        },
                    ],
                    ground_days: r.range(2, 6) as u32,
                    processing_days: r.range(0, 2) as u32,
                };
                (s as SupplierId, tariff)
            })
            .collect();
        let mut unit_weight_g = HashMap::new();
        let lines = (0..shape.lines)
            .map(|i| {
                let product = i as ProductId + 1;
                unit_weight_g.insert(product, r.range(100, 3_000) as u32);
                let qty = match r.range(0, 10) {
                    0..=5 => 1,
                    6..=8 => 2,
                    _ => r.range(3, 6) as u32,
                };
                let mut sups: Vec<SupplierId> = Vec::with_capacity(shape.offers);
                while sups.len() < shape.offers.min(shape.suppliers) {
                    let s = r.range(0, shape.suppliers as u64) as SupplierId;
                    if !sups.contains(&s) {
                        sups.push(s);
                    }
                }
                let candidates: Vec<Candidate> = sups
                    .iter()
                    .enumerate()
                    .map(|(j, &s)| Candidate {
                        supplier: s,
                        // With splits, most offers cover only part of the
                        // line; the first always covers it all.
                        available: if shape.split && j > 0 {
                            r.range(1, u64::from(qty) + 1) as u32
                        } else {
                            qty
                        },
                        cost: r.range(1, 60) as u32 * 5_000,
                        as_of_s: 1,
                    })
                    .collect();
                LineInput {
                    product: Some(product),
                    qty,
                    candidates,
                    excluded_stock: false,
                }
            })
            .collect();
        Self {
            lines,
            rater: BreakRater {
                tariffs,
                unit_weight_g,
                express_factor_pct: r.range(150, 260) as i64,
            },
            split: shape.split,
        }
    }

    /// The options both solvers plan under: CHEAPEST, all or nothing.
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            objective: Objective::Cheapest,
            allow_partial: false,
            allow_split_lines: self.split,
            max_shipments: 0,
            arrive_within_days: 0,
        }
    }

    fn weight_g(&self, l: &LineInput) -> u64 {
        let p = l.product.expect("instances name their products");
        u64::from(self.rater.unit_weight_g[&p])
    }
}

/// A solver's answer on one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solved {
    /// Goods and freight, ten-thousandths.
    pub cost: i64,
    /// Whether the solver proved `cost` optimal.
    pub proven: bool,
    /// Wall time.
    pub elapsed: Duration,
}

fn units(amount: Decimal) -> i64 {
    (amount * Decimal::from(10_000))
        .to_i64()
        .expect("instance costs fit in i64")
}

/// The planner's CHEAPEST plan, searching for at most `budget`.
pub fn plan(instance: &Instance, budget: Duration) -> Result<Solved, EvalError> {
    let started = Instant::now();
    let mut planner = Planner::new(&instance.lines, &instance.options(), &instance.rater)?;
    let p = planner.plan(Objective::Cheapest, started + budget)?;
    Ok(Solved {
        cost: units(p.goods + p.freight),
        proven: p.proven_optimal,
        elapsed: started.elapsed(),
    })
}

/// Greedy sourcing, what common storefronts do: each line from its
/// cheapest supplier that has all of it (lowest id on ties), freight
/// priced afterwards on the cheapest service. `None` when a resulting
/// shipment cannot be rated.
pub fn greedy(instance: &Instance) -> Option<i64> {
    let mut by_supplier: HashMap<SupplierId, Vec<(ProductId, u32)>> = HashMap::new();
    let mut goods = 0i64;
    for l in &instance.lines {
        let c = l
            .candidates
            .iter()
            .filter(|c| c.available >= l.qty)
            .min_by_key(|c| (c.cost, c.supplier))?;
        goods += i64::from(c.cost) * i64::from(l.qty);
        by_supplier
            .entry(c.supplier)
            .or_default()
            .push((l.product?, l.qty));
    }
    let mut freight = 0;
    for (s, mut items) in by_supplier {
        items.sort_unstable();
        let r = instance.rater.rate(s, &items).ok()?;
        freight += units(r.rates.iter().map(|r| r.amount).min()?);
    }
    Some(goods + freight)
}

/// The exact optimum of the CHEAPEST plan as a MILP, solved by HiGHS on
/// one thread with no optimality gap left (objective values are whole
/// ten-thousandths, so a gap under one proves the optimum).
///
/// Variables: `u[l][k]` units of line `l` from supplier `k` (integer; with
/// no splits `u = qty * x` for a binary `x`); per supplier and break `b`, a
/// binary `y[k][b]` (the shipment bills at that break), its hectograms
/// `h[k][b]` (integer, at most the break's limit) and the billed
/// hectograms `g[k][b] >= max(h, from * y)`. A shipment bills at one break
/// at most, any unit shipped opens one, and its hectograms cover its
/// goods' weight: `100 * sum_b h[k][b] >= sum_l w_l * u[l][k]`. Cost:
/// goods + per supplier `sum_b (fixed + base_b) y + per_hg_b g`. The
/// planner's break tariffs bill the cheapest break that takes the weight,
/// which is what the minimisation picks.
pub fn milp(instance: &Instance) -> Result<Solved, EvalError> {
    let started = Instant::now();
    let mut pb = RowProblem::default();
    let mut sups: Vec<SupplierId> = instance
        .lines
        .iter()
        .flat_map(|l| l.candidates.iter().map(|c| c.supplier))
        .collect();
    sups.sort_unstable();
    sups.dedup();
    // Heaviest any shipment can be, hectograms: caps the open-ended break.
    let heaviest: u64 = instance
        .lines
        .iter()
        .map(|l| hectograms(self_weight(instance, l)))
        .sum::<u64>()
        + 1;
    // Per supplier: its break columns (y, h, g) and the weight row terms.
    let mut open_terms: HashMap<SupplierId, Vec<(highs::Col, f64)>> = HashMap::new();
    let mut weight_terms: HashMap<SupplierId, Vec<(highs::Col, f64)>> = HashMap::new();
    for &k in &sups {
        let tariff = &instance.rater.tariffs[&k];
        let mut ys = Vec::new();
        for b in &tariff.breaks {
            let cap = b.up_to_hg.min(heaviest) as f64;
            let y = pb.add_integer_column((tariff.fixed + b.base) as f64, 0..=1);
            let h = pb.add_integer_column(0.0, 0.0..=cap);
            let g = pb.add_column(b.per_hg as f64, 0.0..);
            // h <= cap * y; g >= h; g >= from * y.
            pb.add_row(..=0.0, [(h, 1.0), (y, -cap)]);
            pb.add_row(0.0.., [(g, 1.0), (h, -1.0)]);
            pb.add_row(0.0.., [(g, 1.0), (y, -(b.from_hg as f64))]);
            weight_terms.entry(k).or_default().push((h, 100.0));
            ys.push((y, 1.0));
        }
        pb.add_row(..=1.0, ys.iter().copied());
        open_terms.insert(k, ys);
    }
    for l in &instance.lines {
        let w = instance.weight_g(l) as f64;
        let mut cover = Vec::new();
        for c in &l.candidates {
            let most = c.available.min(l.qty);
            if !instance.split && most < l.qty {
                continue;
            }
            let (col, per_col) = if instance.split {
                let u = pb.add_integer_column(f64::from(c.cost), 0.0..=f64::from(most));
                (u, 1.0)
            } else {
                let x = pb.add_integer_column(f64::from(c.cost) * f64::from(l.qty), 0..=1);
                (x, f64::from(l.qty))
            };
            cover.push((col, per_col));
            weight_terms
                .entry(c.supplier)
                .or_default()
                .push((col, -w * per_col));
            // Units shipped open the shipment: u <= most * sum_b y.
            let mut open: Vec<(highs::Col, f64)> = vec![(col, per_col)];
            open.extend(
                open_terms[&c.supplier]
                    .iter()
                    .map(|&(y, _)| (y, -f64::from(most))),
            );
            pb.add_row(..=0.0, open);
        }
        let qty = f64::from(l.qty);
        pb.add_row(qty..=qty, cover);
    }
    for terms in weight_terms.into_values() {
        pb.add_row(0.0.., terms);
    }
    let mut model = pb.optimise(Sense::Minimise);
    model.make_quiet();
    model.set_option("threads", 1);
    model.set_option("mip_rel_gap", 0.0);
    model.set_option("mip_abs_gap", 0.5);
    let solved = model
        .try_solve()
        .map_err(|e| EvalError::Solver(format!("{e:?}")))?;
    if solved.status() != HighsModelStatus::Optimal {
        return Err(EvalError::Solver(format!("{:?}", solved.status())));
    }
    Ok(Solved {
        cost: solved.objective_value().round() as i64,
        proven: true,
        elapsed: started.elapsed(),
    })
}

fn self_weight(instance: &Instance, l: &LineInput) -> u64 {
    instance.weight_g(l) * u64::from(l.qty)
}
