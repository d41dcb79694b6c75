//! Unit conversions (exact integer arithmetic), carrier limits and the price
//! of one parcel on one service.

use rust_decimal::Decimal;

use super::tables::{Carrier, Service, G_PER_LB_X1E5};

/// Cubic millimetres per cubic inch, times 1000 (16 387.064 mm³ exactly).
const MM3_PER_IN3_X1000: u128 = 16_387_064;

/// Whole pounds needed to cover `weight_g` (rounded up, as carriers bill).
pub fn ceil_lb(weight_g: u32) -> u32 {
    let lb = (u64::from(weight_g) * 100_000).div_ceil(G_PER_LB_X1E5);
    u32::try_from(lb).unwrap_or(u32::MAX)
}

/// Grams in `lb` pounds, rounded down so that `ceil_lb(lb_to_g(lb)) == lb`.
pub fn lb_to_g(lb: u32) -> u32 {
    u32::try_from(u64::from(lb) * G_PER_LB_X1E5 / 100_000).unwrap_or(u32::MAX)
}

/// Dimensional weight in whole pounds: L×W×H in in³ / divisor, rounded up.
/// Uses exact millimetres rather than first rounding each side to an inch.
pub fn dim_lb(dims_mm: [u32; 3], divisor_in3_per_lb: u32) -> u32 {
    let volume_mm3: u128 = dims_mm.iter().map(|&d| u128::from(d)).product();
    let lb =
        (volume_mm3 * 1000).div_ceil(MM3_PER_IN3_X1000 * u128::from(divisor_in3_per_lb.max(1)));
    u32::try_from(lb).unwrap_or(u32::MAX)
}

/// Billable weight in whole pounds: the greater of actual and dimensional weight.
pub fn billable_lb(weight_g: u32, dims_mm: [u32; 3], divisor_in3_per_lb: u32) -> u32 {
    ceil_lb(weight_g).max(dim_lb(dims_mm, divisor_in3_per_lb))
}

/// Measures of one parcel in the integer units carrier thresholds are stored in.
#[derive(Clone, Copy, Debug)]
pub struct ParcelFacts {
    pub billable_lb: u32,
    pub weight_g_x1e5: u64,
    pub longest_mm_x10: u64,
    pub length_plus_girth_mm_x10: u64,
}

impl ParcelFacts {
    /// `dims_mm` sorted longest first.
    pub fn new(weight_g: u32, billable_weight_g: u32, dims_mm: [u32; 3]) -> Self {
        let [l, w, h] = dims_mm.map(u64::from);
        Self {
            billable_lb: ceil_lb(billable_weight_g),
            weight_g_x1e5: u64::from(weight_g) * 100_000,
            longest_mm_x10: l * 10,
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

/// The charge for one parcel before rounding, or why the service refuses it.
pub fn parcel_charge(
    carrier: &Carrier,
    service: &Service,
    prices: &[Decimal],
    facts: &ParcelFacts,
    residential: bool,
) -> Result<Decimal, Refusal> {
    if facts.weight_g_x1e5 > carrier.max_weight_g_x1e5
        || facts.longest_mm_x10 > carrier.max_length_mm_x10
        || facts.length_plus_girth_mm_x10 > carrier.max_lg_mm_x10
    {
        return Err(Refusal::CarrierLimit);
    }
    let idx = usize::try_from(facts.billable_lb)
        .unwrap_or(usize::MAX)
        .max(1)
        - 1;
    let base = *prices.get(idx).ok_or(Refusal::ServiceWeight)?;
    let mut charge = base.max(service.minimum_charge);
    if residential {
        charge += service.residential_surcharge;
    }
    // Oversize supersedes additional handling, as with both carriers.
    if facts.length_plus_girth_mm_x10 > carrier.oversize_lg_mm_x10 {
        charge += carrier.oversize;
    } else if facts.longest_mm_x10 > carrier.ah_longest_mm_x10
        || facts.weight_g_x1e5 > carrier.ah_weight_g_x1e5
    {
        charge += carrier.additional_handling;
    }
    // Fuel applies to transportation and surcharges alike.
    Ok(charge * service.fuel_factor)
}
