//! Monitor agent: streams CPU and memory samples of chosen processes over
//! gRPC, so a load test can show what the XMPP server spent while under load.
//!
//! Layout:
//! - [`procfs`] parses `/proc/PID/stat`, `/proc/PID/statm`, `/proc/stat` and
//!   pidfiles.
//! - [`selector`] turns a selector (pidfile, pid or command-line substring)
//!   into the process it means at this moment.
//! - [`cpu`] turns cumulative tick counters into percentages and decides
//!   where a series has a gap (a restart or a missing process).
//! - [`sampler`] combines these into one [`Batch`] per call; it needs no
//!   gRPC and is what the tests drive directly.
//! - [`openmetrics`] reads the server's own metrics endpoint, when a watch
//!   names one.
//! - [`request`] validates `WatchRequest`; the private `service` module
//!   implements the `Monitor` RPCs and [`serve`] runs them.
//!
//! Linux only: everything is read from `/proc`. Library errors are one
//! `thiserror` enum, [`MonitorError`]; a process that cannot be found is not
//! an error but a sample with `pid = 0` and `gap = true`.

pub mod cpu;
mod error;
pub mod openmetrics;
pub mod os;
pub mod procfs;
pub mod request;
pub mod sampler;
pub mod selector;
mod service;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::info;
use xmppload_proto::auth::{AuthToken, RequireToken, warn_if_unprotected};
use xmppload_proto::tls::ServerTls;
use xmppload_proto::v1::monitor_server::MonitorServer;

pub use error::MonitorError;
pub use sampler::{Batch, Sample, Sampler};
pub use selector::{Selector, Target};

/// Settings of a monitor agent.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Name reported in `Hello`, usually the host name.
    pub name: String,
    /// Shared secret every call must carry; `None` accepts any caller.
    pub token: Option<AuthToken>,
    /// Server certificate, and the client CA for mutual TLS; `None` serves
    /// plain HTTP/2.
    pub tls: Option<ServerTls>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            name: "monitor".to_owned(),
            token: None,
            tls: None,
        }
    }
}

/// Serves the `Monitor` gRPC service on `listener` until `shutdown` is
/// cancelled.
///
/// Cancelling also ends every running `Watch` stream, with an `unavailable`
/// status unless the client has stopped reading. The server then waits for
/// those responses to finish and returns.
pub async fn serve(
    listener: TcpListener,
    config: MonitorConfig,
    shutdown: CancellationToken,
) -> Result<(), MonitorError> {
    let token = config.token.is_some();
    let tls = config.tls.is_some();
    let client_cert_required = config
        .tls
        .as_ref()
        .is_some_and(ServerTls::requires_client_cert);
    match listener.local_addr() {
        Ok(address) => {
            info!(
                listen = %address,
                name = %config.name,
                token,
                tls,
                client_cert_required,
                "monitor agent serving"
            );
            warn_if_unprotected(
                Some(address),
                config.token.as_ref(),
                config.tls.as_ref(),
                "read the CPU and memory use of any process on this host",
            );
        }
        Err(err) => {
            info!(%err, name = %config.name, token, "monitor agent serving on an unknown address")
        }
    }

    let auth = RequireToken::new(config.token);
    let mut server = Server::builder();
    if let Some(tls) = &config.tls {
        // NOTE: tonic logs a rejected handshake at debug level only (target
        // `tonic`). The coordinator reports the cause on its side.
        server = server.tls_config(tls.config())?;
    }
    let service = service::MonitorService::new(config.name, shutdown.clone());
    // Batches are small and periodic, so send them at once instead of
    // letting Nagle's algorithm hold them back.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    server
        .add_service(MonitorServer::with_interceptor(service, auth))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;

    info!("monitor agent stopped");
    Ok(())
}
