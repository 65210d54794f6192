//! Generates the Triton gRPC client (package `inference`) from the vendored proto/*.proto with the
//! protoc binary of `protoc-bin-vendored`, so the build needs neither a system protoc nor the network.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_protos(&["proto/grpc_service.proto"], &["proto"])?;
    Ok(())
}
