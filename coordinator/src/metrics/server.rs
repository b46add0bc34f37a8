//! The HTTP side: `GET /metrics` on the address given to `--metrics-listen`.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::LiveMetrics;

/// Content type of the Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A bound but not yet serving metrics listener. Binding comes first, so a
/// taken or invalid address fails the run before any peer is contacted.
pub struct MetricsServer {
    listener: TcpListener,
}

/// Binds the metrics listener.
pub async fn bind(address: SocketAddr) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(address).await?;
    Ok(MetricsServer { listener })
}

impl MetricsServer {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `/metrics` from `metrics` until `shutdown` is cancelled.
    pub async fn serve(self, metrics: LiveMetrics, shutdown: CancellationToken) {
        let address = self.listener.local_addr().ok();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()) }
            }),
        );
        info!(listen = ?address, "serving live metrics at /metrics");
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        match served {
            Ok(()) => info!(listen = ?address, "metrics server stopped"),
            Err(err) => warn!(listen = ?address, %err, "metrics server failed"),
        }
    }
}
