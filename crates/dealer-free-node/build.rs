//! Compiles `proto/node.proto` with protox (a protobuf compiler in Rust), so that the build
//! needs no `protoc` installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/node.proto");
    let descriptors = protox::compile(["proto/node.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // prost's codec with a bound on a message's fields before it is decoded
        // (`src/codec.rs`).
        .codec_path("crate::codec::BoundedCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
