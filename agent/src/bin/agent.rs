//! `agent`: serves the BotAgent gRPC service until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use xmppload_agent::clock::AgentClock;
use xmppload_agent::policy::limits::{DEFAULT_MAX_BOTS, DEFAULT_MAX_CONNECT_RATE, DEFAULT_MAX_RUN};
use xmppload_agent::policy::{AllowedTarget, HostCapacity, Limits, TargetPolicy};
use xmppload_agent::{AgentConfig, DEFAULT_LEASE, serve};
use xmppload_proto::auth::{AuthToken, TOKEN_ENV};
use xmppload_proto::tls::ServerTls;

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

    /// Server the bots may connect to, as HOST, HOST:PORT, IPV6 or
    /// [IPV6]:PORT; repeat for several. Hosts are compared as written, without
    /// DNS, and WebSocket URLs by their host and port. Given at least once, the
    /// list replaces the default [default: loopback only: 127.0.0.0/8, ::1,
    /// localhost]
    #[arg(long, value_name = "TARGET")]
    allow_target: Vec<AllowedTarget>,

    /// Let the bots connect to any host and port
    #[arg(long, conflicts_with = "allow_target")]
    allow_any_target: bool,

    /// Maximum number of bots running at once over all groups
    /// [default: 20000]
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BOTS,
          value_parser = clap::value_parser!(u32).range(1..), hide_default_value = true)]
    max_bots: u32,

    /// Maximum connection rate of one group on this agent, in bots per second
    /// [default: 2000]
    #[arg(long, value_name = "R", default_value_t = DEFAULT_MAX_CONNECT_RATE,
          value_parser = positive_rate, hide_default_value = true)]
    max_connect_rate: f64,

    /// Maximum group deadline, and how far ahead a group may be scheduled, in
    /// seconds [default: 7200]
    #[arg(long, value_name = "S", default_value_t = DEFAULT_MAX_RUN.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..), hide_default_value = true)]
    max_run_seconds: u64,

    /// Time after which the agent stops the bots of a coordinator that
    /// stopped replying to HTTP/2 PINGs (frozen process or lost network), in
    /// seconds [default: 10]
    #[arg(long, value_name = "S", default_value_t = DEFAULT_LEASE.as_secs(),
          value_parser = clap::value_parser!(u64).range(2..=3600), hide_default_value = true)]
    lease_seconds: u64,

    /// Local IP address the bots' connections are bound to; repeat or give a
    /// comma-separated list to spread the bots over several, in turn. Each
    /// address adds one ephemeral port range of connections per server
    /// address. The addresses must exist on this host [default: the
    /// kernel's choice]
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    source_address: Vec<IpAddr>,
    /// Milliseconds added to every time the agent reads from its clock, to
    /// test the coordinator's clock alignment (hidden: tests only)
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        hide = true,
        allow_negative_numbers = true
    )]
    clock_offset_ms: i64,
}

/// Parses a finite, positive rate.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a positive number of bots per second"
        )),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    match xmppload_agent::host::raise_fd_limit() {
        Ok(limit) => tracing::info!(
            before = limit.before,
            after = limit.after,
            "open-file soft limit set to the hard limit; each bot needs one descriptor"
        ),
        Err(err) => {
            tracing::warn!(%err, "failed to raise the open-file limit; bots beyond it fail with io errors")
        }
    }

    let name = match options.name {
        Some(name) => name,
        None => host_name(),
    };

    let token = AuthToken::load(options.token_file.as_deref(), std::env::var_os(TOKEN_ENV))
        .context("failed to load the shared token")?;
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls::load(cert, key, options.client_ca.as_deref())?),
        _ => None,
    };

    let capacity = HostCapacity {
        source_addresses: options.source_address,
        ..HostCapacity::default()
    };
    if let Err((address, err)) = capacity.check_sources() {
        anyhow::bail!(
            "cannot bind to source address {address}: {err}; give only addresses of this host to --source-address"
        );
    }

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| {
            format!(
                "failed to listen on {}; pick another address with --listen",
                options.listen
            )
        })?;

    let shutdown = xmppload_proto::shutdown::cancel_on_ctrl_c();

    let targets = if options.allow_any_target {
        TargetPolicy::Any
    } else if options.allow_target.is_empty() {
        TargetPolicy::Loopback
    } else {
        TargetPolicy::Only(options.allow_target)
    };
    let config = AgentConfig {
        name,
        token,
        tls,
        targets,
        limits: Limits {
            max_bots: options.max_bots,
            max_connect_rate: options.max_connect_rate,
            max_run: Duration::from_secs(options.max_run_seconds),
        },
        lease: Duration::from_secs(options.lease_seconds),
        capacity,
        clock: AgentClock {
            offset_micros: options.clock_offset_ms.saturating_mul(1000),
        },
        ..AgentConfig::default()
    };
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
