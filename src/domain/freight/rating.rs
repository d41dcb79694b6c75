//! Unit conversions (exact integer arithmetic), carrier limits and the price
//! of one parcel on one service.

use rust_decimal::Decimal;

use super::tables::{Carrier, DimRule, Service, G_PER_LB_X1E5, MM_X10_PER_IN};

/// Cubic millimetres per cubic inch, times 1000 (16 387.064 mm³ exactly).
const MM3_PER_IN3_X1000: u128 = 16_387_064;

/// Money in hundred-millionths of the currency unit. Fuelled table amounts
/// (cents times a fuel factor of a few decimals) and box costs are whole
/// numbers of these, so packing, which adds and compares charges in its inner
/// loop, can do so in integers with exactly the results `Decimal` gives.
pub type E8 = i128;

/// `d` in hundred-millionths, when that is exact.
pub fn to_e8(d: Decimal) -> Option<E8> {
    // Trailing zeros may carry the scale past 8; normalising (slower) drops them.
    let d = if d.scale() <= 8 { d } else { d.normalize() };
    let scale = d.scale();
    // A mantissa below 2^96 times at most 10^8 fits an i128.
    (scale <= 8).then(|| d.mantissa() * 10i128.pow(8 - scale))
}

/// Whole pounds needed to cover `weight_g` (rounded up, as carriers bill).
pub fn ceil_lb(weight_g: u32) -> u32 {
    let lb = (u64::from(weight_g) * 100_000).div_ceil(G_PER_LB_X1E5);
    u32::try_from(lb).unwrap_or(u32::MAX)
}

/// Grams in `lb` pounds, rounded down so that `ceil_lb(lb_to_g(lb)) == lb`.
pub fn lb_to_g(lb: u32) -> u32 {
    u32::try_from(u64::from(lb) * G_PER_LB_X1E5 / 100_000).unwrap_or(u32::MAX)
}

/// Whole kilograms needed to cover `weight_g`.
pub fn ceil_kg(weight_g: u32) -> u32 {
    weight_g.div_ceil(1000)
}

/// Dimensional weight in whole pounds: L×W×H in in³ / divisor, rounded up.
/// Uses exact millimetres rather than first rounding each side to an inch.
pub fn dim_lb(dims_mm: [u32; 3], divisor_in3_per_lb: u32) -> u32 {
    let volume_mm3: u128 = dims_mm.iter().map(|&d| u128::from(d)).product();
    let lb = div_ceil_u128(
        volume_mm3 * 1000,
        MM3_PER_IN3_X1000 * u128::from(divisor_in3_per_lb.max(1)),
    );
    u32::try_from(lb).unwrap_or(u32::MAX)
}

/// Dimensional weight in whole kilograms: L×W×H in cm³ / divisor, rounded up.
pub fn dim_kg(dims_mm: [u32; 3], divisor_cm3_per_kg: u32) -> u32 {
    let volume_mm3: u128 = dims_mm.iter().map(|&d| u128::from(d)).product();
    let kg = div_ceil_u128(volume_mm3, 1000 * u128::from(divisor_cm3_per_kg.max(1)));
    u32::try_from(kg).unwrap_or(u32::MAX)
}

/// `a / b` rounded up, in 64 bits when both fit: parcels' volumes always
/// do, and a 128-bit division is several times slower (packing prices
/// thousands of candidate parcels per shipment).
#[inline]
fn div_ceil_u128(a: u128, b: u128) -> u128 {
    match (u64::try_from(a), u64::try_from(b)) {
        (Ok(a), Ok(b)) => u128::from(a.div_ceil(b)),
        _ => a.div_ceil(b),
    }
}

/// Billable weight in whole pounds: the greater of actual and dimensional weight.
pub fn billable_lb(weight_g: u32, dims_mm: [u32; 3], divisor_in3_per_lb: u32) -> u32 {
    ceil_lb(weight_g).max(dim_lb(dims_mm, divisor_in3_per_lb))
}

impl DimRule {
    /// Billable weight in the rule's whole units (lb, or kg when metric).
    pub fn billable(self, weight_g: u32, dims_mm: [u32; 3]) -> u32 {
        self.weight_units(weight_g).max(self.dim_units(dims_mm))
    }

    /// Actual weight in the rule's whole units, rounded up.
    pub fn weight_units(self, weight_g: u32) -> u32 {
        if self.metric {
            ceil_kg(weight_g)
        } else {
            ceil_lb(weight_g)
        }
    }

    /// Dimensional weight in the rule's whole units, rounded up.
    pub fn dim_units(self, dims_mm: [u32; 3]) -> u32 {
        if self.metric {
            dim_kg(dims_mm, self.divisor)
        } else {
            dim_lb(dims_mm, self.divisor)
        }
    }

    /// Dimensional weight of `volume_mm3` in the rule's whole units.
    pub fn volume_units(self, volume_mm3: u128) -> u32 {
        let divisor = u128::from(self.divisor.max(1));
        let units = if self.metric {
            div_ceil_u128(volume_mm3, 1000 * divisor)
        } else {
            div_ceil_u128(volume_mm3 * 1000, MM3_PER_IN3_X1000 * divisor)
        };
        u32::try_from(units).unwrap_or(u32::MAX)
    }

    /// Grams in `units` of the rule's unit (lb rounded down to whole grams).
    pub fn units_to_g(self, units: u32) -> u32 {
        if self.metric {
            units.saturating_mul(1000)
        } else {
            lb_to_g(units)
        }
    }

    /// `lb` pounds in the rule's unit, rounded up.
    pub fn units_from_lb(self, lb: u32) -> u32 {
        if self.metric {
            u32::try_from((u64::from(lb) * G_PER_LB_X1E5).div_ceil(100_000_000)).unwrap_or(u32::MAX)
        } else {
            lb
        }
    }
}

/// Measures of one parcel in the integer units carrier thresholds are stored in.
#[derive(Clone, Copy, Debug)]
pub struct ParcelFacts {
    pub weight_g: u32,
    pub dims_mm: [u32; 3],
    pub weight_g_x1e5: u64,
    pub longest_mm_x10: u64,
    pub second_mm_x10: u64,
    pub length_plus_girth_mm_x10: u64,
}

impl ParcelFacts {
    /// `dims_mm` sorted longest first.
    pub fn new(weight_g: u32, dims_mm: [u32; 3]) -> Self {
        let [l, w, h] = dims_mm.map(u64::from);
        Self {
            weight_g,
            dims_mm,
            weight_g_x1e5: u64::from(weight_g) * 100_000,
            longest_mm_x10: l * 10,
            second_mm_x10: w * 10,
            length_plus_girth_mm_x10: (l + 2 * w + 2 * h) * 10,
        }
    }
}

/// Why a parcel cannot go on a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the carrier's hard weight or size limits.
    CarrierLimit,
    /// Heavier (billable) than the service's rate table goes.
    ServiceWeight,
}

/// Which hard limit of a carrier a parcel breaks first, as a message, if any.
pub fn limit_broken(carrier: &Carrier, f: &ParcelFacts) -> Option<String> {
    let [max_lb, max_len, max_lg] = carrier.limits;
    if f.weight_g_x1e5 > u64::from(max_lb) * G_PER_LB_X1E5 {
        Some(format!(
            "actual weight {} g is over {}'s {max_lb} lb limit",
            f.weight_g, carrier.name
        ))
    } else if f.longest_mm_x10 > u64::from(max_len) * MM_X10_PER_IN {
        Some(format!(
            "longest side {} mm is over {}'s {max_len} in limit",
            f.dims_mm[0], carrier.name
        ))
    } else if f.length_plus_girth_mm_x10 > u64::from(max_lg) * MM_X10_PER_IN {
        Some(format!(
            "length + girth {} mm is over {}'s {max_lg} in limit",
            f.length_plus_girth_mm_x10 / 10,
            carrier.name
        ))
    } else {
        None
    }
}

/// Everything that prices parcels on one service for one lane.
#[derive(Clone, Copy)]
pub struct Pricer<'a> {
    pub carrier: &'a Carrier,
    pub service: &'a Service,
    /// The service's dense price row for the lane's zone, with the minimum
    /// charge and fuel applied (`Fuelled::prices`).
    pub fuelled: &'a [Decimal],
    /// The surcharges every parcel on this lane pays, residential delivery
    /// (when the address is residential) and the delivery area's, times
    /// fuel: once per lane rather than per parcel.
    pub surcharges_fuelled: Decimal,
    /// The row and surcharges in hundred-millionths, when exact there (see
    /// [`Pricer::charge_e8`]).
    pub e8: Option<PricerE8<'a>>,
}

/// A [`Pricer`]'s lane-specific amounts in hundred-millionths ([`E8`]).
#[derive(Clone, Copy)]
pub struct PricerE8<'a> {
    /// As [`Pricer::fuelled`].
    pub fuelled: &'a [E8],
    /// As [`Pricer::surcharges_fuelled`].
    pub surcharges: E8,
}

impl<'a> Pricer<'a> {
    /// The pricer of `service` at `zone`, for a destination that is
    /// `residential` or not, with the lane's `delivery_area` surcharge.
    /// `None` when the service does not price the zone, or when the fuelled
    /// surcharges overflow (they cannot with amounts the tables accept).
    pub fn new(
        carrier: &'a Carrier,
        service: &'a Service,
        zone: usize,
        residential: bool,
        delivery_area: Decimal,
    ) -> Option<Self> {
        let (surcharges_fuelled, surcharges_e8) =
            Self::lane_surcharges(service, residential, delivery_area)?;
        Self::at(carrier, service, zone, surcharges_fuelled, surcharges_e8)
    }

    /// What every parcel on `service` pays to a destination that is
    /// `residential` or not, with `delivery_area`'s surcharge, times fuel:
    /// in `Decimal`, and in hundred-millionths where exact there. `None`
    /// when the product overflows (it cannot with amounts the tables accept).
    pub fn lane_surcharges(
        service: &Service,
        residential: bool,
        delivery_area: Decimal,
    ) -> Option<(Decimal, Option<E8>)> {
        let mut surcharges_fuelled = if delivery_area.is_zero() {
            Decimal::ZERO
        } else {
            delivery_area.checked_mul(service.fuel_factor)?
        };
        if residential {
            surcharges_fuelled = surcharges_fuelled.checked_add(service.fuelled.residential)?;
        }
        Some((surcharges_fuelled, to_e8(surcharges_fuelled)))
    }

    /// The pricer of `service` at `zone` with surcharges already found by
    /// [`Pricer::lane_surcharges`]; `None` when the service does not price
    /// the zone.
    pub fn at(
        carrier: &'a Carrier,
        service: &'a Service,
        zone: usize,
        surcharges_fuelled: Decimal,
        surcharges_e8: Option<E8>,
    ) -> Option<Self> {
        service.fuelled.prices.get(zone)?.as_deref()?;
        Some(Self::known(
            carrier,
            service,
            zone,
            surcharges_fuelled,
            surcharges_e8,
        ))
    }

    /// [`Pricer::at`] for a zone the service is known to price (an earlier
    /// `at` said so); were it not, the pricer would refuse every parcel.
    pub fn known(
        carrier: &'a Carrier,
        service: &'a Service,
        zone: usize,
        surcharges_fuelled: Decimal,
        surcharges_e8: Option<E8>,
    ) -> Self {
        let fuelled = service
            .fuelled
            .prices
            .get(zone)
            .and_then(Option::as_deref)
            .unwrap_or_default();
        let e8 = service.fuelled.e8.as_ref().and_then(|e| {
            Some(PricerE8 {
                fuelled: e.prices.get(zone)?.as_deref()?,
                surcharges: surcharges_e8?,
            })
        });
        Self {
            carrier,
            service,
            fuelled,
            surcharges_fuelled,
            e8,
        }
    }

    /// The charge for one parcel before rounding, or why the service refuses it.
    pub fn charge(&self, f: &ParcelFacts) -> Result<Decimal, Refusal> {
        let s = &self.service.fuelled;
        let extra = (s.oversize, s.additional_handling);
        let shape = self.shape(f);
        self.charge_with(
            f.weight_g,
            &shape,
            self.fuelled,
            self.surcharges_fuelled,
            extra,
        )
    }

    /// [`Pricer::charge`] in hundred-millionths, with the same result;
    /// `None` when the lane's amounts are not whole there.
    #[inline]
    pub fn charge_e8(&self, f: &ParcelFacts) -> Option<Result<E8, Refusal>> {
        self.shaped_charge_e8(f.weight_g, &self.shape(f))
    }

    /// [`Pricer::charge_e8`] of a parcel of `weight_g` whose dimensions
    /// have `shape` on this service: packing prices each box at many
    /// weights, so it finds each box's shape once.
    #[inline]
    pub fn shaped_charge_e8(
        &self,
        weight_g: u32,
        shape: &ParcelShape,
    ) -> Option<Result<E8, Refusal>> {
        // The service's amounts are whole hundred-millionths whenever the lane's are.
        let (e, s) = (self.e8?, self.service.fuelled.e8.as_ref()?);
        let extra = (s.oversize, s.additional_handling);
        Some(self.charge_with(weight_g, shape, e.fuelled, e.surcharges, extra))
    }

    /// [`Pricer::charge_e8`] of a parcel of `weight_g` whose outer sides
    /// are `dims` (sorted), in a box whose shape on this service `shape`
    /// keeps once found (packing prices each box at many weights); `None`
    /// for `shape`: a unit in its own packaging, shaped afresh. Always
    /// inlined: packing calls it for every candidate parcel, and as a call
    /// it cost `pack_10_units` 6 % more instructions.
    #[inline(always)]
    pub fn boxed_charge_e8(
        &self,
        weight_g: u32,
        dims: [u32; 3],
        shape: Option<&std::cell::Cell<Option<ParcelShape>>>,
    ) -> Option<Result<E8, Refusal>> {
        match shape {
            Some(cell) => {
                let shape = cell.get().unwrap_or_else(|| {
                    let shape = self.shape(&ParcelFacts::new(0, dims));
                    cell.set(Some(shape));
                    shape
                });
                self.shaped_charge_e8(weight_g, &shape)
            }
            None => self.charge_e8(&ParcelFacts::new(weight_g, dims)),
        }
    }

    /// What the dimensions of the parcel `f` alone decide on this service.
    pub fn shape(&self, f: &ParcelFacts) -> ParcelShape {
        let (carrier, service) = (self.carrier, self.service);
        let oversize = f.length_plus_girth_mm_x10 > carrier.oversize_lg_mm_x10;
        let mut dim_units = service.dim.dim_units(f.dims_mm);
        if oversize {
            dim_units = dim_units.max(service.dim.units_from_lb(carrier.oversize_min_lb));
        }
        ParcelShape {
            over_limit: f.longest_mm_x10 > carrier.max_length_mm_x10
                || f.length_plus_girth_mm_x10 > carrier.max_lg_mm_x10,
            oversize,
            handling_by_size: f.longest_mm_x10 > carrier.ah_longest_mm_x10
                || f.second_mm_x10 > carrier.ah_second_mm_x10
                || f.length_plus_girth_mm_x10 > carrier.ah_lg_mm_x10,
            dim_units,
        }
    }

    /// The charge for a parcel of `weight_g` and `shape` from the lane's
    /// fuelled `row`, `surcharges` and the service's (oversize, additional
    /// handling), in whichever form of money they come.
    #[inline]
    fn charge_with<C: Copy + Default + PartialEq + std::ops::AddAssign>(
        &self,
        weight_g: u32,
        shape: &ParcelShape,
        row: &[C],
        surcharges: C,
        (oversize_charge, additional_handling): (C, C),
    ) -> Result<C, Refusal> {
        let (carrier, service) = (self.carrier, self.service);
        let weight_g_x1e5 = u64::from(weight_g) * 100_000;
        if weight_g_x1e5 > carrier.max_weight_g_x1e5 || shape.over_limit {
            return Err(Refusal::CarrierLimit);
        }
        let billable = service.dim.weight_units(weight_g).max(shape.dim_units);
        let idx = usize::try_from(billable).unwrap_or(usize::MAX).max(1) - 1;
        // (max(price, minimum) + surcharges) × fuel, with every term fuelled
        // in advance (exactly, see `Fuelled`).
        let mut charge = *row.get(idx).ok_or(Refusal::ServiceWeight)?;
        if surcharges != C::default() {
            charge += surcharges;
        }
        // Oversize supersedes additional handling, as with both carriers.
        if shape.oversize {
            charge += oversize_charge;
        } else if shape.handling_by_size || weight_g_x1e5 > carrier.ah_weight_g_x1e5 {
            charge += additional_handling;
        }
        Ok(charge)
    }
}

/// What a parcel's dimensions alone decide on one service (see
/// [`Pricer::shape`]); its weight decides the rest.
#[derive(Clone, Copy, Debug)]
pub struct ParcelShape {
    /// Over the carrier's length or length + girth limit.
    over_limit: bool,
    /// Over the carrier's oversize length + girth.
    oversize: bool,
    /// Long, wide or large enough for additional handling.
    handling_by_size: bool,
    /// Billable units from the dimensions: dimensional weight, raised to
    /// the oversize minimum when oversize.
    dim_units: u32,
}
