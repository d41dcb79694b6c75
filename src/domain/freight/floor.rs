//! The least a shipment can cost on a lane, from its goods' weight alone.
//!
//! The planner searches over which supplier ships which lines and needs, for
//! a shipment that is still being filled, a price that no final content can
//! undercut. Packing is a search of its own and the chosen service a minimum
//! over services, so the real amount need not grow with every added item;
//! this floor does, by construction, and never exceeds the amount of any
//! service for any shipment whose goods weigh at least as much.
//!
//! Why it holds, per service: the parcels' billable units add up to at least
//! the goods' weight in units (tare, dimensional weight and per-parcel
//! rounding only add), and a price row `p` that never falls and whose price
//! per unit never rises is subadditive, so the parcels together cost at least
//! `p(total units)` (capped at the row's end). Rows without that shape fall
//! back to the cheapest entry, or the cheapest price per unit times the
//! units, whichever is larger. Every shipment has at least one parcel, so the
//! per-parcel residential and delivery-area surcharges count once; additional
//! handling, oversize and boxes only add and are left out. Fuel multiplies
//! everything, and rounding to cents is monotone.

use rust_decimal::Decimal;

use super::rating::{ceil_kg, ceil_lb};
use super::round_cents;
use super::tables::Service;

/// The per-zone floor rows of one service, built once when tables load.
pub(super) type ServiceFloors = Vec<Option<RowFloor>>;

/// A lower envelope of one price row (one service, one zone).
#[derive(Debug, Clone)]
pub(super) struct RowFloor {
    /// Floor of the transportation charge of `x` units at `units[x - 1]`.
    units: Vec<Decimal>,
    /// The least price per unit anywhere in the row: beyond the row's end the
    /// floor grows with this slope.
    slope: Decimal,
}

impl RowFloor {
    fn new(row: &[Decimal], minimum_charge: Decimal) -> Option<Self> {
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
        for i in 0..n {
            let x = Decimal::from(i as u64 + 1);
            slope = slope.min(price(i) / x);
            cheapest = cheapest.min(price(i));
            if i + 1 < n {
                let (p, q) = (price(i), price(i + 1));
                if q < p || q * x > p * (x + Decimal::ONE) {
                    subadditive = false;
                }
            }
        }
        let units = (0..n)
            .map(|i| {
                let linear = slope * Decimal::from(i as u64 + 1);
                if subadditive {
                    price(i)
                } else {
                    cheapest.max(linear)
                }
            })
            .collect();
        Some(Self { units, slope })
    }

    /// Floor of the carriage of goods weighing `units` billing units in all.
    fn at(&self, units: u32) -> Decimal {
        let units = units.max(1);
        let last = self.units.len();
        match self.units.get(units as usize - 1) {
            Some(p) => *p,
            None => self.units[last - 1].max(self.slope * Decimal::from(units)),
        }
    }
}

/// Builds the floor rows of every zone of a service.
pub(super) fn service_floors(service: &Service) -> ServiceFloors {
    service
        .prices
        .iter()
        .map(|row| {
            row.as_deref()
                .and_then(|r| RowFloor::new(r, service.minimum_charge))
        })
        .collect()
}

/// One lane service as the floor sees it.
#[derive(Debug, Clone)]
pub(super) struct FloorService<'a> {
    pub(super) row: &'a RowFloor,
    pub(super) metric: bool,
    /// Residential and delivery-area surcharges of one parcel.
    pub(super) per_parcel: Decimal,
    pub(super) fuel_factor: Decimal,
    pub(super) transit_days: u32,
}

/// The least amount and the fewest transit days of any shipment on one lane,
/// by the weight of its goods. Built by [`super::Freight::floor`].
#[derive(Debug, Clone)]
pub struct FreightFloor<'a> {
    pub(super) services: Vec<FloorService<'a>>,
    pub(super) handling_fee: Decimal,
}

impl FreightFloor<'_> {
    /// A lower bound on the amount (carrier charge, boxes and handling fee)
    /// of every service for any shipment on this lane whose goods weigh at
    /// least `weight_g`; it never falls as `weight_g` grows.
    pub fn amount(&self, weight_g: u64) -> Decimal {
        let w = u32::try_from(weight_g).unwrap_or(u32::MAX);
        let (lb, kg) = (ceil_lb(w), ceil_kg(w));
        self.services
            .iter()
            .map(|s| {
                let units = if s.metric { kg } else { lb };
                round_cents((s.row.at(units) + s.per_parcel) * s.fuel_factor + self.handling_fee)
            })
            .min()
            .unwrap_or(self.handling_fee)
    }

    /// The fewest transit days of any service on this lane.
    pub fn transit_days(&self) -> u32 {
        self.services
            .iter()
            .map(|s| s.transit_days)
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(prices: &[i64]) -> Vec<Decimal> {
        prices.iter().map(|&p| Decimal::from(p)).collect()
    }

    #[test]
    fn subadditive_rows_floor_at_their_own_price() {
        let f = RowFloor::new(&row(&[10, 12, 14, 16]), Decimal::ZERO).unwrap();
        assert_eq!(f.at(0), Decimal::from(10));
        assert_eq!(f.at(3), Decimal::from(14));
        // Beyond the row: the last price, or the cheapest rate per unit times the units.
        assert_eq!(f.at(5), Decimal::from(16));
        assert_eq!(f.at(40), Decimal::from(160));
    }

    #[test]
    fn rows_that_are_not_subadditive_fall_back_to_a_safe_envelope() {
        // 1 unit costs 1, 2 units 10: two 1-unit parcels (2) undercut p(2).
        let f = RowFloor::new(&row(&[1, 10, 11]), Decimal::ZERO).unwrap();
        assert_eq!(f.at(2), Decimal::from(2));
        assert_eq!(f.at(3), Decimal::from(3));
        // The minimum charge lifts every entry.
        let f = RowFloor::new(&row(&[1, 10, 11]), Decimal::from(5)).unwrap();
        assert_eq!(f.at(1), Decimal::from(5));
    }
}
