//! Live status of a run for the person watching it: phase, bots, messages per second,
//! server CPU.
//!
//! On a terminal this is one live status line. Elsewhere (CI, a log file)
//! the same facts go out as a log line every few seconds.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;
use xmppload_proto::v1::GroupCounters;

use crate::metrics::LiveMetrics;

/// How often plain log lines are written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    phase: String,
    /// Latest counters per (agent, group).
    counters: HashMap<(String, String), GroupCounters>,
    /// Latest CPU % of one core per monitored process.
    cpu: HashMap<String, f64>,
}

/// Shared view of the run, updated by the stream tasks.
#[derive(Clone, Default)]
pub struct Progress {
    /// Guards the latest values; held only to copy a few numbers in or out.
    state: Arc<Mutex<State>>,
    /// The same run for Prometheus, with every series kept.
    metrics: LiveMetrics,
}

/// Totals over every agent and group at one moment.
#[derive(Debug, Default, Clone, PartialEq)]
struct Snapshot {
    phase: String,
    connected: u64,
    joined: u64,
    received: u64,
    errors: u64,
    cpu: Vec<(String, f64)>,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_phase(&self, phase: impl Into<String>) {
        let phase = phase.into();
        self.metrics.set_phase(&phase);
        self.lock().phase = phase;
    }

    pub fn metrics(&self) -> &LiveMetrics {
        &self.metrics
    }

    pub fn update_counters(&self, agent: &str, group: &str, counters: &GroupCounters) {
        self.metrics.record_counters(agent, group, counters);
        self.lock()
            .counters
            .insert((agent.to_string(), group.to_string()), counters.clone());
    }

    /// Drops the counters of a slice that ended, so its bots no longer count.
    pub fn remove_counters(&self, agent: &str, group: &str) {
        self.lock()
            .counters
            .remove(&(agent.to_string(), group.to_string()));
    }

    pub fn update_cpu(&self, process: &str, cpu_percent: f64) {
        self.lock().cpu.insert(process.to_string(), cpu_percent);
    }

    fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        let mut snapshot = Snapshot {
            phase: state.phase.clone(),
            ..Snapshot::default()
        };
        for counters in state.counters.values() {
            snapshot.connected += u64::from(counters.connected);
            snapshot.joined += u64::from(counters.joined);
            snapshot.received += counters.messages_received;
            snapshot.errors += counters.errors.iter().map(|error| error.count).sum::<u64>();
        }
        snapshot.cpu = state
            .cpu
            .iter()
            .map(|(name, cpu)| (name.clone(), *cpu))
            .collect();
        snapshot.cpu.sort_by(|a, b| a.0.cmp(&b.0));
        snapshot
    }

    /// Shows progress until `done` is cancelled: a live line on a terminal,
    /// log lines elsewhere.
    pub async fn display(self, done: CancellationToken) {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });

        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let mut previous_received = 0;
        let mut since_log = Duration::ZERO;
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let snapshot = self.snapshot();
            let per_second = snapshot.received.saturating_sub(previous_received);
            previous_received = snapshot.received;
            let cpu: Vec<String> = snapshot
                .cpu
                .iter()
                .map(|(name, cpu)| format!("{name} {cpu:.0}%"))
                .collect();

            match &bar {
                Some(bar) => {
                    bar.set_message(format!(
                        "{} | connected {} joined {} | {} msg/s received | errors {} | cpu {}",
                        snapshot.phase,
                        snapshot.connected,
                        snapshot.joined,
                        per_second,
                        snapshot.errors,
                        cpu.join(", ")
                    ));
                    bar.tick();
                }
                None => {
                    since_log += Duration::from_secs(1);
                    if since_log >= LOG_EVERY {
                        since_log = Duration::ZERO;
                        tracing::info!(
                            phase = %snapshot.phase,
                            connected = snapshot.connected,
                            joined = snapshot.joined,
                            received_per_s = per_second,
                            errors = snapshot.errors,
                            cpu = %cpu.join(", "),
                            "progress"
                        );
                    }
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmppload_proto::v1::ErrorCount;

    /// The snapshot sums gauges and errors over agents and groups.
    #[test]
    fn snapshot_sums_over_agents() {
        let progress = Progress::default();
        let counters = GroupCounters {
            connected: 3,
            joined: 2,
            messages_received: 10,
            errors: vec![ErrorCount {
                kind: "timeout".into(),
                count: 1,
            }],
            ..GroupCounters::default()
        };
        progress.update_counters("a1", "ws", &counters);
        progress.update_counters("a2", "ws", &counters);
        progress.update_cpu("prosody", 42.0);
        progress.set_phase("ws");

        let snapshot = progress.snapshot();
        assert_eq!(snapshot.connected, 6);
        assert_eq!(snapshot.joined, 4);
        assert_eq!(snapshot.received, 20);
        assert_eq!(snapshot.errors, 2);
        assert_eq!(snapshot.cpu, vec![("prosody".to_string(), 42.0)]);
    }
}
