//! Stock checks and quotes: gather what the index knows for a basket, seen
//! through the request's real-time overlay, then hand it to the planner and
//! freight.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::address::Address;
use super::catalog::ProductId;
use super::freight::{
    FreightFloor, ItemLine, Lane, LaneKey, LinearFloor, Place, RatedShipment, ShipmentProfile,
};
use super::index::IndexView;
use super::money::CostUnits;
use super::planner::{
    self, Candidate, Floor, LineInput, Objective, PlanError, PlanOptions, PlanOutcome, Planner,
    Rater, Short,
};
use super::realtime::Overlay;
use super::suppliers::SupplierId;
use super::world::{endpoint, World};

pub use super::realtime::{Freshness, StockSource};

/// A validated basket line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// Index of the request line it came from (the first, when a SKU was
    /// repeated and merged), for naming it in errors.
    pub line: usize,
    /// The SKU as asked.
    pub sku: String,
    /// Its product, `None` when unknown.
    pub product: Option<ProductId>,
    /// Units wanted (at least 1).
    pub qty: u32,
}

/// One supplier's offer as a caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferInfo {
    /// Who.
    pub supplier: SupplierId,
    /// Their code.
    pub supplier_sku: String,
    /// Units available to a new order.
    pub available: u32,
    /// Unit cost.
    pub cost: CostUnits,
    /// Data time (Unix seconds).
    pub as_of_s: u32,
    /// Where the numbers came from.
    pub source: StockSource,
}

/// Stock of one basket line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockInfo {
    /// The line asked.
    pub demand: Demand,
    /// Units available across suppliers.
    pub available: u32,
    /// Every supplier's offer.
    pub offers: Vec<OfferInfo>,
}

/// A quote request past validation.
#[derive(Debug, Clone)]
pub struct QuoteInput {
    /// The basket, duplicates merged.
    pub lines: Vec<Demand>,
    /// Destination.
    pub ship_to: Address,
    /// Plan options.
    pub options: PlanOptions,
    /// Suppliers not to use.
    pub excluded: Vec<SupplierId>,
}

/// A quote: the plan, the alternatives and its identity.
#[derive(Debug, Clone)]
pub struct Quote {
    /// Unique id.
    pub quote_id: String,
    /// The plan for the requested objective.
    pub plan: PlanOutcome,
    /// Best plans under the other objectives, where they differ.
    pub alternatives: Vec<PlanOutcome>,
    /// Real-time outcome.
    pub freshness: Freshness,
    /// Until when the quote holds (Unix ms).
    pub valid_until_ms: i64,
    /// The supplier's code for each (supplier, product) in the plans, read
    /// from the same index view the plans were made from.
    pub supplier_skus: HashMap<(SupplierId, ProductId), String>,
    /// Where the numbers of each (supplier, product) in the plans came from
    /// (the `as_of` travels with each allocation).
    pub sources: HashMap<(SupplierId, ProductId), StockSource>,
}

/// Why a quote failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// All-or-nothing cannot be met.
    #[error("{}", describe_shorts(.lines, .shorts))]
    Unfulfillable {
        /// The basket, for naming lines.
        lines: Vec<Demand>,
        /// What is short.
        shorts: Vec<Short>,
    },
}

fn describe_shorts(lines: &[Demand], shorts: &[Short]) -> String {
    let parts: Vec<String> = shorts
        .iter()
        .map(|s| {
            let (line, sku) = lines
                .get(s.line)
                .map_or((s.line, "?"), |d| (d.line, d.sku.as_str()));
            let why = match s.reason {
                planner::ShortReason::UnknownSku => "unknown SKU".to_string(),
                planner::ShortReason::OutOfStock => {
                    format!("out of stock: {} unit(s) missing", s.missing)
                }
                planner::ShortReason::Excluded => "in stock only at excluded suppliers".to_string(),
                planner::ShortReason::ShipmentLimit => {
                    format!("{} unit(s) do not fit within max_shipments", s.missing)
                }
                planner::ShortReason::NotShippable => {
                    format!("{} unit(s) cannot be shipped to the destination", s.missing)
                }
            };
            format!("lines[{line}] {sku}: {why}")
        })
        .collect();
    format!("cannot fulfil the whole basket: {}", parts.join("; "))
}

/// Quote ids: unique per process start and call.
static QUOTE_SEQ: AtomicU64 = AtomicU64::new(0);

impl World {
    /// Stock and offers per line, from the index seen through `fresh`.
    pub fn check_stock(&self, lines: &[Demand], fresh: &Overlay) -> Vec<StockInfo> {
        let view = self.index.view();
        lines
            .iter()
            .map(|d| {
                let offers: Vec<OfferInfo> = match d.product {
                    Some(p) => offers_of(self, &view, p, fresh),
                    None => Vec::new(),
                };
                StockInfo {
                    demand: d.clone(),
                    available: offers
                        .iter()
                        .map(|o| o.available)
                        .fold(0u32, u32::saturating_add),
                    offers,
                }
            })
            .collect()
    }

    /// Every offer for a product, as the index holds it.
    pub fn offers(&self, product: ProductId) -> Vec<OfferInfo> {
        offers_of(self, &self.index.view(), product, &Overlay::default())
    }

    /// Plans a basket under the requested objective and the others, from the
    /// index seen through `fresh` (the request's real-time answers), within
    /// the default planning budget.
    pub fn quote(
        &self,
        input: &QuoteInput,
        fresh: &Overlay,
        valid_secs: u64,
    ) -> Result<Quote, QuoteError> {
        let budget = Duration::from_millis(crate::limits::PLANNING_BUDGET_MS);
        self.quote_by(input, fresh, valid_secs, Instant::now() + budget)
    }

    /// Plans a basket like [`World::quote`], searching until `deadline`: the
    /// requested objective may use up to three fifths of the time, the
    /// alternatives share what is left. All objectives share one planner, so
    /// a shipment rated for one is not rated again for another.
    pub fn quote_by(
        &self,
        input: &QuoteInput,
        fresh: &Overlay,
        valid_secs: u64,
        deadline: Instant,
    ) -> Result<Quote, QuoteError> {
        let view = self.index.view();
        let lines = plan_inputs(self, &view, input, fresh);
        let rater = self.rater(&input.ship_to);
        let unfulfillable = |e: PlanError| match e {
            PlanError::Unfulfillable(shorts) => QuoteError::Unfulfillable {
                lines: input.lines.clone(),
                shorts,
            },
        };
        let mut planner = Planner::new(&lines, &input.options, &rater).map_err(unfulfillable)?;
        let start = Instant::now();
        let main_deadline = start + deadline.saturating_duration_since(start) * 3 / 5;
        let plan = planner
            .plan(input.options.objective, main_deadline)
            .map_err(unfulfillable)?;
        let mut alternatives: Vec<PlanOutcome> = Vec::new();
        let others: Vec<Objective> = Objective::ALL
            .into_iter()
            .filter(|o| *o != input.options.objective)
            .collect();
        for (i, &objective) in others.iter().enumerate() {
            let now = Instant::now();
            // Shared by the objectives still to plan that search; one that
            // takes a plan already found needs no time.
            let searching = others[i..]
                .iter()
                .filter(|&&o| planner.searches(o))
                .count()
                .max(1);
            let share = deadline.saturating_duration_since(now) / searching as u32;
            if let Ok(alt) = planner.plan(objective, now + share) {
                let differs = |p: &PlanOutcome| {
                    p.shipments != alt.shipments || p.shortfalls != alt.shortfalls
                };
                if differs(&plan) && alternatives.iter().all(differs) {
                    alternatives.push(alt);
                }
            }
        }
        let now_ms = self.clock.now_ms();
        let seq = QUOTE_SEQ.fetch_add(1, Ordering::Relaxed);
        let pairs: usize = std::iter::once(&plan)
            .chain(&alternatives)
            .flat_map(|p| &p.shipments)
            .map(|s| s.allocations.len())
            .sum();
        let mut supplier_skus = HashMap::with_capacity(pairs);
        let mut sources = HashMap::with_capacity(pairs);
        for p in std::iter::once(&plan).chain(&alternatives) {
            for s in &p.shipments {
                for a in &s.allocations {
                    let key = (s.supplier, a.product);
                    if supplier_skus.contains_key(&key) {
                        continue;
                    }
                    let offer = view.offer(s.supplier, a.product);
                    let sku = offer.map(|o| o.supplier_sku.to_owned());
                    let source = offer.map_or(StockSource::Feed, |o| fresh.see(&o).source);
                    supplier_skus.insert(key, sku.unwrap_or_default());
                    sources.insert(key, source);
                }
            }
        }
        Ok(Quote {
            supplier_skus,
            sources,
            quote_id: format!("Q-{now_ms:x}-{seq:06x}"),
            plan,
            alternatives,
            freshness: fresh.freshness(),
            valid_until_ms: now_ms + (valid_secs as i64) * 1000,
        })
    }
}

impl World {
    /// The planner's view of a quote request: each line's candidates from
    /// the index seen through `fresh`, less holds and allocations, excluded
    /// suppliers left out.
    pub fn plan_inputs(&self, input: &QuoteInput, fresh: &Overlay) -> Vec<LineInput> {
        plan_inputs(self, &self.index.view(), input, fresh)
    }

    /// Freight for the planner: this world's rating to `ship_to`.
    pub fn rater<'a>(&'a self, ship_to: &'a Address) -> WorldRater<'a> {
        WorldRater {
            world: self,
            ship_to,
            destination: self.freight.place(endpoint(ship_to)).ok(),
            lanes: RefCell::new(FxHashMap::default()),
            by_key: RefCell::new(FxHashMap::default()),
            boxed_units: RefCell::new(FxHashMap::default()),
        }
    }
}

fn plan_inputs(
    world: &World,
    view: &IndexView<'_>,
    input: &QuoteInput,
    fresh: &Overlay,
) -> Vec<LineInput> {
    let mut offers = Vec::new();
    input
        .lines
        .iter()
        .map(|d| {
            offers.clear();
            if let Some(p) = d.product {
                view.offers_into(p, &mut offers);
            }
            let mut excluded_stock = false;
            let candidates = offers
                .iter()
                .filter_map(|o| {
                    let seen = fresh.see(o);
                    // What holds and allocations leave of the supplier's stock.
                    let available = seen
                        .available
                        .saturating_sub(world.counted(o.supplier, o.product));
                    let excluded = input.excluded.contains(&o.supplier);
                    excluded_stock |= excluded && available > 0;
                    (!excluded && available > 0).then_some(Candidate {
                        supplier: o.supplier,
                        available,
                        cost: seen.cost,
                        as_of_s: seen.as_of_s,
                    })
                })
                .collect();
            LineInput {
                product: d.product,
                qty: d.qty,
                candidates,
                excluded_stock,
            }
        })
        .collect()
}

fn offers_of(
    world: &World,
    view: &IndexView<'_>,
    product: ProductId,
    fresh: &Overlay,
) -> Vec<OfferInfo> {
    let mut refs = Vec::new();
    view.offers_into(product, &mut refs);
    refs.iter()
        .map(|o| {
            let seen = fresh.see(o);
            OfferInfo {
                supplier: o.supplier,
                supplier_sku: o.supplier_sku.to_owned(),
                // What holds and allocations leave of the supplier's stock.
                available: seen
                    .available
                    .saturating_sub(world.counted(o.supplier, product)),
                cost: seen.cost,
                as_of_s: seen.as_of_s,
                source: seen.source,
            }
        })
        .collect()
}

/// A supplier's lane (shared with every supplier of the same lane key) and
/// its freight floor with the supplier's handling fee.
type SupplierLane<'a> = (Rc<Lane<'a>>, FreightFloor<'a>);

/// Freight for the planner: the world's rating to one destination.
pub struct WorldRater<'a> {
    world: &'a World,
    ship_to: &'a Address,
    /// Where `ship_to` lies for lanes (`None`: no lane reaches it), found
    /// once for every supplier's lane.
    destination: Option<Place>,
    /// Each supplier's lane and its floor, found on first use (`None`: the
    /// lane has no service), so that a basket's many ratings and floors per
    /// supplier look up zones and services once.
    lanes: RefCell<FxHashMap<SupplierId, Option<SupplierLane<'a>>>>,
    /// The lanes by key: suppliers whose origins share a key share the lane
    /// (`None`: no service), so it is built once per key, not per supplier.
    by_key: RefCell<FxHashMap<LaneKey, Option<Rc<Lane<'a>>>>>,
    /// Per product, the profile of a unit in a box (`None`: no box holds
    /// it), once asked: it is the same on every lane.
    boxed_units: RefCell<FxHashMap<ProductId, Option<ShipmentProfile>>>,
}

impl Rater for WorldRater<'_> {
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String> {
        if let Some(rated) = self.with_lane(supplier, |lane, _| {
            self.world.rate_on_lane(lane, lines, Some(supplier))
        }) {
            return rated.map_err(|e| e.to_string());
        }
        // No lane: rating it the long way says why.
        let origin = &self
            .world
            .suppliers
            .get(supplier)
            .ok_or_else(|| format!("unknown supplier {supplier}"))?
            .origin;
        self.world
            .rate_shipment(origin, self.ship_to, lines, Some(supplier))
            .map_err(|e| e.to_string())
    }

    fn processing_days(&self, supplier: SupplierId) -> u32 {
        self.world
            .suppliers
            .get(supplier)
            .map_or(0, |s| s.processing_days)
    }

    fn unit_profile(&self, supplier: SupplierId, product: ProductId) -> Option<ShipmentProfile> {
        let item = self.world.item(product)?;
        // A unit some box holds has the same profile on every lane.
        let known = self.boxed_units.borrow().get(&product).copied();
        self.with_lane(supplier, |_, f| {
            let boxed = known.unwrap_or_else(|| {
                let boxed = f.boxed_unit(&item);
                self.boxed_units.borrow_mut().insert(product, boxed);
                boxed
            });
            boxed.or_else(|| f.own_unit(&item))
        })?
    }

    fn floor(&self, supplier: SupplierId, profile: &ShipmentProfile) -> Option<Floor> {
        self.with_lane(supplier, |_, f| Floor {
            amount: f.amount(profile),
            transit_days: f.transit_days(),
        })
    }

    fn floor_within(
        &self,
        supplier: SupplierId,
        profile: &ShipmentProfile,
        transit_max: u32,
    ) -> Option<i64> {
        self.with_lane(supplier, |_, f| f.amount_within(profile, transit_max))?
    }

    fn linear_floor(
        &self,
        supplier: SupplierId,
        reference: &ShipmentProfile,
    ) -> Option<LinearFloor> {
        self.with_lane(supplier, |_, f| f.linear(reference))
    }

    fn packed_floor(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
        reach: i64,
    ) -> Option<i64> {
        let items: SmallVec<[ItemLine; 8]> = lines
            .iter()
            .map(|&(product, quantity)| {
                Some(ItemLine {
                    item: self.world.item(product)?,
                    quantity,
                })
            })
            .collect::<Option<_>>()?;
        self.with_lane(supplier, |_, f| f.packed(&items, reach))?
    }
}

impl<'a> WorldRater<'a> {
    /// Runs `f` on the supplier's lane and its floor, found on first use;
    /// `None` when the lane has no service.
    fn with_lane<T>(
        &self,
        supplier: SupplierId,
        f: impl FnOnce(&Lane<'a>, &FreightFloor<'a>) -> T,
    ) -> Option<T> {
        let mut lanes = self.lanes.borrow_mut();
        let entry = lanes.entry(supplier).or_insert_with(|| {
            let origin = self.world.origin_place(supplier)?;
            let key = self
                .world
                .freight
                .lane_key_between(origin, self.destination?);
            let lane = Rc::clone(
                self.by_key
                    .borrow_mut()
                    .entry(key)
                    .or_insert_with(|| self.world.lane_at(key, self.ship_to).ok().map(Rc::new))
                    .as_ref()?,
            );
            let floor = self.world.floor_on_lane(&lane, Some(supplier));
            Some((lane, floor))
        });
        entry.as_ref().map(|(lane, floor)| f(lane, floor))
    }
}
