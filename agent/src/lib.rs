//! Bot agent: runs thousands of XMPP bots on one tokio runtime and reports
//! on them to a coordinator over gRPC.
//!
//! Layout, from the wire up:
//!
//! - [`xml`]: cutting a c2s byte stream into stanzas, and parsing a stanza
//!   into a small element tree.
//! - [`transport`]: one framing type per wire format (c2s TCP with STARTTLS,
//!   RFC 7395 WebSocket) behind one stanza-level interface.
//! - [`session`]: SASL ANONYMOUS, resource binding and XEP-0198 stream
//!   management on top of a transport.
//! - [`bot`]: one bot's life: connect, join the MUC room, talk, leave.
//! - [`group`]: validating a `RunGroup` request, running its bots, and
//!   aggregating their counters into one report a second.
//! - [`policy`]: the agent's own target allowlist and load limits.
//! - [`service`] and [`serve`]: the `BotAgent` gRPC server.
//! - [`testing`]: a throwaway Prosody for integration tests.
//!
//! Errors are `thiserror` enums: [`error::BotError`] for one bot, counted by
//! its [`error::FailureKind`], and [`AgentError`] for the server.

pub mod bot;
pub mod error;
pub mod group;
pub mod host;
pub mod policy;
pub mod service;
pub mod session;
pub mod testing;
pub mod transport;
pub mod xml;

pub use error::AgentError;
use policy::{Limits, RunningBots, TargetPolicy};

use tokio_util::sync::CancellationToken;
use xmppload_proto::auth::{AuthToken, RequireToken, warn_if_unprotected};
use xmppload_proto::v1::bot_agent_server::BotAgentServer;

/// Settings of one agent process.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Name reported in `Hello`.
    pub name: String,
    /// Shared secret every call must carry; `None` accepts any caller.
    pub token: Option<AuthToken>,
    /// Servers the bots may connect to.
    pub targets: TargetPolicy,
    pub limits: Limits,
    /// Bots running on this agent; keep a clone to watch it.
    pub running_bots: RunningBots,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: "agent".to_owned(),
            token: None,
            targets: TargetPolicy::default(),
            limits: Limits::default(),
            running_bots: RunningBots::default(),
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
        targets = %config.targets.describe(),
        max_bots = config.limits.max_bots,
        max_connect_rate = config.limits.max_connect_rate,
        max_run_s = config.limits.max_run.as_secs(),
        "agent listening"
    );
    warn_if_unprotected(local, config.token.as_ref(), "drive load from this host");

    let auth = RequireToken::new(config.token.clone());
    let service = service::AgentService::new(config, shutdown.clone());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(BotAgentServer::with_interceptor(service, auth))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;

    tracing::info!("agent stopped");
    Ok(())
}
