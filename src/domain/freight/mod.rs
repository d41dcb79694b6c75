//! Freight quoting: table-based FedEx/UPS rates, a cost-minimising box packer
//! and rate shopping.
//!
//! [`Freight`] is loaded once from a directory of TOML tables (see
//! `docs/freight.md`) and then answers [`Freight::rate`] on the quote hot path
//! with precomputed lookups only. The same request always gives the same answer.

mod error;
mod floor;
mod packing;
mod rating;
mod tables;
mod zones;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};

pub use self::error::FreightError;
pub use self::floor::{FloorLine, FreightFloor, LinearFloor, ShipmentProfile, PACKED_MAX_SETS};
use self::rating::{ParcelFacts, Pricer, Refusal};
use self::tables::{Delivery, Model, Scope};

/// `box_id` of a parcel shipped in the item's own packaging (no catalog box fits it).
pub const OWN_PACKAGING: &str = "OWN";

/// One unit of a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// Weight of one unit in grams.
    pub weight_g: u32,
    /// Length in millimetres (orientation does not matter).
    pub length_mm: u32,
    /// Width in millimetres.
    pub width_mm: u32,
    /// Height in millimetres.
    pub height_mm: u32,
}

/// A quantity of one item.
#[derive(Clone, Copy, Debug)]
pub struct ItemLine {
    /// The unit shipped.
    pub item: Item,
    /// How many units; 0 is allowed and ignored.
    pub quantity: u32,
}

/// An end of a shipment.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint<'a> {
    /// ISO 3166-1 alpha-2 code, either case.
    pub country_code: &'a str,
    /// Postal code in the country's usual format.
    pub postal_code: &'a str,
    /// Whether the address is a home (matters for the destination only).
    pub residential: bool,
}

/// What to quote.
#[derive(Clone, Copy, Debug)]
pub struct RateRequest<'a> {
    /// Where the parcels leave from.
    pub origin: Endpoint<'a>,
    /// Where they are delivered.
    pub destination: Endpoint<'a>,
    /// The goods.
    pub lines: &'a [ItemLine],
    /// Merchant handling fee added once to every service's amount; must not be negative.
    pub handling_fee: Decimal,
}

/// One packed parcel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parcel {
    /// Catalog box id, or [`OWN_PACKAGING`].
    pub box_id: String,
    /// Gross weight (contents plus box tare) in grams.
    pub weight_g: u32,
    /// Greater of actual and dimensional weight under the reference service's rule (whole
    /// pounds, or whole kilograms for a metric table), expressed in grams (pounds rounded
    /// down). Each service bills with its own divisor; this is for display.
    pub billable_weight_g: u32,
    /// Outer length (longest side) in millimetres.
    pub length_mm: u32,
    /// Outer width in millimetres.
    pub width_mm: u32,
    /// Outer height (shortest side) in millimetres.
    pub height_mm: u32,
}

/// The price of the shipment on one carrier service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRate {
    /// Carrier display name, e.g. "FedEx" (shared with the tables: rating
    /// builds many of these and a clone is a reference count).
    pub carrier: Arc<str>,
    /// Service display name, e.g. "FedEx Ground".
    pub service: Arc<str>,
    /// Carrier charges with surcharges, plus boxes, plus handling fee; rounded to cents.
    pub amount: Decimal,
    /// Business days in transit.
    pub transit_days: u32,
}

/// Parcels and every service that can carry them, cheapest first.
///
/// Invariant, for every rate: `amount == round_cents(carrier_charge_with_surcharges +
/// boxes_cost + handling_fee)`, rounding half away from zero, once. When the handling
/// fee and the box costs have at most two decimal places, [`RatedShipment::carrier_charge`]
/// is exactly the carrier charge rounded to cents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatedShipment {
    /// Packing result (the same for every service).
    pub parcels: Vec<Parcel>,
    /// Sorted by (amount, transit_days, carrier, service).
    pub rates: Vec<ServiceRate>,
    /// Sum of the catalog cost of the boxes used (own packaging costs nothing).
    pub boxes_cost: Decimal,
    /// The request's handling fee, as given.
    pub handling_fee: Decimal,
}

impl RatedShipment {
    /// The carrier's part of a rate: `amount - boxes_cost - handling_fee`, that is the
    /// carrier charge with surcharges and fuel (rounded to cents when the fee and box
    /// costs are whole cents). What a live carrier quote should be compared with.
    pub fn carrier_charge(&self, rate: &ServiceRate) -> Decimal {
        rate.amount - self.boxes_cost - self.handling_fee
    }
}

/// How [`Freight::rate_with`] packs the units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// Minimise reference freight plus box cost (what [`Freight::rate`] does).
    Optimised,
    /// Each unit alone in its cheapest holding box (the baseline packing is compared with).
    OnePerBox,
}

impl Packing {
    fn run<C: packing::Cost>(
        self,
        packer: &packing::Packer<'_, C, impl Fn(u32, Option<usize>, [u32; 3]) -> C>,
        units: &[packing::Unit],
    ) -> Vec<packing::OpenParcel> {
        match self {
            Packing::Optimised => packer.pack(units),
            Packing::OnePerBox => packer.one_per_box(units),
        }
    }
}

/// Objective for [`choose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateChoice {
    /// Lowest amount; ties: fewer transit days, then carrier, then service name.
    Cheapest,
    /// Fewest transit days; ties: lower amount, then carrier, then service name.
    Fastest,
    /// Lowest amount among rates with `transit_days <= n`; ties as `Cheapest`.
    /// `None` when no rate arrives in time.
    CheapestWithinDays(u32),
}

/// Picks the rate that best meets `choice`; `None` for no rates (or none in time).
/// Deterministic: ties are broken as documented on [`RateChoice`], whatever the order
/// of `rates`, and equal rates resolve to the first in the slice.
pub fn choose(rates: &[ServiceRate], choice: RateChoice) -> Option<&ServiceRate> {
    let mut best: Option<&ServiceRate> = None;
    for r in rates {
        if let RateChoice::CheapestWithinDays(n) = choice {
            if r.transit_days > n {
                continue;
            }
        }
        let better = match best {
            None => true,
            Some(b) => {
                let (amount, days) = (r.amount.cmp(&b.amount), r.transit_days.cmp(&b.transit_days));
                let first = match choice {
                    RateChoice::Fastest => days.then(amount),
                    _ => amount.then(days),
                };
                first
                    .then_with(|| r.carrier.cmp(&b.carrier))
                    .then_with(|| r.service.cmp(&b.service))
                    .is_lt()
            }
        };
        if better {
            best = Some(r);
        }
    }
    best
}

/// Reference charge of a parcel the reference service refuses: large enough that the
/// packer avoids such parcels whenever it can.
const REFUSED_PARCEL_COST: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// [`REFUSED_PARCEL_COST`] in hundred-millionths.
const REFUSED_PARCEL_COST_E8: rating::E8 = 1_000_000 * 100_000_000;

/// The heaviest gross weight, grams, of a parcel that pays no additional
/// handling on the `reference` service's carrier (`u32::MAX`: none, or no
/// reference).
fn light_g(reference: Option<&Pricer<'_>>) -> u32 {
    reference
        .map(|p| p.carrier)
        .filter(|c| !c.additional_handling.is_zero() && c.ah_weight_g_x1e5 > 0)
        .map_or(u32::MAX, |c| {
            u32::try_from(c.ah_weight_g_x1e5 / 100_000).unwrap_or(u32::MAX)
        })
}

fn round_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A rating's amount in whole cents, rounded half away from zero as
/// [`round_cents`] rounds: what rates are sorted by, and shown with two
/// decimals ("12.30") whichever way they were added up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Cents(i128);

impl Cents {
    /// `e8` hundred-millionths, rounded to cents.
    fn from_e8(e8: rating::E8) -> Option<Self> {
        const HALF: i64 = 500_000;
        // Half away from zero: add half a cent away from zero, then truncate.
        // In 64 bits where the amount fits, as amounts do (far cheaper).
        let small = i64::try_from(e8)
            .ok()
            .filter(|v| v.unsigned_abs() < 1 << 62);
        let cents = match small {
            Some(v) => i128::from((v + v.signum() * HALF) / 1_000_000),
            None => e8.checked_add(e8.signum() * i128::from(HALF))? / 1_000_000,
        };
        Some(Self(cents))
    }

    /// `d` rounded to cents.
    fn from_decimal(d: Decimal) -> Option<Self> {
        let mut rounded = round_cents(d);
        rounded.rescale(2);
        // Rescaling keeps the value unless it cannot hold two decimals.
        (rounded.scale() == 2).then(|| Self(rounded.mantissa()))
    }

    /// The amount, with two decimals; `None` past what `Decimal` holds.
    fn to_decimal(self) -> Option<Decimal> {
        Decimal::try_from_i128_with_scale(self.0, 2).ok()
    }
}

/// The services between one origin and one destination, found once
/// ([`Freight::lane_between`]) and then used for any number of shipments on
/// that lane: a planner rates many shipments per supplier of a basket.
pub struct Lane<'a> {
    /// Every service that serves it, in file order; never empty. Shared
    /// with every [`FreightFloor`] on the lane, whatever its handling fee.
    services: Arc<[LaneService<'a>]>,
    /// The service packing minimises: see [`Lane::reference`].
    reference: Option<Pricer<'a>>,
}

/// What tells apart the lanes to one destination: the origin's country and,
/// within the domestic country, the zone between origin and destination.
/// Origins with the same key have the same lane to that destination, so a
/// quote finds the lane once per key rather than once per supplier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LaneKey {
    origin: usize,
    destination: usize,
    domestic_zone: Option<u16>,
}

/// One end of a lane, checked: its country and, in the domestic country,
/// its ZIP prefix (see [`Freight::place`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    country: usize,
    zip_prefix: Option<u16>,
}

impl<'a> Lane<'a> {
    /// The service packing minimises: the lane's cheapest for a 1 lb parcel
    /// (first in file order on ties), found with the lane's services.
    fn reference(&self) -> Option<Pricer<'a>> {
        self.reference
    }
}

impl std::fmt::Debug for Lane<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("services", &self.services.len())
            .finish()
    }
}

/// A service that serves the lane, ready to price parcels.
struct LaneService<'a> {
    pricer: Pricer<'a>,
    transit_days: u32,
    /// The floor of its price row on this lane.
    floor: Option<&'a floor::RowFloor>,
    /// One parcel's lane surcharges with fuel, as the floor counts them
    /// ([`floor::per_parcel_fuel`]).
    per_parcel_fuel: i64,
}

/// What a lane's services depend on: its key, whether the destination is
/// residential, and the destination's delivery-area tier with each carrier
/// (0 off the domestic country). Every destination of one class has the
/// same services at the same prices, so their lanes are worked out once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LaneClass {
    key: LaneKey,
    residential: bool,
    /// By carrier, in table order.
    tiers: smallvec::SmallVec<[u8; 8]>,
}

/// Lane classes kept at most. They are few (countries, zones, two kinds of
/// address, a handful of tiers), so this only bounds memory against
/// unusual tables; past it lanes are worked out each time.
const LANE_CLASSES_MAX: usize = 16_384;

/// A lane's services by index into the tables, with what pricing on each
/// needs beyond the tables themselves (see [`LaneClass`]).
#[derive(Debug)]
struct LaneSpec {
    services: Vec<SpecService>,
    /// The index in `services` of the service packing minimises (see
    /// [`Lane::reference`]).
    reference: Option<usize>,
}

/// One service of a [`LaneSpec`].
#[derive(Clone, Copy, Debug)]
struct SpecService {
    service: usize,
    zone: usize,
    transit_days: u32,
    surcharges_fuelled: Decimal,
    surcharges_e8: Option<rating::E8>,
    per_parcel_fuel: i64,
}

/// Loaded rate tables, zones, box catalog and settings.
pub struct Freight {
    model: Model,
    /// Per service, per zone: the row's lower envelope, for [`Freight::floor`].
    floors: Vec<floor::ServiceFloors>,
    /// The services of each lane class met so far: a quote's lanes then
    /// cost lookups instead of pricing each service's surcharges and finding
    /// the reference service again.
    lane_specs: dashmap::DashMap<LaneClass, Arc<LaneSpec>, rustc_hash::FxBuildHasher>,
}

macro_rules! sample_files {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("data/", $path)))),*]
    };
}

/// The shipped SAMPLE tables, as (relative path, contents).
const SAMPLE_FILES: &[(&str, &str)] = sample_files!(
    "settings.toml",
    "countries.toml",
    "boxes.toml",
    "zones/domestic.toml",
    "zones/international.toml",
    "carriers/fedex.toml",
    "carriers/ups.toml",
);

/// How deep `load` descends into sub-directories (the layout uses one level).
const MAX_DIR_DEPTH: usize = 4;

fn read_dir_files(
    root: &Path,
    rel: &str,
    depth: usize,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), FreightError> {
    let dir = root.join(rel);
    let io = |path: &Path, e: std::io::Error| FreightError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut entries = std::fs::read_dir(&dir)
        .map_err(|e| io(&dir, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io(&dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel_path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io(&path, e))?;
        if kind.is_dir() && depth < MAX_DIR_DEPTH {
            read_dir_files(root, &rel_path, depth + 1, out)?;
        } else if kind.is_file() && rel_path.ends_with(".toml") {
            out.push((rel_path, std::fs::read(&path).map_err(|e| io(&path, e))?));
        }
    }
    Ok(())
}

impl Freight {
    /// Loads every table from a directory laid out as documented in `docs/freight.md`.
    pub fn load(dir: &Path) -> Result<Freight, FreightError> {
        let mut files = Vec::new();
        read_dir_files(dir, "", 0, &mut files)?;
        Self::from_files(&files)
    }

    /// Loads from in-memory files: (relative path, contents), same layout as [`Freight::load`].
    pub fn from_files(files: &[(String, Vec<u8>)]) -> Result<Freight, FreightError> {
        let model = tables::compile(files)?;
        let floors = model
            .services
            .iter()
            .map(|s| {
                let handling = model.carriers.get(s.carrier).map(|c| c.ah_weight_g_x1e5);
                floor::service_floors(s, handling.unwrap_or(u64::MAX))
            })
            .collect();
        Ok(Freight {
            model,
            floors,
            lane_specs: dashmap::DashMap::default(),
        })
    }

    /// The shipped SAMPLE tables (embedded at build time), as (relative path, contents).
    pub fn sample_files() -> Vec<(String, Vec<u8>)> {
        SAMPLE_FILES
            .iter()
            .map(|(p, c)| ((*p).to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    /// `from_files(&sample_files())`.
    pub fn sample() -> Freight {
        // The embedded tables are fixed at build time and loaded by a unit test,
        // so this cannot fail at run time.
        Self::from_files(&Self::sample_files()).expect("embedded sample freight tables are valid")
    }

    /// Checks that an address is one we can rate: known country, postal code well-formed for
    /// it and, in the domestic country, a ZIP3 prefix that is in use.
    pub fn validate_address(
        &self,
        country_code: &str,
        postal_code: &str,
    ) -> Result<(), FreightError> {
        self.country_index(country_code, postal_code).map(|_| ())
    }

    fn country_index(&self, country_code: &str, postal_code: &str) -> Result<usize, FreightError> {
        let unknown = || FreightError::UnknownCountry {
            country_code: country_code.to_string(),
        };
        let key = zones::country_key(country_code).ok_or_else(unknown)?;
        let idx = self
            .model
            .countries
            .binary_search_by_key(&key, |c| c.key)
            .map_err(|_| unknown())?;
        let patterns = &self.model.countries[idx].postal_patterns;
        let code = postal_code.trim();
        let bad = |reason: String| FreightError::BadPostalCode {
            country_code: String::from_utf8_lossy(&key).into_owned(),
            postal_code: postal_code.to_string(),
            reason,
        };
        // Countries without postal codes have no patterns: anything (or nothing) goes.
        if patterns.is_empty() || patterns.iter().any(|p| zones::postal_matches(p, code)) {
            if key == self.model.settings.domestic_country {
                match zones::zip_prefix(code) {
                    Some(p) if self.model.domestic.unknown[usize::from(p)] => {
                        return Err(bad(format!("ZIP prefix {p:03} is not in use")));
                    }
                    Some(_) => {}
                    None => {
                        return Err(bad("domestic postal codes must start with 3 digits".into()))
                    }
                }
            }
            return Ok(idx);
        }
        Err(bad(if code.is_empty() {
            "a postal code is required".to_string()
        } else {
            format!("expected one of {patterns:?} (9 digit, A letter, N letter or digit)")
        }))
    }

    /// The carrier's API service code of a service, e.g. `("FedEx", "FedEx 2Day")` ->
    /// `"FEDEX_2_DAY"`, `("ups", "UPS Ground")` -> `"03"`. The carrier is matched by its
    /// display name or file id and the service by its display name, both ignoring ASCII case.
    pub fn service_code(&self, carrier: &str, service: &str) -> Option<&str> {
        self.services_of(carrier)
            .find(|s| s.name.eq_ignore_ascii_case(service.trim()))
            .map(|s| s.code.as_str())
    }

    /// The reverse of [`Freight::service_code`]: the service display name for a carrier's
    /// API code (codes compare exactly, after trimming).
    pub fn service_by_code(&self, carrier: &str, code: &str) -> Option<&str> {
        self.services_of(carrier)
            .find(|s| s.code == code.trim())
            .map(|s| &*s.name)
    }

    fn services_of(&self, carrier: &str) -> impl Iterator<Item = &tables::Service> + '_ {
        let c = carrier.trim();
        let idx = self
            .model
            .carriers
            .iter()
            .position(|k| k.name.eq_ignore_ascii_case(c) || k.id.eq_ignore_ascii_case(c));
        self.model
            .services
            .iter()
            .filter(move |s| Some(s.carrier) == idx)
    }

    /// The reference service used when no lane is known ([`Freight::pack`]): the first
    /// domestic service that delivers to businesses, at its first priced zone.
    fn default_pricer(&self) -> Option<Pricer<'_>> {
        let m = &self.model;
        let pick = |s: &&tables::Service| {
            s.scope == Scope::Domestic && s.delivery != Delivery::Residential
        };
        let s = m
            .services
            .iter()
            .find(pick)
            .or_else(|| m.services.first())?;
        let zone = s.prices.iter().position(Option::is_some)?;
        Pricer::new(m.carriers.get(s.carrier)?, s, zone, false, Decimal::ZERO)
    }

    /// The reference freight of one parcel as `Decimal` (see
    /// [`REFUSED_PARCEL_COST`]); no reference prices nothing.
    fn packer_parts<'a>(
        &'a self,
        reference: Option<Pricer<'a>>,
    ) -> impl Fn(u32, Option<usize>, [u32; 3]) -> Decimal + 'a {
        move |weight_g, _, dims| match &reference {
            Some(p) => p
                .charge(&ParcelFacts::new(weight_g, dims))
                .unwrap_or(REFUSED_PARCEL_COST),
            None => Decimal::ZERO,
        }
    }

    fn billable_g(reference: Option<&Pricer<'_>>, weight_g: u32, dims: [u32; 3]) -> u32 {
        match reference {
            Some(p) => p
                .service
                .dim
                .units_to_g(p.service.dim.billable(weight_g, dims)),
            None => rating::lb_to_g(rating::billable_lb(weight_g, dims, 139)),
        }
    }

    /// Packs `units` for the least reference freight plus box cost, adding
    /// and comparing money in integers when the lane's amounts and the box
    /// costs are whole hundred-millionths (the same packing, far cheaper).
    fn pack_units(
        &self,
        units: &[packing::Unit],
        reference: Option<Pricer<'_>>,
        how: Packing,
    ) -> Vec<packing::OpenParcel> {
        let m = &self.model;
        let e8 = match (&m.box_costs_e8, reference) {
            (Some(costs), Some(p)) => p.e8.map(|_| costs),
            (Some(costs), None) => Some(costs),
            (None, _) => None,
        };
        let (fill_pct, exact_max_units) = (
            m.settings.fill_factor_pct,
            m.settings.exact_packing_max_units as usize,
        );
        match e8 {
            Some(box_costs) => {
                // Each box's shape on the reference service, found when the
                // box is first priced: only the weight changes from one
                // candidate parcel in it to the next.
                let shapes: smallvec::SmallVec<[std::cell::Cell<Option<rating::ParcelShape>>; 16]> =
                    m.boxes.iter().map(|_| std::cell::Cell::new(None)).collect();
                let freight = |weight_g, box_idx: Option<usize>, dims| {
                    let Some(p) = reference else { return 0 };
                    let shape = box_idx.and_then(|bi| shapes.get(bi));
                    match p.boxed_charge_e8(weight_g, dims, shape) {
                        Some(Ok(c)) => c,
                        _ => REFUSED_PARCEL_COST_E8,
                    }
                };
                how.run(
                    &packing::Packer {
                        boxes: &m.boxes,
                        box_costs,
                        fill_pct,
                        exact_max_units,
                        light_g: light_g(reference.as_ref()),
                        freight,
                    },
                    units,
                )
            }
            None => how.run(&self.decimal_packer(reference), units),
        }
    }

    /// Packs the lines into parcels without pricing them. With no lane known, the
    /// packing minimises the freight of the first domestic business service at its first
    /// zone plus box cost; [`Freight::rate`] packs for the actual lane.
    pub fn pack(&self, lines: &[ItemLine]) -> Result<Vec<Parcel>, FreightError> {
        let units = packing::units(lines, &self.model.settings)?;
        let reference = self.default_pricer();
        let open = self.pack_units(&units, reference, Packing::Optimised);
        Ok(open
            .iter()
            .map(|p| {
                packing::to_parcel(p, &self.model.boxes, |w, d| {
                    Self::billable_g(reference.as_ref(), w, d)
                })
            })
            .collect())
    }

    /// Packs the lines into parcels and prices every carrier service that can carry them.
    /// Same as `rate_with(req, Packing::Optimised)`.
    pub fn rate(&self, req: &RateRequest<'_>) -> Result<RatedShipment, FreightError> {
        self.rate_with(req, Packing::Optimised)
    }

    /// The key of the lane between `origin` and `destination` (see
    /// [`LaneKey`]); fails on an unknown country or a bad postal code.
    pub fn lane_key(
        &self,
        origin: Endpoint<'_>,
        destination: Endpoint<'_>,
    ) -> Result<LaneKey, FreightError> {
        Ok(self.lane_key_between(self.place(origin)?, self.place(destination)?))
    }

    /// Where `at` lies as lanes see it; fails like [`Freight::lane_key`].
    /// A quote finds its destination once for the lanes of all its suppliers.
    pub fn place(&self, at: Endpoint<'_>) -> Result<Place, FreightError> {
        let country = self.country_index(at.country_code, at.postal_code)?;
        let domestic = self.model.countries[country].key == self.model.settings.domestic_country;
        Ok(Place {
            country,
            // The domestic checks passed, which require 3 leading digits.
            zip_prefix: if domestic {
                zones::zip_prefix(at.postal_code)
            } else {
                None
            },
        })
    }

    /// The key of the lane from `origin` to `destination`.
    pub fn lane_key_between(&self, origin: Place, destination: Place) -> LaneKey {
        let domestic_zone = match (origin.zip_prefix, destination.zip_prefix) {
            (Some(o), Some(d)) => Some(self.model.domestic.zone(o, d)),
            _ => None,
        };
        LaneKey {
            origin: origin.country,
            destination: destination.country,
            domestic_zone,
        }
    }

    /// The services between `origin` and `destination`, with the reference
    /// service packing minimises; fails when none serves the lane.
    pub fn lane_between(
        &self,
        origin: Endpoint<'_>,
        destination: Endpoint<'_>,
    ) -> Result<Lane<'_>, FreightError> {
        let key = self.lane_key(origin, destination)?;
        self.lane_at(key, destination)
    }

    /// The lane of `key` to `destination`, which must be the destination
    /// the key was found for; fails when no service serves it.
    pub fn lane_at(
        &self,
        key: LaneKey,
        destination: Endpoint<'_>,
    ) -> Result<Lane<'_>, FreightError> {
        let m = &self.model;
        let class = self.class_of(key, destination);
        let spec = match self.lane_specs.get(&class) {
            Some(known) => Arc::clone(&known),
            None => {
                let spec = Arc::new(self.lane_spec(&class));
                if self.lane_specs.len() < LANE_CLASSES_MAX {
                    self.lane_specs.insert(class, Arc::clone(&spec));
                }
                spec
            }
        };
        if spec.services.is_empty() {
            let o = String::from_utf8_lossy(&m.countries[key.origin].key).into_owned();
            let d = String::from_utf8_lossy(&m.countries[key.destination].key).into_owned();
            return Err(FreightError::NoService {
                reason: format!(
                    "no service from {o} to {d}{}",
                    if destination.residential {
                        " (residential)"
                    } else {
                        ""
                    }
                ),
            });
        }
        let services: Arc<[LaneService<'_>]> = spec
            .services
            .iter()
            .map(|l| {
                let s = &m.services[l.service];
                LaneService {
                    pricer: Pricer::known(
                        &m.carriers[s.carrier],
                        s,
                        l.zone,
                        l.surcharges_fuelled,
                        l.surcharges_e8,
                    ),
                    transit_days: l.transit_days,
                    floor: self
                        .floors
                        .get(l.service)
                        .and_then(|f| f.get(l.zone))
                        .and_then(Option::as_ref),
                    per_parcel_fuel: l.per_parcel_fuel,
                }
            })
            .collect();
        let reference = spec
            .reference
            .and_then(|r| services.get(r))
            .map(|l| l.pricer);
        Ok(Lane {
            services,
            reference,
        })
    }

    /// The class of the lane of `key` to `destination`.
    fn class_of(&self, key: LaneKey, destination: Endpoint<'_>) -> LaneClass {
        let domestic = self.domestic(key);
        let tiers = self
            .model
            .carriers
            .iter()
            .map(|carrier| match (&carrier.delivery_area, domestic) {
                (Some(da), true) => da.tier(destination.postal_code),
                _ => 0,
            })
            .collect();
        LaneClass {
            key,
            residential: destination.residential,
            tiers,
        }
    }

    /// Whether the lane of `key` lies within the domestic country.
    fn domestic(&self, key: LaneKey) -> bool {
        let m = &self.model;
        let (origin_key, dest_key) = (
            m.countries[key.origin].key,
            m.countries[key.destination].key,
        );
        origin_key == dest_key && origin_key == m.settings.domestic_country
    }

    /// Every service that serves the lane (route, zone, delivery type), in
    /// file order, and the one packing minimises.
    fn lane_spec(&self, class: &LaneClass) -> LaneSpec {
        let m = &self.model;
        let key = class.key;
        let dest = key.destination;
        let (origin_key, dest_key) = (m.countries[key.origin].key, m.countries[dest].key);
        let domestic = self.domestic(key);
        let domestic_zone = key.domestic_zone;
        let residential = class.residential;
        let mut out = Vec::with_capacity(m.services.len());
        // The reference service: the cheapest for a 1 lb parcel, first in
        // file order on ties.
        let tiny = ParcelFacts::new(1, [1, 1, 1]);
        let mut reference: Option<(Decimal, usize)> = None;
        for (si, s) in m.services.iter().enumerate() {
            let Some(carrier) = m.carriers.get(s.carrier) else {
                continue;
            };
            let zone = match s.scope {
                Scope::Domestic => domestic_zone,
                Scope::International
                    if origin_key != dest_key && carrier.intl_origins.contains(&origin_key) =>
                {
                    carrier.intl_zone.get(dest).copied().flatten()
                }
                Scope::International => None,
            };
            let Some(zone) = zone.map(usize::from) else {
                continue;
            };
            let Some(Some(transit_days)) = s.transit_days.get(zone) else {
                continue;
            };
            let delivers = match s.delivery {
                Delivery::Any => true,
                Delivery::Commercial => !residential,
                Delivery::Residential => residential,
            };
            if !delivers {
                continue;
            }
            // The class holds a tier for carriers with a delivery area on
            // domestic lanes only; elsewhere there is no such surcharge.
            let delivery_area = match (&carrier.delivery_area, class.tiers.get(s.carrier)) {
                (Some(da), Some(&tier)) if domestic => da.amount(tier, residential),
                _ => Decimal::ZERO,
            };
            let Some((surcharges_fuelled, surcharges_e8)) =
                Pricer::lane_surcharges(s, residential, delivery_area)
            else {
                continue;
            };
            let Some(pricer) = Pricer::at(carrier, s, zone, surcharges_fuelled, surcharges_e8)
            else {
                continue;
            };
            if let Ok(c) = pricer.charge(&tiny) {
                if reference.is_none_or(|(best, _)| c < best) {
                    reference = Some((c, out.len()));
                }
            }
            out.push(SpecService {
                service: si,
                zone,
                transit_days: *transit_days,
                surcharges_fuelled,
                surcharges_e8,
                per_parcel_fuel: floor::per_parcel_fuel(&pricer),
            });
        }
        LaneSpec {
            services: out,
            reference: reference.map(|(_, i)| i),
        }
    }

    /// The least any shipment from `origin` to `destination` can cost, and the
    /// soonest it can arrive, from the profile of its units (see [`FreightFloor`]).
    /// Fails like [`Freight::rate`] when the lane has no service at all.
    pub fn floor(
        &self,
        origin: Endpoint<'_>,
        destination: Endpoint<'_>,
        handling_fee: Decimal,
    ) -> Result<FreightFloor<'_>, FreightError> {
        let lane = self.lane_between(origin, destination)?;
        Ok(self.floor_on(&lane, handling_fee))
    }

    /// [`Freight::floor`] on a lane already found.
    pub fn floor_on<'a>(&'a self, lane: &Lane<'a>, handling_fee: Decimal) -> FreightFloor<'a> {
        FreightFloor {
            lane_services: Arc::clone(&lane.services),
            boxes: &self.model.boxes,
            fill_pct: self.model.settings.fill_factor_pct,
            handling_fee,
            handling_fee_units: crate::domain::money::to_units(handling_fee),
            limits: self.model.box_limits,
            handling: self.model.handling_limits,
            settings: &self.model.settings,
            box_costs_e8: self.model.box_costs_e8.as_deref(),
            parcels: Default::default(),
        }
    }

    /// Validates the lines and fee for `lane` and packs, or names the item
    /// no service can carry even alone.
    fn pack_on(
        &self,
        lane: &Lane<'_>,
        lines: &[ItemLine],
        handling_fee: Decimal,
        how: Packing,
    ) -> Result<Vec<packing::OpenParcel>, FreightError> {
        let m = &self.model;
        if handling_fee.is_sign_negative() && !handling_fee.is_zero() {
            return Err(FreightError::InvalidRequest {
                reason: "handling_fee must not be negative".into(),
            });
        }
        let units = packing::units(lines, &m.settings)?;
        // An item no service can carry even alone cannot ship at all: name it.
        for (i, line) in lines.iter().enumerate() {
            if line.quantity == 0 {
                continue;
            }
            let it = &line.item;
            let mut dims = [it.length_mm, it.width_mm, it.height_mm];
            dims.sort_unstable_by(|a, b| b.cmp(a));
            let facts = ParcelFacts::new(it.weight_g, dims);
            if lane
                .services
                .iter()
                .all(|l| l.pricer.charge(&facts).is_err())
            {
                let limit = lane
                    .services
                    .iter()
                    .find_map(|l| rating::limit_broken(l.pricer.carrier, &facts))
                    .unwrap_or_else(|| "billable weight is over every service's rate table".into());
                return Err(FreightError::NoService {
                    reason: format!(
                        "line {i} item ({} g, {}x{}x{} mm) is over every limit: {limit}",
                        it.weight_g, dims[0], dims[1], dims[2]
                    ),
                });
            }
        }
        Ok(self.pack_units(&units, lane.reference(), how))
    }

    /// The packer pricing in `Decimal`, whatever the amounts: where integer
    /// pricing is not exact (and what tests check it against).
    fn decimal_packer<'a>(
        &'a self,
        reference: Option<Pricer<'a>>,
    ) -> packing::Packer<'a, Decimal, impl Fn(u32, Option<usize>, [u32; 3]) -> Decimal + 'a> {
        packing::Packer {
            boxes: &self.model.boxes,
            box_costs: &self.model.box_costs,
            fill_pct: self.model.settings.fill_factor_pct,
            exact_max_units: self.model.settings.exact_packing_max_units as usize,
            light_g: light_g(reference.as_ref()),
            freight: self.packer_parts(reference),
        }
    }

    /// Reference cost (freight plus boxes) of the packing `rate_with` would use.
    #[cfg(test)]
    fn reference_cost(
        &self,
        req: &RateRequest<'_>,
        how: Packing,
    ) -> Result<(Vec<packing::OpenParcel>, Decimal), FreightError> {
        let lane = self.lane_between(req.origin, req.destination)?;
        let open = self.pack_on(&lane, req.lines, req.handling_fee, how)?;
        let cost = self.decimal_packer(lane.reference()).cost(&open);
        Ok((open, cost))
    }

    /// Unrounded carrier charge (with surcharges and fuel) per served service name.
    #[cfg(test)]
    fn carrier_charges_unrounded(&self, req: &RateRequest<'_>) -> Vec<(String, Decimal)> {
        let Ok(lane) = self.lane_between(req.origin, req.destination) else {
            return Vec::new();
        };
        let Ok(open) = self.pack_on(&lane, req.lines, req.handling_fee, Packing::Optimised) else {
            return Vec::new();
        };
        let facts: Vec<ParcelFacts> = open
            .iter()
            .map(|p| {
                let (dims, w) = packing::outer(p, &self.model.boxes);
                ParcelFacts::new(w, dims)
            })
            .collect();
        lane.services
            .iter()
            .filter_map(|l| {
                let total = facts
                    .iter()
                    .map(|f| l.pricer.charge(f).ok())
                    .sum::<Option<Decimal>>()?;
                Some((l.pricer.service.name.to_string(), total))
            })
            .collect()
    }

    /// [`Freight::rate`] with a choice of packing (for comparisons and explanations).
    pub fn rate_with(
        &self,
        req: &RateRequest<'_>,
        how: Packing,
    ) -> Result<RatedShipment, FreightError> {
        let lane = self.lane_between(req.origin, req.destination)?;
        self.rate_on(&lane, req.lines, req.handling_fee, how)
    }

    /// Every service of `lane` that carries all the `parcels`, priced at
    /// `fixed` (boxes and handling fee) plus its charges and rounded to
    /// cents, cheapest first (see [`RatedShipment::rates`]). Adds in
    /// hundred-millionths from `fixed_e8` (`fixed` there) when given, which
    /// requires every service's amounts to be whole there; in `Decimal`
    /// otherwise. Both give the same amounts, shown with two decimals.
    fn price_services(
        lane: &Lane<'_>,
        parcels: &[ParcelFacts],
        fixed: Decimal,
        fixed_e8: Option<rating::E8>,
    ) -> Result<Vec<ServiceRate>, FreightError> {
        let too_large = || FreightError::InvalidRequest {
            reason: "handling_fee is too large".into(),
        };
        let mut priced: Vec<(Cents, ServiceRate)> = Vec::with_capacity(lane.services.len());
        let mut worst: Option<Refusal> = None;
        for l in lane.services.iter() {
            // `Err(None)`: past what the sum can hold.
            let total = match fixed_e8 {
                Some(fixed) => parcels
                    .iter()
                    .try_fold(fixed, |total, f| {
                        // Never `None`: the caller checked every service.
                        match l.pricer.charge_e8(f).unwrap_or(Err(Refusal::ServiceWeight)) {
                            Ok(c) => total.checked_add(c).ok_or(None),
                            Err(r) => Err(Some(r)),
                        }
                    })
                    .map(Cents::from_e8),
                None => parcels
                    .iter()
                    .try_fold(fixed, |total, f| match l.pricer.charge(f) {
                        Ok(c) => total.checked_add(c).ok_or(None),
                        Err(r) => Err(Some(r)),
                    })
                    .map(Cents::from_decimal),
            };
            let cents = match total {
                Ok(Some(cents)) => cents,
                Ok(None) | Err(None) => return Err(too_large()),
                Err(Some(r)) => {
                    // Carrier limits are the more useful reason to report.
                    if worst != Some(Refusal::CarrierLimit) {
                        worst = Some(r);
                    }
                    continue;
                }
            };
            let amount = cents.to_decimal().ok_or_else(too_large)?;
            priced.push((
                cents,
                ServiceRate {
                    carrier: l.pricer.carrier.name.clone(),
                    service: l.pricer.service.name.clone(),
                    amount,
                    transit_days: l.transit_days,
                },
            ));
        }
        if priced.is_empty() {
            let reason = match worst {
                Some(Refusal::CarrierLimit) => {
                    "a parcel is over every carrier's weight or size limit (actual weight, length, length+girth)".into()
                }
                _ => "a parcel is heavier than every service's rate table".into(),
            };
            return Err(FreightError::NoService { reason });
        }
        priced.sort_by(|(a_cents, a), (b_cents, b)| {
            (a_cents, a.transit_days, &a.carrier, &a.service).cmp(&(
                b_cents,
                b.transit_days,
                &b.carrier,
                &b.service,
            ))
        });
        Ok(priced.into_iter().map(|(_, r)| r).collect())
    }

    /// [`Freight::rate_with`] on a lane already found.
    pub fn rate_on(
        &self,
        lane: &Lane<'_>,
        lines: &[ItemLine],
        handling_fee: Decimal,
        how: Packing,
    ) -> Result<RatedShipment, FreightError> {
        let m = &self.model;
        let too_large = || FreightError::InvalidRequest {
            reason: "handling_fee is too large".into(),
        };
        let open = self.pack_on(lane, lines, handling_fee, how)?;
        let reference = lane.reference();

        let mut boxes_cost = Decimal::ZERO;
        let mut parcels = Vec::with_capacity(open.len());
        let mut facts = Vec::with_capacity(open.len());
        for p in &open {
            if let Some(b) = p.box_idx.and_then(|b| m.boxes.get(b)) {
                boxes_cost += b.cost;
            }
            let (dims, weight_g) = packing::outer(p, &m.boxes);
            facts.push(ParcelFacts::new(weight_g, dims));
            parcels.push(packing::to_parcel(p, &m.boxes, |w, d| {
                Self::billable_g(reference.as_ref(), w, d)
            }));
        }
        let fixed = boxes_cost.checked_add(handling_fee).ok_or_else(too_large)?;
        // Whole hundred-millionths when the lane's amounts, the boxes and the
        // fee are whole there: the same sums and rounding as `Decimal`,
        // without its arithmetic.
        let fixed_e8 = lane
            .services
            .iter()
            .all(|l| l.pricer.e8.is_some())
            .then(|| {
                let costs = m.box_costs_e8.as_ref()?;
                open.iter()
                    .filter_map(|p| p.box_idx)
                    .try_fold(rating::to_e8(handling_fee)?, |sum, b| {
                        sum.checked_add(*costs.get(b)?)
                    })
            })
            .flatten();
        let rates = Self::price_services(lane, &facts, fixed, fixed_e8)?;
        Ok(RatedShipment {
            parcels,
            rates,
            boxes_cost,
            handling_fee,
        })
    }
}
