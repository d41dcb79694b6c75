//! Freight quoting: table-based FedEx/UPS rates plus a simple box packer.
//!
//! [`Freight`] is loaded once from a directory of TOML tables (see
//! `docs/freight.md`) and then answers [`Freight::rate`] on the quote hot path
//! with precomputed lookups only. The same request always gives the same answer.

mod error;
mod packing;
mod rating;
mod tables;
mod zones;

#[cfg(test)]
mod tests;

use std::path::Path;

use rust_decimal::{Decimal, RoundingStrategy};

pub use self::error::FreightError;
use self::rating::{ParcelFacts, Refusal};
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
    /// Greater of actual and dimensional weight, as whole pounds expressed in grams (rounded down).
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
    /// Carrier display name, e.g. "FedEx".
    pub carrier: String,
    /// Service display name, e.g. "FedEx Ground".
    pub service: String,
    /// Carrier charges with surcharges, plus boxes, plus handling fee; rounded to cents.
    pub amount: Decimal,
    /// Business days in transit.
    pub transit_days: u32,
}

/// Parcels and every service that can carry them, cheapest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatedShipment {
    /// Packing result (independent of the service).
    pub parcels: Vec<Parcel>,
    /// Sorted by (amount, transit_days, carrier, service).
    pub rates: Vec<ServiceRate>,
}

/// Loaded rate tables, zones, box catalog and settings.
pub struct Freight {
    model: Model,
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
        Ok(Freight {
            model: tables::compile(files)?,
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

    /// Checks that an address is one we can rate: known country, postal code well-formed for it.
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
        // Countries without postal codes have no patterns: anything (or nothing) goes.
        if patterns.is_empty() || patterns.iter().any(|p| zones::postal_matches(p, code)) {
            return Ok(idx);
        }
        Err(FreightError::BadPostalCode {
            country_code: String::from_utf8_lossy(&key).into_owned(),
            postal_code: postal_code.to_string(),
            reason: if code.is_empty() {
                "a postal code is required".to_string()
            } else {
                format!("expected one of {patterns:?} (9 digit, A letter, N letter or digit)")
            },
        })
    }

    /// Packs the lines into parcels without pricing them.
    pub fn pack(&self, lines: &[ItemLine]) -> Result<Vec<Parcel>, FreightError> {
        let open = packing::pack(lines, &self.model.boxes, &self.model.settings)?;
        Ok(open.iter().map(|p| self.to_parcel(p)).collect())
    }

    fn to_parcel(&self, p: &packing::OpenParcel) -> Parcel {
        let divisor = self.model.settings.dim_divisor_in3_per_lb;
        packing::to_parcel(p, &self.model.boxes, |weight_g, dims| {
            rating::lb_to_g(rating::billable_lb(weight_g, dims, divisor))
        })
    }

    /// Packs the lines into parcels and prices every carrier service that can carry them.
    pub fn rate(&self, req: &RateRequest<'_>) -> Result<RatedShipment, FreightError> {
        let m = &self.model;
        let origin = self.country_index(req.origin.country_code, req.origin.postal_code)?;
        let dest = self.country_index(req.destination.country_code, req.destination.postal_code)?;
        if req.handling_fee.is_sign_negative() && !req.handling_fee.is_zero() {
            return Err(FreightError::InvalidRequest {
                reason: "handling_fee must not be negative".into(),
            });
        }
        let open = packing::pack(req.lines, &m.boxes, &m.settings)?;
        let mut box_cost = Decimal::ZERO;
        let mut parcels = Vec::with_capacity(open.len());
        let mut facts = Vec::with_capacity(open.len());
        for p in &open {
            if let Some(b) = p.box_idx.and_then(|b| m.boxes.get(b)) {
                box_cost += b.cost;
            }
            let parcel = self.to_parcel(p);
            facts.push(ParcelFacts::new(
                parcel.weight_g,
                parcel.billable_weight_g,
                [parcel.length_mm, parcel.width_mm, parcel.height_mm],
            ));
            parcels.push(parcel);
        }
        let fixed =
            box_cost
                .checked_add(req.handling_fee)
                .ok_or_else(|| FreightError::InvalidRequest {
                    reason: "handling_fee is too large".into(),
                })?;

        let (origin_key, dest_key) = (m.countries[origin].key, m.countries[dest].key);
        let domestic = origin_key == dest_key && origin_key == m.settings.domestic_country;
        let domestic_zone = if domestic {
            // Both codes passed the US patterns, which start with 3 digits.
            match (
                zones::zip_prefix(req.origin.postal_code),
                zones::zip_prefix(req.destination.postal_code),
            ) {
                (Some(o), Some(d)) => m.domestic_zone.get(usize::from(o.abs_diff(d))).copied(),
                _ => None,
            }
        } else {
            None
        };
        let residential = req.destination.residential;

        let mut rates = Vec::new();
        let mut pair_served = false;
        let mut worst: Option<Refusal> = None;
        for s in &m.services {
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
            let (Some(Some(prices)), Some(Some(transit_days))) =
                (s.prices.get(zone), s.transit_days.get(zone))
            else {
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
            pair_served = true;
            let mut total = fixed;
            let mut refused = None;
            for f in &facts {
                match rating::parcel_charge(carrier, s, prices, f, residential) {
                    Ok(c) => {
                        total =
                            total
                                .checked_add(c)
                                .ok_or_else(|| FreightError::InvalidRequest {
                                    reason: "handling_fee is too large".into(),
                                })?;
                    }
                    Err(r) => {
                        refused = Some(r);
                        break;
                    }
                }
            }
            if let Some(r) = refused {
                // Carrier limits are the more useful reason to report.
                if worst != Some(Refusal::CarrierLimit) {
                    worst = Some(r);
                }
                continue;
            }
            rates.push(ServiceRate {
                carrier: carrier.name.clone(),
                service: s.name.clone(),
                amount: total.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
                transit_days: *transit_days,
            });
        }
        if rates.is_empty() {
            let o = String::from_utf8_lossy(&origin_key).into_owned();
            let d = String::from_utf8_lossy(&dest_key).into_owned();
            let reason = match worst {
                _ if !pair_served => format!(
                    "no service from {o} to {d}{}",
                    if residential { " (residential)" } else { "" }
                ),
                Some(Refusal::CarrierLimit) => {
                    "a parcel is over every carrier's weight or size limit (actual weight, length, length+girth)".into()
                }
                _ => "a parcel is heavier than every service's rate table".into(),
            };
            return Err(FreightError::NoService { reason });
        }
        rates.sort_by(|a, b| {
            (a.amount, a.transit_days, &a.carrier, &a.service).cmp(&(
                b.amount,
                b.transit_days,
                &b.carrier,
                &b.service,
            ))
        });
        Ok(RatedShipment { parcels, rates })
    }
}
