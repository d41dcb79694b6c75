//! Every bound the service enforces, named in one place (units last).
//!
//! Config keys can lower or raise the ones a deployment tunes; the rest are
//! fixed because something downstream (memory layout, wire format) depends on them.

/// Largest gRPC message decoded, in bytes (config `server.max_message_bytes`).
pub const GRPC_MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most lines in one basket (config `quote.basket_lines_max`).
pub const BASKET_LINES_MAX: usize = 200;
/// Most units of one basket line (config `quote.line_quantity_max`).
pub const LINE_QUANTITY_MAX: u32 = 100_000;
/// Longest SKU or supplier SKU accepted, in bytes.
pub const SKU_BYTES_MAX: usize = 64;
/// Longest postal code accepted, in bytes.
pub const POSTAL_CODE_BYTES_MAX: usize = 16;
/// Largest feed accepted, in bytes (config `feeds.feed_bytes_max`).
pub const FEED_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Chunks of an `IngestFeed` stream buffered ahead of the parser; bounds its memory.
pub const FEED_CHUNKS_BUFFERED: usize = 4;
/// Most suppliers in a registry: supplier ids are 16-bit inside the index.
pub const SUPPLIERS_MAX: usize = u16::MAX as usize;
/// Largest unit cost the index holds, in ten-thousandths of the currency unit.
pub const UNIT_COST_UNITS_MAX: u64 = u32::MAX as u64;
/// Decimal places of a unit cost kept exactly inside the index.
pub const UNIT_COST_SCALE: u32 = 4;
/// Time the planner may search for one quote's plans, in milliseconds (config
/// `quote.planning_budget_ms`); the caller's deadline can only shorten it.
pub const PLANNING_BUDGET_MS: u64 = 20;
/// Most excluded suppliers named in one request.
pub const EXCLUDED_SUPPLIERS_MAX: usize = 256;
