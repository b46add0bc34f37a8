//! The `Monitor` gRPC service.
//!
//! `Watch` lifecycle:
//! 1. Validate the request into a [`WatchPlan`](crate::request::WatchPlan).
//! 2. Build a [`Sampler`], which takes the baseline readings, on the
//!    blocking pool because it reads `/proc`.
//! 3. Spawn a producer that samples once per interval and sends each batch
//!    into a bounded channel whose receiver is the response stream.
//! 4. The producer stops when a send fails (the client dropped the stream)
//!    or when the server shuts down, in which case the stream ends with
//!    `unavailable`.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::{Instrument, error, info, info_span, warn};
use xmppload_proto::v1::{self, monitor_server::Monitor};

use crate::openmetrics::{self, Endpoint};
use crate::os;
use crate::procfs;
use crate::request::parse_watch_request;
use crate::sampler::Sampler;

/// Batches buffered for a slow client. Past this the producer waits for
/// room, and because ticks are delayed rather than bunched, a slow client
/// gets fewer batches, each still covering the time since the previous one.
const BATCH_BUFFER: usize = 8;

type BatchResult = Result<v1::SampleBatch, Status>;

/// Implementation of the `Monitor` service.
pub(crate) struct MonitorService {
    name: String,
    /// Cancelled when the server shuts down; ends every running watch.
    shutdown: CancellationToken,
}

impl MonitorService {
    pub(crate) fn new(name: String, shutdown: CancellationToken) -> Self {
        Self { name, shutdown }
    }
}

#[tonic::async_trait]
impl Monitor for MonitorService {
    async fn hello(
        &self,
        request: Request<v1::HelloRequest>,
    ) -> Result<Response<v1::HelloResponse>, Status> {
        let request = request.into_inner();
        xmppload_proto::check_version(request.protocol_version)?;
        info!(coordinator = %request.coordinator, "hello from coordinator");

        let cores = procfs::read_host_stat()
            .map_err(|err| Status::internal(format!("failed to count CPU cores: {err}")))?
            .cores;
        let fd_limit = os::fd_soft_limit().map_err(|err| Status::internal(err.to_string()))?;

        Ok(Response::new(v1::HelloResponse {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            cores,
            fd_limit,
            // The bot capacity fields do not apply to the monitor.
            ..v1::HelloResponse::default()
        }))
    }

    async fn clock(
        &self,
        _request: Request<v1::ClockRequest>,
    ) -> Result<Response<v1::ClockResponse>, Status> {
        Ok(Response::new(v1::ClockResponse {
            unix_micros: xmppload_proto::unix_micros_now(),
        }))
    }

    type WatchStream = ReceiverStream<BatchResult>;

    async fn watch(
        &self,
        request: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let peer = request.remote_addr();
        let plan = parse_watch_request(request.into_inner())?;

        let span = info_span!(
            "watch",
            peer = ?peer,
            interval_ms = plan.interval.as_millis() as u64,
            processes = plan.selectors.len(),
        );
        let sampler = tokio::task::spawn_blocking(move || Sampler::new(plan.selectors))
            .await
            .map_err(|err| Status::internal(format!("sampler setup task failed: {err}")))?
            .map_err(|err| {
                error!(parent: &span, %err, "failed to start sampler");
                Status::internal(err.to_string())
            })?;

        let server_metrics = plan.openmetrics.map(ServerMetricsReader::new);
        let (sender, receiver) = mpsc::channel(BATCH_BUFFER);
        let producer = produce(
            sampler,
            server_metrics,
            plan.interval,
            sender,
            self.shutdown.clone(),
        );
        tokio::spawn(producer.instrument(span));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// Reason a producer stopped, logged in its last line.
#[derive(Debug, Clone, Copy)]
enum StopReason {
    ClientLeft,
    Shutdown,
    SamplerFailed,
}

/// Samples once per interval and sends the batches until the client goes or
/// the server shuts down.
async fn produce(
    mut sampler: Sampler,
    mut server_metrics: Option<ServerMetricsReader>,
    interval: Duration,
    sender: mpsc::Sender<BatchResult>,
    shutdown: CancellationToken,
) {
    // The sampler took its baseline just now, so the first batch waits one
    // interval; an immediate first tick would measure an almost empty window.
    let mut ticker = time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    info!("watch started");

    let reason = loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = sender.closed() => break StopReason::ClientLeft,
            _ = shutdown.cancelled() => break StopReason::Shutdown,
        }

        // Sampling reads /proc and may scan every process, so it runs on the
        // blocking pool. The sampler moves there and back.
        let sampled = tokio::task::spawn_blocking(move || {
            let batch = sampler.sample();
            (sampler, batch)
        })
        .await;
        let batch = match sampled {
            Ok((returned, batch)) => {
                sampler = returned;
                batch
            }
            Err(err) => {
                error!(%err, "sampling task failed; ending the watch");
                let _ = sender.try_send(Err(Status::internal(format!("sampling failed: {err}"))));
                break StopReason::SamplerFailed;
            }
        };

        let mut batch = v1::SampleBatch::from(batch);
        if let Some(reader) = server_metrics.as_mut() {
            reader.read_into(&mut batch, interval).await;
        }

        // A full buffer makes the send wait, so shutdown must be able to
        // interrupt it.
        tokio::select! {
            sent = sender.send(Ok(batch)) => {
                if sent.is_err() {
                    break StopReason::ClientLeft;
                }
            }
            _ = shutdown.cancelled() => break StopReason::Shutdown,
        }
    };

    if let StopReason::Shutdown = reason {
        // Best effort: with a full buffer the client sees the stream end
        // without this status.
        let _ = sender.try_send(Err(Status::unavailable("monitor agent is shutting down")));
    }
    info!(?reason, "watch ended");
}

/// Reads the server's metrics endpoint for each batch and logs a failure
/// once per outage instead of once per batch.
struct ServerMetricsReader {
    endpoint: Endpoint,
    failing: bool,
}

impl ServerMetricsReader {
    fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            failing: false,
        }
    }

    /// Adds the endpoint's samples, or the reason they are missing, to
    /// `batch`. The read may take up to half an interval, so a slow
    /// endpoint delays the next tick at most that much.
    async fn read_into(&mut self, batch: &mut v1::SampleBatch, interval: Duration) {
        match openmetrics::read(&self.endpoint, interval / 2).await {
            Ok(metrics) => {
                if self.failing {
                    info!(url = %self.endpoint.uri, "server metrics readable again");
                    self.failing = false;
                }
                batch.server_metrics = metrics;
            }
            Err(err) => {
                if !self.failing {
                    warn!(url = %self.endpoint.uri, %err, "failed to read server metrics; retrying every batch");
                    self.failing = true;
                }
                batch.server_metrics_error = err;
            }
        }
    }
}
