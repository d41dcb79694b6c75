//! Data-file formats (TOML) and their compilation into the lookup-ready model
//! that rating uses. Everything costly (interpolating weight breaks, unit
//! conversion of thresholds, zone interning) happens here, once, at load.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

use super::error::FreightError;
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
    band: Vec<RawBand>,
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
    service: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    scope: Scope,
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
    lb: u32,
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

/// Carrier-wide surcharges and limits, thresholds pre-converted to integer units.
pub struct Carrier {
    /// Display name.
    pub name: String,
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
    pub name: String,
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
    /// Per zone id: price for 1 lb, 2 lb, ... up to the service's last weight break.
    pub prices: Vec<Option<Vec<Decimal>>>,
    /// Per zone id: business days in transit.
    pub transit_days: Vec<Option<u32>>,
}

/// Everything `rate` needs, ready for lookups.
pub struct Model {
    /// Global settings.
    pub settings: Settings,
    /// Sorted by key for binary search.
    pub countries: Vec<Country>,
    /// Sorted by (inner volume, cost, id): the packer takes the first that fits.
    pub boxes: Vec<BoxSpec>,
    /// Zone id per |origin prefix - destination prefix|, 0..=999.
    pub domestic_zone: Vec<u16>,
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
    let domestic_zone = compile_domestic(files.get(DOMESTIC_ZONES)?, &mut zone_ids)?;
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
        let (carrier, svcs) = compile_carrier(path, raw, idx, zone_map, &countries, &mut zone_ids)?;
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
    Ok(Model {
        settings,
        countries,
        boxes,
        domestic_zone,
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
    Ok(Settings {
        dim_divisor_in3_per_lb: raw.dim_divisor_in3_per_lb,
        fill_factor_pct: raw.fill_factor_pct,
        max_parcel_weight_g: raw.max_parcel_weight_g,
        max_units_per_request: raw.max_units_per_request,
        domestic_country,
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

fn compile_domestic(text: &str, zone_ids: &mut Zones) -> Result<Vec<u16>, FreightError> {
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
    Ok(out)
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
) -> Result<(Carrier, Vec<Service>), FreightError> {
    let id = raw.id.as_str();
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
            fuel_factor,
            residential,
            zone_ids,
        )?);
    }
    let carrier = Carrier {
        name: raw.name.clone(),
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
    Ok((carrier, services))
}

fn compile_service(
    file: &str,
    si: usize,
    s: &RawService,
    carrier: usize,
    carrier_fuel: Decimal,
    carrier_residential: Decimal,
    zone_ids: &mut Zones,
) -> Result<Service, FreightError> {
    let key = |k: &str| format!("service[{si}].{k}");
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
    if s.breaks[0].lb != 1 || s.breaks.windows(2).any(|w| w[1].lb <= w[0].lb) {
        return Err(table_err(
            file,
            key("breaks"),
            "weight breaks must start at lb = 1 and increase",
        ));
    }
    let max_lb = s.breaks.last().map_or(1, |b| b.lb);
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
            let (lo, hi) = (&s.breaks[bi - 1], &s.breaks[bi]);
            let (p0, p1) = (grid[bi - 1][zi], grid[bi][zi]);
            // Linear interpolation between published breaks, rounded to cents like a printed table.
            for lb in lo.lb..hi.lb {
                let frac = Decimal::from(lb - lo.lb) / Decimal::from(hi.lb - lo.lb);
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
        name: s.name.clone(),
        scope: s.scope,
        delivery: s.delivery,
        minimum_charge,
        fuel_factor,
        residential_surcharge,
        prices,
        transit_days,
    })
}
