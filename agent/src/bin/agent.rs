//! `agent`: serves the BotAgent gRPC service until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use xmppload_agent::{AgentConfig, serve};
use xmppload_proto::auth::{AuthToken, TOKEN_ENV};

/// Bot agent of the XMPP load tester: runs bot groups on request of a coordinator.
#[derive(Debug, Parser)]
#[command(version)]
struct Options {
    /// Socket address the gRPC server listens on [default: 127.0.0.1:15051]
    #[arg(long, default_value = "127.0.0.1:15051", hide_default_value = true)]
    listen: SocketAddr,

    /// Agent name reported to the coordinator [default: the host name]
    #[arg(long)]
    name: Option<String>,

    /// File that contains the shared token every call must carry as
    /// `authorization: Bearer <token>` (at least 16 characters). Without it
    /// the token is taken from the XMPPLOAD_TOKEN environment variable, and
    /// without either any caller is accepted [default: none]
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let name = match options.name {
        Some(name) => name,
        None => host_name(),
    };

    let token = AuthToken::load(options.token_file.as_deref(), std::env::var_os(TOKEN_ENV))
        .context("failed to load the shared token")?;

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| {
            format!(
                "failed to listen on {}; pick another address with --listen",
                options.listen
            )
        })?;

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        match tokio::signal::ctrl_c().await {
            Ok(()) => {
                tracing::info!("Ctrl-C received; shutting down");
                on_signal.cancel();
            }
            // Without a signal handler the agent keeps serving until killed.
            Err(err) => tracing::error!(%err, "failed to install the Ctrl-C handler"),
        }
    });

    let config = AgentConfig { name, token };
    serve(listener, config, shutdown)
        .await
        .context("agent server failed")?;
    Ok(())
}

/// Host name from the kernel, or "agent" when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}
