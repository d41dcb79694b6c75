//! The domain: catalog, feeds, index, freight, planner, ledger. No transport types
//! (tonic, prost, reqwest, SQL) appear here, so each part can be tested and
//! benchmarked alone.

pub mod address;
pub mod catalog;
pub mod clock;
pub mod feeds;
pub mod freight;
pub mod index;
pub mod ledger;
pub mod live_rates;
pub mod money;
pub mod planner;
pub mod quoting;
pub mod realtime;
pub mod suppliers;
pub mod world;
