//! The "Round trips by kind" numbers of a group: every row of
//! `round_trips.csv` for the group merged into one histogram per kind.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::data::{RunData, decode_histogram};
use super::error::{ReportError, RowProblem};
use super::load::ROUND_TRIPS_CSV;
use super::summary::LatencyPercentiles;
use crate::histogram::new_histogram;

/// Connection steps in the order a bot takes them, so that tables read
/// from the first byte to the room. Other kinds follow by name.
const STEP_ORDER: [&str; 8] = [
    "tcp",
    "tls",
    "websocket",
    "stream",
    "auth",
    "bind",
    "sm",
    "join",
];

/// Durations of one step kind over a whole group.
#[derive(Debug, Clone, PartialEq)]
pub struct KindRoundTrips {
    pub kind: String,
    pub latency: LatencyPercentiles,
}

/// Sort key of a kind: connection steps in [`STEP_ORDER`], then the rest
/// by name.
pub fn kind_order(kind: &str) -> (usize, &str) {
    let position = STEP_ORDER.iter().position(|step| *step == kind);
    (position.unwrap_or(STEP_ORDER.len()), kind)
}

/// Merges the rows of `group` by kind. A folder without `round_trips.csv`
/// yields no kinds.
pub fn group_round_trips(data: &RunData, group: &str) -> Result<Vec<KindRoundTrips>, ReportError> {
    let invalid_row = |line: u64, problem: RowProblem| ReportError::InvalidRow {
        path: data.dir.join(ROUND_TRIPS_CSV),
        line,
        problem,
    };
    let mut merged: BTreeMap<&str, Histogram<u64>> = BTreeMap::new();
    for row in data.round_trips.iter().filter(|row| row.group == group) {
        let Some(histogram) = decode_histogram(&row.encoded_histogram)
            .map_err(|e| invalid_row(row.line, e.into()))?
        else {
            continue;
        };
        merged
            .entry(row.kind.as_str())
            .or_insert_with(new_histogram)
            .add(&histogram)
            .map_err(|e| invalid_row(row.line, e.into()))?;
    }

    let mut kinds: Vec<KindRoundTrips> = merged
        .into_iter()
        .filter(|(_, histogram)| !histogram.is_empty())
        .map(|(kind, histogram)| KindRoundTrips {
            kind: kind.to_owned(),
            latency: LatencyPercentiles::of(&histogram),
        })
        .collect();
    kinds.sort_by(|a, b| kind_order(&a.kind).cmp(&kind_order(&b.kind)));
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::serialize;
    use crate::report::data::RoundTripRow;
    use crate::results::run_info::RunInfo;

    fn row(line: u64, group: &str, kind: &str, micros: &[u64]) -> RoundTripRow {
        let mut histogram = new_histogram();
        for value in micros {
            histogram.record(*value).unwrap();
        }
        RoundTripRow {
            line,
            t_s: line as f64,
            group: group.to_owned(),
            kind: kind.to_owned(),
            encoded_histogram: serialize(&histogram),
        }
    }

    fn data(rows: Vec<RoundTripRow>) -> RunData {
        let mut data = RunData::for_tests(RunInfo::for_tests());
        data.round_trips = rows;
        data
    }

    /// Rows of several seconds merge per kind, in connection-step order.
    #[test]
    fn rows_merge_per_kind_in_step_order() {
        let data = data(vec![
            row(2, "c2s", "tls", &[3_000, 5_000]),
            row(3, "c2s", "mam", &[40_000]),
            row(4, "c2s", "tcp", &[200]),
            row(5, "c2s", "tls", &[7_000]),
            row(6, "other", "tls", &[1_000_000]),
            row(7, "c2s", "disco", &[9_000]),
        ]);
        let kinds = group_round_trips(&data, "c2s").unwrap();

        let names: Vec<&str> = kinds.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(names, ["tcp", "tls", "disco", "mam"]);
        let tls = &kinds[1].latency;
        assert_eq!(tls.count, 3);
        assert!((4.99..=5.01).contains(&tls.p50_ms), "p50 {}", tls.p50_ms);
        assert!((6.99..=7.01).contains(&tls.max_ms), "max {}", tls.max_ms);
    }

    /// A folder without round trips has none to show.
    #[test]
    fn no_rows_no_kinds() {
        assert!(
            group_round_trips(&data(Vec::new()), "c2s")
                .unwrap()
                .is_empty()
        );
    }
}
