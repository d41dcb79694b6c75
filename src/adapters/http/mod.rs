//! HTTP for operators (`/metrics`, `/healthz`, `/readyz`), the feed downloader, the
//! purchase-order sender, and the clients (and loopback fakes) of the carriers' and
//! suppliers' APIs.

pub mod admin;
mod body;
mod breaker;
pub mod carriers;
pub mod feed_fetch;
pub mod live_rates;
mod loopback;
pub mod purchase_orders;
pub mod suppliers;
