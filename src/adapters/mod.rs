//! The edges: gRPC for callers, HTTP for operators and outbound downloads,
//! PostgreSQL for the shared reservation ledger.

pub mod grpc;
pub mod http;
pub mod postgres;
