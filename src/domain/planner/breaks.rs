//! Freight as a fixed charge per shipment plus weight breaks: a model that a
//! mixed-integer program states exactly, so the planner can be compared with
//! an exact solver on the same prices (see `docs/planner.md`).
//!
//! A shipment from a supplier weighing `W` hectograms (goods, rounded up)
//! costs the supplier's fixed charge plus, over its breaks `b` with
//! `W <= up_to_hg`, the least of `base + per_hg * max(W, from_hg)`: billing
//! at the start of a heavier break when that is cheaper, as carriers do with
//! "deficit weight". That makes freight never fall as items are added. An
//! express service costs `express_factor_pct` percent of ground and arrives
//! in one day.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::{Floor, FloorLine, LinearFloor, Rater, ShipmentProfile};
use crate::domain::catalog::ProductId;
use crate::domain::freight::{RatedShipment, ServiceRate};
use crate::domain::suppliers::SupplierId;

/// One weight break; money in ten-thousandths of the currency unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Break {
    /// Lightest billed weight of the break, hectograms.
    pub from_hg: u64,
    /// Heaviest weight the break takes, hectograms (`u64::MAX`: no limit).
    pub up_to_hg: u64,
    /// Charge of the break regardless of weight.
    pub base: i64,
    /// Charge per hectogram billed.
    pub per_hg: i64,
}

/// One supplier's freight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakTariff {
    /// Charged once per shipment (handling, pick-up).
    pub fixed: i64,
    /// Breaks; the last must take any weight.
    pub breaks: Vec<Break>,
    /// Ground transit days.
    pub ground_days: u32,
    /// Days before the carrier collects.
    pub processing_days: u32,
}

impl BreakTariff {
    /// Ground charge of a shipment of `hg` hectograms, in ten-thousandths;
    /// `None` when no break takes that weight.
    pub fn charge(&self, hg: u64) -> Option<i64> {
        self.breaks
            .iter()
            .filter(|b| hg <= b.up_to_hg)
            .map(|b| b.base + b.per_hg * hg.max(b.from_hg) as i64)
            .min()
            .map(|c| self.fixed + c)
    }
}

/// A [`Rater`] over break tariffs.
#[derive(Debug, Clone, Default)]
pub struct BreakRater {
    /// Tariff per supplier id.
    pub tariffs: HashMap<SupplierId, BreakTariff>,
    /// Grams of one unit per product.
    pub unit_weight_g: HashMap<ProductId, u32>,
    /// Express costs this percentage of ground (above 100).
    pub express_factor_pct: i64,
}

/// Hectograms of `grams`, rounded up.
pub fn hectograms(grams: u64) -> u64 {
    grams.div_ceil(100)
}

fn money(units: i64) -> Decimal {
    Decimal::new(units, 4)
}

impl BreakRater {
    fn weight_g(&self, lines: &[(ProductId, u32)]) -> Result<u64, String> {
        lines.iter().try_fold(0u64, |w, &(p, q)| {
            let unit = self
                .unit_weight_g
                .get(&p)
                .ok_or_else(|| format!("no weight for product {p}"))?;
            Ok(w + u64::from(*unit) * u64::from(q))
        })
    }

    fn express(&self, ground: i64) -> i64 {
        ground * self.express_factor_pct / 100
    }
}

impl Rater for BreakRater {
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String> {
        let tariff = self
            .tariffs
            .get(&supplier)
            .ok_or_else(|| format!("no tariff for supplier {supplier}"))?;
        let hg = hectograms(self.weight_g(lines)?);
        let ground = tariff
            .charge(hg)
            .ok_or_else(|| format!("{hg} hg is over every break"))?;
        let service = |name: &str, amount: i64, transit_days: u32| ServiceRate {
            carrier: "Breaks".into(),
            service: name.into(),
            amount: money(amount),
            transit_days,
        };
        Ok(RatedShipment {
            parcels: Vec::new(),
            rates: vec![
                service("Ground", ground, tariff.ground_days),
                service("Express", self.express(ground), 1),
            ],
            boxes_cost: Decimal::ZERO,
            handling_fee: Decimal::ZERO,
        })
    }

    fn processing_days(&self, supplier: SupplierId) -> u32 {
        self.tariffs.get(&supplier).map_or(0, |t| t.processing_days)
    }

    fn unit_profile(&self, supplier: SupplierId, product: ProductId) -> Option<ShipmentProfile> {
        self.tariffs.get(&supplier)?;
        Some(ShipmentProfile {
            boxed_weight_g: u64::from(*self.unit_weight_g.get(&product)?),
            ..ShipmentProfile::default()
        })
    }

    fn floor(&self, supplier: SupplierId, profile: &ShipmentProfile) -> Option<Floor> {
        let tariff = self.tariffs.get(&supplier)?;
        let weight_g = profile.boxed_weight_g;
        // Freight never falls with weight here, so the floor is the ground
        // charge itself (express costs more). Past the last break nothing
        // rates, and any floor is a floor.
        let ground = tariff
            .charge(hectograms(weight_g))
            .unwrap_or(i64::MAX / 1_000_000);
        Some(Floor {
            amount: ground,
            transit_days: tariff.ground_days.min(1),
        })
    }

    fn linear_floor(&self, supplier: SupplierId, _: &ShipmentProfile) -> Option<LinearFloor> {
        // Every break bills at least its base plus its rate times the weight.
        let tariff = self.tariffs.get(&supplier)?;
        let opening = tariff.fixed + tariff.breaks.iter().map(|b| b.base).min()?;
        let per_hg = tariff.breaks.iter().map(|b| b.per_hg).min()?;
        Some(LinearFloor {
            by_weight: FloorLine {
                opening,
                per: per_hg * 10,
            },
            by_space: FloorLine { opening, per: 0 },
            opening_own: opening,
        })
    }
}
