//! Integration tests: the real server, started on free loopback ports, driven
//! over gRPC and HTTP. One test binary, so the build happens once.

mod auth;
mod carriers;
mod feeds;
mod helpers;
mod http_feeds;
mod ledger_crash;
mod ledger_pg;
mod limits;
mod ownership;
mod pg;
mod process;
mod quote;
mod realtime;
mod reservations;
mod service;
mod shedding;
mod shutdown;
mod tls;
