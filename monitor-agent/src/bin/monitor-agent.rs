//! Monitor agent binary: serves the `Monitor` gRPC service until Ctrl-C.
//! Which processes to watch arrives from the coordinator in each `Watch`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use tracing_subscriber::EnvFilter;
use xmppload_monitor::{MonitorConfig, serve};
use xmppload_proto::auth::{AuthToken, TOKEN_ENV};
use xmppload_proto::tls::ServerTls;

/// Streams CPU and memory samples of processes on this host to the
/// xmppload coordinator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// IP address and TCP port of the gRPC listener
    #[arg(long, default_value = "127.0.0.1:15061")]
    listen: SocketAddr,

    /// Name reported to the coordinator in Hello [default: this host's name]
    #[arg(long)]
    name: Option<String>,

    /// File that contains the shared token every call must carry as
    /// `authorization: Bearer <token>` (at least 16 characters). Without it
    /// the token is taken from the XMPPLOAD_TOKEN environment variable, and
    /// without either any caller is accepted [default: none]
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,

    /// PEM certificate chain of this server; with it the gRPC server speaks
    /// TLS only, and the coordinator must use an https:// address
    /// [default: plain HTTP/2]
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// PEM CA certificate that must have signed the coordinator's client
    /// certificate (mutual TLS); needs --tls-cert [default: no client
    /// certificate required]
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let args = Args::parse();
    let name = args
        .name
        .or_else(sysinfo::System::host_name)
        .unwrap_or_else(|| "monitor".to_owned());

    let token = AuthToken::load(args.token_file.as_deref(), std::env::var_os(TOKEN_ENV))
        .context("failed to load the shared token")?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls::load(cert, key, args.client_ca.as_deref())?),
        _ => None,
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "failed to listen on {}; choose another --listen address",
                args.listen
            )
        })?;

    let shutdown = xmppload_proto::shutdown::cancel_on_ctrl_c();

    serve(listener, MonitorConfig { name, token, tls }, shutdown)
        .await
        .context("monitor agent failed")
}
