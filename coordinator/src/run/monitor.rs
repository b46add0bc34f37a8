//! The monitor stream: samples of the watched processes into `monitor.csv`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xmppload_proto::PROTOCOL_VERSION;
use xmppload_proto::v1::{ProcessSelector, SampleBatch, WatchRequest, process_selector};

use super::seconds_since;
use crate::peers::MonitorPeer;
use crate::progress::Progress;
use crate::results::ResultsDir;
use crate::scenario::{MonitorSpec, ProcessTarget};

/// Pause before asking a monitor whose stream broke off to stream again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Streams samples until `run_end` is cancelled, asking again whenever the
/// stream breaks off, so a monitor restart costs only the samples it missed.
pub async fn stream(
    peer: MonitorPeer,
    spec: MonitorSpec,
    results: Arc<ResultsDir>,
    started: i64,
    progress: Progress,
    run_end: CancellationToken,
) {
    let request = WatchRequest {
        protocol_version: PROTOCOL_VERSION,
        processes: spec.processes.iter().map(selector).collect(),
        interval_ms: spec.interval_ms,
        openmetrics_url: spec.openmetrics_url.clone().unwrap_or_default(),
        openmetrics_names: spec.openmetrics_names.clone(),
    };

    let mut server_warnings = ServerMetricsWarnings::default();
    while !run_end.is_cancelled() {
        let mut client = peer.client.clone();
        let response = tokio::select! {
            _ = run_end.cancelled() => return,
            response = client.watch(request.clone()) => response,
        };
        match response {
            Ok(response) => {
                info!(monitor = %peer.info.name, "monitor stream started");
                let mut stream = response.into_inner();
                loop {
                    let message = tokio::select! {
                        _ = run_end.cancelled() => return,
                        message = stream.message() => message,
                    };
                    match message {
                        Ok(Some(batch)) => {
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
                            break;
                        }
                        Err(status) => {
                            warn!(monitor = %peer.info.name, %status, "monitor stream broke off");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                warn!(monitor = %peer.info.name, %status, "monitor rejected the watch request")
            }
        }
        tokio::select! {
            _ = run_end.cancelled() => return,
            _ = tokio::time::sleep(RETRY_AFTER) => {}
        }
    }
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
