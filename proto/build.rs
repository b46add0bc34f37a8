//! Generates the gRPC client and server code from `proto/xmppload.proto`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;

    // SAFETY: build scripts run single-threaded, so nothing reads the
    // environment while it changes. prost-build reads PROTOC to find protoc.
    unsafe { std::env::set_var("PROTOC", protoc) };

    tonic_prost_build::configure().compile_protos(&["proto/xmppload.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/xmppload.proto");
    Ok(())
}
