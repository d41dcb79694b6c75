//! stockroute: real-time stock and auto-fulfil quoting.
//!
//! A map of the crate:
//! - [`domain`]: catalog, feeds, the offer index, freight, the planner. Free of
//!   transport types.
//! - [`adapters`]: the edges. gRPC services (`adapters::grpc`), the HTTP
//!   endpoints for operators and the feed downloader (`adapters::http`).
//! - [`app`]: wiring. Loads the world, starts the servers, owns shutdown.
//! - [`ledger`]: opens the reservation ledger and runs its background work.
//! - [`load`]: reads a world from a directory or builds the demo world in memory.
//! - [`demo`]: the deterministic demo world generator.
//! - [`config`], [`limits`], [`telemetry`]: settings, bounds, logs and metrics.
//! - [`auth`]: API keys (held as digests) and the roles they grant.
//! - [`cli`]: the human-facing client commands.
//! - [`pb`]: the generated protobuf and gRPC code.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod ingest;
pub mod ledger;
pub mod limits;
pub mod load;
pub mod pb;
pub mod telemetry;
