//! Data-file formats (TOML) and their compilation into the lookup-ready model
//! that rating uses. Everything costly (interpolating weight breaks, unit
//! conversion of thresholds, zone interning) happens here, once, at load.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

use super::error::FreightError;
use super::rating::{to_e8, E8};
use super::zones;

/// Grams per pound times 100 000 (1 lb = 453.592 37 g exactly), for integer comparisons.
pub const G_PER_LB_X1E5: u64 = 45_359_237;
/// Tenths of a millimetre per inch (1 in = 25.4 mm exactly).
pub const MM_X10_PER_IN: u64 = 254;

/// Largest amount a table may hold.
const MAX_MONEY: u64 = 1_000_000_000;
/// Most distinct zone labels across all files (keeps zone ids small and distinct).
const MAX_ZONES: usize = 10_000;
/// Largest `max_units_per_request` accepted (bounds packing work and sums).
const MAX_UNITS_LIMIT: u32 = 100_000;

/// Path of the settings file.
pub const SETTINGS: &str = "settings.toml";
/// Path of the country and postal-pattern file.
pub const COUNTRIES: &str = "countries.toml";
/// Path of the box catalog.
pub const BOXES: &str = "boxes.toml";
/// Path of the domestic zone chart.
pub const DOMESTIC_ZONES: &str = "zones/domestic.toml";
/// Path of the international zone file.
pub const INTL_ZONES: &str = "zones/international.toml";
/// Directory holding one file per carrier.
pub const CARRIER_DIR: &str = "carriers/";

// ---------- raw file formats ----------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    dim_divisor_in3_per_lb: u32,
    fill_factor_pct: u32,
    max_parcel_weight_g: u32,
    max_units_per_request: u32,
    domestic_country: String,
    #[serde(default = "default_exact_units")]
    exact_packing_max_units: u32,
}

fn default_exact_units() -> u32 {
    8
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCountries {
    countries: BTreeMap<String, RawCountry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCountry {
    #[allow(dead_code)] // Kept in the file for humans; not needed for rating.
    name: String,
    postal_patterns: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoxes {
    #[serde(rename = "box")]
    boxes: Vec<RawBox>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBox {
    id: String,
    inner_length_mm: u32,
    inner_width_mm: u32,
    inner_height_mm: u32,
    #[serde(default)]
    wall_mm: u32,
    tare_weight_g: u32,
    max_weight_g: u32,
    cost: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomestic {
    #[serde(default)]
    unknown_prefixes: Vec<String>,
    band: Vec<RawBand>,
    #[serde(default)]
    chart: Vec<RawChart>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChart {
    name: String,
    origins: Vec<String>,
    destinations: Vec<RawDest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDest {
    zip3: String,
    zone: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBand {
    max_prefix_distance: u16,
    zone: String,
}

type RawIntl = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCarrier {
    id: String,
    name: String,
    fuel_surcharge_pct: String,
    residential_surcharge: String,
    additional_handling: String,
    additional_handling_longest_side_in: u32,
    additional_handling_weight_lb: u32,
    oversize: String,
    oversize_length_plus_girth_in: u32,
    max_weight_lb: u32,
    max_length_in: u32,
    max_length_plus_girth_in: u32,
    international_origins: Vec<String>,
    #[serde(default)]
    dim_divisor_in3_per_lb: Option<u32>,
    #[serde(default)]
    additional_handling_second_side_in: Option<u32>,
    #[serde(default)]
    additional_handling_length_plus_girth_in: Option<u32>,
    #[serde(default)]
    oversize_min_billable_lb: Option<u32>,
    #[serde(default)]
    delivery_area: Option<RawDeliveryArea>,
    service: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeliveryArea {
    commercial: String,
    residential: String,
    extended_commercial: String,
    extended_residential: String,
    zip_prefixes: Vec<String>,
    #[serde(default)]
    extended_zip_prefixes: Vec<String>,
}

/// Units of a service's weight breaks.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum WeightUnit {
    /// Pounds; dimensional weight in in³ per lb.
    #[default]
    Lb,
    /// Kilograms; dimensional weight in cm³ per kg.
    Kg,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    code: String,
    scope: Scope,
    #[serde(default)]
    weight_unit: WeightUnit,
    #[serde(default)]
    dim_divisor_in3_per_lb: Option<u32>,
    #[serde(default)]
    dim_divisor_cm3_per_kg: Option<u32>,
    delivery: Delivery,
    minimum_charge: String,
    #[serde(default)]
    discount_pct: Option<String>,
    #[serde(default)]
    fuel_surcharge_pct: Option<String>,
    #[serde(default)]
    residential_surcharge: Option<String>,
    transit_days: RawTransit,
    zones: Vec<String>,
    breaks: Vec<RawBreak>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTransit {
    Fixed(u32),
    ByZone(BTreeMap<String, u32>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreak {
    #[serde(default)]
    lb: Option<u32>,
    #[serde(default)]
    kg: Option<u32>,
    prices: Vec<String>,
}

// ---------- compiled model ----------

/// Which origin/destination pairs a service serves.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Within the domestic country (US) only.
    Domestic,
    /// Between different countries.
    International,
}

/// Which destinations a service delivers to.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Business and residential addresses.
    Any,
    /// Business addresses only (e.g. FedEx Ground).
    Commercial,
    /// Residential addresses only (e.g. FedEx Home Delivery).
    Residential,
}

/// Global settings (settings.toml).
pub struct Settings {
    /// Dimensional-weight divisor.
    pub dim_divisor_in3_per_lb: u32,
    /// Usable share of a box's volume.
    pub fill_factor_pct: u32,
    /// Heaviest parcel the packer builds.
    pub max_parcel_weight_g: u32,
    /// Most units rated at once.
    pub max_units_per_request: u32,
    /// Country whose internal shipments are domestic.
    pub domestic_country: [u8; 2],
    /// Shipments with at most this many units are packed by exact search.
    pub exact_packing_max_units: u32,
}

/// How a service turns a parcel into billable weight units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DimRule {
    /// Whole kilograms (cm³ / divisor) instead of whole pounds (in³ / divisor).
    pub metric: bool,
    /// Dimensional divisor: in³ per lb, or cm³ per kg when metric.
    pub divisor: u32,
}

/// No chart / no zone marker in the domestic zone arrays.
pub const NO_ZONE: u16 = u16::MAX;

/// Domestic zone charts, all indexed by ZIP3 (0..=999).
pub struct DomesticZones {
    /// Default chart: zone id per |origin ZIP3 - destination ZIP3|.
    pub by_distance: Vec<u16>,
    /// Per origin ZIP3: index of its chart in `charts`, or `NO_ZONE` for the default chart.
    pub origin_chart: Vec<u16>,
    /// Chart rows, 1000 entries each: zone id per destination ZIP3, `NO_ZONE` = default chart.
    pub charts: Vec<u16>,
    /// ZIP3 prefixes not in use.
    pub unknown: Vec<bool>,
}

impl DomesticZones {
    /// Zone id between two ZIP3 prefixes (both 0..=999).
    pub fn zone(&self, origin: u16, dest: u16) -> u16 {
        let (o, d) = (usize::from(origin), usize::from(dest));
        let chart = self.origin_chart.get(o).copied().unwrap_or(NO_ZONE);
        if chart != NO_ZONE {
            let z = self
                .charts
                .get(usize::from(chart) * 1000 + d)
                .copied()
                .unwrap_or(NO_ZONE);
            if z != NO_ZONE {
                return z;
            }
        }
        self.by_distance[usize::from(origin.abs_diff(dest)).min(999)]
    }
}

/// Delivery-area surcharge tiers for domestic destinations.
pub struct DeliveryArea {
    /// Per parcel: [commercial, residential, extended commercial, extended residential].
    pub amounts: [Decimal; 4],
    /// Tier per ZIP3: 0 none, 1 delivery area, 2 extended.
    pub zip3: Vec<u8>,
    /// 5-digit overrides, sorted by ZIP.
    pub zip5: Vec<(u32, u8)>,
}

impl DeliveryArea {
    /// Tier (0 none, 1 delivery area, 2 extended) of a US postal code.
    pub fn tier(&self, postal_code: &str) -> u8 {
        let b = postal_code.trim().as_bytes();
        if b.len() >= 5 && b[..5].iter().all(u8::is_ascii_digit) {
            let zip5 = b[..5]
                .iter()
                .fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
            if let Ok(i) = self.zip5.binary_search_by_key(&zip5, |e| e.0) {
                return self.zip5[i].1;
            }
        }
        match zones::zip_prefix(postal_code) {
            Some(p) => self.zip3[usize::from(p)],
            None => 0,
        }
    }

    /// The surcharge per parcel for a tier.
    pub fn amount(&self, tier: u8, residential: bool) -> Decimal {
        match (tier, residential) {
            (1, false) => self.amounts[0],
            (1, true) => self.amounts[1],
            (2, false) => self.amounts[2],
            (2, true) => self.amounts[3],
            _ => Decimal::ZERO,
        }
    }
}

/// A country that can be rated.
pub struct Country {
    /// Upper-case ISO code.
    pub key: [u8; 2],
    /// Accepted postal patterns (none: no postal codes).
    pub postal_patterns: Vec<String>,
}

/// A catalog box, dimensions normalised for rotation-free comparison.
pub struct BoxSpec {
    /// Catalog id.
    pub id: String,
    /// Inner dimensions, sorted longest first.
    pub inner_mm: [u32; 3],
    /// Outer dimensions, sorted longest first.
    pub outer_mm: [u32; 3],
    /// Inner volume.
    pub inner_volume_mm3: u128,
    /// Weight of the empty box.
    pub tare_weight_g: u32,
    /// Max gross weight, already capped at the settings' parcel limit.
    pub max_weight_g: u32,
    /// What one box costs the merchant.
    pub cost: Decimal,
}

impl BoxSpec {
    /// Outer volume, cubic millimetres: what dimensional weight bills.
    pub fn outer_volume_mm3(&self) -> u64 {
        self.outer_mm.iter().map(|&d| u64::from(d)).product()
    }
}

/// The most any one box of the catalog holds, and the least it weighs and
/// costs: from these a freight floor learns how many parcels a shipment
/// needs at least, and what each adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoxLimits {
    /// The most volume of several units any box takes: its inner volume
    /// at the fill factor, rounded up, cubic millimetres (0 with no boxes).
    pub capacity_mm3: u64,
    /// The most weight of goods any box carries (its maximum gross weight
    /// less its tare), grams.
    pub capacity_g: u64,
    /// The least tare of any box, grams.
    pub least_tare_g: u32,
    /// The cheapest box's cost in ten-thousandths, rounded down (0 with no
    /// boxes).
    pub least_cost_units: i64,
    /// The largest outer volume of any box, cubic millimetres (0 with no
    /// boxes): a unit no smaller box holds goes in a box this large.
    pub largest_outer_mm3: u64,
}

impl BoxLimits {
    /// The limits of `boxes` when several units may fill `fill_pct` of a
    /// box's inner volume.
    pub fn new(boxes: &[BoxSpec], fill_pct: u32) -> Self {
        let capacity = boxes
            .iter()
            .map(|b| (b.inner_volume_mm3 * u128::from(fill_pct)).div_ceil(100))
            .max()
            .unwrap_or(0);
        Self {
            capacity_mm3: u64::try_from(capacity).unwrap_or(u64::MAX),
            capacity_g: boxes
                .iter()
                .map(|b| u64::from(b.max_weight_g.saturating_sub(b.tare_weight_g)))
                .max()
                .unwrap_or(0),
            least_tare_g: boxes.iter().map(|b| b.tare_weight_g).min().unwrap_or(0),
            least_cost_units: crate::domain::money::to_units(
                boxes.iter().map(|b| b.cost).min().unwrap_or_default(),
            ),
            largest_outer_mm3: boxes
                .iter()
                .map(BoxSpec::outer_volume_mm3)
                .max()
                .unwrap_or(0),
        }
    }
}

/// The least of every carrier's thresholds for additional handling and
/// oversize: a parcel under all of them pays neither on any carrier, which
/// spares freight floors a look at each carrier for most shipments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlingLimits {
    /// Gross weight, in grams × 100,000 (as [`Carrier::ah_weight_g_x1e5`]).
    pub weight_g_x1e5: u64,
    /// Longest side, tenths of millimetres.
    pub longest_mm_x10: u64,
    /// Second-longest side, tenths of millimetres.
    pub second_mm_x10: u64,
    /// Length plus girth, for handling or oversize, tenths of millimetres.
    pub lg_mm_x10: u64,
}

impl HandlingLimits {
    /// One carrier's thresholds.
    pub fn of(c: &Carrier) -> Self {
        Self {
            weight_g_x1e5: c.ah_weight_g_x1e5,
            longest_mm_x10: c.ah_longest_mm_x10,
            second_mm_x10: c.ah_second_mm_x10,
            lg_mm_x10: c.ah_lg_mm_x10.min(c.oversize_lg_mm_x10),
        }
    }

    /// The least thresholds of `carriers` (none: no limits).
    pub fn new(carriers: &[Carrier]) -> Self {
        let none = Self {
            weight_g_x1e5: u64::MAX,
            longest_mm_x10: u64::MAX,
            second_mm_x10: u64::MAX,
            lg_mm_x10: u64::MAX,
        };
        carriers.iter().map(Self::of).fold(none, |a, b| Self {
            weight_g_x1e5: a.weight_g_x1e5.min(b.weight_g_x1e5),
            longest_mm_x10: a.longest_mm_x10.min(b.longest_mm_x10),
            second_mm_x10: a.second_mm_x10.min(b.second_mm_x10),
            lg_mm_x10: a.lg_mm_x10.min(b.lg_mm_x10),
        })
    }
}

/// Carrier-wide surcharges and limits, thresholds pre-converted to integer units.
pub struct Carrier {
    /// File id, e.g. "fedex".
    pub id: String,
    /// Display name.
    pub name: Arc<str>,
    /// Additional handling threshold on the second-longest side (`u64::MAX`: none).
    pub ah_second_mm_x10: u64,
    /// Additional handling threshold on length + girth (`u64::MAX`: none).
    pub ah_lg_mm_x10: u64,
    /// Least billable weight (in the service's units) of an oversize parcel.
    pub oversize_min_lb: u32,
    /// Delivery-area surcharges, if the carrier file has them.
    pub delivery_area: Option<DeliveryArea>,
    /// Hard limits as published (for messages): weight lb, longest side in, length + girth in.
    pub limits: [u32; 3],
    /// Additional handling charge per parcel.
    pub additional_handling: Decimal,
    /// Additional handling threshold on the longest side.
    pub ah_longest_mm_x10: u64,
    /// Additional handling threshold on actual weight.
    pub ah_weight_g_x1e5: u64,
    /// Oversize charge per parcel.
    pub oversize: Decimal,
    /// Oversize threshold on length + girth.
    pub oversize_lg_mm_x10: u64,
    /// Hard limit on actual weight.
    pub max_weight_g_x1e5: u64,
    /// Hard limit on the longest side.
    pub max_length_mm_x10: u64,
    /// Hard limit on length + girth.
    pub max_lg_mm_x10: u64,
    /// Origins of international services.
    pub intl_origins: Vec<[u8; 2]>,
    /// Zone id per country index (international zones).
    pub intl_zone: Vec<Option<u16>>,
}

/// One carrier service with its dense per-pound price rows.
pub struct Service {
    /// Index into the carriers.
    pub carrier: usize,
    /// Display name.
    pub name: Arc<str>,
    /// The carrier's API service code.
    pub code: String,
    /// Billable-weight rule (units and divisor).
    pub dim: DimRule,
    /// Domestic or international.
    pub scope: Scope,
    /// Which destinations it serves.
    pub delivery: Delivery,
    /// Least transportation charge per parcel.
    pub minimum_charge: Decimal,
    /// 1 + fuel surcharge percentage / 100.
    pub fuel_factor: Decimal,
    /// Charge per parcel delivered to a home.
    pub residential_surcharge: Decimal,
    /// Per zone id: price for 1, 2, ... weight units (lb, or kg when metric) up to the last break.
    pub prices: Vec<Option<Vec<Decimal>>>,
    /// Per zone id: business days in transit.
    pub transit_days: Vec<Option<u32>>,
    /// The same charges with the fuel surcharge applied (see [`Fuelled`]).
    pub fuelled: Fuelled,
}

/// A service's charges with its fuel factor already applied, so that pricing
/// a parcel, which packing does in its inner loop, is a lookup and additions.
/// Fuel applies to the transportation charge and every surcharge alike, and
/// table amounts have few decimals, so `(a + b) × fuel = a × fuel + b × fuel`
/// holds exactly in `Decimal`.
#[derive(Debug, Clone, Default)]
pub struct Fuelled {
    /// Per zone id: `max(price, minimum_charge) × fuel` per weight unit.
    pub prices: Vec<Option<Vec<Decimal>>>,
    /// `residential_surcharge × fuel`.
    pub residential: Decimal,
    /// The carrier's additional handling charge × fuel.
    pub additional_handling: Decimal,
    /// The carrier's oversize charge × fuel.
    pub oversize: Decimal,
    /// The lesser of `additional_handling` and `oversize` in
    /// ten-thousandths, rounded down: what a freight floor counts for a
    /// parcel that pays either (found once, as floors are built per lane).
    pub least_handling_units: i64,
    /// The same charges in hundred-millionths, when every one is whole there
    /// (packing then adds and compares integers; `None`: it uses `Decimal`).
    pub e8: Option<FuelledE8>,
}

/// [`Fuelled`] in hundred-millionths of the currency unit (see [`to_e8`]);
/// the residential surcharge enters through each lane's
/// [`super::rating::PricerE8::surcharges`].
#[derive(Debug, Clone, Default)]
pub struct FuelledE8 {
    /// Per zone id, as [`Fuelled::prices`].
    pub prices: Vec<Option<Vec<E8>>>,
    /// As [`Fuelled::additional_handling`].
    pub additional_handling: E8,
    /// As [`Fuelled::oversize`].
    pub oversize: E8,
}

impl FuelledE8 {
    fn of(f: &Fuelled) -> Option<Self> {
        let row = |r: &[Decimal]| r.iter().map(|&d| to_e8(d)).collect::<Option<Vec<_>>>();
        Some(Self {
            prices: f
                .prices
                .iter()
                .map(|r| r.as_deref().map(row).map_or(Some(None), |r| r.map(Some)))
                .collect::<Option<Vec<_>>>()?,
            additional_handling: to_e8(f.additional_handling)?,
            oversize: to_e8(f.oversize)?,
        })
    }
}

impl Fuelled {
    /// The fuelled charges of `service` of `carrier`; `None` when a product
    /// would not be exact (more than `Decimal` carries).
    fn of(service: &Service, carrier: &Carrier) -> Option<Self> {
        let fuel = service.fuel_factor;
        let exact = |d: Decimal| {
            let p = d.checked_mul(fuel)?;
            // An exact product carries both factors' decimals; fewer means rounded.
            (p.scale() == d.scale() + fuel.scale() || p.is_zero()).then_some(p)
        };
        let prices = service
            .prices
            .iter()
            .map(|row| match row {
                // A zone the service does not price stays unpriced.
                None => Some(None),
                Some(r) => r
                    .iter()
                    .map(|p| exact((*p).max(service.minimum_charge)))
                    .collect::<Option<Vec<_>>>()
                    .map(Some),
            })
            .collect::<Option<Vec<_>>>()?;
        let additional_handling = exact(carrier.additional_handling)?;
        let oversize = exact(carrier.oversize)?;
        let mut fuelled = Self {
            prices,
            residential: exact(service.residential_surcharge)?,
            additional_handling,
            oversize,
            least_handling_units: crate::domain::money::to_units(additional_handling.min(oversize)),
            e8: None,
        };
        fuelled.e8 = FuelledE8::of(&fuelled);
        Some(fuelled)
    }
}

/// Everything `rate` needs, ready for lookups.
pub struct Model {
    /// Global settings.
    pub settings: Settings,
    /// Sorted by key for binary search.
    pub countries: Vec<Country>,
    /// Sorted by (inner volume, cost, id): the packer takes the first that fits.
    pub boxes: Vec<BoxSpec>,
    /// Each box's cost, by index into `boxes`, as packing prices it.
    pub box_costs: Vec<Decimal>,
    /// The same in hundred-millionths, when every one is whole there (see
    /// [`Fuelled::e8`]).
    pub box_costs_e8: Option<Vec<E8>>,
    /// What any one box holds at most, and the least it weighs and costs,
    /// as freight floors count parcels.
    pub box_limits: BoxLimits,
    /// Below what no carrier charges additional handling or oversize.
    pub handling_limits: HandlingLimits,
    /// Domestic zone charts.
    pub domestic: DomesticZones,
    /// Carriers in file-name order.
    pub carriers: Vec<Carrier>,
    /// Services in file order.
    pub services: Vec<Service>,
}

// ---------- loading ----------

fn table_err(file: &str, key: impl Into<String>, message: impl Into<String>) -> FreightError {
    FreightError::Table {
        file: file.to_string(),
        line_or_key: key.into(),
        message: message.into(),
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, FreightError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text.get(..s.start).map_or(0, |t| t.matches('\n').count()) + 1)
            .map_or_else(|| "line ?".to_string(), |l| format!("line {l}"));
        table_err(file, line, e.message().trim().to_string())
    })
}

fn money(file: &str, key: &str, s: &str) -> Result<Decimal, FreightError> {
    let d = Decimal::from_str(s.trim())
        .map_err(|e| table_err(file, key, format!("{s:?} is not a decimal amount: {e}")))?;
    if d.is_sign_negative() {
        return Err(table_err(file, key, format!("{s:?} must not be negative")));
    }
    // A cap keeps every later sum far from Decimal's range, so rating needs no overflow checks.
    if d > Decimal::from(MAX_MONEY) {
        return Err(table_err(
            file,
            key,
            format!("{s:?} is implausibly large (max {MAX_MONEY})"),
        ));
    }
    Ok(d)
}

fn pct_factor(file: &str, key: &str, s: &str, plus: bool) -> Result<Decimal, FreightError> {
    let p = money(file, key, s)?;
    if p > Decimal::ONE_HUNDRED {
        return Err(table_err(file, key, "percentage must be at most 100"));
    }
    let f = p / Decimal::ONE_HUNDRED;
    Ok(if plus {
        Decimal::ONE + f
    } else {
        Decimal::ONE - f
    })
}

fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

struct Files<'a> {
    by_path: BTreeMap<String, &'a str>,
}

impl<'a> Files<'a> {
    fn get(&self, path: &str) -> Result<&'a str, FreightError> {
        self.by_path
            .get(path)
            .copied()
            .ok_or_else(|| table_err(path, "file", "required file is missing"))
    }
}

fn normalise_path(p: &str) -> String {
    let p = p.replace('\\', "/");
    p.trim_start_matches("./").to_string()
}

/// Interns zone labels ("2", "A", "51") into small integer ids.
#[derive(Default)]
struct Zones {
    ids: HashMap<String, u16>,
}

impl Zones {
    fn id(&mut self, label: &str) -> u16 {
        let next = u16::try_from(self.ids.len()).unwrap_or(u16::MAX);
        *self.ids.entry(label.trim().to_string()).or_insert(next)
    }
    fn get(&self, label: &str) -> Option<u16> {
        self.ids.get(label.trim()).copied()
    }
}

/// Compiles the in-memory table files into a model.
pub fn compile(files: &[(String, Vec<u8>)]) -> Result<Model, FreightError> {
    let mut by_path = BTreeMap::new();
    for (path, bytes) in files {
        if !path.ends_with(".toml") {
            continue; // READMEs and the like travel with the tables.
        }
        let path = normalise_path(path);
        let known = [SETTINGS, COUNTRIES, BOXES, DOMESTIC_ZONES, INTL_ZONES]
            .contains(&path.as_str())
            || (path.starts_with(CARRIER_DIR) && !path[CARRIER_DIR.len()..].contains('/'));
        if !known {
            return Err(table_err(&path, "file", "unexpected table file"));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| table_err(&path, "file", format!("not UTF-8: {e}")))?;
        if by_path.insert(path.clone(), text).is_some() {
            return Err(table_err(&path, "file", "given twice"));
        }
    }
    let files = Files { by_path };

    let settings = compile_settings(files.get(SETTINGS)?)?;
    let countries = compile_countries(files.get(COUNTRIES)?)?;
    let boxes = compile_boxes(files.get(BOXES)?, &settings)?;
    let mut zone_ids = Zones::default();
    let domestic = compile_domestic(files.get(DOMESTIC_ZONES)?, &mut zone_ids)?;
    let intl: RawIntl = parse_toml(INTL_ZONES, files.get(INTL_ZONES)?)?;

    let mut carriers = Vec::new();
    let mut services = Vec::new();
    let mut carrier_ids: Vec<String> = Vec::new();
    for (path, text) in files.by_path.range(CARRIER_DIR.to_string()..) {
        if !path.starts_with(CARRIER_DIR) {
            break;
        }
        let raw: RawCarrier = parse_toml(path, text)?;
        if carrier_ids.contains(&raw.id) {
            return Err(table_err(
                path,
                "id",
                format!("carrier id {:?} used twice", raw.id),
            ));
        }
        let zone_map = intl.get(&raw.id);
        let idx = carriers.len();
        carrier_ids.push(raw.id.clone());
        let (carrier, svcs) = compile_carrier(
            path,
            raw,
            idx,
            zone_map,
            &countries,
            &mut zone_ids,
            settings.dim_divisor_in3_per_lb,
        )?;
        carriers.push(carrier);
        services.extend(svcs);
    }
    if carriers.is_empty() {
        return Err(table_err(CARRIER_DIR, "file", "no carrier files"));
    }
    for carrier_id in intl.keys() {
        if !carrier_ids.contains(carrier_id) {
            return Err(table_err(
                INTL_ZONES,
                carrier_id.clone(),
                "no carrier file has this id",
            ));
        }
    }
    if zone_ids.ids.len() > MAX_ZONES {
        return Err(table_err(
            CARRIER_DIR,
            "zones",
            format!("more than {MAX_ZONES} distinct zones"),
        ));
    }
    let box_costs: Vec<Decimal> = boxes.iter().map(|b| b.cost).collect();
    let box_costs_e8 = box_costs.iter().map(|&c| to_e8(c)).collect();
    let box_limits = BoxLimits::new(&boxes, settings.fill_factor_pct);
    let handling_limits = HandlingLimits::new(&carriers);
    Ok(Model {
        settings,
        countries,
        boxes,
        box_costs,
        box_costs_e8,
        box_limits,
        handling_limits,
        domestic,
        carriers,
        services,
    })
}

fn compile_settings(text: &str) -> Result<Settings, FreightError> {
    let raw: RawSettings = parse_toml(SETTINGS, text)?;
    if raw.dim_divisor_in3_per_lb == 0 {
        return Err(table_err(
            SETTINGS,
            "dim_divisor_in3_per_lb",
            "must be positive",
        ));
    }
    if !(1..=100).contains(&raw.fill_factor_pct) {
        return Err(table_err(SETTINGS, "fill_factor_pct", "must be 1..=100"));
    }
    if !(1..=MAX_UNITS_LIMIT).contains(&raw.max_units_per_request) {
        return Err(table_err(
            SETTINGS,
            "max_units_per_request",
            format!("must be 1..={MAX_UNITS_LIMIT}"),
        ));
    }
    if raw.max_parcel_weight_g == 0 {
        return Err(table_err(
            SETTINGS,
            "max_parcel_weight_g",
            "must be positive",
        ));
    }
    let domestic_country = zones::country_key(&raw.domestic_country)
        .ok_or_else(|| table_err(SETTINGS, "domestic_country", "must be a two-letter code"))?;
    if raw.exact_packing_max_units > 12 {
        return Err(table_err(
            SETTINGS,
            "exact_packing_max_units",
            "must be at most 12 (the search is exponential)",
        ));
    }
    Ok(Settings {
        dim_divisor_in3_per_lb: raw.dim_divisor_in3_per_lb,
        fill_factor_pct: raw.fill_factor_pct,
        max_parcel_weight_g: raw.max_parcel_weight_g,
        max_units_per_request: raw.max_units_per_request,
        domestic_country,
        exact_packing_max_units: raw.exact_packing_max_units,
    })
}

fn compile_countries(text: &str) -> Result<Vec<Country>, FreightError> {
    let raw: RawCountries = parse_toml(COUNTRIES, text)?;
    let mut out = Vec::new();
    for (code, c) in raw.countries {
        let key = zones::country_key(&code).ok_or_else(|| {
            table_err(
                COUNTRIES,
                format!("countries.{code}"),
                "not a two-letter code",
            )
        })?;
        for (i, p) in c.postal_patterns.iter().enumerate() {
            if !zones::pattern_is_valid(p) {
                return Err(table_err(
                    COUNTRIES,
                    format!("countries.{code}.postal_patterns[{i}]"),
                    "pattern must be non-empty ASCII",
                ));
            }
        }
        out.push(Country {
            key,
            postal_patterns: c.postal_patterns,
        });
    }
    out.sort_by_key(|c| c.key);
    if out.windows(2).any(|w| w[0].key == w[1].key) {
        return Err(table_err(
            COUNTRIES,
            "countries",
            "a country is listed twice (case differs)",
        ));
    }
    Ok(out)
}

fn compile_boxes(text: &str, settings: &Settings) -> Result<Vec<BoxSpec>, FreightError> {
    let raw: RawBoxes = parse_toml(BOXES, text)?;
    let mut out: Vec<BoxSpec> = Vec::new();
    for (i, b) in raw.boxes.into_iter().enumerate() {
        let key = format!("box[{i}]");
        let mut inner = [b.inner_length_mm, b.inner_width_mm, b.inner_height_mm];
        if inner.contains(&0) {
            return Err(table_err(BOXES, key, "inner dimensions must be positive"));
        }
        if b.id.trim().is_empty()
            || b.id == super::OWN_PACKAGING
            || out.iter().any(|o| o.id == b.id)
        {
            return Err(table_err(
                BOXES,
                key,
                format!("box id {:?} is empty, reserved or repeated", b.id),
            ));
        }
        inner.sort_unstable_by(|a, b| b.cmp(a));
        let wall2 = b.wall_mm.saturating_mul(2);
        let mut outer = inner.map(|d| d.saturating_add(wall2));
        outer.sort_unstable_by(|a, b| b.cmp(a));
        let max_weight_g = b.max_weight_g.min(settings.max_parcel_weight_g);
        if b.tare_weight_g >= max_weight_g {
            return Err(table_err(
                BOXES,
                key,
                "tare weight leaves no room under the max weight",
            ));
        }
        let cost = money(BOXES, &format!("{key}.cost"), &b.cost)?;
        out.push(BoxSpec {
            id: b.id,
            inner_mm: inner,
            outer_mm: outer,
            inner_volume_mm3: inner.iter().map(|&d| u128::from(d)).product(),
            tare_weight_g: b.tare_weight_g,
            max_weight_g,
            cost,
        });
    }
    out.sort_by(|a, b| {
        (a.inner_volume_mm3, a.cost, &a.id).cmp(&(b.inner_volume_mm3, b.cost, &b.id))
    });
    Ok(out)
}

/// Parses "NNN" or "NNN-NNN" into an inclusive ZIP3 range.
fn zip3_range(file: &str, key: &str, s: &str) -> Result<(u16, u16), FreightError> {
    let bad = || {
        table_err(
            file,
            key,
            format!("{s:?} is not a ZIP3 prefix or range NNN-NNN"),
        )
    };
    let one = |t: &str| -> Result<u16, FreightError> {
        let t = t.trim();
        if t.len() != 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let v = one(s)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

fn compile_domestic(text: &str, zone_ids: &mut Zones) -> Result<DomesticZones, FreightError> {
    let raw: RawDomestic = parse_toml(DOMESTIC_ZONES, text)?;
    let mut out = Vec::with_capacity(1000);
    let mut prev: Option<u16> = None;
    for (i, band) in raw.band.iter().enumerate() {
        if prev.is_some_and(|p| band.max_prefix_distance <= p) || band.zone.trim().is_empty() {
            return Err(table_err(
                DOMESTIC_ZONES,
                format!("band[{i}]"),
                "bands need a zone and increasing max_prefix_distance",
            ));
        }
        let id = zone_ids.id(&band.zone);
        while out.len() <= usize::from(band.max_prefix_distance.min(999)) {
            out.push(id);
        }
        prev = Some(band.max_prefix_distance);
    }
    if out.len() < 1000 {
        return Err(table_err(
            DOMESTIC_ZONES,
            "band",
            "the last band must reach max_prefix_distance 999",
        ));
    }
    let mut unknown = vec![false; 1000];
    for (i, r) in raw.unknown_prefixes.iter().enumerate() {
        let (lo, hi) = zip3_range(DOMESTIC_ZONES, &format!("unknown_prefixes[{i}]"), r)?;
        for p in lo..=hi {
            unknown[usize::from(p)] = true;
        }
    }
    let mut origin_chart = vec![NO_ZONE; 1000];
    let mut charts = Vec::with_capacity(raw.chart.len() * 1000);
    for (ci, c) in raw.chart.iter().enumerate() {
        let key = |k: &str| format!("chart[{ci}].{k}");
        if c.name.trim().is_empty() || c.origins.is_empty() || c.destinations.is_empty() {
            return Err(table_err(
                DOMESTIC_ZONES,
                key("name"),
                "a chart needs a name, origins and destinations",
            ));
        }
        let idx = u16::try_from(ci)
            .ok()
            .filter(|&i| i < NO_ZONE)
            .ok_or_else(|| table_err(DOMESTIC_ZONES, key("name"), "too many charts"))?;
        for (oi, r) in c.origins.iter().enumerate() {
            let k = key(&format!("origins[{oi}]"));
            let (lo, hi) = zip3_range(DOMESTIC_ZONES, &k, r)?;
            for p in lo..=hi {
                let slot = &mut origin_chart[usize::from(p)];
                if *slot != NO_ZONE {
                    return Err(table_err(
                        DOMESTIC_ZONES,
                        k,
                        format!("origin prefix {p:03} is already in chart[{}]", *slot),
                    ));
                }
                *slot = idx;
            }
        }
        let mut row = vec![NO_ZONE; 1000];
        for (di, d) in c.destinations.iter().enumerate() {
            let k = key(&format!("destinations[{di}]"));
            let (lo, hi) = zip3_range(DOMESTIC_ZONES, &k, &d.zip3)?;
            if d.zone.trim().is_empty() {
                return Err(table_err(DOMESTIC_ZONES, k, "zone must not be empty"));
            }
            let id = zone_ids.id(&d.zone);
            for p in lo..=hi {
                if row[usize::from(p)] != NO_ZONE {
                    return Err(table_err(
                        DOMESTIC_ZONES,
                        k,
                        format!("destination prefix {p:03} is listed twice"),
                    ));
                }
                row[usize::from(p)] = id;
            }
        }
        charts.extend(row);
    }
    Ok(DomesticZones {
        by_distance: out,
        origin_chart,
        charts,
        unknown,
    })
}

fn in_to_mm_x10(inches: u32) -> u64 {
    u64::from(inches) * MM_X10_PER_IN
}

fn lb_to_g_x1e5(lb: u32) -> u64 {
    u64::from(lb) * G_PER_LB_X1E5
}

fn country_index(countries: &[Country], code: &str) -> Option<usize> {
    let key = zones::country_key(code)?;
    countries.binary_search_by_key(&key, |c| c.key).ok()
}

fn compile_carrier(
    file: &str,
    raw: RawCarrier,
    carrier_idx: usize,
    zone_map: Option<&BTreeMap<String, String>>,
    countries: &[Country],
    zone_ids: &mut Zones,
    default_divisor: u32,
) -> Result<(Carrier, Vec<Service>), FreightError> {
    let id = raw.id.as_str();
    if raw.dim_divisor_in3_per_lb == Some(0) {
        return Err(table_err(
            file,
            "dim_divisor_in3_per_lb",
            "must be positive",
        ));
    }
    let divisor = raw.dim_divisor_in3_per_lb.unwrap_or(default_divisor);
    if raw.max_weight_lb == 0 || raw.max_length_in == 0 || raw.max_length_plus_girth_in == 0 {
        return Err(table_err(
            file,
            "max_weight_lb",
            "hard limits must be positive",
        ));
    }
    let fuel_factor = pct_factor(file, "fuel_surcharge_pct", &raw.fuel_surcharge_pct, true)?;
    let residential = money(file, "residential_surcharge", &raw.residential_surcharge)?;
    let mut intl_origins = Vec::new();
    for (i, o) in raw.international_origins.iter().enumerate() {
        let idx = country_index(countries, o).ok_or_else(|| {
            table_err(
                file,
                format!("international_origins[{i}]"),
                format!("{o:?} is not in {COUNTRIES}"),
            )
        })?;
        intl_origins.push(countries[idx].key);
    }
    let mut intl_zone = vec![None; countries.len()];
    for (code, zone) in zone_map.into_iter().flatten() {
        let idx = country_index(countries, code).ok_or_else(|| {
            table_err(
                INTL_ZONES,
                format!("{id}.{code}"),
                format!("{code:?} is not in {COUNTRIES}"),
            )
        })?;
        intl_zone[idx] = Some(zone_ids.id(zone));
    }

    let mut services = Vec::new();
    for (si, s) in raw.service.iter().enumerate() {
        services.push(compile_service(
            file,
            si,
            s,
            carrier_idx,
            CarrierDefaults {
                fuel: fuel_factor,
                residential,
                divisor,
            },
            zone_ids,
        )?);
        let prev = &services[..si];
        let this = &services[si];
        if prev
            .iter()
            .any(|p: &Service| p.code == this.code || p.name == this.name)
        {
            return Err(table_err(
                file,
                format!("service[{si}].code"),
                "service name or code used twice in this carrier",
            ));
        }
    }
    let delivery_area = match &raw.delivery_area {
        Some(d) => Some(compile_delivery_area(file, d)?),
        None => None,
    };
    let carrier = Carrier {
        id: raw.id.clone(),
        name: raw.name.as_str().into(),
        ah_second_mm_x10: raw
            .additional_handling_second_side_in
            .map_or(u64::MAX, in_to_mm_x10),
        ah_lg_mm_x10: raw
            .additional_handling_length_plus_girth_in
            .map_or(u64::MAX, in_to_mm_x10),
        oversize_min_lb: raw.oversize_min_billable_lb.unwrap_or(0),
        delivery_area,
        limits: [
            raw.max_weight_lb,
            raw.max_length_in,
            raw.max_length_plus_girth_in,
        ],
        additional_handling: money(file, "additional_handling", &raw.additional_handling)?,
        ah_longest_mm_x10: in_to_mm_x10(raw.additional_handling_longest_side_in),
        ah_weight_g_x1e5: lb_to_g_x1e5(raw.additional_handling_weight_lb),
        oversize: money(file, "oversize", &raw.oversize)?,
        oversize_lg_mm_x10: in_to_mm_x10(raw.oversize_length_plus_girth_in),
        max_weight_g_x1e5: lb_to_g_x1e5(raw.max_weight_lb),
        max_length_mm_x10: in_to_mm_x10(raw.max_length_in),
        max_lg_mm_x10: in_to_mm_x10(raw.max_length_plus_girth_in),
        intl_origins,
        intl_zone,
    };
    for (si, s) in services.iter_mut().enumerate() {
        s.fuelled = Fuelled::of(s, &carrier).ok_or_else(|| {
            table_err(
                file,
                format!("service[{si}].fuel_surcharge_pct"),
                "prices with the fuel surcharge carry more decimals than can be computed exactly",
            )
        })?;
    }
    Ok((carrier, services))
}

fn compile_delivery_area(file: &str, d: &RawDeliveryArea) -> Result<DeliveryArea, FreightError> {
    let k = |s: &str| format!("delivery_area.{s}");
    let amounts = [
        money(file, &k("commercial"), &d.commercial)?,
        money(file, &k("residential"), &d.residential)?,
        money(file, &k("extended_commercial"), &d.extended_commercial)?,
        money(file, &k("extended_residential"), &d.extended_residential)?,
    ];
    let mut zip3 = vec![0u8; 1000];
    let mut zip5: Vec<(u32, u8)> = Vec::new();
    for (tier, list, name) in [
        (1u8, &d.zip_prefixes, "zip_prefixes"),
        (2u8, &d.extended_zip_prefixes, "extended_zip_prefixes"),
    ] {
        for (i, p) in list.iter().enumerate() {
            let key = k(&format!("{name}[{i}]"));
            let p = p.trim();
            if !p.bytes().all(|b| b.is_ascii_digit()) || !(p.len() == 3 || p.len() == 5) {
                return Err(table_err(
                    file,
                    key,
                    format!("{p:?} must be a 3- or 5-digit ZIP prefix"),
                ));
            }
            let v: u32 = p.parse().map_err(|_| table_err(file, &key, "bad prefix"))?;
            let dup = if p.len() == 3 {
                let slot = &mut zip3[v as usize];
                let dup = *slot != 0;
                *slot = tier;
                dup
            } else if zip5.iter().any(|e| e.0 == v) {
                true
            } else {
                zip5.push((v, tier));
                false
            };
            if dup {
                return Err(table_err(file, key, format!("prefix {p} is listed twice")));
            }
        }
    }
    zip5.sort_unstable();
    Ok(DeliveryArea {
        amounts,
        zip3,
        zip5,
    })
}

/// Carrier-wide values a service inherits unless it overrides them.
#[derive(Clone, Copy)]
struct CarrierDefaults {
    fuel: Decimal,
    residential: Decimal,
    divisor: u32,
}

fn compile_service(
    file: &str,
    si: usize,
    s: &RawService,
    carrier: usize,
    defaults: CarrierDefaults,
    zone_ids: &mut Zones,
) -> Result<Service, FreightError> {
    let CarrierDefaults {
        fuel: carrier_fuel,
        residential: carrier_residential,
        divisor: carrier_divisor,
    } = defaults;
    let key = |k: &str| format!("service[{si}].{k}");
    if s.code.trim().is_empty() || s.name.trim().is_empty() {
        return Err(table_err(
            file,
            key("code"),
            "name and code must not be empty",
        ));
    }
    let metric = s.weight_unit == WeightUnit::Kg;
    let divisor = match (metric, s.dim_divisor_in3_per_lb, s.dim_divisor_cm3_per_kg) {
        (false, d, None) => d.unwrap_or(carrier_divisor),
        (true, None, d) => d.unwrap_or(5000),
        _ => return Err(table_err(
            file,
            key("weight_unit"),
            "use dim_divisor_in3_per_lb with lb tables and dim_divisor_cm3_per_kg with kg tables",
        )),
    };
    if divisor == 0 {
        return Err(table_err(file, key("dim_divisor"), "must be positive"));
    }
    // The weight of each break in the table's unit; the other unit's key is an error.
    let mut break_w = Vec::with_capacity(s.breaks.len());
    for (bi, b) in s.breaks.iter().enumerate() {
        let w = match (metric, b.lb, b.kg) {
            (false, Some(w), None) | (true, None, Some(w)) => w,
            _ => {
                return Err(table_err(
                    file,
                    key(&format!("breaks[{bi}]")),
                    if metric {
                        "a kg table's breaks need `kg` (and no `lb`)"
                    } else {
                        "an lb table's breaks need `lb` (and no `kg`)"
                    },
                ))
            }
        };
        break_w.push(w);
    }
    let fuel_factor = match &s.fuel_surcharge_pct {
        Some(p) => pct_factor(file, &key("fuel_surcharge_pct"), p, true)?,
        None => carrier_fuel,
    };
    let residential_surcharge = match &s.residential_surcharge {
        Some(p) => money(file, &key("residential_surcharge"), p)?,
        None => carrier_residential,
    };
    let discount = match &s.discount_pct {
        Some(p) => pct_factor(file, &key("discount_pct"), p, false)?,
        None => Decimal::ONE,
    };
    let minimum_charge = money(file, &key("minimum_charge"), &s.minimum_charge)?;
    if s.zones.is_empty() || s.breaks.is_empty() {
        return Err(table_err(
            file,
            key("zones"),
            "a service needs zones and weight breaks",
        ));
    }
    if break_w[0] != 1 || break_w.windows(2).any(|w| w[1] <= w[0]) {
        return Err(table_err(
            file,
            key("breaks"),
            "weight breaks must start at 1 and increase",
        ));
    }
    let max_lb = break_w.last().copied().unwrap_or(1);
    if max_lb > 1000 {
        return Err(table_err(
            file,
            key("breaks"),
            "weight breaks above 1000 lb are not supported",
        ));
    }
    // Parse the grid once: grid[break][zone].
    let mut grid = Vec::with_capacity(s.breaks.len());
    for (bi, b) in s.breaks.iter().enumerate() {
        if b.prices.len() != s.zones.len() {
            return Err(table_err(
                file,
                key(&format!("breaks[{bi}].prices")),
                format!("has {} prices for {} zones", b.prices.len(), s.zones.len()),
            ));
        }
        let row = b
            .prices
            .iter()
            .enumerate()
            .map(|(zi, p)| money(file, &key(&format!("breaks[{bi}].prices[{zi}]")), p))
            .collect::<Result<Vec<_>, _>>()?;
        grid.push(row);
    }
    let mut prices: Vec<Option<Vec<Decimal>>> = Vec::new();
    let mut transit_days: Vec<Option<u32>> = Vec::new();
    let overflow = || table_err(file, key("breaks"), "price arithmetic overflows");
    for (zi, zone) in s.zones.iter().enumerate() {
        let zid = usize::from(zone_ids.id(zone));
        if prices.len() <= zid {
            prices.resize(zid + 1, None);
            transit_days.resize(zid + 1, None);
        }
        if prices[zid].is_some() {
            return Err(table_err(
                file,
                key(&format!("zones[{zi}]")),
                format!("zone {zone:?} listed twice"),
            ));
        }
        let mut dense = Vec::with_capacity(max_lb as usize);
        for bi in 1..s.breaks.len() {
            let (lo, hi) = (break_w[bi - 1], break_w[bi]);
            let (p0, p1) = (grid[bi - 1][zi], grid[bi][zi]);
            // Linear interpolation between published breaks, rounded to cents like a printed table.
            for lb in lo..hi {
                let frac = Decimal::from(lb - lo) / Decimal::from(hi - lo);
                let p = p1
                    .checked_sub(p0)
                    .and_then(|d| d.checked_mul(frac))
                    .and_then(|d| d.checked_add(p0));
                let p = p
                    .and_then(|p| p.checked_mul(discount))
                    .ok_or_else(overflow)?;
                dense.push(cents(p));
            }
        }
        let last = grid[grid.len() - 1][zi]
            .checked_mul(discount)
            .ok_or_else(overflow)?;
        dense.push(cents(last));
        prices[zid] = Some(dense);
        transit_days[zid] = Some(match &s.transit_days {
            RawTransit::Fixed(d) => *d,
            RawTransit::ByZone(m) => *m.get(zone.trim()).ok_or_else(|| {
                table_err(
                    file,
                    key("transit_days"),
                    format!("no transit days for zone {zone:?}"),
                )
            })?,
        });
    }
    if let RawTransit::ByZone(m) = &s.transit_days {
        if let Some(z) = m.keys().find(|z| {
            zone_ids
                .get(z)
                .is_none_or(|id| prices.get(usize::from(id)).is_none_or(Option::is_none))
        }) {
            return Err(table_err(
                file,
                key("transit_days"),
                format!("zone {z:?} has no prices"),
            ));
        }
    }
    Ok(Service {
        carrier,
        name: s.name.as_str().into(),
        code: s.code.trim().to_string(),
        dim: DimRule { metric, divisor },
        scope: s.scope,
        delivery: s.delivery,
        minimum_charge,
        fuel_factor,
        residential_surcharge,
        prices,
        transit_days,
        // Set once the carrier's own charges are known.
        fuelled: Fuelled::default(),
    })
}
