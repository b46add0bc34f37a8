//! Time series drawn in the graphs, derived from the rows of a results folder.

use std::collections::BTreeMap;

use crate::report::RunData;
use crate::report::summary::{increment, rows_by_agent};

/// CPU of one monitored process, split where the series has gaps.
#[derive(Debug, Clone)]
pub struct ProcessSeries {
    pub process: String,
    /// Runs of consecutive valid samples as `(t_s, % of one core)`.
    pub segments: Vec<Vec<(f64, f64)>>,
    /// Times of samples that are gaps or found no process.
    pub gaps: Vec<f64>,
}

/// A per-group line over time.
#[derive(Debug, Clone)]
pub struct GroupSeries {
    pub group: String,
    pub points: Vec<(f64, f64)>,
}

/// Messages per second of one group, summed over agents, sampled each second.
#[derive(Debug, Clone)]
pub struct GroupRates {
    pub group: String,
    pub sent: Vec<(f64, f64)>,
    pub received: Vec<(f64, f64)>,
}

/// Splits each process's CPU samples into runs between gaps.
pub fn process_series(data: &RunData) -> Vec<ProcessSeries> {
    let mut all = Vec::new();
    for process in data.process_names() {
        let mut samples: Vec<_> = data
            .monitor
            .iter()
            .filter(|s| s.process == process)
            .collect();
        samples.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));

        let mut segments = Vec::new();
        let mut current = Vec::new();
        let mut gaps = Vec::new();
        for sample in samples {
            if sample.is_valid_cpu() {
                current.push((sample.t_s, sample.cpu_percent));
            } else {
                gaps.push(sample.t_s);
                if !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                }
            }
        }
        if !current.is_empty() {
            segments.push(current);
        }
        all.push(ProcessSeries {
            process,
            segments,
            gaps,
        });
    }
    all
}

/// Whole-host CPU, one point per sample batch, multiplied by `scale`.
pub fn host_series(data: &RunData, scale: f64) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = data
        .monitor
        .iter()
        .map(|s| (s.t_s, s.host_cpu_percent * scale))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.dedup_by(|a, b| a.0 == b.0);
    points
}

/// Connected bots of each group: at every report time, the sum over agents
/// of each agent's latest `connected` gauge at or before that time.
pub fn connected_series(data: &RunData) -> Vec<GroupSeries> {
    let mut all = Vec::new();
    for group in data.group_names() {
        let mut rows: Vec<_> = data.bots.iter().filter(|row| row.group == group).collect();
        rows.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));

        let mut latest: BTreeMap<&str, u32> = BTreeMap::new();
        let mut points: Vec<(f64, f64)> = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            latest.insert(row.agent.as_str(), row.connected);
            // Emit once all rows of this instant are in.
            let last_at_time = rows.get(index + 1).is_none_or(|next| next.t_s != row.t_s);
            if last_at_time {
                let total: u64 = latest.values().map(|&c| u64::from(c)).sum();
                points.push((row.t_s, total as f64));
            }
        }
        all.push(GroupSeries { group, points });
    }
    all
}

/// Messages per second of each group, sampled at every whole second.
///
/// Each agent's report at `t` covers the time since its previous report,
/// so its rate over that span is the counter increment divided by the span.
/// Summing those step functions at whole seconds, rather than binning
/// reports by second, avoids spikes when two reports of one agent jitter
/// into the same second.
pub fn rate_series(data: &RunData) -> Vec<GroupRates> {
    let mut all = Vec::new();
    for group in data.group_names() {
        let mut sent: BTreeMap<i64, f64> = BTreeMap::new();
        let mut received: BTreeMap<i64, f64> = BTreeMap::new();
        for rows in rows_by_agent(data, &group).into_values() {
            let mut previous: Option<(f64, u64, u64)> = None;
            for row in rows {
                let (start, sent_before, received_before) = match previous {
                    Some(previous) => previous,
                    None => (row.t_s - crate::report::summary::REPORT_INTERVAL_S, 0, 0),
                };
                previous = Some((row.t_s, row.messages_sent, row.messages_received));
                let span = row.t_s - start;
                if span <= 0.0 {
                    continue;
                }
                let sent_rate = increment(sent_before, row.messages_sent) as f64 / span;
                let received_rate = increment(received_before, row.messages_received) as f64 / span;
                // Whole seconds s with start < s <= t_s.
                let first = start.floor() as i64 + 1;
                let last = row.t_s.floor() as i64;
                for second in first..=last {
                    *sent.entry(second).or_default() += sent_rate;
                    *received.entry(second).or_default() += received_rate;
                }
            }
        }
        let points = |rates: BTreeMap<i64, f64>| -> Vec<(f64, f64)> {
            rates
                .into_iter()
                .map(|(s, rate)| (s as f64, rate))
                .collect()
        };
        all.push(GroupRates {
            group,
            sent: points(sent),
            received: points(received),
        });
    }
    all
}

/// Splits a series into runs of positive values, which a log axis can draw.
pub fn positive_runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut current = Vec::new();
    for &(t, value) in points {
        if value > 0.0 {
            current.push((t, value));
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}
