//! HTTP for operators (`/metrics`, `/healthz`, `/readyz`) and the feed downloader.

pub mod admin;
pub mod carriers;
pub mod feed_fetch;
pub mod live_rates;
