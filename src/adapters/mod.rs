//! The edges: gRPC for callers, HTTP for operators and outbound downloads.

pub mod grpc;
pub mod http;
