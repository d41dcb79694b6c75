//! Integration tests: the real server, started on free loopback ports, driven
//! over gRPC and HTTP. One test binary, so the build happens once.

mod carriers;
mod feeds;
mod helpers;
mod http_feeds;
mod process;
mod quote;
mod realtime;
mod service;
