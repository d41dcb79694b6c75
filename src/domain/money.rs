//! Exact money inside the index: unit costs as integer ten-thousandths.
//!
//! The index keeps a cost in a `u32` of ten-thousandths of the currency unit
//! (`CostUnits`), which is exact for every price a feed may carry with up to
//! four decimal places and a quarter of the memory of a `Decimal`. Everything
//! outside the index computes with `rust_decimal::Decimal`.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::limits;

/// A unit cost in ten-thousandths of the currency unit.
pub type CostUnits = u32;

/// Converts index units to an exact decimal ("12.3400" keeps its scale of 4,
/// normalised to at least two places for display).
pub fn cost_to_decimal(units: CostUnits) -> Decimal {
    let mut d = Decimal::new(units as i64, limits::UNIT_COST_SCALE);
    d = d.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d
}

/// Parses a non-negative decimal such as `12`, `12.3` or `0.1234` into index units.
///
/// Fast path for feed ingest: no allocation and no `Decimal` on the way.
pub fn parse_cost(text: &[u8]) -> Result<CostUnits, String> {
    let shown = || String::from_utf8_lossy(text).into_owned();
    let t = text.trim_ascii();
    if t.is_empty() {
        return Err("is empty".into());
    }
    if t[0] == b'-' {
        return Err(format!("`{}` is negative", shown()));
    }
    let (int, frac) = match memchr::memchr(b'.', t) {
        Some(dot) => (&t[..dot], &t[dot + 1..]),
        None => (t, &t[t.len()..]),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(format!("`{}` is not a decimal number", shown()));
    }
    if frac.len() > limits::UNIT_COST_SCALE as usize {
        return Err(format!(
            "`{}` has more than {} decimal places",
            shown(),
            limits::UNIT_COST_SCALE
        ));
    }
    let mut units: u64 = 0;
    for &b in int.iter().chain(frac) {
        if !b.is_ascii_digit() {
            return Err(format!("`{}` is not a decimal number", shown()));
        }
        units = units * 10 + u64::from(b - b'0');
        if units > limits::UNIT_COST_UNITS_MAX * 10_000 {
            break;
        }
    }
    for _ in frac.len()..limits::UNIT_COST_SCALE as usize {
        units *= 10;
    }
    if units > limits::UNIT_COST_UNITS_MAX {
        return Err(format!(
            "`{}` exceeds the largest unit cost held ({})",
            shown(),
            cost_to_decimal(u32::MAX)
        ));
    }
    Ok(units as CostUnits)
}

/// `d` in ten-thousandths of the currency unit (the search's and freight
/// floors' integer money), rounded down so that a floor stays a floor;
/// `i64::MAX / 4` past what an `i64` holds.
pub fn to_units(d: Decimal) -> i64 {
    // Amounts of at most 4 decimals (every rate, fee and cost) convert
    // exactly without Decimal arithmetic.
    if let Some(shift) = 4u32.checked_sub(d.scale()) {
        if let Some(units) = i64::try_from(d.mantissa())
            .ok()
            .and_then(|m| m.checked_mul(10i64.pow(shift)))
        {
            return units;
        }
    }
    d.checked_mul(Decimal::from(10_000))
        .and_then(|x| x.floor().to_i64())
        .unwrap_or(i64::MAX / 4)
}

/// Rounds to cents, half away from zero: the one rounding rule for totals.
pub fn round_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Ten-thousandths rounded down, as multiplying in `Decimal` and
        /// taking the floor gives, at every scale and sign.
        #[test]
        fn units_are_the_floor_of_ten_thousandths(m in -10_000_000_000i64..10_000_000_000, scale in 0u32..9) {
            let d = Decimal::new(m, scale);
            let expected = (d * Decimal::from(10_000)).floor().to_i64().unwrap();
            prop_assert_eq!(to_units(d), expected);
        }
    }

    #[test]
    fn units_past_an_i64_saturate() {
        assert_eq!(to_units(Decimal::MAX), i64::MAX / 4);
        assert_eq!(to_units(Decimal::new(12_345, 2)), 1_234_500);
    }

    #[test]
    fn parses_the_shapes_feeds_use() {
        assert_eq!(parse_cost(b"12"), Ok(120_000));
        assert_eq!(parse_cost(b"12.3"), Ok(123_000));
        assert_eq!(parse_cost(b" 0.1234 "), Ok(1_234));
        assert_eq!(parse_cost(b".5"), Ok(5_000));
        assert!(parse_cost(b"-1.00").unwrap_err().contains("negative"));
        assert!(parse_cost(b"1.23456")
            .unwrap_err()
            .contains("decimal places"));
        assert!(parse_cost(b"1,50").is_err());
        assert!(parse_cost(b"").is_err());
        assert!(parse_cost(b".").is_err());
        assert!(parse_cost(b"99999999999999999999999").is_err());
    }

    #[test]
    fn converts_exactly() {
        assert_eq!(cost_to_decimal(123_000).to_string(), "12.30");
        assert_eq!(cost_to_decimal(1_234).to_string(), "0.1234");
        assert_eq!(round_cents(Decimal::new(12345, 3)).to_string(), "12.35");
    }

    proptest! {
        /// Any cost with up to 4 places survives the trip through index units exactly.
        #[test]
        fn roundtrip(units in 0u32..=u32::MAX) {
            let d = cost_to_decimal(units);
            prop_assert_eq!(parse_cost(d.to_string().as_bytes()), Ok(units));
        }
    }
}
