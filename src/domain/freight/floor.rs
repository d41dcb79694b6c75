//! The least a shipment can cost on a lane, from its goods' weight alone.
//!
//! The planner searches over which supplier ships which lines and needs, for
//! a shipment that is still being filled, a price that no final content can
//! undercut. Packing is a search of its own and the chosen service a minimum
//! over services, so the real amount need not grow with every added item;
//! this floor does, by construction, and never exceeds the amount of any
//! service for any shipment whose goods weigh at least as much.
//!
//! Why it holds. A unit that fits no box ships alone in its own packaging,
//! so its parcel's charge is known exactly; these add up. A unit that fits a
//! box always goes in one that holds it alone, so its parcel costs at least
//! the cheapest such box, weighs at least the lightest tare, and bills at
//! least the dimensional weight of the smallest. The boxed parcels' billable
//! units add up to at least the boxed goods' weight plus one tare, and to at
//! least the dimensional weight of the space the units take (several units
//! fill at most the fill factor of a box); each is at least the largest of
//! those smallest boxes' dimensional weights; a price row `p`
//! that never falls and whose price per unit never rises is subadditive, so
//! the parcels together cost at least `p` of the larger of the two (capped
//! at the row's end). Rows without that shape fall back to the cheapest
//! entry, or the cheapest price per unit times the units, whichever is
//! larger.
//!
//! How many parcels. A box holds at most the largest box's inner volume at
//! the fill factor, and at most the largest weight of goods any box carries,
//! so the units' volume and weight force a least number of boxed parcels;
//! units that each take more than half of that volume cannot share a box,
//! so each is a parcel of its own, billed at least at the dimensional weight
//! of the smallest box that holds it. With `k` parcels the carriage is at
//! least `k * a + b * units` for any line `a + b * x` under the row (the
//! tangents of its lower hull): one opening per parcel, where the row at the
//! goods' units counts one. Each parcel pays the per-parcel residential and
//! delivery-area surcharges and a box, and adds a tare.
//!
//! The biggest box. Of several parcels, the one holding the unit whose
//! least box is the largest bills at least that box's dimensional weight
//! alone, whatever the others bill; they carry at least the goods that box
//! cannot (all but the handling weight, where every parcel stays under it),
//! and each at least a unit. A big, light box's opening is so not shared
//! out over parcels that could each be small. Units that only the largest
//! boxes hold fill at least as many such parcels as their share of a parcel
//! needs, each billing that box's dimensional weight, and the others carry
//! what those boxes cannot.
//!
//! Additional handling and oversize. A parcel holding a unit that alone,
//! with the lightest tare of a box that holds it, is over the carrier's
//! handling weight, or whose sides are over its handling or oversize
//! measures, pays the lesser of the two charges (oversize supersedes
//! handling). So does one of `k` parcels whose goods weigh more than `k`
//! times the handling weight; as more parcels cost no less, the floor takes
//! the least over the counts that force it and the first that does not.
//! Fuel multiplies everything, the least over services of a sum is at least
//! the sum of the least, and rounding to cents is monotone.
//!
//! Parcels under the handling weight. The lines under the row hold for any
//! split of the weight into parcels, a pound in one and the rest in another
//! included, and carriers price the first pounds dearest. A parcel that pays
//! no additional handling weighs at most the carrier's handling weight, so
//! for a few parcels the floor also takes the least split of the weight into
//! parts no heavier than that (worked out per row when the tables load), or,
//! where one part is heavier, the plain floor with the handling.
//!
//! What a profile cannot say. A profile only adds up as units join, so it
//! cannot tell which units may share a parcel: three heavy units pay
//! additional handling together, and apart each bills a large box's
//! dimensional weight, while the floor counts that box for one parcel only
//! (unless only the largest boxes hold them) and prices the rest of their
//! weight as if it could split freely. For a shipment of a few units
//! [`FreightFloor::packed`] tries every way of parcelling them instead (see
//! there why that bounds every shipment that holds them).

use std::cell::{Cell, RefCell};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::packing::{Packer, Partitions, Summary};
use super::rating::{ceil_kg, ceil_lb, ParcelFacts, ParcelShape, Pricer, E8};
use super::tables::{BoxLimits, BoxSpec, Carrier, DimRule, HandlingLimits, Service, Settings};
use super::{Item, ItemLine, REFUSED_PARCEL_COST_E8};
use crate::domain::money::to_units;

/// Sub-multisets of a shipment's units (each kind of unit taken from none
/// to all of its units, the empty one included) up to which
/// [`FreightFloor::packed`] tries every partition of them into parcels:
/// six different units, or more where units repeat. The partitions'
/// number grows faster than exponentially with the sub-multisets.
pub const PACKED_MAX_SETS: usize = super::packing::LEAST_PARTITION_MAX_SETS;

/// The per-zone floor rows of one service, built once when tables load.
pub(super) type ServiceFloors = Vec<Option<RowFloor>>;

/// How many parcel counts a floor tries where the goods' total weight forces
/// additional handling on one of them; past these it counts the next
/// without it.
const HANDLING_COUNTS: u32 = 3;

/// Parcel counts up to which [`RowFloor::capped_at_fuel`] knows the least
/// carriage of parcels that each stay under the carrier's additional
/// handling weight; past it the floor counts parcels as before.
const CAPPED_MAX_PARCELS: u32 = 3;

/// Billing units of handling weight up to which a row keeps the tables of
/// [`RowFloor::capped_at_fuel`] (they grow with its square). Carriers' are
/// 50 lb or 25 kg; tables that set one past any parcel a carrier takes get
/// the plain floor.
const CAPPED_MAX_UNITS: u32 = 500;

/// A lower envelope of one price row (one service, one zone).
#[derive(Debug, Clone)]
pub(super) struct RowFloor {
    /// Floor of the transportation charge of `x` units, with fuel, at
    /// `units_fuel[x - 1]`, in ten-thousandths rounded down (a sum of values
    /// rounded down is at most the value of the sum, so it stays a floor).
    units_fuel: Vec<i64>,
    /// The least price per unit anywhere in the row, with fuel, likewise:
    /// beyond the row's end the floor grows with this slope.
    slope_fuel: i64,
    /// The lines under the floor that [`RowFloor::tangent_by_weight`] picks
    /// from, one per edge of the floor's lower convex hull, by the units
    /// where the edge ends; computed once, as the planner asks for them per
    /// basket.
    tangents: Vec<Tangent>,
    /// The row's price never falls as the billable weight grows, so a
    /// parcel never costs less for holding more ([`FreightFloor::packed`]
    /// relies on it).
    pub(super) rises: bool,
    /// The most billing units of weight a parcel weighs without paying the
    /// carrier's additional handling (0: no such weight).
    unhandled_units: u32,
    /// Per parcel count `k` from 2 to [`CAPPED_MAX_PARCELS`], per `x` from
    /// 1 to `k * unhandled_units`: the least floor of `k` parcels of at
    /// most `unhandled_units` each, billing at least `x` in all (worked out
    /// when the tables load, not in a quote).
    capped: Vec<Vec<i64>>,
}

/// A line `a + b * x` under a row's floor, for references up to `end`
/// billing units.
#[derive(Debug, Clone, Copy)]
struct Tangent {
    /// `end` in grams of boxed weight and in cubic millimetres of boxed
    /// space, rounded down (only picks a tangent).
    end_g: u64,
    end_mm3: u64,
    /// In ten-thousandths, rounded down, fuel included: `a`, and `b` per
    /// kilogram and per litre. Precomputed so that a linear floor costs
    /// integer arithmetic only; a sum of values rounded down is at most the
    /// value of the sum, so the line stays under the floor.
    a_fuel: i64,
    per_kg_fuel: i64,
    per_litre_fuel: i64,
    /// `b` per billing unit, likewise.
    per_unit_fuel: i64,
}

/// Conversions between a service's billing units and grams or space, used
/// when a row's tangents are built.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scale {
    /// Per billing unit to per kilogram.
    per_kg: Decimal,
    /// Per billing unit to per litre.
    per_litre: Decimal,
    /// Grams in a billing unit of weight.
    grams_per_unit: Decimal,
    /// Cubic millimetres in a billing unit of dimensional weight.
    mm3_per_unit: Decimal,
}

impl Scale {
    fn new(dim: DimRule) -> Self {
        let grams_per_unit = if dim.metric {
            Decimal::from(1000)
        } else {
            Decimal::new(45_359_237, 5)
        };
        // Litres in one billing unit of dimensional weight.
        let litres_per_unit = if dim.metric {
            Decimal::from(dim.divisor) / Decimal::from(1000)
        } else {
            Decimal::from(dim.divisor) * Decimal::new(16_387_064, 9)
        };
        let inverse = |d: Decimal| {
            if d.is_zero() {
                Decimal::ZERO
            } else {
                Decimal::ONE / d
            }
        };
        Self {
            per_kg: Decimal::from(1000) / grams_per_unit,
            per_litre: inverse(litres_per_unit),
            grams_per_unit,
            mm3_per_unit: litres_per_unit * Decimal::from(1_000_000),
        }
    }
}

impl Tangent {
    fn new(end: Decimal, a: Decimal, b: Decimal, scale: &Scale, fuel: Decimal) -> Self {
        let at = |units: Decimal, per: Decimal| {
            units
                .checked_mul(per)
                .and_then(|x| x.floor().to_u64())
                .unwrap_or(u64::MAX)
        };
        Self {
            end_g: at(end, scale.grams_per_unit),
            end_mm3: at(end, scale.mm3_per_unit),
            a_fuel: to_units(a * fuel),
            per_kg_fuel: to_units(b * fuel * scale.per_kg),
            per_litre_fuel: to_units(b * fuel * scale.per_litre),
            per_unit_fuel: to_units(b * fuel),
        }
    }
}

impl RowFloor {
    /// The floor of `row` (prices for 1, 2, ... billing units) under the
    /// service's minimum charge, billing rule and fuel factor, for a
    /// carrier whose additional handling starts above `handling_g_x1e5`
    /// grams (times 100,000) of gross weight.
    fn new(
        row: &[Decimal],
        minimum_charge: Decimal,
        dim: DimRule,
        fuel: Decimal,
        handling_g_x1e5: u64,
    ) -> Option<Self> {
        let scale = Scale::new(dim);
        let price = |i: usize| row[i].max(minimum_charge);
        let n = row.len();
        if n == 0 {
            return None;
        }
        let mut slope = price(0);
        let mut cheapest = price(0);
        // Subadditive when the price never falls and the price per unit never
        // rises: p(x+1) >= p(x) and p(x+1) * x <= p(x) * (x+1).
        let mut subadditive = true;
        let mut rises = true;
        for i in 0..n {
            let x = Decimal::from(i as u64 + 1);
            slope = slope.min(price(i) / x);
            cheapest = cheapest.min(price(i));
            if i + 1 < n {
                let (p, q) = (price(i), price(i + 1));
                if q < p || q * x > p * (x + Decimal::ONE) {
                    subadditive = false;
                }
                rises &= q >= p;
            }
        }
        let units: Vec<Decimal> = (0..n)
            .map(|i| {
                let linear = slope * Decimal::from(i as u64 + 1);
                if subadditive {
                    price(i)
                } else {
                    cheapest.max(linear)
                }
            })
            .collect();
        // Points of the floor: the row, then where `slope * x` overtakes the
        // last price (the floor is flat until there, then rises with `slope`).
        let last = units[n - 1];
        let mut points: Vec<(Decimal, Decimal)> = units
            .iter()
            .enumerate()
            .map(|(i, &y)| (Decimal::from(i as u64 + 1), y))
            .collect();
        if slope > Decimal::ZERO {
            let rise = last / slope;
            if rise > Decimal::from(n as u64) {
                points.push((rise, last));
            }
        }
        let mut hull: Vec<(Decimal, Decimal)> = Vec::with_capacity(points.len());
        for p in points {
            // Drop the last vertex while it lies on or above the chord.
            while hull.len() >= 2 {
                let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
                if (b.1 - a.1) * (p.0 - a.0) >= (p.1 - a.1) * (b.0 - a.0) {
                    hull.pop();
                } else {
                    break;
                }
            }
            hull.push(p);
        }
        let intercept_at_slope = hull
            .iter()
            .map(|&(x, y)| y - slope * x)
            .min()
            .unwrap_or(Decimal::ZERO);
        // The edge of the hull at a reference, its slope capped at `slope`
        // (past which a line would cross the floor far beyond the row).
        let capped = |a: Decimal, b: Decimal| {
            if b < Decimal::ZERO || a < Decimal::ZERO {
                // A flat line at the cheapest charge is always below.
                let flat = hull.iter().map(|v| v.1).min().unwrap_or(Decimal::ZERO);
                (flat.max(Decimal::ZERO), Decimal::ZERO)
            } else {
                (a, b)
            }
        };
        let mut tangents: Vec<Tangent> = hull
            .windows(2)
            .map(|w| {
                let b = (w[1].1 - w[0].1) / (w[1].0 - w[0].0);
                let (a, b) = if b > slope {
                    capped(intercept_at_slope, slope)
                } else {
                    capped(w[0].1 - b * w[0].0, b)
                };
                Tangent::new(w[1].0, a, b, &scale, fuel)
            })
            .collect();
        if tangents.is_empty() {
            let (a, b) = capped(hull[0].1 - slope * hull[0].0, slope);
            tangents.push(Tangent::new(Decimal::MAX, a, b, &scale, fuel));
        }
        // The heaviest gross weight without additional handling, in the
        // row's billing units: a parcel that light bills at least that by
        // weight, rounded up.
        let unhandled_g = u32::try_from(handling_g_x1e5 / 100_000).unwrap_or(0);
        let unhandled_units = match unhandled_g {
            0 => 0,
            g if dim.metric => ceil_kg(g),
            g => ceil_lb(g),
        };
        let unhandled_units = if unhandled_units > CAPPED_MAX_UNITS {
            0
        } else {
            unhandled_units
        };
        let mut floor = Self {
            units_fuel: units.iter().map(|&u| to_units(u * fuel)).collect(),
            slope_fuel: to_units(slope * fuel),
            tangents,
            rises,
            unhandled_units,
            capped: Vec::new(),
        };
        floor.capped = floor.capped_tables();
        Some(floor)
    }

    /// The tables of [`RowFloor::capped`], adding parcels one at a time:
    /// `k` parcels billing at least `x` are one of `u` units and `k - 1`
    /// billing at least `x - u` (each part at least one unit).
    fn capped_tables(&self) -> Vec<Vec<i64>> {
        let cap = self.unhandled_units as usize;
        if cap == 0 {
            return Vec::new();
        }
        let q: Vec<i64> = (1..=self.unhandled_units)
            .map(|u| self.at_fuel(u))
            .collect();
        let mut tables: Vec<Vec<i64>> = Vec::new();
        for k in 2..=CAPPED_MAX_PARCELS as usize {
            let before = tables.last().unwrap_or(&q);
            let mut least = vec![i64::MAX; k * cap];
            for (i, slot) in least.iter_mut().enumerate() {
                let x = i + 1;
                // A part of more than `x` units costs no less than one of
                // `x` (the floor never falls), and the rest holds at most
                // `(k - 1) * cap`.
                let from = x.saturating_sub((k - 1) * cap).max(1);
                for u in from..=x.min(cap) {
                    let cost = q[u - 1].saturating_add(before[(x - u).max(1) - 1]);
                    if cost < *slot {
                        *slot = cost;
                    }
                }
            }
            tables.push(least);
        }
        tables
    }

    /// Floor of the carriage, with fuel, of `parcels` parcels (at most
    /// [`CAPPED_MAX_PARCELS`]) weighing `units` billing units in all,
    /// rounded up per parcel, none of them heavier than the carrier's
    /// additional handling weight; `None` when they cannot all be that
    /// light, or the count is past what is known.
    ///
    /// Why it holds. Each parcel bills at least its own weight in whole
    /// units, at most `unhandled_units`, and the floor of a parcel's price
    /// never falls as its billing units grow (it is the row itself where the
    /// row never falls, else a flat-then-linear envelope), so the parcels
    /// cost at least the least over ways of splitting `units` into
    /// `parcels` such parts. Unlike [`RowFloor::parcels_at_fuel`] no part
    /// may be a single unit while another takes the rest: carriers price
    /// the first pounds dearest, and splitting so is what lets a line under
    /// the row reach low.
    fn capped_at_fuel(&self, parcels: u32, units: u32) -> Option<i64> {
        let cap = self.unhandled_units;
        if !(1..=CAPPED_MAX_PARCELS).contains(&parcels) || cap == 0 || units > parcels * cap {
            return None;
        }
        if parcels == 1 {
            return Some(self.at_fuel(units));
        }
        self.capped
            .get(parcels as usize - 2)?
            .get(units.max(1) as usize - 1)
            .copied()
    }

    /// A line with opening `a >= 0` and slope `0 <= b <= slope` whose
    /// `a + b * x` is at or below the floor for every `x >= 1` units, as
    /// high as can be at a reference of `grams` of boxed weight: the hull's
    /// edge there (its slope capped at `slope`, past which a line would
    /// cross the floor far beyond the row). Returned with fuel, per kilogram,
    /// in ten-thousandths.
    fn tangent_by_weight(&self, grams: u64) -> (i64, i64) {
        self.tangent_reaching(|t| grams <= t.end_g)
            .map_or((0, 0), |t| (t.a_fuel, t.per_kg_fuel))
    }

    /// As [`RowFloor::tangent_by_weight`], at a reference of `mm3` of boxed
    /// space, per litre.
    fn tangent_by_space(&self, mm3: u64) -> (i64, i64) {
        self.tangent_reaching(|t| mm3 <= t.end_mm3)
            .map_or((0, 0), |t| (t.a_fuel, t.per_litre_fuel))
    }

    /// The first hull edge that `reaches` the reference, else the last.
    fn tangent_reaching(&self, reaches: impl Fn(&Tangent) -> bool) -> Option<&Tangent> {
        self.tangents
            .iter()
            .find(|t| reaches(t))
            .or(self.tangents.last())
    }

    /// Floor of the carriage, with fuel, of `parcels` parcels billing
    /// `units` billing units in all, in ten-thousandths rounded down. Each
    /// parcel pays at least a tangent's opening: `a + b * x` lies under the
    /// row at every `x >= 1`, so `parcels` parcels cost at least
    /// `parcels * a + b * units`, which beats the row at `units` (all of
    /// the goods as one parcel) by about an opening per parcel more.
    #[inline]
    fn parcels_at_fuel(&self, parcels: u32, units: u32) -> i64 {
        let one = self.at_fuel(units);
        if parcels <= 1 {
            return one;
        }
        let (k, x) = (i64::from(parcels), i64::from(units));
        self.tangents
            .iter()
            .map(|t| {
                t.a_fuel
                    .saturating_mul(k)
                    .saturating_add(t.per_unit_fuel.saturating_mul(x))
            })
            .fold(one, i64::max)
    }

    /// Floor of the carriage, with fuel, of goods weighing `units` billing
    /// units in all, in ten-thousandths rounded down.
    fn at_fuel(&self, units: u32) -> i64 {
        let units = units.max(1);
        match self.units_fuel.get(units as usize - 1) {
            Some(p) => *p,
            None => {
                let last = self.units_fuel.last().copied().unwrap_or(0);
                last.max(self.slope_fuel.saturating_mul(i64::from(units)))
            }
        }
    }
}

/// Builds the floor rows of every zone of a service whose carrier charges
/// additional handling above `handling_g_x1e5` grams (times 100,000).
pub(super) fn service_floors(service: &Service, handling_g_x1e5: u64) -> ServiceFloors {
    service
        .prices
        .iter()
        .map(|row| {
            row.as_deref().and_then(|r| {
                RowFloor::new(
                    r,
                    service.minimum_charge,
                    service.dim,
                    service.fuel_factor,
                    handling_g_x1e5,
                )
            })
        })
        .collect()
}

/// What the floor of a shipment depends on, from its units alone. Each
/// field is a sum or a maximum over the units, so it only grows as units are
/// added; [`FreightFloor::unit`] gives one unit's, [`ShipmentProfile::add`]
/// accumulates. Money in ten-thousandths of the currency unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShipmentProfile {
    /// Sum of the weights of the units that go in boxes, grams.
    pub boxed_weight_g: u64,
    /// Over boxed units, the largest least tare of a box that holds the unit.
    pub boxed_tare_g: u32,
    /// Over boxed units, the largest least outer volume of a box that holds
    /// the unit, cubic millimetres.
    pub boxed_volume_mm3: u64,
    /// Over boxed units, the largest least cost of a box that holds the unit.
    pub box_cost: i64,
    /// Sum over units in their own packaging (they fit no box, so each is a
    /// parcel alone) of the least charge of that parcel on any service, in
    /// whole cents rounded down.
    pub own_charge: i64,
    /// Sum over boxed units of the least space each takes in a parcel: the
    /// outer volume of its smallest holding box, or its own volume at the
    /// fill factor, whichever is less, cubic millimetres.
    pub boxed_space_mm3: u64,
    /// Sum over boxed units of the share of a parcel each takes: its own
    /// volume, at most the most any box holds ([`BoxLimits::capacity_mm3`]).
    /// A parcel holds at most that much of it, so it forces parcels.
    pub boxed_fill_mm3: u64,
    /// Boxed units that take more than half of the most any box holds:
    /// no two of them share a box, so each is a parcel of its own.
    pub big_units: u32,
    /// Sum over those of the outer volume of the smallest box that holds
    /// the unit, cubic millimetres: their parcels bill at least that.
    pub big_volume_mm3: u64,
    /// Sum over those of the least cost of a box that holds the unit.
    pub big_box_cost: i64,
    /// Sum over boxed units that only the largest boxes hold (no box of
    /// less outer volume does) of their share of a parcel, as in
    /// `boxed_fill_mm3`: that many parcels at least are such a box, and
    /// each bills at least its dimensional weight.
    pub widest_fill_mm3: u64,
    /// Over boxed units, the largest of its weight plus the least tare of
    /// a box that holds it, grams: its parcel weighs at least that.
    pub heaviest_g: u32,
    /// Over boxed units, the longest side, the longest second-longest side
    /// and the largest length plus girth, millimetres: the parcel that holds
    /// such a unit measures at least that.
    pub sides_mm: [u32; 3],
}

/// Hashes the fields that tell most profiles apart; equal profiles still hash
/// equal. Profiles key the planner's memo of floors, looked up at every
/// node, and the rest follow from these far more often than not.
impl std::hash::Hash for ShipmentProfile {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.boxed_weight_g.hash(state);
        self.boxed_space_mm3.hash(state);
        self.own_charge.hash(state);
    }
}

impl ShipmentProfile {
    /// Adds `qty` units with profile `unit`.
    pub fn add(&mut self, unit: &ShipmentProfile, qty: u32) {
        let q = u64::from(qty);
        self.boxed_weight_g += unit.boxed_weight_g * q;
        self.own_charge += unit.own_charge * i64::from(qty);
        self.boxed_space_mm3 += unit.boxed_space_mm3 * q;
        self.boxed_fill_mm3 += unit.boxed_fill_mm3 * q;
        self.big_units = self
            .big_units
            .saturating_add(unit.big_units.saturating_mul(qty));
        self.big_volume_mm3 += unit.big_volume_mm3 * q;
        self.big_box_cost += unit.big_box_cost * i64::from(qty);
        self.widest_fill_mm3 += unit.widest_fill_mm3 * q;
        if qty > 0 {
            self.boxed_tare_g = self.boxed_tare_g.max(unit.boxed_tare_g);
            self.boxed_volume_mm3 = self.boxed_volume_mm3.max(unit.boxed_volume_mm3);
            self.box_cost = self.box_cost.max(unit.box_cost);
            self.heaviest_g = self.heaviest_g.max(unit.heaviest_g);
            for (a, b) in self.sides_mm.iter_mut().zip(unit.sides_mm) {
                *a = (*a).max(b);
            }
        }
    }

    fn boxed(&self) -> bool {
        self.boxed_weight_g > 0 || self.boxed_volume_mm3 > 0
    }

    /// The fewest boxed parcels a shipment of at least this profile makes
    /// (at least one, when it has a boxed unit at all): one per big unit,
    /// and as many as the boxes' capacities in volume and weight need.
    fn parcels(&self, limits: &BoxLimits) -> u32 {
        parcels_for(self.boxed_fill_mm3, limits.capacity_mm3)
            .max(parcels_for(self.boxed_weight_g, limits.capacity_g))
            .max(self.big_units)
            .max(1)
    }

    /// The fewest parcels of the shipment whose box bills the dimensional
    /// weight of the largest least box of its units: the one that holds
    /// such a unit, and where that box is the largest of all, as many as
    /// the units only such boxes hold fill.
    fn widest_parcels(&self, limits: &BoxLimits) -> u32 {
        parcels_for(self.widest_fill_mm3, limits.capacity_mm3).max(1)
    }
}

/// Parcels that `amount` fills at `capacity` each, rounded up (1 where
/// there is no capacity to go by).
fn parcels_for(amount: u64, capacity: u64) -> u32 {
    if capacity == 0 {
        1
    } else {
        u32::try_from(amount.div_ceil(capacity)).unwrap_or(u32::MAX)
    }
}

/// A lower bound on every shipment of a lane that adds up over its units:
/// an opening plus, per unit, its `own_charge` and its boxed goods counted
/// either by weight or by space (the parcels bill at least the one and at
/// least the other; one choice for a whole shipment). Money in
/// ten-thousandths of the currency unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearFloor {
    /// Counting boxed goods by weight: opening, and per kilogram.
    pub by_weight: FloorLine,
    /// Counting boxed goods by space: opening, and per litre.
    pub by_space: FloorLine,
    /// For a shipment whose units all ship in their own packaging.
    pub opening_own: i64,
}

/// One way to count boxed goods in a [`LinearFloor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorLine {
    /// For a shipment with at least one unit in a box.
    pub opening: i64,
    /// Per kilogram (by weight) or litre (by space) of boxed goods.
    pub per: i64,
}

impl LinearFloor {
    /// The opening for a shipment that has (`boxed`) or has no unit in a box.
    pub fn opening(&self, by_space: bool, boxed: bool) -> i64 {
        let line = if by_space {
            self.by_space
        } else {
            self.by_weight
        };
        if boxed {
            line.opening
        } else {
            line.opening.min(self.opening_own)
        }
    }

    /// What one unit with `profile` adds to the bound, counting its boxed
    /// goods by weight or, with `by_space`, by space.
    pub fn marginal(&self, unit: &ShipmentProfile, by_space: bool) -> i64 {
        let boxed = if by_space {
            mul_div(self.by_space.per, unit.boxed_space_mm3, 1_000_000)
        } else {
            mul_div(self.by_weight.per, unit.boxed_weight_g, 1000)
        };
        unit.own_charge + boxed
    }
}

/// `rate * amount / per`, rounded down, without overflow.
fn mul_div(rate: i64, amount: u64, per: u64) -> i64 {
    // Almost always within 64 bits, where division is far cheaper.
    if let (Ok(amount), Ok(per)) = (i64::try_from(amount), i64::try_from(per)) {
        if let Some(x) = rate.checked_mul(amount) {
            return x / per;
        }
    }
    let x = i128::from(rate) * i128::from(amount) / i128::from(per);
    i64::try_from(x).unwrap_or(i64::MAX / 4)
}

/// The services of a lane that a least charge per parcel needs to look at:
/// each one no other charges every parcel no more than ([`cheaper_everywhere`];
/// of two that charge alike, the first). Empty when a packed floor cannot
/// hold on the lane: a price row that falls somewhere, or amounts not whole
/// in hundred-millionths.
pub(super) fn least_charging<'a>(services: &[super::LaneService<'a>]) -> SmallVec<[Pricer<'a>; 8]> {
    if !services
        .iter()
        .all(|s| s.floor.is_some_and(|f| f.rises) && s.pricer.e8.is_some())
    {
        return SmallVec::new();
    }
    let pricers: SmallVec<[Pricer<'a>; 8]> = services.iter().map(|s| s.pricer).collect();
    pricers
        .iter()
        .enumerate()
        .filter(|&(i, b)| {
            !pricers.iter().enumerate().any(|(j, a)| {
                j != i && cheaper_everywhere(a, b) && (j < i || !cheaper_everywhere(b, a))
            })
        })
        .map(|(_, p)| *p)
        .collect()
}

/// Whether `a` charges every parcel no more than `b` and refuses none that
/// `b` takes: the same carrier (the same limits and thresholds), the same
/// dimensional rule, and in hundred-millionths a price row at least as long
/// and nowhere dearer, lane surcharges, additional handling and oversize no
/// dearer.
fn cheaper_everywhere(a: &Pricer<'_>, b: &Pricer<'_>) -> bool {
    let (Some(ea), Some(eb)) = (a.e8, b.e8) else {
        return false;
    };
    let (Some(fa), Some(fb)) = (a.service.fuelled.e8.as_ref(), b.service.fuelled.e8.as_ref())
    else {
        return false;
    };
    std::ptr::eq(a.carrier, b.carrier)
        && a.service.dim == b.service.dim
        && ea.fuelled.len() >= eb.fuelled.len()
        && ea.fuelled.iter().zip(eb.fuelled).all(|(x, y)| x <= y)
        && ea.surcharges <= eb.surcharges
        && fa.additional_handling <= fb.additional_handling
        && fa.oversize <= fb.oversize
}

/// One parcel's residential and delivery-area surcharges on a lane, with
/// fuel, in ten-thousandths rounded down.
pub(super) fn per_parcel_fuel(pricer: &Pricer<'_>) -> i64 {
    to_units(pricer.surcharges_fuelled)
}

/// One lane service as the floor sees it: one with a floor of its price row.
#[derive(Clone, Copy)]
pub(super) struct FloorService<'s, 'a> {
    pub(super) row: &'a RowFloor,
    pub(super) lane: &'s super::LaneService<'a>,
}

/// The least amount and the fewest transit days of any shipment on one lane,
/// from the profile of its units. Built by [`super::Freight::floor`].
pub struct FreightFloor<'a> {
    /// The lane's services, shared with the lane; those without a floor
    /// of their row are skipped (see [`FreightFloor::services`]).
    pub(super) lane_services: std::sync::Arc<[super::LaneService<'a>]>,
    pub(super) boxes: &'a [BoxSpec],
    /// Share of a box's inner volume several units may fill.
    pub(super) fill_pct: u32,
    pub(super) handling_fee: Decimal,
    /// `handling_fee` in ten-thousandths, rounded down.
    pub(super) handling_fee_units: i64,
    /// What any one box holds at most, and the least it weighs and costs.
    pub(super) limits: BoxLimits,
    /// Below what no carrier charges additional handling or oversize.
    pub(super) handling: HandlingLimits,
    /// What the packer needs to partition a shipment's units
    /// ([`FreightFloor::packed`]).
    pub(super) settings: &'a Settings,
    /// The boxes' costs in hundred-millionths, when exact there.
    pub(super) box_costs_e8: Option<&'a [E8]>,
    /// What [`FreightFloor::packed`] worked out so far; boxed, as most
    /// floors are never asked for one.
    pub(super) parcels: RefCell<Option<Box<PackedMemo<'a>>>>,
}

/// What [`FreightFloor::packed`] keeps between calls.
#[derive(Default)]
pub(super) struct PackedMemo<'a> {
    /// The lane's services a least charge looks at, once found: none when
    /// the bound cannot hold on the lane (a price row that falls, amounts
    /// not whole in hundred-millionths).
    services: Option<SmallVec<[Pricer<'a>; 8]>>,
    /// Each box's shape on each service that is not dominated, by box then
    /// service, once found.
    shapes: Vec<Option<ParcelShape>>,
    /// The least cost of one parcel of units so summarised, on any service
    /// (`None`: no service takes it), in ten-thousandths rounded down.
    costs: FxHashMap<Summary, Option<i64>>,
}

impl std::fmt::Debug for FreightFloor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreightFloor")
            .field("services", &self.services().count())
            .field("handling_fee", &self.handling_fee)
            .finish()
    }
}

/// A shipment's boxed parcels, if they are `parcels`: what they weigh
/// and what their boxes cost at least.
struct Count {
    parcels: u32,
    /// Goods plus tares, grams.
    gross_g: u64,
    /// `gross_g` in whole pounds and kilograms, rounded up.
    lb: u32,
    kg: u32,
    /// The fewest parcels in a box as large as the largest least box of a
    /// unit, each billing that box's dimensional weight
    /// ([`ShipmentProfile::widest_parcels`], at most `parcels`).
    widest: u32,
    /// What the parcels other than those `widest` weigh at least in all,
    /// whatever boxes those are, in whole pounds and kilograms, rounded
    /// up: the goods those boxes cannot carry and their own tares.
    rest_lb: u32,
    rest_kg: u32,
    /// The boxes, ten-thousandths.
    boxes: i64,
}

/// What a shipment's boxed parcels bill at least by their volume under one
/// dimensional rule, in its billing units.
#[derive(Debug, Clone, Copy)]
struct ByVolume {
    /// All of them together.
    all: u32,
    /// The one holding the unit with the largest least box (that box's
    /// dimensional weight, or more).
    biggest: u32,
}

impl ByVolume {
    fn new(dim: DimRule, profile: &ShipmentProfile) -> Self {
        let biggest = dim.volume_units(u128::from(profile.boxed_volume_mm3));
        Self {
            all: biggest
                .max(dim.volume_units(u128::from(profile.boxed_space_mm3)))
                .max(dim.volume_units(u128::from(profile.big_volume_mm3))),
            biggest,
        }
    }
}

impl Count {
    fn new(floor: &FreightFloor<'_>, profile: &ShipmentProfile, parcels: u32) -> Self {
        // Every parcel past the first, or past the big units' own, costs at
        // least the cheapest box and weighs at least the lightest tare.
        let more = |than: u32| i64::from(parcels.saturating_sub(than));
        let least = floor.limits.least_cost_units;
        let boxes = (profile.box_cost + more(1) * least)
            .max(profile.big_box_cost + more(profile.big_units) * least);
        let gross_g = profile.boxed_weight_g
            + u64::from(profile.boxed_tare_g)
            + u64::from(parcels - 1) * u64::from(floor.limits.least_tare_g);
        let grams = u32::try_from(gross_g).unwrap_or(u32::MAX);
        let widest = match parcels {
            1 => 1,
            _ => profile.widest_parcels(&floor.limits).min(parcels),
        };
        let rest_g = profile
            .boxed_weight_g
            .saturating_sub(u64::from(widest).saturating_mul(floor.limits.capacity_g))
            .saturating_add(u64::from(parcels - widest) * u64::from(floor.limits.least_tare_g));
        let rest_g = u32::try_from(rest_g).unwrap_or(u32::MAX);
        Self {
            parcels,
            widest,
            gross_g,
            lb: ceil_lb(grams),
            kg: ceil_kg(grams),
            rest_lb: ceil_lb(rest_g),
            rest_kg: ceil_kg(rest_g),
            boxes,
        }
    }

    /// `gross_g` in `s`'s billing units.
    fn units(&self, s: &FloorService<'_, '_>) -> u32 {
        if s.lane.pricer.service.dim.metric {
            self.kg
        } else {
            self.lb
        }
    }

    /// The rest (`rest_lb`, `rest_kg`) in `s`'s billing units.
    fn rest(&self, s: &FloorService<'_, '_>) -> u32 {
        if s.lane.pricer.service.dim.metric {
            self.rest_kg
        } else {
            self.rest_lb
        }
    }

    /// The carriage of these parcels on `s`, with their per-parcel
    /// surcharges and boxes, without additional handling.
    ///
    /// Beyond what they bill together, one of several parcels holds the
    /// unit with the largest least box and bills at least that box's
    /// dimensional weight on its own (where only the largest boxes hold
    /// such units, as many parcels as they fill), while the others carry
    /// at least the goods no such box could add: a big box's opening is not
    /// shared out over parcels that could each be small.
    #[inline]
    fn carriage(&self, s: &FloorService<'_, '_>, volume: ByVolume) -> i64 {
        let widest = self.widest;
        // `all` is at least `biggest` already: one widest parcel adds nothing.
        let all = match widest {
            1 => volume.all,
            n => volume.all.max(volume.biggest.saturating_mul(n)),
        };
        let mut carriage = s.row.parcels_at_fuel(self.parcels, self.units(s).max(all));
        if self.parcels > 1 {
            let big = self.widest_carriage(s, volume);
            if self.parcels > widest {
                // Every parcel bills at least one unit.
                let others = self.parcels - widest;
                let others = s.row.parcels_at_fuel(others, self.rest(s).max(others));
                carriage = carriage.max(big.saturating_add(others));
            } else {
                carriage = carriage.max(big);
            }
        }
        carriage
            .saturating_add(
                s.lane
                    .per_parcel_fuel
                    .saturating_mul(i64::from(self.parcels)),
            )
            .saturating_add(self.boxes)
    }

    /// The carriage on `s` of the `widest` parcels, each billing on its own
    /// at least the dimensional weight of the largest least box.
    fn widest_carriage(&self, s: &FloorService<'_, '_>, volume: ByVolume) -> i64 {
        s.row
            .at_fuel(volume.biggest)
            .saturating_mul(i64::from(self.widest))
    }

    /// Whether goods this heavy in this many parcels put one of them over
    /// the additional handling weight of `limits`.
    fn over(&self, limits: &HandlingLimits) -> bool {
        u128::from(self.gross_g) * 100_000
            > u128::from(limits.weight_g_x1e5) * u128::from(self.parcels)
    }
}

/// Whether a shipment's parcels pay additional handling on one carrier.
#[derive(Debug, Clone, Copy)]
enum Handling {
    /// Not that the floor can tell.
    None,
    /// One of its units is heavy, long or large enough for it on its own.
    Always,
    /// Its goods are too heavy for its fewest parcels without it.
    ByWeight,
}

impl Handling {
    /// Under `limits` (one carrier's, or the least of all carriers'), for
    /// a shipment of at least `profile` in the `least` parcels it makes.
    fn of(limits: &HandlingLimits, profile: &ShipmentProfile, least: &Count) -> Self {
        let [longest, second, girth] = profile.sides_mm.map(|d| u64::from(d) * 10);
        if u64::from(profile.heaviest_g) * 100_000 > limits.weight_g_x1e5
            || longest > limits.longest_mm_x10
            || second > limits.second_mm_x10
            || girth > limits.lg_mm_x10
        {
            Handling::Always
        } else if least.over(limits) {
            Handling::ByWeight
        } else {
            Handling::None
        }
    }
}

/// Ten-thousandths rounded to whole cents, half away from zero, as
/// [`super::round_cents`] rounds a rating's amount.
fn round_cents_units(units: i64) -> i64 {
    let cents = if units >= 0 {
        (units + 50) / 100
    } else {
        (units - 50) / 100
    };
    cents * 100
}

impl<'a> FreightFloor<'a> {
    /// The lane's services that have a floor of their price row.
    pub(super) fn services(&self) -> impl Iterator<Item = FloorService<'_, 'a>> + '_ {
        self.lane_services.iter().filter_map(|lane| {
            Some(FloorService {
                row: lane.floor?,
                lane,
            })
        })
    }

    /// The profile of one unit of `item` on this lane, or `None` when no
    /// service can carry it at all.
    pub fn unit(&self, item: &Item) -> Option<ShipmentProfile> {
        match self.boxed_unit(item) {
            Some(p) => Some(p),
            None => self.own_unit(item),
        }
    }

    /// The profile of one unit of `item` that some box holds, or `None` when
    /// none does. It depends on the box catalog alone, never on the lane, so
    /// callers asking for many lanes may keep it per item.
    pub fn boxed_unit(&self, item: &Item) -> Option<ShipmentProfile> {
        let mut dims = [item.length_mm, item.width_mm, item.height_mm];
        dims.sort_unstable_by(|a, b| b.cmp(a));
        let holding = self.boxes.iter().filter(|b| {
            dims.iter().zip(b.inner_mm.iter()).all(|(d, i)| d <= i)
                && u64::from(item.weight_g) + u64::from(b.tare_weight_g)
                    <= u64::from(b.max_weight_g)
        });
        let mut boxed: Option<ShipmentProfile> = None;
        for b in holding {
            let volume = b.outer_volume_mm3();
            let p = boxed.get_or_insert(ShipmentProfile {
                boxed_weight_g: u64::from(item.weight_g),
                boxed_tare_g: u32::MAX,
                boxed_volume_mm3: u64::MAX,
                box_cost: i64::MAX,
                own_charge: 0,
                boxed_space_mm3: u64::MAX,
                ..ShipmentProfile::default()
            });
            p.boxed_tare_g = p.boxed_tare_g.min(b.tare_weight_g);
            p.boxed_volume_mm3 = p.boxed_volume_mm3.min(volume);
            p.box_cost = p.box_cost.min(to_units(b.cost));
        }
        if let Some(p) = boxed.as_mut() {
            // Several units fill at most `fill_pct` of a box; one alone its
            // smallest holding box.
            let own = dims.iter().map(|&d| u64::from(d)).product::<u64>();
            let shared = own.saturating_mul(100) / u64::from(self.fill_pct.max(1));
            p.boxed_space_mm3 = p.boxed_volume_mm3.min(shared);
            p.heaviest_g = item.weight_g.saturating_add(p.boxed_tare_g);
            let [l, w, h] = dims;
            p.sides_mm = [
                l,
                w,
                l.saturating_add(w.saturating_add(h).saturating_mul(2)),
            ];
            let capacity = self.limits.capacity_mm3;
            p.boxed_fill_mm3 = own.min(capacity);
            if p.boxed_volume_mm3 >= self.limits.largest_outer_mm3 {
                p.widest_fill_mm3 = p.boxed_fill_mm3;
            }
            // Two such units together exceed what any box may hold.
            if own.saturating_mul(2) > capacity {
                p.big_units = 1;
                p.big_volume_mm3 = p.boxed_volume_mm3;
                p.big_box_cost = p.box_cost;
            }
        }
        boxed
    }

    /// The profile of one unit of `item` shipped in its own packaging (as
    /// the packer ships what no box holds) on this lane, or `None` when no
    /// service can carry it.
    pub fn own_unit(&self, item: &Item) -> Option<ShipmentProfile> {
        let mut dims = [item.length_mm, item.width_mm, item.height_mm];
        dims.sort_unstable_by(|a, b| b.cmp(a));
        // Its own parcel, exactly as the packer ships it.
        let facts = ParcelFacts::new(item.weight_g, dims);
        // In hundred-millionths where every service's amounts are whole
        // there (the same least charge), else in `Decimal`.
        let units = if self.services().all(|s| s.lane.pricer.e8.is_some()) {
            let least = self
                .services()
                .filter_map(|s| s.lane.pricer.charge_e8(&facts)?.ok())
                .min()?;
            i64::try_from(least.div_euclid(10_000)).unwrap_or(i64::MAX / 4)
        } else {
            let least = self
                .services()
                .filter_map(|s| s.lane.pricer.charge(&facts).ok())
                .min()?;
            to_units(least)
        };
        // Whole cents, rounded down: a shipment's amount is rounded to cents
        // once, and adding whole cents commutes with that rounding, so own
        // charges add up exactly in `amount` and stay under every rating.
        Some(ShipmentProfile {
            own_charge: units - units.rem_euclid(100),
            ..ShipmentProfile::default()
        })
    }

    /// A lower bound on the amount (carrier charge, boxes and handling fee)
    /// of every service for any shipment on this lane whose profile is at
    /// least `profile` field by field, in ten-thousandths of the currency
    /// unit and whole cents; it never falls as the profile grows. Integers
    /// only: every term was rounded down when the tables or the lane were
    /// loaded, and a rating rounds its exact sum to cents (half away from
    /// zero) once, which can only be at or above this sum so rounded.
    pub fn amount(&self, profile: &ShipmentProfile) -> i64 {
        self.amount_within(profile, u32::MAX).unwrap_or_else(|| {
            round_cents_units(profile.own_charge + profile.box_cost + self.handling_fee_units)
        })
    }

    /// [`FreightFloor::amount`] over the services of at most `transit_max`
    /// transit days only; `None` when there are none. What the shipment
    /// costs on any of those services is at least this.
    pub fn amount_within(&self, profile: &ShipmentProfile, transit_max: u32) -> Option<i64> {
        let within = || {
            self.services()
                .filter(move |s| s.lane.transit_days <= transit_max)
        };
        within().next()?;
        if !profile.boxed() {
            let fixed = profile.own_charge + profile.box_cost + self.handling_fee_units;
            return Some(round_cents_units(fixed));
        }
        let least = profile.parcels(&self.limits);
        let first = Count::new(self, profile, least);
        // Under the least of every carrier's thresholds, no carrier charges
        // it (most shipments): the carriers need no look of their own.
        let handled = !matches!(
            Handling::of(&self.handling, profile, &first),
            Handling::None
        );
        // Services share a few dimensional rules and carriers, mostly in
        // runs: what they decide is found again only where they change.
        let mut last_dim: Option<(DimRule, ByVolume)> = None;
        let mut last_carrier: Option<(*const Carrier, Handling)> = None;
        let mut carriage = i64::MAX;
        for s in within() {
            // Every amount a service can add below is the carriage of
            // `least` parcels or more, each at least the row at the goods'
            // gross weight of the fewest parcels (the row's floor never
            // falls and more parcels only weigh more) with those parcels'
            // surcharges and boxes. Where that already reaches the least
            // so far, the service cannot lower it: most shipments find
            // their least on a ground service, and the dearer ones skip
            // the dimensional and handling work.
            let surcharges = s.lane.per_parcel_fuel;
            if surcharges >= 0
                && s.row
                    .at_fuel(first.units(&s))
                    .saturating_add(surcharges.saturating_mul(i64::from(least)))
                    .saturating_add(first.boxes)
                    >= carriage
            {
                continue;
            }
            let dim = s.lane.pricer.service.dim;
            let by_volume = match last_dim {
                Some((rule, volume)) if rule == dim => volume,
                _ => {
                    let volume = ByVolume::new(dim, profile);
                    last_dim = Some((dim, volume));
                    volume
                }
            };
            let plain = first.carriage(&s, by_volume);
            // What a parcel heavy, long or large enough for additional
            // handling or oversize pays at least (oversize supersedes
            // additional handling).
            let handling_fuel = s.lane.pricer.service.fuelled.least_handling_units;
            // Parcels kept light can only raise a service's amount: worth
            // working out only where it is the least so far.
            let mut least_of = |amount: i64| {
                if amount < carriage {
                    let light = self.light_parcels(profile, &s, by_volume, handling_fuel, &first);
                    carriage = carriage.min(amount.max(light));
                }
            };
            if !handled || handling_fuel == 0 {
                least_of(plain);
                continue;
            }
            let carrier = s.lane.pricer.carrier;
            let handling = match last_carrier {
                Some((c, h)) if std::ptr::eq(c, carrier) => h,
                _ => {
                    let h = Handling::of(&HandlingLimits::of(carrier), profile, &first);
                    last_carrier = Some((carrier, h));
                    h
                }
            };
            let amount = match handling {
                Handling::None => plain,
                Handling::Always => plain.saturating_add(handling_fuel),
                Handling::ByWeight => {
                    // Goods heavier in all than `k` parcels at the
                    // carrier's handling weight put one parcel over it.
                    // More parcels cost no less, so the least is met among
                    // the counts that still force it and the first that
                    // does not (or, past a few, the next count without it).
                    let limits = HandlingLimits::of(carrier);
                    let mut best = plain.saturating_add(handling_fuel);
                    for parcels in least + 1..=least.saturating_add(HANDLING_COUNTS) {
                        let count = Count::new(self, profile, parcels);
                        let more = count.carriage(&s, by_volume);
                        if parcels == least.saturating_add(HANDLING_COUNTS) || !count.over(&limits)
                        {
                            best = best.min(more);
                            break;
                        }
                        best = best.min(more.saturating_add(handling_fuel));
                    }
                    best
                }
            };
            least_of(amount);
        }
        let fixed = profile.own_charge + self.handling_fee_units;
        Some(round_cents_units(carriage.saturating_add(fixed)))
    }

    /// A floor of the carriage on `s` (with per-parcel surcharges and boxes)
    /// of a shipment of at least `profile` in at least `first`'s parcels, from
    /// what its parcels cost when each stays under the carrier's additional
    /// handling weight ([`RowFloor::capped_at_fuel`]) and what one over it
    /// pays at least (`handling_fuel`); 0 where it cannot tell more than
    /// [`Count::carriage`].
    ///
    /// Why it holds. For each count of parcels up to [`CAPPED_MAX_PARCELS`],
    /// a packing either keeps every parcel under that weight, and costs at
    /// least the capped carriage, or puts one over it, and costs at least
    /// the plain carriage and the handling; more parcels cost at least the
    /// plain carriage of one more than that, which grows with the count.
    /// Where every parcel stays under the weight, so does the one holding
    /// the unit with the largest least box, which bills at least that box's
    /// dimensional weight: the others then weigh at least the rest, each
    /// under the weight too.
    fn light_parcels(
        &self,
        profile: &ShipmentProfile,
        s: &FloorService<'_, '_>,
        by_volume: ByVolume,
        handling_fuel: i64,
        first: &Count,
    ) -> i64 {
        let (cap, least) = (s.row.unhandled_units, first.parcels);
        if handling_fuel == 0 || cap == 0 || least > CAPPED_MAX_PARCELS {
            return 0;
        }
        // Goods that go in one parcel under the weight: nothing to split.
        if least == 1 && first.units(s) <= cap {
            return 0;
        }
        let mut best = Count::new(self, profile, CAPPED_MAX_PARCELS + 1).carriage(s, by_volume);
        for parcels in least..=CAPPED_MAX_PARCELS {
            // The caller's count for the fewest parcels, built once.
            let more = (parcels > least).then(|| Count::new(self, profile, parcels));
            let count = more.as_ref().unwrap_or(first);
            let plain = count.carriage(s, by_volume);
            let over = plain.saturating_add(handling_fuel);
            let units = count.units(s);
            let cost = match s.row.capped_at_fuel(parcels, units) {
                Some(capped) => {
                    let extras = s
                        .lane
                        .per_parcel_fuel
                        .saturating_mul(i64::from(parcels))
                        .saturating_add(count.boxes);
                    let mut light = plain.max(capped.saturating_add(extras));
                    let widest = count.widest;
                    let big = || count.widest_carriage(s, by_volume).saturating_add(extras);
                    if parcels > widest {
                        // The biggest boxes' parcels weigh at most `cap`
                        // units each, so the others weigh at least all but
                        // those (rounded up, taking a part off a whole takes
                        // off at most the part rounded up), and each at
                        // least one.
                        let others = parcels - widest;
                        let rest = units.saturating_sub(cap.saturating_mul(widest)).max(others);
                        light = match s.row.capped_at_fuel(others, rest) {
                            Some(others) => light.max(big().saturating_add(others)),
                            // The others cannot all stay under the weight.
                            None => i64::MAX,
                        };
                    } else if parcels > 1 {
                        light = light.max(big());
                    }
                    light.min(over)
                }
                None => over,
            };
            best = best.min(cost);
        }
        best
    }

    /// The lane's [`LinearFloor`], as tight as it can be for shipments like
    /// `reference`. Per service: a line under the row's floor (tangent to
    /// its convex hull at the reference's billable units), at the billable
    /// units (at least the boxed weight; at least the boxed space over the
    /// dimensional divisor), plus one parcel's surcharges, all times fuel;
    /// then the least opening and the least slope over services (the least
    /// of sums is at least the sum of the least), the cheapest box and the
    /// handling fee. Rounding to cents may lower an amount by half a cent,
    /// so a cent is kept back.
    pub fn linear(&self, reference: &ShipmentProfile) -> LinearFloor {
        // Integers throughout: every term was rounded down when the tables
        // (tangents and the cheapest box) or the lane (surcharges) were
        // loaded, and a sum of amounts rounded down is at most its own.
        let mut weight: Option<(i64, i64)> = None;
        let mut space: Option<(i64, i64)> = None;
        let least = |acc: &mut Option<(i64, i64)>, o: i64, per: i64| {
            *acc = Some(acc.map_or((o, per), |(a, b)| (a.min(o), b.min(per))));
        };
        for s in self.services() {
            let (a, per) = s.row.tangent_by_weight(reference.boxed_weight_g);
            least(&mut weight, a + s.lane.per_parcel_fuel, per);
            let (a, per) = s.row.tangent_by_space(reference.boxed_space_mm3);
            least(&mut space, a + s.lane.per_parcel_fuel, per);
        }
        const CENT: i64 = 100;
        let fixed = self.limits.least_cost_units + self.handling_fee_units - CENT;
        let line = |acc: Option<(i64, i64)>| {
            let (o, per) = acc.unwrap_or((0, 0));
            FloorLine {
                opening: (o + fixed).max(0),
                per,
            }
        };
        LinearFloor {
            by_weight: line(weight),
            by_space: line(space),
            opening_own: (self.handling_fee_units - CENT).max(0),
        }
    }

    /// A lower bound on the amount of every service for any shipment on
    /// this lane that holds at least the units of `lines`, in
    /// ten-thousandths and whole cents; `None` when it cannot tell: units
    /// making more than [`PACKED_MAX_SETS`] sub-multisets, a price row that
    /// falls somewhere, or amounts not whole in hundred-millionths.
    ///
    /// Why it holds. Take the packing a rating makes of a larger shipment
    /// and the service it is priced on, and take the other units out of its
    /// parcels: what is left packs these units in the same boxes, each
    /// parcel no heavier than before, so (with rows that never fall, and
    /// additional handling and refusals that only come with weight) each
    /// costs no more on that service. So the rating is at least the least
    /// over every way of partitioning these units into parcels, each in a
    /// box that holds it by the packer's own rule, of what the parcels cost
    /// on one service; and at least that with each parcel on whichever
    /// service charges it least, which one pass over the partitions finds.
    /// Unlike [`FreightFloor::amount`] it sees which units can share a
    /// parcel: heavy units that pay additional handling together and bill
    /// a large box's dimensional weight apart.
    ///
    /// Partitioning costs far more than [`FreightFloor::amount`], so a caller
    /// that can only use a bound of at least `reach` says so: when the units
    /// in one parcel, or each in its own, already cost less than `reach`,
    /// so does the least partition, and it answers `None` without looking
    /// for it.
    pub fn packed(&self, lines: &[ItemLine], reach: i64) -> Option<i64> {
        let box_costs = self.box_costs_e8?;
        let units = super::packing::units(lines, self.settings).ok()?;
        let partitions = Partitions::of(&units)?;
        let mut memo = self.parcels.borrow_mut();
        let PackedMemo {
            services,
            shapes,
            costs,
        } = &mut **memo.get_or_insert_with(Box::default);
        let services = services.get_or_insert_with(|| least_charging(&self.lane_services));
        if services.is_empty() {
            return None;
        }
        if shapes.is_empty() {
            shapes.resize(self.boxes.len() * services.len(), None);
        }
        let shapes: &[Cell<Option<ParcelShape>>] =
            Cell::from_mut(&mut shapes[..]).as_slice_of_cells();
        let freight = |weight_g: u32, box_idx: Option<usize>, dims: [u32; 3]| -> E8 {
            let mut least: Option<E8> = None;
            for (i, p) in services.iter().enumerate() {
                let shape = box_idx.and_then(|b| shapes.get(b * services.len() + i));
                if let Some(Ok(c)) = p.boxed_charge_e8(weight_g, dims, shape) {
                    least = Some(least.map_or(c, |l| l.min(c)));
                }
            }
            // As the packer prices a refused parcel: a box no service takes
            // is then never the cheapest holding one unless none is taken.
            least.unwrap_or(REFUSED_PARCEL_COST_E8)
        };
        let packer = Packer {
            boxes: self.boxes,
            box_costs,
            fill_pct: self.fill_pct,
            // Only its parcels' costs are asked for, never a packing.
            exact_max_units: 0,
            light_g: u32::MAX,
            freight,
        };
        // The same parcels recur in shipment after shipment of a search.
        // In ten-thousandths rounded down: a sum of values rounded down is
        // at most the value of the sum. A parcel no service takes is no
        // part of any rated packing (nor is any heavier one in its box).
        let mut parcel = |s: &Summary| {
            *costs.entry(*s).or_insert_with(|| {
                let cost = packer
                    .parcel_cost(s)
                    .filter(|&c| c < REFUSED_PARCEL_COST_E8)?;
                i64::try_from(cost.div_euclid(10_000)).ok()
            })
        };
        let amount = |parcels: i64| {
            Some(round_cents_units(
                parcels.checked_add(self.handling_fee_units)?,
            ))
        };
        let (whole, apart) = partitions.whole_and_apart(&mut parcel);
        if let Some(most) = whole.into_iter().chain(apart).min() {
            if amount(most).is_none_or(|a| a < reach) {
                return None;
            }
        }
        amount(partitions.least(&mut parcel)?)
    }

    /// The fewest transit days of any service on this lane.
    pub fn transit_days(&self) -> u32 {
        self.services()
            .map(|s| s.lane.transit_days)
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::freight::{Endpoint, Freight, ItemLine, RateRequest};

    const LB: DimRule = DimRule {
        metric: false,
        divisor: 139,
    };

    fn row(prices: &[i64]) -> Vec<Decimal> {
        prices.iter().map(|&p| Decimal::from(p)).collect()
    }

    #[test]
    fn subadditive_rows_floor_at_their_own_price() {
        let f = RowFloor::new(
            &row(&[10, 12, 14, 16]),
            Decimal::ZERO,
            LB,
            Decimal::ONE,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(f.at_fuel(0), 10_0000);
        assert_eq!(f.at_fuel(3), 14_0000);
        // Beyond the row: the last price, or the cheapest rate per unit times the units.
        assert_eq!(f.at_fuel(5), 20_0000);
        assert_eq!(f.at_fuel(40), 160_0000);
        // With fuel, rounded down to ten-thousandths.
        let f = RowFloor::new(
            &row(&[10, 12]),
            Decimal::ZERO,
            LB,
            Decimal::new(10_333, 4),
            u64::MAX,
        )
        .unwrap();
        assert_eq!(f.at_fuel(1), 10_3330);
        assert_eq!(f.at_fuel(2), 12_3996);
    }

    #[test]
    fn capped_parcels_cost_the_least_split_under_the_handling_weight() {
        // Dearest in the first pounds, as carriers price; handling above
        // 10 lb (4,535.9237 g: a parcel of 4,535 g bills 10 lb).
        let prices = [9, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
        let f = RowFloor::new(&row(&prices), Decimal::ZERO, LB, Decimal::ONE, 453_592_370).unwrap();
        assert_eq!(f.unhandled_units, 10);
        // Every split into `k` parcels of 1..=10 lb billing at least `x` in all.
        fn least(f: &RowFloor, k: u32, x: u32, at: u32, sum: u32, cost: i64) -> Option<i64> {
            if at == k {
                return (sum >= x).then_some(cost);
            }
            (1..=10)
                .filter_map(|u| least(f, k, x, at + 1, sum + u, cost + f.at_fuel(u)))
                .min()
        }
        for k in 1..=CAPPED_MAX_PARCELS {
            for x in 1..=k * 10 {
                assert_eq!(
                    f.capped_at_fuel(k, x),
                    least(&f, k, x, 0, 0, 0),
                    "{k} parcels, {x} lb"
                );
            }
            // Heavier goods put one parcel over the weight.
            assert_eq!(f.capped_at_fuel(k, k * 10 + 1), None);
        }
        // Two parcels of 15 lb in all: at best 5 + 10 lb (16 + 21), while
        // the lines under the row, which must hold for 1 + 14 lb, say less.
        assert_eq!(f.capped_at_fuel(2, 15), Some(37_0000));
        assert!(f.parcels_at_fuel(2, 15) < 35_0000);
        // Without a handling weight, nothing is known.
        let f = RowFloor::new(&row(&prices), Decimal::ZERO, LB, Decimal::ONE, u64::MAX).unwrap();
        assert_eq!(f.capped_at_fuel(2, 15), None);
    }

    #[test]
    fn rows_that_are_not_subadditive_fall_back_to_a_safe_envelope() {
        // 1 unit costs 1, 2 units 10: two 1-unit parcels (2) undercut p(2).
        let f = RowFloor::new(
            &row(&[1, 10, 11]),
            Decimal::ZERO,
            LB,
            Decimal::ONE,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(f.at_fuel(2), 2_0000);
        assert_eq!(f.at_fuel(3), 3_0000);
        // The minimum charge lifts every entry.
        let f = RowFloor::new(
            &row(&[1, 10, 11]),
            Decimal::from(5),
            LB,
            Decimal::ONE,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(f.at_fuel(1), 5_0000);
    }

    fn us(postal_code: &str, residential: bool) -> Endpoint<'_> {
        Endpoint {
            country_code: "US",
            postal_code,
            residential,
        }
    }

    /// Items from tiny to bulky: some fit only large boxes, some no box.
    fn item() -> impl Strategy<Value = Item> {
        (50u32..40_000, 10u32..1_300, 10u32..700, 5u32..500).prop_map(|(w, l, wi, h)| Item {
            weight_g: w,
            length_mm: l,
            width_mm: wi,
            height_mm: h,
        })
    }

    /// The floor of `lines` shipped from New York to a business in
    /// Chicago, and the cheapest rating of the same, in ten-thousandths.
    fn floor_and_rate(lines: &[(Item, u32)]) -> (i64, i64) {
        let freight = Freight::sample();
        let (from, to) = (us("10001", false), us("60601", false));
        let floor = freight.floor(from, to, Decimal::ZERO).unwrap();
        let mut profile = ShipmentProfile::default();
        for (it, q) in lines {
            profile.add(&floor.unit(it).unwrap(), *q);
        }
        let items: Vec<ItemLine> = lines
            .iter()
            .map(|&(item, quantity)| ItemLine { item, quantity })
            .collect();
        let rated = freight
            .rate(&RateRequest {
                origin: from,
                destination: to,
                lines: &items,
                handling_fee: Decimal::ZERO,
            })
            .unwrap();
        let cheapest = rated.rates.iter().map(|r| r.amount).min().unwrap();
        (floor.amount(&profile), to_units(cheapest))
    }

    /// Asserts that the floor of `lines` is at most their rating and at
    /// least `pct` % of it.
    fn assert_floor_within(lines: &[(Item, u32)], pct: i64) {
        let (floor, rate) = floor_and_rate(lines);
        assert!(
            floor <= rate && floor * 100 >= rate * pct,
            "floor {floor}, rating {rate}"
        );
    }

    fn item_of(weight_g: u32, [length_mm, width_mm, height_mm]: [u32; 3]) -> Item {
        Item {
            weight_g,
            length_mm,
            width_mm,
            height_mm,
        }
    }

    #[test]
    fn units_too_large_to_share_a_box_count_a_parcel_each() {
        // Two of these fill more than any box may hold: two extra-large
        // cartons, each billed at its dimensional weight. Counted as the
        // space of one parcel, the floor was 55 % of the rating.
        let big = item_of(11_235, [441, 398, 396]);
        let (floor, rate) = floor_and_rate(&[(big, 2)]);
        assert!(floor <= rate, "floor {floor} above the rating {rate}");
        assert!(floor * 100 >= rate * 90, "floor {floor}, rating {rate}");
    }

    #[test]
    fn goods_too_heavy_for_one_parcel_without_handling_count_it() {
        // 30 kg in a box is over the carriers' additional handling weight
        // (without it the floor was 77 % of the rating).
        let heavy = item_of(30_000, [454, 438, 84]);
        assert_floor_within(&[(heavy, 1)], 99);
        // 36 kg in all: either two parcels or one with additional handling
        // (83 % without).
        let part = item_of(8_977, [372, 347, 148]);
        assert_floor_within(&[(part, 4)], 86);
    }

    #[test]
    fn a_big_box_bills_its_dimensional_weight_in_its_own_parcel() {
        // A long, light unit that only the extra-large carton holds, and
        // heavy, compact goods: 25 kg in all, over the additional handling
        // weight in one parcel. Split in two parcels under that weight, the
        // carton still bills its own dimensional weight, and the other
        // carries what the carton's parcel cannot without handling. Counted
        // as two parcels sharing the carton's billable weight, the floor was
        // 82 % of the rating.
        let bulky = item_of(2_000, [520, 300, 200]);
        let compact = item_of(7_800, [300, 200, 150]);
        assert_floor_within(&[(bulky, 1), (compact, 3)], 94);
    }

    #[test]
    fn units_only_the_largest_box_holds_fill_as_many_of_them() {
        // Only the extra-large carton holds this unit, and three of them
        // fill it: four make two such cartons, each billing its
        // dimensional weight. Counted as one carton and a parcel for the
        // fourth unit's weight, the floor was 59 % of the rating (62 % with
        // the small goods below).
        let wide = item_of(3_431, [539, 433, 148]);
        assert_floor_within(&[(wide, 4)], 98);
        // With small goods beside them, which may go in either carton.
        let small = item_of(1_000, [100, 100, 100]);
        assert_floor_within(&[(wide, 4), (small, 10)], 98);
    }

    #[test]
    fn parcels_under_the_handling_weight_are_not_split_down_to_a_pound() {
        // 34 kg of small units: one parcel pays additional handling, and
        // two under its weight each bill 17 kg or so. A line under the
        // price row may split them into a pound and the rest, which the
        // row prices far lower: counted so, the floor was 90 % of the rating.
        let small = item_of(2_100, [200, 150, 100]);
        assert_floor_within(&[(small, 16)], 97);
    }

    /// The packed floor of `lines` shipped from New York to a business in
    /// Chicago, for a caller that can use any bound of at least `reach`.
    fn packed_of(lines: &[(Item, u32)], reach: i64) -> Option<i64> {
        let freight = Freight::sample();
        let floor = freight
            .floor(us("10001", false), us("60601", false), Decimal::ZERO)
            .unwrap();
        let items: Vec<ItemLine> = lines
            .iter()
            .map(|&(item, quantity)| ItemLine { item, quantity })
            .collect();
        floor.packed(&items, reach)
    }

    #[test]
    fn the_packed_floor_sees_which_units_can_share_a_parcel() {
        // Three of these pass the carriers' additional handling weight in
        // one parcel, and apart each bills a large carton's dimensional
        // weight. Counted by weight alone, as if the goods could split
        // freely into parcels under that weight, the floor is 87 % of the
        // rating.
        let part = item_of(8_977, [372, 347, 148]);
        let (floor, rate) = floor_and_rate(&[(part, 3)]);
        assert!(floor * 100 <= rate * 90, "floor {floor}, rating {rate}");
        let packed = packed_of(&[(part, 3)], i64::MIN).unwrap();
        assert!(
            packed <= rate && packed * 100 >= rate * 99,
            "packed {packed}, rating {rate}"
        );
        // The units in one parcel cost no more than the rating: a caller
        // that can only use more is told so without the partitions.
        assert_eq!(packed_of(&[(part, 3)], rate + 1), None);
        assert_eq!(packed_of(&[(part, 3)], packed), Some(packed));
        // Units that repeat count once per kind: seven of them are
        // partitioned as well, and the floor is as close.
        let (_, rate) = floor_and_rate(&[(part, 7)]);
        let packed = packed_of(&[(part, 7)], i64::MIN).unwrap();
        assert!(
            packed <= rate && packed * 100 >= rate * 99,
            "packed {packed}, rating {rate}"
        );
        // Past the sub-multisets it partitions (seven units apart make
        // 128), it cannot tell.
        let apart: Vec<(Item, u32)> = (0..7)
            .map(|i| (item_of(900 + i, [300, 200, 100]), 1))
            .collect();
        assert_eq!(packed_of(&apart, i64::MIN), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// The packed floor of a few units is never above any service's
        /// amount for any shipment holding them, with more units or not, on
        /// the SAMPLE tables at home and abroad.
        #[test]
        fn the_packed_floor_is_below_every_rating_of_a_shipment_holding_its_units(
            lines in prop::collection::vec((item(), 1u32..6), 1..4),
            extra in prop::collection::vec((item(), 1u32..3), 0..3),
            origin in prop::sample::select(vec!["10001", "60601", "94105", "98101"]),
            dest in prop::sample::select(vec![
                ("US", "10401", false),
                ("US", "94107", true),
                ("US", "04631", true),
                ("GB", "SW1A 1AA", false),
                ("JP", "100-0001", true),
            ]),
            fee in 0i64..600,
        ) {
            let freight = Freight::sample();
            let fee = Decimal::new(fee, 2);
            let destination = Endpoint {
                country_code: dest.0,
                postal_code: dest.1,
                residential: dest.2,
            };
            let floor = freight.floor(us(origin, false), destination, fee).unwrap();
            let items: Vec<ItemLine> =
                lines.iter().map(|&(item, quantity)| ItemLine { item, quantity }).collect();
            let Some(packed) = floor.packed(&items, i64::MIN) else {
                return Ok(());
            };
            let packed = Decimal::new(packed, 4);
            let more: Vec<ItemLine> = items
                .iter()
                .copied()
                .chain(extra.iter().map(|&(item, quantity)| ItemLine { item, quantity }))
                .collect();
            for shipment in [&items, &more] {
                let rated = freight.rate(&RateRequest {
                    origin: us(origin, false),
                    destination,
                    lines: shipment,
                    handling_fee: fee,
                });
                if let Ok(r) = rated {
                    for rate in &r.rates {
                        prop_assert!(
                            packed <= rate.amount,
                            "packed {} above {} {} for {} lines",
                            packed, rate.service, rate.amount, shipment.len()
                        );
                    }
                }
            }
        }
    }

    proptest! {
        /// A unit in its own packaging is charged the least any service
        /// charges it, in whole cents rounded down: found in integers on
        /// the SAMPLE tables, the same as in `Decimal`.
        #[test]
        fn own_units_are_charged_their_least_charge(
            it in item(),
            dest in prop::sample::select(vec![("10401", false), ("94107", true), ("04631", true)]),
        ) {
            let freight = Freight::sample();
            let floor = freight.floor(us("10001", false), us(dest.0, dest.1), Decimal::ZERO).unwrap();
            let mut dims = [it.length_mm, it.width_mm, it.height_mm];
            dims.sort_unstable_by(|a, b| b.cmp(a));
            let facts = ParcelFacts::new(it.weight_g, dims);
            let least = floor.services().filter_map(|s| s.lane.pricer.charge(&facts).ok()).min();
            let expected = least.map(|d| {
                let units = to_units(d);
                units - units.rem_euclid(100)
            });
            prop_assert!(floor.services().all(|s| s.lane.pricer.e8.is_some()));
            prop_assert_eq!(floor.own_unit(&it).map(|p| p.own_charge), expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// The floor of a shipment's profile, and the linear floor summed
        /// over its units, are never above any service's amount for it, the
        /// floor never falls when a unit is added, and a unit in its own
        /// packaging adds its own charge to it, on the SAMPLE tables.
        #[test]
        fn floor_is_below_every_rate_and_grows_with_the_shipment(
            lines in prop::collection::vec((item(), 1u32..4), 1..5),
            extra in item(),
            origin in prop::sample::select(vec!["10001", "60601", "94105", "98101"]),
            dest in prop::sample::select(vec![
                ("US", "10401", false),
                ("US", "94107", true),
                ("US", "33101", true),
                // Abroad, where services bill in kilograms.
                ("GB", "SW1A 1AA", false),
                ("JP", "100-0001", true),
            ]),
            fee in 0i64..600,
        ) {
            let freight = Freight::sample();
            let fee = Decimal::new(fee, 2);
            let destination = Endpoint {
                country_code: dest.0,
                postal_code: dest.1,
                residential: dest.2,
            };
            let floor = freight.floor(us(origin, false), destination, fee).unwrap();
            let mut profile = ShipmentProfile::default();
            let mut shippable = true;
            let mut reference = ShipmentProfile::default();
            for (it, q) in &lines {
                if let Some(u) = floor.unit(it) {
                    reference.add(&u, *q + 1);
                }
            }
            let linear = floor.linear(&reference);
            let mut added = 0i64;
            let mut by_space = 0i64;
            for (it, q) in &lines {
                match floor.unit(it) {
                    Some(u) => {
                        profile.add(&u, *q);
                        added += linear.marginal(&u, false) * i64::from(*q);
                        by_space += linear.marginal(&u, true) * i64::from(*q);
                    }
                    None => shippable = false,
                }
            }
            let boxed = profile.boxed_weight_g > 0;
            let additive = Decimal::new(linear.opening(false, boxed) + added, 4);
            let additive_space = Decimal::new(linear.opening(true, boxed) + by_space, 4);
            let items: Vec<ItemLine> =
                lines.iter().map(|&(item, quantity)| ItemLine { item, quantity }).collect();
            let rated = freight.rate(&RateRequest {
                origin: us(origin, false),
                destination,
                lines: &items,
                handling_fee: fee,
            });
            if let Ok(r) = &rated {
                prop_assert!(shippable, "a unit with no profile was rated");
                let least = Decimal::new(floor.amount(&profile), 4);
                for rate in &r.rates {
                    prop_assert!(least <= rate.amount, "floor {} above {} {}", least, rate.service, rate.amount);
                    let within = floor.amount_within(&profile, rate.transit_days).map(|a| Decimal::new(a, 4));
                    prop_assert!(
                        within.is_some_and(|w| w <= rate.amount),
                        "floor within {} days {:?} above {} {}", rate.transit_days, within, rate.service, rate.amount
                    );
                    prop_assert!(additive <= rate.amount, "linear floor {} above {} {}", additive, rate.service, rate.amount);
                    prop_assert!(additive_space <= rate.amount, "linear floor by space {} above {} {}", additive_space, rate.service, rate.amount);
                }
            }
            if let Some(u) = floor.unit(&extra) {
                let mut more = profile;
                more.add(&u, 1);
                prop_assert!(floor.amount(&more) >= floor.amount(&profile));
                for days in 0..8 {
                    prop_assert!(
                        floor.amount_within(&more, days) >= floor.amount_within(&profile, days),
                        "floor within {} days fell when a unit was added", days
                    );
                    // Fewer services, never a lower floor.
                    prop_assert!(
                        floor.amount_within(&profile, days).is_none_or(|a| a >= floor.amount(&profile))
                    );
                }
                if u.boxed_weight_g == 0 {
                    // A unit in its own packaging adds its own charge in
                    // full (the planner counts such units on top of a floor).
                    prop_assert!(
                        floor.amount(&more) == floor.amount(&profile) + u.own_charge,
                        "own unit {} added {} -> {}", u.own_charge, floor.amount(&profile), floor.amount(&more)
                    );
                }
            }
        }
    }
}
