//! Generates the gRPC client and server code from `proto/xmppload.proto`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;

    // SAFETY: build scripts run single-threaded, so nothing reads the
    // environment while it changes. prost-build reads PROTOC to find protoc.
    unsafe { std::env::set_var("PROTOC", protoc) };

    // These messages carry passwords, so their Debug is written by hand in
    // src/lib.rs to keep them out of logs.
    tonic_prost_build::configure()
        .skip_debug(["xmppload.v1.Account", "xmppload.v1.AccountPattern"])
        .compile_protos(&["proto/xmppload.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/xmppload.proto");
    Ok(())
}
