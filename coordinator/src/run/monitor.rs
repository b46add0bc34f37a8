//! The monitor stream: samples of the watched processes into `monitor.csv`.
//!
//! When the stream breaks off, the coordinator records the monitor as lost
//! in `run.json` and greets it again every [`RETRY_AFTER`] until the run
//! ends. The greeting measures the clock offset anew, because a restarted
//! monitor may run on a host whose clock moved. The first sample after
//! the loss records the return, so the outage spans exactly the time
//! without samples.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use xmppload_proto::auth::AuthToken;
use xmppload_proto::tls::ClientTls;
use xmppload_proto::v1::{ProcessSelector, SampleBatch, WatchRequest, process_selector};
use xmppload_proto::{PROTOCOL_VERSION, unix_micros_now};

use super::{clocks, seconds_since};
use crate::peers::{self, MonitorPeer};
use crate::progress::Progress;
use crate::results::run_info::{PeerEvent, PeerEventKind, PeerRole};
use crate::results::{ResultsDir, RunRecord};
use crate::scenario::{MonitorSpec, ProcessTarget};

/// Pause before greeting a monitor whose stream broke off again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Bound on one greeting: connecting, `Hello` and the clock round trips.
const GREET_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed greetings in a row between two warnings; the others are logged
/// at debug level, because a monitor that stays down fails one a second.
const WARN_EVERY: u32 = 30;

/// Streams samples until `run_end` is cancelled, greeting the monitor again
/// whenever the stream breaks off, so a monitor restart costs only the
/// samples it missed.
#[allow(clippy::too_many_arguments)]
pub async fn stream(
    mut peer: MonitorPeer,
    spec: MonitorSpec,
    results: Arc<ResultsDir>,
    started: i64,
    progress: Progress,
    run_end: CancellationToken,
    record: Arc<RunRecord>,
    token: Option<AuthToken>,
    tls: Option<ClientTls>,
    clock_refresh: Duration,
) {
    let request = WatchRequest {
        protocol_version: PROTOCOL_VERSION,
        processes: spec.processes.iter().map(selector).collect(),
        interval_ms: spec.interval_ms,
        openmetrics_url: spec.openmetrics_url.clone().unwrap_or_default(),
        openmetrics_names: spec.openmetrics_names.clone(),
    };
    // True from a loss until the first sample after it.
    let mut lost = false;

    let mut server_warnings = ServerMetricsWarnings::default();
    while !run_end.is_cancelled() {
        let mut client = peer.client.clone();
        let response = tokio::select! {
            _ = run_end.cancelled() => return,
            response = client.watch(request.clone()) => response,
        };
        let reason = match response {
            Ok(response) => {
                info!(monitor = %peer.info.name, "monitor stream started");
                let mut stream = response.into_inner();
                let mut next_refresh = tokio::time::Instant::now() + clock_refresh;
                loop {
                    let message = tokio::select! {
                        _ = run_end.cancelled() => return,
                        _ = tokio::time::sleep_until(next_refresh) => {
                            // Samples arrive as they are taken, so the latest
                            // estimate is the one nearest to each of them.
                            refresh_clock(&mut peer, &results, started).await;
                            next_refresh += clock_refresh;
                            continue;
                        }
                        message = stream.message() => message,
                    };
                    match message {
                        Ok(Some(batch)) => {
                            if lost {
                                lost = false;
                                record_return(&peer, &batch, &record, started);
                            }
                            write_batch(&peer, &batch, &results, started, &progress);
                            if spec.openmetrics_url.is_some() {
                                write_server_metrics(
                                    &peer,
                                    &batch,
                                    &results,
                                    started,
                                    &mut server_warnings,
                                );
                            }
                            progress
                                .metrics()
                                .record_batch(&batch, spec.openmetrics_url.is_some());
                        }
                        Ok(None) => {
                            warn!(monitor = %peer.info.name, "monitor ended its stream");
                            break "the monitor ended its stream".to_string();
                        }
                        Err(status) => {
                            warn!(monitor = %peer.info.name, %status, "monitor stream broke off");
                            break format!("stream broke off: {}", status.message());
                        }
                    }
                }
            }
            Err(status) => {
                warn!(monitor = %peer.info.name, %status, "monitor rejected the watch request");
                format!("rejected the watch request: {}", status.message())
            }
        };
        if !lost {
            lost = true;
            record.add_peer_event(PeerEvent {
                t_s: seconds_since(started, unix_micros_now()),
                role: PeerRole::Monitor,
                peer: peer.info.name.clone(),
                kind: PeerEventKind::Lost,
                reason,
                returned_as: None,
            });
        }

        match greet_again(&peer, &spec.address, token.as_ref(), tls.as_ref(), &run_end).await {
            Some(greeted) => peer = greeted,
            None => return,
        }
    }
}

/// Greets the monitor at `address` every [`RETRY_AFTER`] until it responds,
/// and returns `None` when the run ends first.
async fn greet_again(
    lost: &MonitorPeer,
    address: &str,
    token: Option<&AuthToken>,
    tls: Option<&ClientTls>,
    run_end: &CancellationToken,
) -> Option<MonitorPeer> {
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            _ = run_end.cancelled() => return None,
            _ = tokio::time::sleep(RETRY_AFTER) => {}
        }
        let greeting = tokio::select! {
            _ = run_end.cancelled() => return None,
            greeting = tokio::time::timeout(GREET_TIMEOUT, peers::connect_monitor(address, token, tls)) => greeting,
        };
        let err = match greeting {
            Ok(Ok(mut peer)) => {
                // Keep the first name, so every event of this monitor names the same peer.
                peer.info.name = lost.info.name.clone();
                info!(
                    monitor = %peer.info.name,
                    %address,
                    offset_ms = peer.clock.offset_micros as f64 / 1000.0,
                    uncertainty_ms = peer.clock.uncertainty_micros as f64 / 1000.0,
                    "monitor responds again"
                );
                return Some(peer);
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("timed out after {} ms", GREET_TIMEOUT.as_millis()),
        };
        if failures.is_multiple_of(WARN_EVERY) {
            warn!(monitor = %lost.info.name, %address, failures, %err, "lost monitor does not respond; retrying every second");
        } else {
            debug!(monitor = %lost.info.name, %address, failures, %err, "lost monitor does not respond");
        }
        failures += 1;
    }
}

/// Measures the monitor's clock offset again and records it in `clock.csv`;
/// a failed measurement keeps the earlier estimate.
async fn refresh_clock(peer: &mut MonitorPeer, results: &ResultsDir, started: i64) {
    match peer.measure_clock().await {
        Ok(clock) => {
            peer.clock = clock;
            if let Err(err) = clocks::record(results, started, &peer.info.name, "monitor", clock) {
                warn!(monitor = %peer.info.name, %err, "failed to write a clock.csv row");
            }
        }
        Err(status) => {
            warn!(monitor = %peer.info.name, %status, "failed to measure the monitor's clock offset again; keeping the earlier estimate");
        }
    }
}

/// Records the monitor's return at the time of its first sample after a loss.
fn record_return(peer: &MonitorPeer, batch: &SampleBatch, record: &RunRecord, started: i64) {
    let t_s = seconds_since(started, peer.clock.to_local(batch.unix_micros));
    info!(monitor = %peer.info.name, t_s, "monitor returned");
    record.add_peer_event(PeerEvent {
        t_s,
        role: PeerRole::Monitor,
        peer: peer.info.name.clone(),
        kind: PeerEventKind::Returned,
        reason: String::new(),
        returned_as: Some(peer.info.clone()),
    });
}

fn selector(process: &crate::scenario::ProcessSpec) -> ProcessSelector {
    let target = match &process.target {
        ProcessTarget::Pidfile(path) => process_selector::Target::Pidfile(path.clone()),
        ProcessTarget::Pid(pid) => process_selector::Target::Pid(*pid),
        ProcessTarget::CmdlineContains(pattern) => {
            process_selector::Target::CmdlineContains(pattern.clone())
        }
    };
    ProcessSelector {
        name: process.name.clone(),
        target: Some(target),
    }
}

fn write_batch(
    peer: &MonitorPeer,
    batch: &SampleBatch,
    results: &ResultsDir,
    started: i64,
    progress: &Progress,
) {
    let t_s = format!(
        "{:.3}",
        seconds_since(started, peer.clock.to_local(batch.unix_micros))
    );
    for sample in &batch.processes {
        let row = [
            t_s.clone(),
            sample.name.clone(),
            sample.pid.to_string(),
            format!("{:.2}", sample.cpu_percent),
            sample.rss_bytes.to_string(),
            format!("{:.2}", batch.host_cpu_percent),
            sample.gap.to_string(),
        ];
        if let Err(err) = results.append_monitor(row) {
            warn!(monitor = %peer.info.name, %err, "cannot write a monitor row");
        }
        progress.update_cpu(&sample.name, sample.cpu_percent);
    }
}

/// Counts batches without server metrics, so that the log gets one line
/// when an outage starts and one with the missed batches when it ends.
#[derive(Default)]
struct ServerMetricsWarnings {
    missed: u64,
}

fn write_server_metrics(
    peer: &MonitorPeer,
    batch: &SampleBatch,
    results: &ResultsDir,
    started: i64,
    warnings: &mut ServerMetricsWarnings,
) {
    if !batch.server_metrics_error.is_empty() {
        if warnings.missed == 0 {
            warn!(monitor = %peer.info.name, err = %batch.server_metrics_error, "monitor failed to read the server's metrics");
        }
        warnings.missed += 1;
        return;
    }
    if warnings.missed > 0 {
        info!(monitor = %peer.info.name, missed_batches = warnings.missed, "server metrics readable again");
        warnings.missed = 0;
    }

    let t_s = format!(
        "{:.3}",
        seconds_since(started, peer.clock.to_local(batch.unix_micros))
    );
    for metric in &batch.server_metrics {
        let labels: Vec<String> = metric
            .labels
            .iter()
            .map(|label| format!("{}={}", label.name, label.value))
            .collect();
        let row = [
            t_s.clone(),
            metric.name.clone(),
            labels.join(";"),
            metric.value.to_string(),
        ];
        if let Err(err) = results.append_server_metric(row) {
            warn!(monitor = %peer.info.name, %err, "failed to write a server metrics row");
        }
    }
}
