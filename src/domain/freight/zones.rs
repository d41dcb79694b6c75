//! Address checks and zone lookup: postal-code patterns per country and the
//! domestic (US) zone chart keyed by 3-digit ZIP prefix distance.
//!
//! Postal pattern language (kept tiny on purpose, so no regex engine is needed):
//! - `9` one ASCII digit;
//! - `A` one ASCII letter (either case);
//! - `N` one ASCII letter or digit;
//! - a space: an optional single space (people type "K1A0B1" as often as "K1A 0B1");
//! - any other character matches itself exactly (e.g. `-`).

/// Returns whether `code` (already trimmed) matches `pattern`.
pub fn postal_matches(pattern: &str, code: &str) -> bool {
    let mut input = code.bytes().peekable();
    for p in pattern.bytes() {
        if p == b' ' {
            // Optional: consume one space when present.
            if input.peek() == Some(&b' ') {
                input.next();
            }
            continue;
        }
        let Some(c) = input.next() else {
            return false;
        };
        let ok = match p {
            b'9' => c.is_ascii_digit(),
            b'A' => c.is_ascii_alphabetic(),
            b'N' => c.is_ascii_alphanumeric(),
            other => other == c,
        };
        if !ok {
            return false;
        }
    }
    input.next().is_none()
}

/// Checks that a pattern only uses characters the matcher understands sensibly.
pub fn pattern_is_valid(pattern: &str) -> bool {
    !pattern.trim().is_empty() && pattern.is_ascii()
}

/// The first three digits of a US ZIP code as a number (0..=999), if present.
pub fn zip_prefix(postal_code: &str) -> Option<u16> {
    let b = postal_code.trim().as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b[..3]
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0')),
    )
}

/// Normalises a two-letter country code to upper-case bytes without allocating.
pub fn country_key(country_code: &str) -> Option<[u8; 2]> {
    match country_code.trim().as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}
