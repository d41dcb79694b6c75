//! Small helpers shared by the generators: random distributions that turn into
//! integers at once, and allocation-free CSV/number writers.

use rand::Rng;

/// A standard normal draw (Box–Muller); the standard library of `rand` 0.9
/// has no normal distribution without `rand_distr`.
pub(super) fn std_normal<R: Rng>(rng: &mut R) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Rounds and clamps a float into `min..=max`; non-finite values become `min`.
pub(super) fn to_int(x: f64, min: u64, max: u64) -> u64 {
    if !x.is_finite() {
        return min;
    }
    let clamped = x.round().max(min as f64).min(max as f64);
    clamped as u64
}

/// A log-normal draw around `median`, clamped into `min..=max`.
pub(super) fn log_normal<R: Rng>(rng: &mut R, median: f64, sigma: f64, min: u64, max: u64) -> u64 {
    let x = median * (sigma * std_normal(rng)).exp();
    to_int(x, min, max)
}

/// A geometric draw (support 1, 2, ...) with the given mean, clamped to `max`.
pub(super) fn geometric<R: Rng>(rng: &mut R, mean: f64, max: u64) -> u64 {
    if mean <= 1.0 {
        return 1;
    }
    let p = 1.0 / mean;
    let u: f64 = 1.0 - rng.random::<f64>();
    to_int((u.ln() / (1.0 - p).ln()).ceil(), 1, max)
}

/// Picks an element of a slice; `None` only for an empty slice.
pub(super) fn pick<'a, R: Rng, T>(rng: &mut R, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(rng.random_range(0..items.len()))
    }
}

/// Appends the decimal digits of `n`.
pub(super) fn push_u64(buf: &mut Vec<u8>, n: u64) {
    push_padded(buf, n, 1);
}

/// Appends `n` zero-padded to at least `width` digits.
pub(super) fn push_padded(buf: &mut Vec<u8>, mut n: u64, width: usize) {
    // u64::MAX has 20 digits.
    let mut digits = [b'0'; 20];
    let mut len = 0;
    while n > 0 && len < digits.len() {
        digits[digits.len() - 1 - len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    let len = len.max(width.min(digits.len()));
    buf.extend_from_slice(&digits[digits.len() - len..]);
}

/// Appends a fixed-point amount: `units` in 10^-`scale` (cents for scale 2).
pub(super) fn push_fixed(buf: &mut Vec<u8>, units: u64, scale: u32) {
    let div = 10u64.pow(scale);
    push_u64(buf, units / div);
    if scale > 0 {
        buf.push(b'.');
        push_padded(buf, units % div, scale as usize);
    }
}

/// Appends a CSV field, quoting it (RFC 4180) when it holds a comma, quote or
/// line break.
pub(super) fn push_field(buf: &mut Vec<u8>, field: &str) {
    if field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        buf.push(b'"');
        for b in field.bytes() {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(field.as_bytes());
    }
}

/// Appends a TOML basic string, escaping what TOML requires.
pub(super) fn push_toml_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}
