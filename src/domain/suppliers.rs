//! The supplier registry (`suppliers.toml`): who ships from where, how their
//! feeds arrive and whether they answer real-time queries.
//!
//! Suppliers get dense 16-bit ids in file order; the index stores those, never strings.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::address::Address;
use crate::limits;

/// Dense supplier id: the supplier's position in the registry.
pub type SupplierId = u16;

/// A registry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SupplierError {
    /// The TOML does not match the schema.
    #[error("suppliers: {0}")]
    Toml(#[from] toml::de::Error),
    /// Two suppliers share an id.
    #[error("suppliers: duplicate id `{0}`")]
    Duplicate(String),
    /// A supplier entry makes no sense.
    #[error("suppliers: supplier `{id}`: {message}")]
    Invalid {
        /// The supplier.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// More suppliers than the index can address.
    #[error("suppliers: {0} suppliers, at most {max} supported", max = limits::SUPPLIERS_MAX)]
    TooMany(usize),
}

/// Whether a feed replaces or amends a supplier's offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    /// Replaces all of the supplier's offers.
    Full,
    /// Changes only the rows it names.
    Delta,
}

/// Where and how often a supplier's feed is fetched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSource {
    /// A file path (relative to the data directory) or an `http(s)://` URL.
    pub source: String,
    /// Full or delta.
    #[serde(default = "full")]
    pub kind: FeedKind,
    /// Seconds between fetches; 0 = load once at start.
    #[serde(default)]
    pub interval_secs: u64,
}

fn full() -> FeedKind {
    FeedKind::Full
}

/// A supplier's real-time gateway (docs/suppliers.md). The optional fields
/// override the `[realtime]` defaults for this supplier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeSource {
    /// Base URL of the gateway; `fake:<id>` means the demo world's in-process fake.
    pub base_url: String,
    /// Speak HTTP/2 without negotiation (cleartext `http://` gateways that
    /// only speak HTTP/2); `https://` gateways negotiate it anyway.
    #[serde(default)]
    pub http2: bool,
    /// Longest one call may take.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Batches in flight at once.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Hedge slow calls.
    #[serde(default)]
    pub hedge: Option<bool>,
}

/// A supplier's purchase-order endpoint (CONTRACT §4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersEndpoint {
    /// Base URL; orders go to `{base_url}/v1/purchase-orders`. `fake:<id>`
    /// means the demo world's in-process fake.
    pub base_url: String,
}

/// One entry of `suppliers.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplierConfig {
    /// Stable external id, e.g. `SUP001`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Currency of its prices; must be the merchant's.
    #[serde(default = "usd")]
    pub currency: String,
    /// Charged once per shipment from this supplier.
    #[serde(default, with = "rust_decimal::serde::str")]
    pub handling_fee: Decimal,
    /// Days before the carrier collects.
    #[serde(default)]
    pub processing_days: u32,
    /// Where it ships from.
    pub origin: Address,
    /// Its scheduled feed, if any.
    #[serde(default)]
    pub feed: Option<FeedSource>,
    /// Per-supplier mapping file `supplier_id,supplier_sku,sku`, relative to the data directory.
    #[serde(default)]
    pub mapping: Option<String>,
    /// Its real-time gateway, if any.
    #[serde(default)]
    pub realtime: Option<RealtimeSource>,
    /// Where its purchase orders go; when absent, the real-time gateway's
    /// base URL, if it has one.
    #[serde(default)]
    pub orders: Option<OrdersEndpoint>,
}

fn usd() -> String {
    "USD".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    supplier: Vec<SupplierConfig>,
}

/// All suppliers, by dense id.
#[derive(Debug, Default)]
pub struct SupplierRegistry {
    suppliers: Vec<SupplierConfig>,
    by_id: HashMap<String, SupplierId>,
}

impl SupplierRegistry {
    /// Parses `suppliers.toml`; every supplier must price in `currency`.
    pub fn from_toml(text: &str, currency: &str) -> Result<Self, SupplierError> {
        let file: RegistryFile = toml::from_str(text)?;
        Self::new(file.supplier, currency)
    }

    /// Builds a registry from entries, checking each.
    pub fn new(suppliers: Vec<SupplierConfig>, currency: &str) -> Result<Self, SupplierError> {
        if suppliers.len() > limits::SUPPLIERS_MAX {
            return Err(SupplierError::TooMany(suppliers.len()));
        }
        let mut by_id = HashMap::with_capacity(suppliers.len());
        for (i, s) in suppliers.iter().enumerate() {
            let invalid = |message: String| SupplierError::Invalid {
                id: s.id.clone(),
                message,
            };
            if s.id.is_empty() || s.id.len() > limits::SKU_BYTES_MAX {
                return Err(invalid("id must be 1 to 64 bytes".into()));
            }
            if !s.currency.eq_ignore_ascii_case(currency) {
                return Err(invalid(format!(
                    "currency {} differs from the merchant's {currency}",
                    s.currency
                )));
            }
            if s.handling_fee.is_sign_negative() {
                return Err(invalid("handling_fee is negative".into()));
            }
            if s.origin.country_code.len() != 2 {
                return Err(invalid(
                    "origin.country_code must be ISO 3166-1 alpha-2".into(),
                ));
            }
            if by_id.insert(s.id.clone(), i as SupplierId).is_some() {
                return Err(SupplierError::Duplicate(s.id.clone()));
            }
        }
        Ok(Self { suppliers, by_id })
    }

    /// Number of suppliers.
    pub fn len(&self) -> usize {
        self.suppliers.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.suppliers.is_empty()
    }

    /// A supplier by dense id.
    pub fn get(&self, id: SupplierId) -> Option<&SupplierConfig> {
        self.suppliers.get(id as usize)
    }

    /// The dense id of an external supplier id.
    pub fn id_of(&self, external: &str) -> Option<SupplierId> {
        self.by_id.get(external).copied()
    }

    /// All suppliers with their dense ids.
    pub fn iter(&self) -> impl Iterator<Item = (SupplierId, &SupplierConfig)> {
        self.suppliers
            .iter()
            .enumerate()
            .map(|(i, s)| (i as SupplierId, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
[[supplier]]
id = "SUP001"
name = "Keystone"
handling_fee = "2.50"
processing_days = 1
origin = { country_code = "US", postal_code = "07001", residential = false }
feed = { source = "feeds/SUP001.csv", kind = "full", interval_secs = 3600 }

[[supplier]]
id = "SUP002"
origin = { country_code = "DE", postal_code = "36251" }
realtime = { base_url = "http://127.0.0.1:1" }
"#;

    #[test]
    fn parses_suppliers_with_dense_ids() {
        let r = SupplierRegistry::from_toml(TWO, "USD").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.id_of("SUP002"), Some(1));
        let s = r.get(0).unwrap();
        assert_eq!(s.handling_fee, Decimal::new(250, 2));
        assert_eq!(s.feed.as_ref().unwrap().kind, FeedKind::Full);
        assert!(r.get(1).unwrap().realtime.is_some());
    }

    #[test]
    fn rejects_duplicates_foreign_currency_and_typos() {
        let dup = format!("{TWO}\n[[supplier]]\nid = \"SUP001\"\norigin = {{ country_code = \"US\", postal_code = \"1\" }}\n");
        assert!(matches!(
            SupplierRegistry::from_toml(&dup, "USD"),
            Err(SupplierError::Duplicate(_))
        ));
        let err = SupplierRegistry::from_toml(TWO, "EUR")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SUP001") && err.contains("EUR"), "{err}");
        let typo = TWO.replace("processing_days", "procesing_days");
        let err = SupplierRegistry::from_toml(&typo, "USD")
            .unwrap_err()
            .to_string();
        assert!(err.contains("procesing_days"), "{err}");
    }
}
