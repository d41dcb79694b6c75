//! The planner: which supplier ships which units, and by which service.
//!
//! An exact branch and bound over (line -> supplier) and, with split lines,
//! (line -> units per supplier), for every objective and option. Freight
//! comes only through [`Rater`]: exact ratings, memoised per (supplier, item
//! list) because packing is the expensive part, and a lower bound
//! ([`Floor`]) from a profile of the shipment's units (weight, boxes, units
//! in their own packaging) that grows with every unit added and never
//! exceeds any real rating, so the search stays exact although the freight
//! of a shipment need not grow with every item added to it (packing and
//! service choice are searches of their own). The search is anytime: it stops at a deadline with the best plan
//! found, and `proven_optimal` says whether it finished. See
//! `docs/planner.md` for the bounds, the order of the search and the
//! tie-break rule.
//!
//! It never sees carriers or transport types, so it is tested with fake
//! raters and benchmarked alone.

mod bounds;
pub mod breaks;
mod cache;
mod evaluate;
mod lagrange;
mod problem;
mod search;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use rust_decimal::Decimal;

use super::catalog::ProductId;
use super::freight::{choose, RateChoice, RatedShipment, ServiceRate};
pub use super::freight::{FloorLine, LinearFloor, ShipmentProfile};
use super::money::CostUnits;
use super::suppliers::SupplierId;

use self::cache::Cache;
pub use self::cache::SearchStats;
use self::problem::Problem;

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
    /// No carrier service can take it to the destination (in time).
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
    /// No better plan exists under the objective: the search finished.
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

/// The least a shipment can cost and the soonest it can arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floor {
    /// Never above the amount of any service for the shipment, in
    /// ten-thousandths of the currency unit.
    pub amount: i64,
    /// Never above the transit days of any service for the shipment.
    pub transit_days: u32,
}

/// Prices shipments; the planner's only view of freight.
///
/// Contract the search relies on (and the tests check for every rater):
/// - A shipment's profile is the sum ([`ShipmentProfile::add`]) of its
///   units' profiles. `floor(s, p)` is at most what `rate` gives, on any
///   service, for any shipment from `s` whose profile is at least `p` field
///   by field, and it never falls as `p` grows. `None` means no shipment
///   from `s` can be rated at all.
/// - A unit in its own packaging (a profile with no boxed weight) adds its
///   `own_charge` to the floor: `floor(s, p + u)` is at least
///   `floor(s, p) + u.own_charge`, so such units count in full even where
///   the search bounds a shipment by its floor.
/// - `linear_floor(s, _)` is at most what `rate` gives for any shipment from
///   `s`: [`LinearFloor::opening`] plus each unit's
///   [`LinearFloor::marginal`], counting boxed goods the same way for all.
/// - `packed_floor(s, lines, _)`, when it answers, is at most what `rate`
///   gives, on any service, for any shipment from `s` holding at least
///   those units; the search keeps it for the shipment as it grows. Units in
///   their own packaging added on top count their `own_charge` in full here
///   too (they ship alone, whatever else shares the shipment).
/// - A product whose single unit cannot be rated from a supplier (an item
///   over every limit, no service in time) cannot be rated in any shipment
///   from it, so the search may drop that pairing once seen; `unit_profile`
///   may say so at once with `None`.
pub trait Rater {
    /// Packs and rates `lines` (sorted by product) shipped by `supplier`.
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String>;
    /// Days before the supplier's carrier collects.
    fn processing_days(&self, supplier: SupplierId) -> u32;
    /// The profile of one unit of `product` shipped by `supplier`, or `None`
    /// when it cannot ship from there at all.
    fn unit_profile(&self, supplier: SupplierId, product: ProductId) -> Option<ShipmentProfile>;
    /// A lower bound on every shipment from `supplier` whose profile is at
    /// least `profile`; see the trait's contract.
    fn floor(&self, supplier: SupplierId, profile: &ShipmentProfile) -> Option<Floor>;
    /// [`Rater::floor`]'s amount over the services of at most `transit_max`
    /// transit days only, under the same contract; `None` when none of them
    /// can carry such a shipment. FASTEST prices every shipment by the plan's
    /// arrival, so its bounds use this. The default, the floor over every
    /// service, is a looser bound of the same.
    fn floor_within(
        &self,
        supplier: SupplierId,
        profile: &ShipmentProfile,
        transit_max: u32,
    ) -> Option<i64> {
        self.floor(supplier, profile)
            .filter(|f| f.transit_days <= transit_max)
            .map(|f| f.amount)
    }
    /// A lower bound on every shipment from `supplier` that adds up over its
    /// units (at most what `rate` gives on any service for it), made as
    /// tight as it can be for shipments like `reference`.
    fn linear_floor(
        &self,
        supplier: SupplierId,
        reference: &ShipmentProfile,
    ) -> Option<LinearFloor>;
    /// A lower bound on every shipment from `supplier` that holds at least
    /// `lines` (sorted by product): at most what `rate` gives, on any
    /// service, for any shipment from it with at least these units of each
    /// product. `None` when it cannot tell (the default), or when it finds
    /// cheaply that the bound is below `reach`, the least the caller can
    /// use; the search then bounds such shipments by their floor alone.
    fn packed_floor(
        &self,
        _supplier: SupplierId,
        _lines: &[(ProductId, u32)],
        _reach: i64,
    ) -> Option<i64> {
        None
    }
}

/// Plans one basket under several objectives, sharing the ratings (packing
/// is the expensive part) and the best plans found between them.
pub struct Planner<'a> {
    problem: Problem,
    options: PlanOptions,
    rater: &'a dyn Rater,
    cache: Cache,
    /// Best assignments found so far, under any objective: each seeds the
    /// next search with a feasible plan.
    seeds: Vec<Vec<u32>>,
    /// What the searches so far prepared, one of each kind (see
    /// `search::Prepared`): a later search of the same kind starts from it.
    prepared: [Option<search::Prepared>; 2],
    /// The bounds' working space, sized to the basket by the first search.
    scratch: bounds::Scratch,
    /// The last search's node, sized to the basket by the first search.
    spare: search::Node,
    /// The plan FEWEST_SHIPMENTS takes without a search, once a finished
    /// CHEAPEST search found one (see `search::fewest_is_cheapest`): a
    /// FEWEST_SHIPMENTS search would only prove it over again.
    fewest: Option<Vec<u32>>,
}

impl<'a> Planner<'a> {
    /// Prepares a basket: the ways each line can be sourced and what cannot
    /// be had at all. Fails at once when all-or-nothing cannot be met for
    /// want of stock (no search can change that).
    pub fn new(
        lines: &[LineInput],
        options: &PlanOptions,
        rater: &'a dyn Rater,
    ) -> Result<Self, PlanError> {
        let problem = Problem::new(lines, options, rater)?;
        let mut cache = Cache::new(&problem, options.arrive_within_days);
        cache.ban_unserved(&problem, rater);
        Ok(Self {
            problem,
            options: options.clone(),
            rater,
            cache,
            seeds: Vec::new(),
            prepared: [None, None],
            scratch: bounds::Scratch::default(),
            spare: search::Node::default(),
            fewest: None,
        })
    }

    /// The best plan under `objective` that the search finds before
    /// `deadline`; proven optimal when it finished. A feasible plan found is
    /// always returned, however early the deadline.
    pub fn plan(
        &mut self,
        objective: Objective,
        deadline: Instant,
    ) -> Result<PlanOutcome, PlanError> {
        let known = self
            .fewest
            .as_ref()
            .filter(|_| objective == Objective::FewestShipments);
        let found = match known {
            Some(plan) => Some(search::Found {
                assignment: plan.clone(),
                complete: true,
            }),
            None => search::run(
                &self.problem,
                &self.options,
                objective,
                self.rater,
                &mut self.cache,
                &self.seeds,
                deadline,
                &mut self.prepared,
                &mut self.scratch,
                &mut self.spare,
            ),
        };
        match found {
            Some(found) => {
                if objective == Objective::Cheapest
                    && found.complete
                    && search::fewest_is_cheapest(
                        &self.problem,
                        &self.prepared,
                        &found.assignment,
                        &mut self.scratch,
                    )
                {
                    self.fewest = Some(found.assignment.clone());
                }
                if !self.seeds.contains(&found.assignment) {
                    self.seeds.push(found.assignment.clone());
                }
                Ok(evaluate::outcome(
                    &self.problem,
                    &self.options,
                    objective,
                    self.rater,
                    &mut self.cache,
                    &found.assignment,
                    found.complete && self.problem.exhaustive,
                ))
            }
            None => Err(PlanError::Unfulfillable(self.name_shortfalls(deadline))),
        }
    }

    /// Whether planning `objective` now would search, rather than take a
    /// plan already found (see [`Planner::plan`]): a caller sharing a
    /// deadline between objectives gives the time to those that search.
    pub fn searches(&self, objective: Objective) -> bool {
        objective != Objective::FewestShipments || self.fewest.is_none()
    }

    /// The work done so far, over every objective planned.
    pub fn stats(&self) -> SearchStats {
        self.cache.stats
    }

    /// Why all-or-nothing failed: the shortfalls of the best partial plan.
    fn name_shortfalls(&mut self, deadline: Instant) -> Vec<Short> {
        let partial = PlanOptions {
            allow_partial: true,
            ..self.options.clone()
        };
        let mut shorts = match Planner::new(&self.problem.inputs, &partial, self.rater)
            .and_then(|mut p| p.plan(Objective::Cheapest, deadline))
        {
            Ok(p) => p.shortfalls,
            Err(PlanError::Unfulfillable(s)) => s,
        };
        shorts.retain(|s| s.missing > 0);
        shorts
    }
}

/// Plans a basket under `options.objective`, searching until `deadline`.
pub fn plan(
    lines: &[LineInput],
    options: &PlanOptions,
    rater: &dyn Rater,
    deadline: Instant,
) -> Result<PlanOutcome, PlanError> {
    Planner::new(lines, options, rater)?.plan(options.objective, deadline)
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
) -> Option<&ServiceRate> {
    let transit_max = within_days.checked_sub(processing_days)?;
    match objective {
        Objective::Fastest => {
            choose(rates, RateChoice::Fastest).filter(|r| r.transit_days <= transit_max)
        }
        _ => choose(rates, RateChoice::CheapestWithinDays(transit_max)),
    }
}
