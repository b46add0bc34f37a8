//! Step durations by kind (`tcp`, `tls`, `auth`, `join`, ...) of one group,
//! merged over its agents and written to `round_trips.csv` once a second.
//!
//! Every agent's report carries one interval histogram per kind. The slice
//! streams add them to a shared map, and a writer task takes the map each
//! second and writes one row per kind that had samples. Each row keeps its
//! histogram, so the report can merge a whole group exactly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use xmppload_proto::unix_micros_now;
use xmppload_proto::v1::GroupReport;

use super::seconds_since;
use crate::histogram::{add_serialized, new_histogram, serialize};
use crate::report::summary::LatencyPercentiles;
use crate::results::{ResultsDir, ResultsError};

/// Time between two writes of `round_trips.csv`.
const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// Interval histograms of one group by kind, shared by its slice streams.
#[derive(Debug, Default)]
pub struct RoundTripMerge {
    /// Histograms added since the last write. The slice streams add to it
    /// and the writer task takes it.
    interval: Mutex<BTreeMap<String, Histogram<u64>>>,
}

impl RoundTripMerge {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the round trips of one report. A histogram that does not decode
    /// is an error naming its kind, and the other kinds are still added.
    pub fn add_report(&self, report: &GroupReport) -> Result<(), String> {
        let mut interval = self.lock();
        let mut problems = Vec::new();
        for trips in &report.round_trips {
            let kind = trips.kind.trim();
            if kind.is_empty() {
                problems.push("a round-trip histogram without a kind".to_owned());
                continue;
            }
            let target = interval
                .entry(kind.to_owned())
                .or_insert_with(new_histogram);
            if let Err(err) = add_serialized(target, &trips.histogram) {
                problems.push(format!("round-trip histogram `{kind}` {err}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Takes what was added since the last call and returns the rows of
    /// `round_trips.csv` for it, one per kind with samples, sorted by kind.
    pub fn take_rows(&self, t_s: f64, group: &str) -> Vec<[String; 9]> {
        let interval = std::mem::take(&mut *self.lock());
        interval
            .into_iter()
            .filter(|(_, histogram)| !histogram.is_empty())
            .map(|(kind, histogram)| row(t_s, group, &kind, &histogram))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Histogram<u64>>> {
        // A poisoned lock only means that a stream task panicked while
        // adding, and each histogram is still whole.
        self.interval
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn row(t_s: f64, group: &str, kind: &str, histogram: &Histogram<u64>) -> [String; 9] {
    let percentiles = LatencyPercentiles::of(histogram);
    [
        format!("{t_s:.3}"),
        group.to_owned(),
        kind.to_owned(),
        percentiles.count.to_string(),
        format!("{:.3}", percentiles.p50_ms),
        format!("{:.3}", percentiles.p90_ms),
        format!("{:.3}", percentiles.p99_ms),
        format!("{:.3}", percentiles.max_ms),
        base64::engine::general_purpose::STANDARD.encode(serialize(histogram)),
    ]
}

/// Starts the task that writes the group's rows once a second until `done`
/// is cancelled, then writes what is left. The task ends after that last
/// write, so awaiting it flushes the group.
pub fn spawn_writer(
    merge: Arc<RoundTripMerge>,
    results: Arc<ResultsDir>,
    started: i64,
    group: String,
    done: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(WRITE_INTERVAL);
        // The first tick completes at once and there is nothing to write yet.
        ticks.tick().await;
        loop {
            let last = tokio::select! {
                _ = done.cancelled() => true,
                _ = ticks.tick() => false,
            };
            let t_s = seconds_since(started, unix_micros_now());
            if let Err(err) = write_rows(&merge, &results, t_s, &group) {
                warn!(%group, %err, "failed to write a round_trips.csv row");
            }
            if last {
                break;
            }
        }
    })
}

fn write_rows(
    merge: &RoundTripMerge,
    results: &ResultsDir,
    t_s: f64,
    group: &str,
) -> Result<(), ResultsError> {
    for row in merge.take_rows(t_s, group) {
        results.append_round_trip(row)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use xmppload_proto::v1::KindHistogram;

    fn kind(name: &str, micros: &[u64]) -> KindHistogram {
        let mut histogram = new_histogram();
        for value in micros {
            histogram.record(*value).unwrap();
        }
        KindHistogram {
            kind: name.to_owned(),
            histogram: serialize(&histogram),
        }
    }

    fn report(kinds: Vec<KindHistogram>) -> GroupReport {
        GroupReport {
            round_trips: kinds,
            ..GroupReport::default()
        }
    }

    /// Two agents' reports merge into one row per kind with summed counts.
    #[test]
    fn reports_merge_into_rows() {
        let merge = RoundTripMerge::new();
        merge
            .add_report(&report(vec![
                kind("tls", &[2_000, 4_000]),
                kind("tcp", &[300]),
            ]))
            .unwrap();
        merge
            .add_report(&report(vec![kind("tls", &[8_000])]))
            .unwrap();

        let rows = merge.take_rows(3.25, "c2s");
        assert_eq!(rows.len(), 2);
        let [tcp, tls] = [&rows[0], &rows[1]];
        assert_eq!(tcp[..4], ["3.250", "c2s", "tcp", "1"]);
        assert_eq!(tls[..4], ["3.250", "c2s", "tls", "3"]);
        assert_eq!(tls[4], "4.001", "p50 in ms");
        assert_eq!(tls[5], "8.003", "p90 in ms");
        assert_eq!(tls[7], "8.003", "max in ms");

        // The histogram column contains the merged samples.
        let bytes = STANDARD.decode(&tls[8]).unwrap();
        let mut decoded = new_histogram();
        add_serialized(&mut decoded, &bytes).unwrap();
        assert_eq!(decoded.len(), 3);
    }

    /// A take empties the map, so each second's rows cover only that second.
    #[test]
    fn take_resets_interval() {
        let merge = RoundTripMerge::new();
        merge
            .add_report(&report(vec![kind("bind", &[900])]))
            .unwrap();
        assert_eq!(merge.take_rows(1.0, "g").len(), 1);
        assert!(merge.take_rows(2.0, "g").is_empty());
    }

    /// A corrupt histogram is named by kind and the valid kinds still count.
    #[test]
    fn corrupt_kind_is_reported() {
        let merge = RoundTripMerge::new();
        let broken = KindHistogram {
            kind: "auth".to_owned(),
            histogram: vec![9, 9, 9],
        };
        let err = merge
            .add_report(&report(vec![broken, kind("join", &[50_000])]))
            .unwrap_err();
        assert!(err.contains("`auth`"), "{err}");

        let rows = merge.take_rows(1.0, "g");
        let kinds: Vec<&str> = rows.iter().map(|row| row[2].as_str()).collect();
        assert_eq!(kinds, ["join"]);
    }
}
