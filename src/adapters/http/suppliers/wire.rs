//! The supplier protocols' JSON shapes (docs/suppliers.md), shared by the
//! client and the fake servers.
//!
//! Requests are ours and typed. Stock answers come from outside and are read
//! by the client from untyped JSON, item by item, so that one bad item does
//! not hide the good ones; they have no typed struct here on purpose.

use serde::{Deserialize, Serialize};

/// Path of the real-time stock endpoint under a supplier's base URL.
pub const STOCK_PATH: &str = "/v1/stock";
/// Path of the purchase-order endpoint under a supplier's base URL.
pub const PURCHASE_ORDERS_PATH: &str = "/v1/purchase-orders";

/// `POST {base}/v1/stock`: the items asked in one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockRequest {
    /// One entry per supplier SKU, no duplicates.
    pub items: Vec<StockRequestItem>,
}

/// One item of a stock request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockRequestItem {
    /// The supplier's own code.
    pub supplier_sku: String,
    /// Units the basket wants (a hint: suppliers answer what they have).
    pub quantity: u32,
}

/// `POST {base}/v1/purchase-orders`: one order to one supplier. Idempotent by
/// `po_number`: sending the same order again is acknowledged again, and a
/// different order under a known `po_number` is refused with 409.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseOrderRequest {
    /// Unique per order; the idempotency key (1 to 64 bytes).
    pub po_number: String,
    /// The merchant's order reference, for the supplier's paperwork.
    #[serde(default)]
    pub order_ref: String,
    /// ISO 4217 code of every `unit_cost`.
    pub currency: String,
    /// What is ordered; at least one line.
    pub lines: Vec<PurchaseOrderLine>,
    /// Where the supplier ships the goods, when it ships to the customer directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_to: Option<WireAddress>,
}

/// One line of a purchase order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseOrderLine {
    /// The supplier's own code.
    pub supplier_sku: String,
    /// Units ordered (at least 1).
    pub quantity: u32,
    /// Agreed unit cost, an exact decimal string such as `"12.34"`.
    pub unit_cost: String,
}

/// An address on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireAddress {
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    /// Postal code.
    pub postal_code: String,
    /// Home delivery.
    #[serde(default)]
    pub residential: bool,
}

/// A supplier's acknowledgement of a purchase order (201 the first time,
/// 200 for a repeat of the same order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseOrderAck {
    /// The order's `po_number`.
    pub po_number: String,
    /// `accepted`.
    pub status: String,
    /// When the supplier first received it (RFC 3339).
    pub received_at: String,
}

/// The body of a refusal (4xx/5xx) from the fake suppliers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What is wrong.
    pub error: String,
}
