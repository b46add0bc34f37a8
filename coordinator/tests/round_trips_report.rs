//! `coordinator report` rebuilds the "Round trips by kind" tables of
//! report.md, report.html and summary.json from `round_trips.csv` alone.

mod fixture;

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2Serializer};
use serde_json::Value;
use xmppload_coordinator::report;

/// Rows of the synthetic file: (t_s, group, kind, durations in µs). The
/// `tls` rows of group c2s span two seconds, so their counts must add up.
const ROWS: [(f64, &str, &str, &[u64]); 6] = [
    (42.0, "c2s", "tls", &[4_000, 6_000]),
    (43.0, "c2s", "tls", &[8_000]),
    (42.0, "c2s", "tcp", &[300, 400, 500]),
    (43.0, "c2s", "join", &[20_000, 30_000, 40_000]),
    (7.0, "websocket", "websocket", &[2_000]),
    (7.0, "websocket", "mam", &[15_000]),
];

fn round_trips_csv() -> String {
    let mut text = "t_s,group,kind,count,p50_ms,p90_ms,p99_ms,max_ms,histogram\n".to_owned();
    for (t_s, group, kind, micros) in ROWS {
        let mut histogram = Histogram::<u64>::new(3).unwrap();
        for value in micros {
            histogram.record(*value).unwrap();
        }
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&histogram, &mut bytes)
            .unwrap();
        // The report reads only the histogram, so the quantile columns stay zero.
        let _ = writeln!(
            text,
            "{t_s:.3},{group},{kind},{},0,0,0,0,{}",
            micros.len(),
            BASE64.encode(bytes)
        );
    }
    text
}

/// Data rows of the first "Round trips by kind" table in `section`.
fn round_trip_rows(section: &str) -> Vec<&str> {
    section
        .lines()
        .skip_while(|line| !line.starts_with("Round trips by kind"))
        .skip_while(|line| !line.starts_with("| kind |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .collect()
}

/// The tables list each group's kinds in connection order with merged counts.
#[test]
fn report_rebuilds_round_trip_tables() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = fixture::copy_run("01", scratch.path());
    std::fs::write(dir.join("round_trips.csv"), round_trips_csv()).unwrap();
    report::build_outputs(&dir).unwrap();

    let markdown = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let c2s = markdown.split("## Group c2s").nth(1).expect("c2s section");
    let rows = round_trip_rows(c2s);
    assert_eq!(rows.len(), 3, "{c2s}");
    assert!(rows[0].starts_with("| tcp | 3 |"), "{}", rows[0]);
    assert!(rows[1].starts_with("| tls | 3 | 6.00 |"), "{}", rows[1]);
    assert!(rows[2].starts_with("| join | 3 | 30.0"), "{}", rows[2]);
    let websocket = markdown
        .split("## Group websocket")
        .nth(1)
        .expect("websocket section");
    let rows = round_trip_rows(websocket);
    assert_eq!(rows.len(), 2, "{websocket}");
    assert!(
        rows[0].starts_with("| websocket | 1 | 2.00 |"),
        "{}",
        rows[0]
    );
    assert!(rows[1].starts_with("| mam | 1 | 15.0"), "{}", rows[1]);

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let groups = summary["groups"].as_array().unwrap();
    let c2s = groups.iter().find(|g| g["name"] == "c2s").unwrap();
    let kinds: Vec<(&str, u64)> = c2s["round_trips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kind"].as_str().unwrap(), k["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("tcp", 3), ("tls", 3), ("join", 3)]);
    let tls_max = c2s["round_trips"][1]["max"].as_f64().unwrap();
    assert!((7.99..=8.01).contains(&tls_max), "tls max {tls_max}");
    let websocket = groups.iter().find(|g| g["name"] == "websocket").unwrap();
    assert_eq!(websocket["round_trips"].as_array().unwrap().len(), 2);

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<h3>Round trips by kind</h3>").count(), 2);
}

/// A folder from before `round_trips.csv` existed loads, shows no table and
/// does not list the file as missing.
#[test]
fn older_folder_without_round_trips() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = fixture::copy_run("01", scratch.path());
    report::build_outputs(&dir).unwrap();

    let markdown = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(!markdown.contains("Round trips by kind"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["losses"]["missing_files"], Value::Array(Vec::new()));
    for group in summary["groups"].as_array().unwrap() {
        assert_eq!(group["round_trips"], Value::Array(Vec::new()));
    }
}

/// A row whose count does not match its histogram is rejected with its line.
#[test]
fn count_mismatch_is_rejected() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = fixture::copy_run("01", scratch.path());
    let text = round_trips_csv().replacen(",c2s,tls,2,", ",c2s,tls,5,", 1);
    std::fs::write(dir.join("round_trips.csv"), text).unwrap();

    let err = report::build_outputs(&dir).unwrap_err().to_string();
    assert!(err.contains("round_trips.csv line 2"), "{err}");
    assert!(
        err.contains("`count` is 5 but `histogram` holds 2 samples"),
        "{err}"
    );
}
