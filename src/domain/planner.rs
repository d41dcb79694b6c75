//! The planner: which supplier ships which units, and by which service.
//!
//! This first planner is a bounded local search: it starts from the cheapest
//! supplier per line and from "everything from one supplier", then moves lines
//! between suppliers while the objective improves. It proves optimality only
//! when every line's source is forced. Freight comes through `Rater`, so the
//! planner knows nothing of carriers or transport and can be tested with a
//! fake. Ties break by the lowest supplier ids, line by line, so the same
//! input always gives the same plan.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;

use super::catalog::ProductId;
use super::freight::{choose, RateChoice, RatedShipment, ServiceRate};
use super::money::{cost_to_decimal, CostUnits};
use super::suppliers::SupplierId;

/// Evaluations of whole assignments one plan may spend on local search.
const EVALUATIONS_MAX: usize = 2_000;

/// What the plan optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Objective {
    /// Goods + freight + boxes + handling.
    Cheapest,
    /// Latest arrival first, then cost.
    Fastest,
    /// Number of shipments first, then cost.
    FewestShipments,
}

impl Objective {
    /// Every objective, in the order alternatives are listed.
    pub const ALL: [Objective; 3] = [
        Objective::Cheapest,
        Objective::Fastest,
        Objective::FewestShipments,
    ];
}

/// Options of one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// What to optimise.
    pub objective: Objective,
    /// Succeed with what can be had, listing the rest as shortfalls.
    pub allow_partial: bool,
    /// Let one line's units come from several suppliers.
    pub allow_split_lines: bool,
    /// Most shipments; 0 = no limit.
    pub max_shipments: u32,
    /// Every shipment must arrive within this many days (processing +
    /// transit); 0 = no limit.
    pub arrive_within_days: u32,
}

/// A supplier that can ship some of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Who.
    pub supplier: SupplierId,
    /// Units available to this order.
    pub available: u32,
    /// Unit cost.
    pub cost: CostUnits,
    /// When the supplier's data said so (Unix seconds).
    pub as_of_s: u32,
}

/// Why a line is short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShortReason {
    /// No product has that SKU.
    UnknownSku,
    /// Not enough stock anywhere.
    OutOfStock,
    /// Stock exists only at suppliers the request excluded.
    Excluded,
    /// The shipment limit leaves no room for it.
    ShipmentLimit,
    /// No carrier service can take it to the destination.
    NotShippable,
}

/// One basket line as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    /// The product, or `None` for an unknown SKU.
    pub product: Option<ProductId>,
    /// Units wanted.
    pub qty: u32,
    /// Suppliers with stock, any order.
    pub candidates: Vec<Candidate>,
    /// Stock was seen only at excluded suppliers (explains a shortfall).
    pub excluded_stock: bool,
}

/// Units of a line missing from a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    /// Index of the basket line.
    pub line: usize,
    /// Units missing.
    pub missing: u32,
    /// Why.
    pub reason: ShortReason,
}

/// Units of a line in a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Index of the basket line.
    pub line: usize,
    /// The product.
    pub product: ProductId,
    /// Units.
    pub qty: u32,
    /// Unit cost.
    pub cost: CostUnits,
    /// When the supplier's data said so (Unix seconds).
    pub as_of_s: u32,
}

/// One supplier's part of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedShipment {
    /// Who ships it.
    pub supplier: SupplierId,
    /// What, in line order.
    pub allocations: Vec<Allocation>,
    /// Its packing and every service that can carry it, from the tables;
    /// kept so that later steps (live pricing) need not rate it again.
    pub rated: Arc<RatedShipment>,
    /// The chosen carrier service.
    pub rate: ServiceRate,
    /// Days before the carrier collects.
    pub processing_days: u32,
}

/// A plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOutcome {
    /// The objective it was built for.
    pub objective: Objective,
    /// Shipments, by supplier id.
    pub shipments: Vec<PlannedShipment>,
    /// What it leaves out (only with `allow_partial`).
    pub shortfalls: Vec<Short>,
    /// Sum of goods, exact.
    pub goods: Decimal,
    /// Sum of shipment freight.
    pub freight: Decimal,
    /// No better plan exists under the objective.
    pub proven_optimal: bool,
    /// The arrival limit it was built under (0 = none).
    pub arrive_within_days: u32,
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// All-or-nothing cannot be met: these lines are short.
    #[error("{} basket line(s) cannot be fulfilled", .0.len())]
    Unfulfillable(Vec<Short>),
}

/// Prices a shipment; the planner's only view of freight.
pub trait Rater {
    /// Packs and rates `lines` (sorted by product) shipped by `supplier`.
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String>;
    /// Days before the supplier's carrier collects.
    fn processing_days(&self, supplier: SupplierId) -> u32;
}

/// One way to source a line: `(supplier, units)` parts.
type LineOption = Vec<(SupplierId, u32)>;

/// Objective value: smaller is better, compared field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    unshippable: u32,
    over_limit: u32,
    primary: u32,
    total: Decimal,
}

struct Evaluated {
    score: Score,
    shipments: Vec<PlannedShipment>,
    unshippable: Vec<SupplierId>,
}

/// Plans a basket.
pub fn plan(
    lines: &[LineInput],
    options: &PlanOptions,
    rater: &dyn Rater,
) -> Result<PlanOutcome, PlanError> {
    let mut shorts = Vec::new();
    let mut line_options: Vec<Vec<LineOption>> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let (opts, short) = sourcing_options(i, line, options);
        if let Some(s) = short {
            shorts.push(s);
        }
        line_options.push(opts);
    }
    if !shorts.is_empty() && !options.allow_partial {
        return Err(PlanError::Unfulfillable(shorts));
    }
    let proven = line_options.iter().all(|o| o.len() <= 1);
    let mut search = Search {
        lines,
        line_options: &line_options,
        options,
        rater,
        memo: HashMap::new(),
        evaluations: 0,
    };
    let mut best = search.best_assignment();
    let mut evaluated = search.evaluate(&best);

    // Whatever the search could not make feasible is cut, or fails the call.
    if evaluated.score.unshippable > 0 || evaluated.score.over_limit > 0 {
        let mut cut: Vec<Short> = Vec::new();
        let mut keep: Vec<SupplierId> = evaluated
            .shipments
            .iter()
            .map(|s| s.supplier)
            .filter(|s| !evaluated.unshippable.contains(s))
            .collect();
        if options.max_shipments > 0 && keep.len() > options.max_shipments as usize {
            // Keep the shipments carrying the most goods value.
            let value = |sup: SupplierId| -> Decimal {
                evaluated
                    .shipments
                    .iter()
                    .filter(|s| s.supplier == sup)
                    .flat_map(|s| &s.allocations)
                    .map(|a| cost_to_decimal(a.cost) * Decimal::from(a.qty))
                    .sum()
            };
            keep.sort_by(|a, b| value(*b).cmp(&value(*a)).then(a.cmp(b)));
            keep.truncate(options.max_shipments as usize);
        }
        for (line, choice) in best.iter_mut().enumerate() {
            let Some(option) = choice.as_mut() else {
                continue;
            };
            option.retain(|&(sup, qty)| {
                if keep.contains(&sup) {
                    return true;
                }
                let reason = if evaluated.unshippable.contains(&sup) {
                    ShortReason::NotShippable
                } else {
                    ShortReason::ShipmentLimit
                };
                cut.push(Short {
                    line,
                    missing: qty,
                    reason,
                });
                false
            });
        }
        if !options.allow_partial {
            let mut all = shorts;
            all.extend(cut);
            all.sort_by_key(|s| s.line);
            return Err(PlanError::Unfulfillable(all));
        }
        shorts.extend(cut);
        evaluated = search.evaluate(&best);
    }
    shorts.sort_by_key(|s| (s.line, s.reason as u8));
    let goods = evaluated
        .shipments
        .iter()
        .flat_map(|s| &s.allocations)
        .map(|a| cost_to_decimal(a.cost) * Decimal::from(a.qty))
        .sum();
    let freight = evaluated.shipments.iter().map(|s| s.rate.amount).sum();
    Ok(PlanOutcome {
        objective: options.objective,
        shipments: evaluated.shipments,
        shortfalls: shorts,
        goods,
        freight,
        proven_optimal: proven && search.evaluations <= EVALUATIONS_MAX,
        arrive_within_days: options.arrive_within_days,
    })
}

/// The ways a line can be sourced, and what of it cannot be.
fn sourcing_options(
    i: usize,
    line: &LineInput,
    options: &PlanOptions,
) -> (Vec<LineOption>, Option<Short>) {
    let short = |missing: u32, reason| Short {
        line: i,
        missing,
        reason,
    };
    if line.product.is_none() {
        return (Vec::new(), Some(short(line.qty, ShortReason::UnknownSku)));
    }
    let mut cands: Vec<Candidate> = line
        .candidates
        .iter()
        .copied()
        .filter(|c| c.available > 0)
        .collect();
    cands.sort_by_key(|c| (c.cost, c.supplier));
    if cands.is_empty() {
        let reason = if line.excluded_stock {
            ShortReason::Excluded
        } else {
            ShortReason::OutOfStock
        };
        return (Vec::new(), Some(short(line.qty, reason)));
    }
    let whole: Vec<LineOption> = cands
        .iter()
        .filter(|c| c.available >= line.qty)
        .map(|c| vec![(c.supplier, line.qty)])
        .collect();
    if !whole.is_empty() {
        return (whole, None);
    }
    if options.allow_split_lines {
        // Fill from the cheapest up; a split line has one option in this planner.
        let mut left = line.qty;
        let mut parts = Vec::new();
        for c in &cands {
            if left == 0 {
                break;
            }
            let take = c.available.min(left);
            parts.push((c.supplier, take));
            left -= take;
        }
        parts.sort_unstable();
        let missing = (left > 0).then(|| short(left, ShortReason::OutOfStock));
        return (vec![parts], missing);
    }
    // Not enough at any one supplier: the most units one supplier has.
    let best = cands.iter().max_by(|a, b| {
        a.available
            .cmp(&b.available)
            .then(b.cost.cmp(&a.cost))
            .then(b.supplier.cmp(&a.supplier))
    });
    match best {
        Some(c) => (
            vec![vec![(c.supplier, c.available)]],
            Some(short(line.qty - c.available, ShortReason::OutOfStock)),
        ),
        None => (Vec::new(), Some(short(line.qty, ShortReason::OutOfStock))),
    }
}

struct Search<'a> {
    lines: &'a [LineInput],
    line_options: &'a [Vec<LineOption>],
    options: &'a PlanOptions,
    rater: &'a dyn Rater,
    memo: RateMemo,
    evaluations: usize,
}

/// Ratings already made in this call, by supplier and canonical item list;
/// `None` records a shipment no service can carry.
type RateMemo = HashMap<(SupplierId, Vec<(ProductId, u32)>), Option<Arc<RatedShipment>>>;

/// The chosen option per line (`None` for a line with nothing to ship).
type Assignment = Vec<Option<LineOption>>;

impl Search<'_> {
    fn cost_of(&self, line: usize, option: &LineOption) -> u64 {
        option
            .iter()
            .map(|&(sup, qty)| {
                let cost = self.lines[line]
                    .candidates
                    .iter()
                    .find(|c| c.supplier == sup)
                    .map_or(0, |c| c.cost);
                u64::from(cost) * u64::from(qty)
            })
            .sum()
    }

    /// Starting points, then local search from the best of them.
    fn best_assignment(&mut self) -> Assignment {
        let greedy: Assignment = (0..self.lines.len())
            .map(|i| {
                self.line_options[i]
                    .iter()
                    .min_by_key(|o| (self.cost_of(i, o), o.first().map(|p| p.0)))
                    .cloned()
            })
            .collect();
        let mut starts = vec![greedy.clone()];
        let mut suppliers: Vec<SupplierId> = self
            .line_options
            .iter()
            .flatten()
            .flatten()
            .map(|p| p.0)
            .collect();
        suppliers.sort_unstable();
        suppliers.dedup();
        for s in suppliers {
            let consolidated: Assignment = greedy
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    self.line_options[i]
                        .iter()
                        .find(|o| o.len() == 1 && o[0].0 == s)
                        .cloned()
                        .or_else(|| g.clone())
                })
                .collect();
            if !starts.contains(&consolidated) {
                starts.push(consolidated);
            }
        }
        let mut best: Option<(Score, Assignment)> = None;
        for a in starts {
            let score = self.evaluate(&a).score;
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, a));
            }
            if self.evaluations >= EVALUATIONS_MAX {
                break;
            }
        }
        let Some((mut best_score, mut best)) = best else {
            return Vec::new();
        };
        // Move one line at a time to a better source, until nothing improves.
        let mut improved = true;
        while improved && self.evaluations < EVALUATIONS_MAX {
            improved = false;
            for i in 0..self.lines.len() {
                for option in &self.line_options[i] {
                    if best[i].as_ref() == Some(option) || self.evaluations >= EVALUATIONS_MAX {
                        continue;
                    }
                    let mut trial = best.clone();
                    trial[i] = Some(option.clone());
                    let score = self.evaluate(&trial).score;
                    if score < best_score {
                        best_score = score;
                        best = trial;
                        improved = true;
                    }
                }
            }
        }
        best
    }

    fn rated(
        &mut self,
        supplier: SupplierId,
        items: Vec<(ProductId, u32)>,
    ) -> Option<Arc<RatedShipment>> {
        let key = (supplier, items);
        if let Some(hit) = self.memo.get(&key) {
            return hit.clone();
        }
        let rated = self
            .rater
            .rate(supplier, &key.1)
            .ok()
            .filter(|r| !r.rates.is_empty())
            .map(Arc::new);
        self.memo.insert(key, rated.clone());
        rated
    }

    fn evaluate(&mut self, assignment: &Assignment) -> Evaluated {
        self.evaluations += 1;
        let mut by_supplier: Vec<(SupplierId, Vec<Allocation>)> = Vec::new();
        for (line, choice) in assignment.iter().enumerate() {
            let Some(option) = choice else { continue };
            let Some(product) = self.lines[line].product else {
                continue;
            };
            for &(sup, qty) in option {
                let (cost, as_of_s) = self.lines[line]
                    .candidates
                    .iter()
                    .find(|c| c.supplier == sup)
                    .map_or((0, 0), |c| (c.cost, c.as_of_s));
                let alloc = Allocation {
                    line,
                    product,
                    qty,
                    cost,
                    as_of_s,
                };
                match by_supplier.iter_mut().find(|(s, _)| *s == sup) {
                    Some((_, v)) => v.push(alloc),
                    None => by_supplier.push((sup, vec![alloc])),
                }
            }
        }
        by_supplier.sort_by_key(|(s, _)| *s);
        let mut shipments = Vec::with_capacity(by_supplier.len());
        let mut unshippable = Vec::new();
        let mut goods = Decimal::ZERO;
        for (supplier, allocations) in by_supplier {
            for a in &allocations {
                goods += cost_to_decimal(a.cost) * Decimal::from(a.qty);
            }
            let items = shipment_items(&allocations);
            let Some(rated) = self.rated(supplier, items) else {
                unshippable.push(supplier);
                continue;
            };
            let processing_days = self.rater.processing_days(supplier);
            let within = match self.options.arrive_within_days {
                0 => u32::MAX,
                days => days,
            };
            let Some(rate) = choose_rate(
                &rated.rates,
                self.options.objective,
                processing_days,
                within,
            ) else {
                // No service arrives in time: as good as unshippable.
                unshippable.push(supplier);
                continue;
            };
            shipments.push(PlannedShipment {
                supplier,
                allocations,
                rated,
                rate,
                processing_days,
            });
        }
        if self.options.objective == Objective::Fastest {
            // Only the slowest shipment sets the arrival; the others take the
            // cheapest service that still arrives by then.
            let latest = shipments.iter().map(arrival_days).max().unwrap_or(0);
            for s in &mut shipments {
                let relaxed = choose_rate(
                    &s.rated.rates,
                    Objective::Cheapest,
                    s.processing_days,
                    latest,
                );
                if let Some(rate) = relaxed {
                    s.rate = rate;
                }
            }
        }
        let freight: Decimal = shipments.iter().map(|s| s.rate.amount).sum();
        let count = shipments.len() as u32;
        let primary = match self.options.objective {
            Objective::Cheapest => 0,
            Objective::Fastest => shipments.iter().map(arrival_days).max().unwrap_or(0),
            Objective::FewestShipments => count,
        };
        let over_limit = match self.options.max_shipments {
            0 => 0,
            max => count.saturating_sub(max),
        };
        Evaluated {
            score: Score {
                unshippable: unshippable.len() as u32,
                over_limit,
                primary,
                total: goods + freight,
            },
            shipments,
            unshippable,
        }
    }
}

/// A shipment's units per product, sorted by product: the one canonical form
/// freight is asked about, so equal shipments always rate (and cache) alike.
pub fn shipment_items(allocations: &[Allocation]) -> Vec<(ProductId, u32)> {
    let mut items: Vec<(ProductId, u32)> = Vec::with_capacity(allocations.len());
    for a in allocations {
        match items.iter_mut().find(|(p, _)| *p == a.product) {
            Some((_, q)) => *q += a.qty,
            None => items.push((a.product, a.qty)),
        }
    }
    items.sort_unstable();
    items
}

/// Days from order to delivery for a shipment.
pub fn arrival_days(s: &PlannedShipment) -> u32 {
    s.processing_days + s.rate.transit_days
}

/// Picks a service: the cheapest (or, for `Fastest`, the quickest) among those
/// arriving within `within_days`. Rates come sorted by amount, which breaks ties.
fn choose_rate(
    rates: &[ServiceRate],
    objective: Objective,
    processing_days: u32,
    within_days: u32,
) -> Option<ServiceRate> {
    let transit_max = within_days.checked_sub(processing_days)?;
    let pick = match objective {
        Objective::Fastest => {
            choose(rates, RateChoice::Fastest).filter(|r| r.transit_days <= transit_max)
        }
        _ => choose(rates, RateChoice::CheapestWithinDays(transit_max)),
    };
    pick.cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Freight of a flat fee per shipment plus 1.00 per unit; 2-day ground or
    /// 1-day air for 20.00 more.
    struct FlatRater {
        fee: Vec<Decimal>,
    }

    impl Rater for FlatRater {
        fn rate(
            &self,
            supplier: SupplierId,
            lines: &[(ProductId, u32)],
        ) -> Result<RatedShipment, String> {
            let units: u32 = lines.iter().map(|l| l.1).sum();
            let base = self.fee[supplier as usize] + Decimal::from(units);
            Ok(RatedShipment {
                parcels: Vec::new(),
                boxes_cost: Decimal::ZERO,
                handling_fee: Decimal::ZERO,
                rates: vec![
                    ServiceRate {
                        carrier: "X".into(),
                        service: "Ground".into(),
                        amount: base,
                        transit_days: 5,
                    },
                    ServiceRate {
                        carrier: "X".into(),
                        service: "Air".into(),
                        amount: base + Decimal::from(20),
                        transit_days: 1,
                    },
                ],
            })
        }

        fn processing_days(&self, _: SupplierId) -> u32 {
            0
        }
    }

    fn opts(objective: Objective) -> PlanOptions {
        PlanOptions {
            objective,
            allow_partial: false,
            allow_split_lines: false,
            max_shipments: 0,
            arrive_within_days: 0,
        }
    }

    fn line(product: ProductId, qty: u32, cands: &[(SupplierId, u32, CostUnits)]) -> LineInput {
        LineInput {
            product: Some(product),
            qty,
            candidates: cands
                .iter()
                .map(|&(supplier, available, cost)| Candidate {
                    supplier,
                    available,
                    cost,
                    as_of_s: 7,
                })
                .collect(),
            excluded_stock: false,
        }
    }

    #[test]
    fn consolidates_when_freight_outweighs_price() {
        // Supplier 1 is 0.50 cheaper per line but a second shipment costs 10.00.
        let rater = FlatRater {
            fee: vec![Decimal::from(10), Decimal::from(10)],
        };
        let lines = vec![
            line(1, 1, &[(0, 5, 100_000), (1, 5, 95_000)]),
            line(2, 1, &[(0, 5, 100_000)]),
        ];
        let p = plan(&lines, &opts(Objective::Cheapest), &rater).unwrap();
        assert_eq!(p.shipments.len(), 1);
        assert_eq!(p.shipments[0].supplier, 0);
        assert_eq!(p.goods, Decimal::from(20));
        assert_eq!(p.freight, Decimal::from(12));
        assert!(!p.proven_optimal);
    }

    #[test]
    fn all_or_nothing_names_every_short_line() {
        let rater = FlatRater {
            fee: vec![Decimal::ONE],
        };
        let lines = vec![
            LineInput {
                product: None,
                qty: 1,
                candidates: vec![],
                excluded_stock: false,
            },
            line(2, 9, &[(0, 3, 1)]),
            line(3, 1, &[(0, 3, 1)]),
        ];
        let err = plan(&lines, &opts(Objective::Cheapest), &rater).unwrap_err();
        let PlanError::Unfulfillable(shorts) = err;
        assert_eq!(
            shorts,
            vec![
                Short {
                    line: 0,
                    missing: 1,
                    reason: ShortReason::UnknownSku
                },
                Short {
                    line: 1,
                    missing: 6,
                    reason: ShortReason::OutOfStock
                },
            ]
        );
        let mut partial = opts(Objective::Cheapest);
        partial.allow_partial = true;
        let p = plan(&lines, &partial, &rater).unwrap();
        assert_eq!(p.shortfalls.len(), 2);
        let shipped: u32 = p
            .shipments
            .iter()
            .flat_map(|s| &s.allocations)
            .map(|a| a.qty)
            .sum();
        assert_eq!(shipped, 4);
    }

    #[test]
    fn split_lines_fill_from_the_cheapest() {
        let rater = FlatRater {
            fee: vec![Decimal::ONE, Decimal::ONE],
        };
        let lines = vec![line(1, 5, &[(0, 3, 200), (1, 4, 100)])];
        assert!(plan(&lines, &opts(Objective::Cheapest), &rater).is_err());
        let mut o = opts(Objective::Cheapest);
        o.allow_split_lines = true;
        let p = plan(&lines, &o, &rater).unwrap();
        let parts: Vec<(SupplierId, u32)> = p
            .shipments
            .iter()
            .map(|s| (s.supplier, s.allocations[0].qty))
            .collect();
        assert_eq!(parts, vec![(0, 1), (1, 4)]);
        assert!(p.proven_optimal, "a forced split is provably the only plan");
    }

    #[test]
    fn fastest_pays_for_air_only_where_it_sets_the_arrival() {
        let rater = FlatRater {
            fee: vec![Decimal::ONE],
        };
        let lines = vec![line(1, 1, &[(0, 5, 100)])];
        let p = plan(&lines, &opts(Objective::Fastest), &rater).unwrap();
        assert_eq!(p.shipments[0].rate.service, "Air");
        let p = plan(&lines, &opts(Objective::Cheapest), &rater).unwrap();
        assert_eq!(p.shipments[0].rate.service, "Ground");
        assert!(p.proven_optimal);
    }

    #[test]
    fn arrival_limit_buys_the_cheapest_service_that_makes_it() {
        let rater = FlatRater {
            fee: vec![Decimal::ONE],
        };
        let lines = vec![line(1, 1, &[(0, 5, 100)])];
        let mut o = opts(Objective::Cheapest);
        o.arrive_within_days = 2;
        let p = plan(&lines, &o, &rater).unwrap();
        assert_eq!(p.shipments[0].rate.service, "Air");
        o.arrive_within_days = 5;
        let p = plan(&lines, &o, &rater).unwrap();
        assert_eq!(
            p.shipments[0].rate.service, "Ground",
            "ground arrives in 5 days"
        );
    }

    #[test]
    fn max_shipments_is_met_or_refused() {
        let rater = FlatRater {
            fee: vec![Decimal::ONE, Decimal::ONE],
        };
        let lines = vec![line(1, 1, &[(0, 5, 1)]), line(2, 1, &[(1, 5, 1)])];
        let mut o = opts(Objective::Cheapest);
        o.max_shipments = 1;
        let PlanError::Unfulfillable(shorts) = plan(&lines, &o, &rater).unwrap_err();
        assert_eq!(shorts[0].reason, ShortReason::ShipmentLimit);
        o.allow_partial = true;
        let p = plan(&lines, &o, &rater).unwrap();
        assert_eq!(p.shipments.len(), 1);
        assert_eq!(p.shortfalls.len(), 1);
    }

    #[test]
    fn same_input_same_plan() {
        let rater = FlatRater {
            fee: vec![Decimal::ONE, Decimal::ONE, Decimal::ONE],
        };
        let lines = vec![
            line(1, 1, &[(2, 5, 100), (0, 5, 100), (1, 5, 100)]),
            line(2, 1, &[(1, 5, 100), (2, 5, 100)]),
        ];
        let a = plan(&lines, &opts(Objective::Cheapest), &rater).unwrap();
        let b = plan(&lines, &opts(Objective::Cheapest), &rater).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shipments.len(), 1);
        assert_eq!(
            a.shipments[0].supplier, 1,
            "ties go to the lowest supplier id"
        );
    }
}
