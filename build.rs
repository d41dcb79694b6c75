//! Compiles the gRPC contract with a pure-Rust protobuf compiler, so a build
//! needs nothing but cargo (no system `protoc`).

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["stockroute/v1/stockroute.proto"], ["proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Server reflection serves this descriptor set so generic clients (grpcurl) work.
    std::fs::write(
        out_dir.join("stockroute_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
