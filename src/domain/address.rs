//! Where goods ship from and to.

use serde::Deserialize;

/// A shipping address, as much of it as freight needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: String,
    /// As the country writes it.
    pub postal_code: String,
    /// Residential delivery (carriers charge more).
    #[serde(default)]
    pub residential: bool,
}
