//! What the PostgreSQL ledger needs from this replica's offer data: the
//! supply of a (supplier, SKU) as its newest feed gives it, to write into the
//! shared stock rows when a full feed arrives.

use crate::domain::ledger::KeyResolver;
use crate::domain::world::World;

/// A supplier's figure for one SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supply {
    /// Units the supplier has, before any holds.
    pub qty: u32,
    /// When that was true (Unix ms).
    pub as_of_ms: i64,
}

/// This replica's current supply figures, by external names.
pub trait SupplySource: Send + Sync {
    /// The figure for `sku` from `supplier_id`, or `None` when the supplier's
    /// data no longer lists it.
    fn supply(&self, supplier_id: &str, sku: &str) -> Option<Supply>;
}

impl SupplySource for World {
    fn supply(&self, supplier_id: &str, sku: &str) -> Option<Supply> {
        let key = self.key(supplier_id, sku)?;
        let view = self.index.view();
        let offer = view.offer(key.supplier, key.product)?;
        Some(Supply {
            qty: offer.qty,
            as_of_ms: i64::from(offer.as_of_s) * 1000,
        })
    }
}
