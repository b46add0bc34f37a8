//! Bot agent: runs thousands of XMPP bots on one tokio runtime and reports
//! on them to a coordinator over gRPC.
//!
//! Layout, from the wire up:
//!
//! - [`xml`]: cutting a c2s byte stream into stanzas, and parsing a stanza
//!   into a small element tree.
//! - [`transport`]: one framing type per wire format (c2s TCP with STARTTLS,
//!   RFC 7395 WebSocket) behind one stanza-level interface.
//! - [`sasl`]: the SASL mechanisms (ANONYMOUS, PLAIN, SCRAM-SHA-1 and
//!   SCRAM-SHA-256) and their exchange over a stream.
//! - [`session`]: SASL login, resource binding and XEP-0198 stream
//!   management on top of a transport.
//! - [`steps`]: the duration of each connection step of one bot.
//! - [`bot`]: one bot's life: connect, join the MUC room, talk, leave.
//! - [`webclient`]: the requests a browser client adds around the join.
//! - [`component`]: an XEP-0114 component that floods rooms with messages.
//! - [`muc`]: reading room presences and messages, for bots and component.
//! - [`group`]: validating a `RunGroup` request, running its bots, and
//!   aggregating their counters into one report a second.
//! - [`policy`]: the agent's own target allowlist and load limits.
//! - [`register`]: creating accounts by XEP-0077 in-band registration.
//! - [`service`] and [`serve`]: the `BotAgent` gRPC server.
//! - [`testing`]: a throwaway Prosody for integration tests.
//!
//! Errors are `thiserror` enums: [`error::BotError`] for one bot, counted by
//! its [`error::FailureKind`], and [`AgentError`] for the server.

pub mod bot;
pub mod clock;
pub mod component;
pub mod error;
pub mod group;
pub mod host;
pub mod muc;
pub mod policy;
pub mod register;
pub mod sasl;
pub mod service;
pub mod session;
pub mod steps;
pub mod testing;
pub mod transport;
pub mod webclient;
pub mod xml;

pub use error::AgentError;
use policy::{HostCapacity, Limits, RunningBots, TargetPolicy};

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use xmppload_proto::auth::{AuthToken, RequireToken, warn_if_unprotected};
use xmppload_proto::tls::ServerTls;
use xmppload_proto::v1::bot_agent_server::BotAgentServer;

/// Settings of one agent process.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Name reported in `Hello`.
    pub name: String,
    /// Shared secret every call must carry; `None` accepts any caller.
    pub token: Option<AuthToken>,
    /// Server certificate, and the client CA for mutual TLS; `None` serves
    /// plain HTTP/2.
    pub tls: Option<ServerTls>,
    /// Servers the bots may connect to.
    pub targets: TargetPolicy,
    pub limits: Limits,
    /// Bots running on this agent; keep a clone to watch it.
    pub running_bots: RunningBots,
    /// Time after which the agent stops the bots of a coordinator that no
    /// longer returns HTTP/2 PINGs (`--lease-seconds`).
    pub lease: Duration,
    /// Descriptor and port limits, and the source addresses
    /// (`--source-address`).
    pub capacity: HostCapacity,
    /// Clock that every agent timestamp and schedule is read from.
    pub clock: clock::AgentClock,
}

/// Default of `--lease-seconds`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: "agent".to_owned(),
            token: None,
            tls: None,
            targets: TargetPolicy::default(),
            limits: Limits::default(),
            running_bots: RunningBots::default(),
            lease: DEFAULT_LEASE,
            capacity: HostCapacity::default(),
            clock: clock::AgentClock::default(),
        }
    }
}

/// Serves the `BotAgent` gRPC service on `listener` until `shutdown` is
/// cancelled. Cancelling also stops every running group slice.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: AgentConfig,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let local = listener.local_addr().ok();
    tracing::info!(
        addr = ?local,
        name = %config.name,
        token = config.token.is_some(),
        tls = config.tls.is_some(),
        client_cert_required = config.tls.as_ref().is_some_and(ServerTls::requires_client_cert),
        targets = %config.targets.describe(),
        max_bots = config.limits.max_bots,
        max_connect_rate = config.limits.max_connect_rate,
        max_run_s = config.limits.max_run.as_secs(),
        lease_s = config.lease.as_secs_f64(),
        source_addresses = ?config.capacity.source_addresses,
        fd_limit = ?config.capacity.fd_limit,
        ports_per_destination = ?config.capacity.ports_per_destination,
        "agent listening"
    );
    warn_if_unprotected(
        local,
        config.token.as_ref(),
        config.tls.as_ref(),
        "drive load from this host",
    );

    // Dead-man stop. The server sends an HTTP/2 PING once a connection has
    // been silent for half the lease and drops the connection when the PONG
    // is not back within the other half. Dropping it drops its RunGroup
    // streams, and a slice whose report stream is gone stops its bots.
    //
    // PONGs come from the coordinator's HTTP/2 layer, so they stop exactly
    // when its process is frozen or the network path is gone, even without
    // a TCP reset. This needs no protocol change and covers every call. An
    // explicit lease RPC was not chosen because it would need a renewal
    // task in the coordinator, a new message and version bump, and it
    // would detect nothing more for those two failures.
    // NOTE: a coordinator whose runtime still returns PINGs while its run
    // loop hangs keeps its bots until their deadline or its Ctrl-C.
    let half_lease = config.lease / 2;
    let auth = RequireToken::new(config.token.clone());
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        // NOTE: tonic logs a rejected handshake, such as a client without a
        // certificate signed by the client CA, at debug level only (target
        // `tonic`). The coordinator reports the cause on its side.
        server = server.tls_config(tls.config())?;
    }
    let service = service::AgentService::new(config, shutdown.clone());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    server
        .http2_keepalive_interval(Some(half_lease))
        .http2_keepalive_timeout(Some(half_lease))
        .add_service(BotAgentServer::with_interceptor(service, auth))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;

    tracing::info!("agent stopped");
    Ok(())
}
