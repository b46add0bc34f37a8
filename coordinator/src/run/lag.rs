//! Scheduling lag of one group: how far behind their scheduled times the
//! agents started connects and sent messages.
//!
//! Agents send one interval histogram of each kind per report. They are
//! merged here into one histogram per group, whose size is fixed by its
//! bounds, so memory does not grow with the run's length.

use hdrhistogram::Histogram;
use xmppload_proto::v1::GroupReport;

use crate::histogram::{add_serialized, new_histogram};

/// Merged join and send lag, in microseconds.
#[derive(Debug)]
pub struct ScheduleLag {
    join: Histogram<u64>,
    send: Histogram<u64>,
}

impl ScheduleLag {
    pub fn new() -> Self {
        ScheduleLag {
            join: new_histogram(),
            send: new_histogram(),
        }
    }

    /// Adds the lag histograms of one report. An empty field adds nothing.
    pub fn add_report(&mut self, report: &GroupReport) -> Result<(), String> {
        add_serialized(&mut self.join, &report.join_lag_histogram)
            .map_err(|err| format!("join-lag histogram: {err}"))?;
        add_serialized(&mut self.send, &report.send_lag_histogram)
            .map_err(|err| format!("send-lag histogram: {err}"))
    }

    pub fn merge(&mut self, other: &ScheduleLag) {
        // `add` fails only on a value beyond the range of a histogram without
        // auto-resize, and `new_histogram` makes every one auto-resize.
        let _ = self.join.add(&other.join);
        let _ = self.send.add(&other.send);
    }

    /// Rows of `schedule_lag.csv` for `group`: one for joins, one for sends,
    /// with the late counts the agents reported.
    pub fn rows(&self, group: &str, late_joins: u64, late_sends: u64) -> [[String; 7]; 2] {
        [
            row(group, "join", &self.join, late_joins),
            row(group, "send", &self.send, late_sends),
        ]
    }
}

fn row(group: &str, kind: &str, histogram: &Histogram<u64>, late: u64) -> [String; 7] {
    [
        group.to_string(),
        kind.to_string(),
        histogram.len().to_string(),
        late.to_string(),
        histogram.value_at_quantile(0.5).to_string(),
        histogram.value_at_quantile(0.99).to_string(),
        histogram.max().to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::serialize;

    fn serialized(values: &[u64]) -> Vec<u8> {
        let mut histogram = new_histogram();
        for value in values {
            histogram.record(*value).unwrap();
        }
        serialize(&histogram)
    }

    /// Reports of two agents merge into one row per kind with exact counts.
    #[test]
    fn merges_reports_into_rows() {
        let mut first = ScheduleLag::new();
        first
            .add_report(&GroupReport {
                join_lag_histogram: serialized(&[100, 200]),
                send_lag_histogram: serialized(&[10]),
                ..GroupReport::default()
            })
            .unwrap();
        let mut second = ScheduleLag::new();
        second
            .add_report(&GroupReport {
                join_lag_histogram: serialized(&[5_000_000]),
                ..GroupReport::default()
            })
            .unwrap();
        first.merge(&second);

        let [join, send] = first.rows("ws", 1, 0);
        assert_eq!(join[..4], ["ws", "join", "3", "1"]);
        assert_eq!(join[4], "200", "join p50");
        let max: u64 = join[6].parse().unwrap();
        assert!((4_995_000..=5_005_000).contains(&max), "join max {max}");
        assert_eq!(send[..4], ["ws", "send", "1", "0"]);
    }

    /// A histogram that does not decode is an error naming its kind.
    #[test]
    fn undecodable_histogram_is_rejected() {
        let mut lag = ScheduleLag::new();
        let result = lag.add_report(&GroupReport {
            send_lag_histogram: vec![1, 2, 3],
            ..GroupReport::default()
        });
        let err = result.unwrap_err();
        assert!(err.starts_with("send-lag histogram"), "{err}");
    }
}
