//! Live metrics of a run for Prometheus, served by `coordinator run
//! --metrics-listen ADDR` at `/metrics`.
//!
//! The stream tasks in [`crate::run`] record each agent report and monitor
//! batch here as it arrives (through [`crate::progress::Progress`]), and
//! every scrape renders the latest values in the Prometheus text
//! exposition format (version 0.0.4). Counters are the agents' cumulative
//! totals, so `rate()` over them gives messages per second.

mod exposition;
mod server;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use xmppload_proto::v1::{GroupCounters, SampleBatch, ServerMetric};

pub use server::{MetricsServer, bind};

/// Latest state of one monitored process.
#[derive(Debug, Clone)]
struct ProcessState {
    pid: u32,
    cpu_percent: f64,
    rss_bytes: u64,
}

#[derive(Default)]
struct State {
    phase: String,
    steps_started: u64,
    /// Latest counters per (group, agent); kept after a slice ends, so the
    /// cumulative counters never go back.
    counters: BTreeMap<(String, String), GroupCounters>,
    /// Send-to-reflection latency of each group, merged over agents and
    /// reports since the group started.
    latency: BTreeMap<String, Histogram<u64>>,
    processes: BTreeMap<String, ProcessState>,
    host_cpu_percent: Option<f64>,
    /// Samples of the server's own metrics from the latest batch.
    server_metrics: Vec<ServerMetric>,
    /// Whether the latest batch carried server metrics; `None` before the
    /// first batch or when none were requested.
    server_metrics_up: Option<bool>,
}

/// Shared registry of the live metrics, cheap to clone.
#[derive(Clone, Default)]
pub struct LiveMetrics {
    /// Guards the latest values; held only to copy numbers in or to render.
    state: Arc<Mutex<State>>,
}

impl LiveMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the start of a timeline step.
    pub fn set_phase(&self, phase: &str) {
        let mut state = self.lock();
        state.phase = phase.to_string();
        state.steps_started += 1;
    }

    pub fn record_counters(&self, agent: &str, group: &str, counters: &GroupCounters) {
        self.lock()
            .counters
            .insert((group.to_string(), agent.to_string()), counters.clone());
    }

    /// Adds one report's latency histogram to its group's merged one.
    pub fn record_latency(&self, group: &str, histogram: &Histogram<u64>) {
        let mut state = self.lock();
        match state.latency.get_mut(group) {
            Some(merged) => {
                // Every agent builds its histograms with the same bounds,
                // so adding fails only with an agent of another version.
                if let Err(err) = merged.add(histogram) {
                    tracing::warn!(group, ?err, "cannot merge a latency histogram");
                }
            }
            None => {
                state.latency.insert(group.to_string(), histogram.clone());
            }
        }
    }

    pub fn record_batch(&self, batch: &SampleBatch, server_metrics_requested: bool) {
        let mut state = self.lock();
        state.host_cpu_percent = Some(batch.host_cpu_percent);
        for sample in &batch.processes {
            state.processes.insert(
                sample.name.clone(),
                ProcessState {
                    pid: sample.pid,
                    cpu_percent: sample.cpu_percent,
                    rss_bytes: sample.rss_bytes,
                },
            );
        }
        if server_metrics_requested {
            let up = batch.server_metrics_error.is_empty();
            state.server_metrics_up = Some(up);
            if up {
                state.server_metrics = batch.server_metrics.clone();
            }
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        exposition::render(&self.lock())
    }
}
