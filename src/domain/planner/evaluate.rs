//! A complete assignment (one option per line) priced exactly: its score
//! under an objective, and the plan it stands for.

use rust_decimal::Decimal;
use smallvec::SmallVec;

use super::cache::{Cache, Items, Rated};
use super::problem::{Part, Problem, Units};
use super::{
    choose_rate, Allocation, Objective, PlanOptions, PlanOutcome, PlannedShipment, Rater, Short,
    ShortReason,
};
use crate::domain::freight::ServiceRate;
use crate::domain::money::cost_to_decimal;

/// How good a plan is; smaller is better, compared field by field: units
/// left out, then the objective's own measure (latest arrival for FASTEST,
/// shipments for FEWEST_SHIPMENTS, nothing for CHEAPEST), then total cost,
/// then the number of shipments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Score {
    pub missing: u32,
    pub primary: u32,
    pub total: Units,
    pub shipments: u32,
}

/// One supplier's (line, part) pairs in an assignment.
pub(super) type Parts = SmallVec<[(usize, Part); 4]>;

/// The (line, part) pairs of each supplier in an assignment, suppliers
/// ascending. Inline for a few shipments: every complete plan scored builds one.
pub(super) fn group(problem: &Problem, assignment: &[u32]) -> SmallVec<[(u32, Parts); 4]> {
    let mut by_sup: SmallVec<[(u32, Parts); 4]> = SmallVec::new();
    for (l, &o) in assignment.iter().enumerate() {
        for p in &problem.lines[l].options[o as usize].parts {
            match by_sup.iter_mut().find(|(k, _)| *k == p.sup) {
                Some((_, v)) => v.push((l, *p)),
                None => by_sup.push((p.sup, smallvec::smallvec![(l, *p)])),
            }
        }
    }
    by_sup.sort_by_key(|(k, _)| *k);
    by_sup
}

/// The canonical item list of a shipment: units per product, by product.
pub(super) fn items(problem: &Problem, parts: &[(usize, Part)]) -> Items {
    let mut items = Items::new();
    for &(l, p) in parts {
        let product = problem.lines[l].product;
        match items.iter_mut().find(|(q, _)| *q == product) {
            Some((_, u)) => *u += p.units,
            None => items.push((product, p.units)),
        }
    }
    items.sort_unstable();
    items
}

/// The services an objective buys for rated shipments: the cheapest in time
/// for CHEAPEST and FEWEST_SHIPMENTS; for FASTEST the shipment arriving last
/// sets the date and every shipment takes the cheapest service arriving by it.
fn services(
    objective: Objective,
    rated: &[(u32, &Rated)],
    problem: &Problem,
    within_days: u32,
) -> Option<Vec<ServiceRate>> {
    let by = match objective {
        Objective::Fastest => rated.iter().map(|(_, r)| r.fastest_days).max().unwrap_or(0),
        _ => within_days,
    };
    rated
        .iter()
        .map(|(k, r)| {
            choose_rate(
                &r.shipment.rates,
                Objective::Cheapest,
                problem.processing_days[*k as usize],
                by,
            )
            .cloned()
        })
        .collect()
}

/// Scores a complete assignment; `None` when it is infeasible (a shipment
/// cannot ship in time, or too many shipments). Learns unshippable pairings.
pub(super) fn score(
    problem: &Problem,
    options: &PlanOptions,
    objective: Objective,
    rater: &dyn Rater,
    cache: &mut Cache,
    assignment: &[u32],
) -> Option<Score> {
    let groups = group(problem, assignment);
    if options.max_shipments > 0 && groups.len() > options.max_shipments as usize {
        return None;
    }
    let mut rated: SmallVec<[(u32, Rated); 4]> = SmallVec::new();
    for (k, parts) in &groups {
        match cache.rate(problem, rater, *k, items(problem, parts)) {
            Some(r) => rated.push((*k, r)),
            None => {
                let lines: Vec<usize> = parts.iter().map(|(l, _)| *l).collect();
                cache.learn(problem, rater, *k, &lines);
                return None;
            }
        }
    }
    let (mut missing, mut goods) = (0u32, 0 as Units);
    for (l, &o) in assignment.iter().enumerate() {
        let opt = &problem.lines[l].options[o as usize];
        missing += opt.missing;
        goods += opt.goods;
    }
    let freight: Units = match objective {
        // Each shipment's cheapest service by the latest arrival, as
        // `services` buys it, read from the staircases.
        Objective::Fastest => {
            let by = rated.iter().map(|(_, r)| r.fastest_days).max().unwrap_or(0);
            rated
                .iter()
                .map(|(_, r)| cache.cheapest_by(r.stair, by))
                .sum::<Option<Units>>()?
        }
        _ => rated.iter().map(|(_, r)| r.cheapest).sum(),
    };
    let shipments = groups.len() as u32;
    Some(Score {
        missing,
        primary: match objective {
            Objective::Cheapest => 0,
            Objective::Fastest => rated.iter().map(|(_, r)| r.fastest_days).max().unwrap_or(0),
            Objective::FewestShipments => shipments,
        },
        total: goods + freight,
        shipments,
    })
}

/// The plan an assignment stands for. The assignment must have scored as
/// feasible under `objective` (its ratings are in the cache).
pub(super) fn outcome(
    problem: &Problem,
    options: &PlanOptions,
    objective: Objective,
    rater: &dyn Rater,
    cache: &mut Cache,
    assignment: &[u32],
    proven_optimal: bool,
) -> PlanOutcome {
    let groups = group(problem, assignment);
    let mut rated: Vec<(u32, Rated)> = Vec::with_capacity(groups.len());
    let mut kept = Vec::with_capacity(groups.len());
    for (k, parts) in groups {
        // Scored feasible, so every shipment rates; a miss would only drop it.
        if let Some(r) = cache.rate(problem, rater, k, items(problem, &parts)) {
            rated.push((k, r));
            kept.push(parts);
        }
    }
    let refs: Vec<(u32, &Rated)> = rated.iter().map(|(k, r)| (*k, r)).collect();
    let chosen = services(objective, &refs, problem, cache.within_days()).unwrap_or_default();
    let mut shipments = Vec::with_capacity(rated.len());
    let (mut goods, mut freight) = (Decimal::ZERO, Decimal::ZERO);
    for (((k, r), parts), rate) in rated.into_iter().zip(kept).zip(chosen) {
        let mut allocations: Vec<Allocation> = parts
            .iter()
            .map(|&(l, p)| Allocation {
                line: problem.lines[l].line,
                product: problem.lines[l].product,
                qty: p.units,
                cost: p.cost,
                as_of_s: p.as_of_s,
            })
            .collect();
        allocations.sort_by_key(|a| a.line);
        for a in &allocations {
            goods += cost_to_decimal(a.cost) * Decimal::from(a.qty);
        }
        freight += rate.amount;
        shipments.push(PlannedShipment {
            supplier: problem.suppliers[k as usize],
            allocations,
            rated: r.shipment,
            rate,
            processing_days: problem.processing_days[k as usize],
        });
    }
    PlanOutcome {
        objective,
        shipments,
        shortfalls: shortfalls(problem, options, cache, assignment),
        goods,
        freight,
        proven_optimal,
        arrive_within_days: options.arrive_within_days,
    }
}

/// Everything the plan leaves out, by line: first what no stock covers, then
/// what the plan left out for shipping or the shipment limit.
fn shortfalls(
    problem: &Problem,
    options: &PlanOptions,
    cache: &Cache,
    assignment: &[u32],
) -> Vec<Short> {
    let mut shorts = problem.shorts.clone();
    for (l, &o) in assignment.iter().enumerate() {
        let line = &problem.lines[l];
        let missing = line.options[o as usize].missing;
        if line.stock_short > 0 {
            shorts.push(Short {
                line: line.line,
                missing: line.stock_short.min(missing),
                reason: ShortReason::OutOfStock,
            });
        }
        let extra = missing.saturating_sub(line.stock_short);
        if extra > 0 {
            let shippable = line.options.iter().any(|opt| {
                !opt.parts.is_empty() && opt.parts.iter().all(|p| !cache.banned(l, p.sup))
            });
            let reason = if options.max_shipments == 0 || !shippable {
                ShortReason::NotShippable
            } else {
                ShortReason::ShipmentLimit
            };
            shorts.push(Short {
                line: line.line,
                missing: extra,
                reason,
            });
        }
    }
    shorts.sort_by_key(|s| (s.line, s.reason as u8));
    shorts
}
