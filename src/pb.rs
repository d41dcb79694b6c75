//! Generated protobuf messages and gRPC stubs for `stockroute.v1`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("stockroute.v1");

/// The encoded descriptor set, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/stockroute_descriptor.bin"));
