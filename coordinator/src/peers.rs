//! Connecting to bot agents and the monitor agent.
//!
//! Each peer is reached over gRPC, greeted with `Hello` (protocol version
//! check) and measured with a few `Clock` round trips, all before the run
//! starts, so an unreachable or mismatched peer stops the run up front.
//! Every call carries the shared token, when one is set, through an
//! [`AttachToken`] interceptor on the clients.
//!
//! An `https://` address is reached over TLS with the trust root and the
//! optional client certificate of [`ClientTls`]. A failed handshake surfaces
//! as a transport error deep in the error chain, either when connecting or
//! at the first call (with TLS 1.3 the server rejects a client certificate
//! after the client has finished its side of the handshake). The
//! `tls_error` module turns the known causes into an error that names the
//! file to pass.

use std::future::Future;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use xmppload_proto::PROTOCOL_VERSION;
use xmppload_proto::auth::{AttachToken, AuthToken, TOKEN_ENV};
use xmppload_proto::tls::ClientTls;
use xmppload_proto::v1::bot_agent_client::BotAgentClient;
use xmppload_proto::v1::monitor_client::MonitorClient;
use xmppload_proto::v1::{ClockRequest, HelloRequest, HelloResponse};

use crate::clock::{self, ClockOffset};
use crate::results::run_info::PeerInfo;

mod tls_error;

/// Bound on reaching a peer; a peer on a healthy network responds within
/// milliseconds, so waiting longer only delays the error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Round trips used for each clock offset estimate.
const CLOCK_ROUNDS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("invalid {role} address `{address}`: {reason}")]
    Address {
        role: &'static str,
        address: String,
        reason: String,
    },
    #[error("cannot reach {role} at {address}: {reason}; check that it runs and listens there")]
    Unreachable {
        role: &'static str,
        address: String,
        reason: String,
    },
    #[error(
        "{role} at {address} rejected the coordinator as unauthenticated: {}; \
         pass the {role}'s token with --token-file PATH or {TOKEN_ENV}",
        status.message()
    )]
    Unauthenticated {
        role: &'static str,
        address: String,
        status: tonic::Status,
    },
    #[error("{role} at {address}: TLS failed: {problem}; {fix}")]
    Tls {
        role: &'static str,
        address: String,
        problem: String,
        fix: String,
    },
    #[error("{role} at {address} rejected the coordinator: {status}")]
    Rejected {
        role: &'static str,
        address: String,
        status: tonic::Status,
    },
}

/// Channel whose calls carry the shared token, when one is set.
pub type AuthChannel = InterceptedService<Channel, AttachToken>;

/// A connected bot agent.
#[derive(Clone)]
pub struct AgentPeer {
    pub info: PeerInfo,
    pub client: BotAgentClient<AuthChannel>,
    pub clock: ClockOffset,
}

impl AgentPeer {
    /// Measures the agent's clock offset again, the same way as at connect.
    pub async fn measure_clock(&self) -> Result<ClockOffset, tonic::Status> {
        estimate_offset(&self.client).await
    }
}

/// The connected monitor agent.
#[derive(Clone)]
pub struct MonitorPeer {
    pub info: PeerInfo,
    pub client: MonitorClient<AuthChannel>,
    pub clock: ClockOffset,
}

impl MonitorPeer {
    /// Measures the monitor's clock offset again, the same way as at connect.
    pub async fn measure_clock(&self) -> Result<ClockOffset, tonic::Status> {
        estimate_offset(&self.client).await
    }
}

/// Builds `Rejected`, or `Unauthenticated` when the peer rejected the token.
fn rejection(role: &'static str, address: &str, status: tonic::Status) -> PeerError {
    // The status's own text is "transport error" for a failed handshake;
    // the rustls error is in its sources.
    let chain = match std::error::Error::source(&status) {
        Some(source) => format!("{}: {}", status.message(), error_chain(source)),
        None => status.message().to_owned(),
    };
    if let Some(err) = tls_error::classify(role, address, &chain) {
        return err;
    }
    let address = address.to_string();
    if status.code() == tonic::Code::Unauthenticated {
        PeerError::Unauthenticated {
            role,
            address,
            status,
        }
    } else {
        PeerError::Rejected {
            role,
            address,
            status,
        }
    }
}

async fn channel(
    role: &'static str,
    address: &str,
    tls: Option<&ClientTls>,
) -> Result<Channel, PeerError> {
    let invalid = |reason: String| PeerError::Address {
        role,
        address: address.to_string(),
        reason,
    };
    let mut endpoint =
        Endpoint::from_shared(address.to_string()).map_err(|err| invalid(err.to_string()))?;
    if endpoint.uri().scheme_str() == Some("https") {
        let Some(tls) = tls else {
            return Err(invalid(format!(
                "an https:// address needs the CA that signed the {role}'s certificate: \
                 pass --ca PATH, or use http:// for a {role} without --tls-cert"
            )));
        };
        endpoint = endpoint
            .tls_config(tls.config())
            .map_err(|err| invalid(error_chain(&err)))?;
    }

    endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|err| {
            let reason = error_chain(&err);
            match tls_error::classify(role, address, &reason) {
                Some(tls_error) => tls_error,
                None => PeerError::Unreachable {
                    role,
                    address: address.to_string(),
                    reason,
                },
            }
        })
}

fn hello_request() -> HelloRequest {
    HelloRequest {
        protocol_version: PROTOCOL_VERSION,
        coordinator: hostname(),
    }
}

fn peer_info(address: &str, hello: HelloResponse, clock: ClockOffset) -> PeerInfo {
    PeerInfo {
        name: hello.name,
        address: address.to_string(),
        version: hello.version,
        cores: hello.cores,
        fd_limit: hello.fd_limit,
        source_addresses: hello.source_addresses,
        ports_per_destination: hello.ports_per_destination,
        max_bots: hello.max_bots,
        running_bots: hello.running_bots,
        reserved_descriptors: hello.reserved_descriptors,
        max_connect_rate: hello.max_connect_rate,
        clock_offset_micros: clock.offset_micros,
        clock_uncertainty_micros: clock.uncertainty_micros,
    }
}

/// The two calls that every peer serves, so one greeting works for both kinds.
trait PeerClient: Clone + Send {
    fn hello(
        &mut self,
        request: HelloRequest,
    ) -> impl Future<Output = Result<HelloResponse, tonic::Status>> + Send;

    /// Reads the peer's clock in Unix microseconds.
    fn clock(&mut self) -> impl Future<Output = Result<i64, tonic::Status>> + Send;
}

/// Estimates a peer's clock offset from the best of [`CLOCK_ROUNDS`] round
/// trips.
async fn estimate_offset<C: PeerClient>(client: &C) -> Result<ClockOffset, tonic::Status> {
    clock::estimate(CLOCK_ROUNDS, || {
        let mut client = client.clone();
        async move { client.clock().await }
    })
    .await
}

impl PeerClient for BotAgentClient<AuthChannel> {
    async fn hello(&mut self, request: HelloRequest) -> Result<HelloResponse, tonic::Status> {
        Ok(BotAgentClient::hello(self, request).await?.into_inner())
    }

    async fn clock(&mut self) -> Result<i64, tonic::Status> {
        Ok(BotAgentClient::clock(self, ClockRequest {})
            .await?
            .into_inner()
            .unix_micros)
    }
}

impl PeerClient for MonitorClient<AuthChannel> {
    async fn hello(&mut self, request: HelloRequest) -> Result<HelloResponse, tonic::Status> {
        Ok(MonitorClient::hello(self, request).await?.into_inner())
    }

    async fn clock(&mut self) -> Result<i64, tonic::Status> {
        Ok(MonitorClient::clock(self, ClockRequest {})
            .await?
            .into_inner()
            .unix_micros)
    }
}

/// Greets a peer with `Hello`, checks its protocol version and measures its clock.
async fn greet<C: PeerClient>(
    role: &'static str,
    address: &str,
    client: &mut C,
) -> Result<(PeerInfo, ClockOffset), PeerError> {
    let rejected = |status| rejection(role, address, status);

    let hello = client.hello(hello_request()).await.map_err(rejected)?;
    check_peer_version(role, address, hello.protocol_version)?;

    let clock = estimate_offset(&*client).await.map_err(rejected)?;

    Ok((peer_info(address, hello, clock), clock))
}

/// Connects to a bot agent, checks its protocol version and measures its clock.
pub async fn connect_agent(
    address: &str,
    token: Option<&AuthToken>,
    tls: Option<&ClientTls>,
) -> Result<AgentPeer, PeerError> {
    const ROLE: &str = "bot agent";
    let channel = channel(ROLE, address, tls).await?;
    let mut client = BotAgentClient::with_interceptor(channel, AttachToken::new(token));
    let (info, clock) = greet(ROLE, address, &mut client).await?;
    Ok(AgentPeer {
        info,
        client,
        clock,
    })
}

/// Connects to the monitor agent, checks its protocol version and measures its clock.
pub async fn connect_monitor(
    address: &str,
    token: Option<&AuthToken>,
    tls: Option<&ClientTls>,
) -> Result<MonitorPeer, PeerError> {
    const ROLE: &str = "monitor agent";
    let channel = channel(ROLE, address, tls).await?;
    let mut client = MonitorClient::with_interceptor(channel, AttachToken::new(token));
    let (info, clock) = greet(ROLE, address, &mut client).await?;
    Ok(MonitorPeer {
        info,
        client,
        clock,
    })
}

fn check_peer_version(role: &'static str, address: &str, version: u32) -> Result<(), PeerError> {
    xmppload_proto::check_version(version).map_err(|status| PeerError::Rejected {
        role,
        address: address.to_string(),
        status,
    })
}

/// Joins an error and its sources into one line; tonic's transport error
/// alone reads only "transport error".
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // hyper and tonic wrap errors in layers that repeat their cause's
        // message; print each message once.
        let message = cause.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|layer| layer as _)
        }
    }

    /// Each message of the chain appears once, in order.
    #[test]
    fn error_chain_skips_repeats() {
        let err = Layer(
            "transport error",
            Some(Box::new(Layer(
                "tcp connect error",
                Some(Box::new(Layer(
                    "tcp connect error",
                    Some(Box::new(Layer("Connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            error_chain(&err),
            "transport error: tcp connect error: Connection refused"
        );
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "coordinator".to_string())
}
