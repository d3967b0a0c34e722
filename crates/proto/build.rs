//! Generates the node stream's messages and service from the .proto with a protobuf
//! compiler written in Rust (protox), so building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/edgefn/node/v1/node.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    // Maps as BTreeMap: encoded in key order, so a resource's version depends on its content only.
    tonic_prost_build::configure().btree_map(".").compile_fds(descriptors)?;
    Ok(())
}
