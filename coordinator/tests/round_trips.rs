//! Round trips by kind: a real run against Prosody writes one sample per
//! bot and step into `round_trips.csv` and the report, and `coordinator
//! report` rebuilds the tables of report.md, report.html and summary.json
//! from that file alone.

mod common;
mod fixture;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2Serializer};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use xmppload_agent::testing::{Prosody, ProsodyOptions, TlsFiles};
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

/// Returns the data rows of the first "Round trips by kind" table in `section`.
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

/// Bots of each group in the live run.
const LIVE_BOTS: u64 = 3;
/// Bound on the live run: two groups of about 3 s each plus start-up.
const LIVE_RUN_BOUND: Duration = Duration::from_secs(60);

/// Builds a scenario with a STARTTLS c2s group and a plain `ws://` group.
fn starttls_scenario(prosody: &Prosody) -> String {
    format!(
        r#"
name = "round-trips"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{c2s}"
websocket_url = "{ws}"
tls = "starttls"
accept_invalid_certs = true

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 100

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[defaults]
room = "trips"
join_rate = 10.0
talk_after_s = 0.5
talk_rate = 2.0
talk_duration_s = 1.0
leave_after_s = 2.0

[[timeline]]
group = "secure"
transport = "c2s"
bots = {LIVE_BOTS}
stream_management = true

[[timeline]]
group = "plain"
transport = "websocket"
bots = {LIVE_BOTS}
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        c2s = prosody.c2s_addr(),
        ws = prosody.websocket_url(),
        pidfile = prosody.pidfile().display(),
    )
}

/// Sums the samples per (group, kind) in `round_trips.csv`, checking on the
/// way that each row's histogram contains its count.
fn csv_counts(path: &std::path::Path) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for row in common::read_csv(path) {
        let count: u64 = row["count"].parse().unwrap();
        let bytes = BASE64.decode(&row["histogram"]).unwrap();
        let histogram: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &bytes[..])
            .unwrap();
        assert_eq!(histogram.len(), count, "row {row:?}");
        *counts
            .entry((row["group"].clone(), row["kind"].clone()))
            .or_default() += count;
    }
    counts
}

/// Returns the kind and count cells of a group's "Round trips by kind" table in report.md.
fn report_counts(report: &str, group: &str) -> BTreeMap<String, u64> {
    let section = report
        .split(&format!("## Group {group}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no section of {group} in:\n{report}"));
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    round_trip_rows(section)
        .into_iter()
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].to_owned(), cells[1].parse().unwrap())
        })
        .collect()
}

/// A STARTTLS group has one `tls` round trip per bot and a plain group none,
/// and the report lists every step with the number of bots that passed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_run_times_each_step_per_bot() {
    let certified = rcgen::generate_simple_self_signed(vec!["anon.localhost".to_owned()]).unwrap();
    let prosody = Prosody::start(ProsodyOptions {
        tls: Some(TlsFiles {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
        }),
        ..ProsodyOptions::default()
    })
    .expect("start Prosody");
    let stop = CancellationToken::new();
    let (agent, _) = common::start_agent("agent-1", &stop).await;
    let monitor = common::start_monitor(&stop).await;
    let work = tempfile::tempdir().unwrap();

    let outcome = common::run_scenario(
        work.path(),
        &starttls_scenario(&prosody),
        vec![agent],
        monitor,
        LIVE_RUN_BOUND,
    )
    .await;
    stop.cancel();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);

    let counts = csv_counts(&outcome.dir.join("round_trips.csv"));
    let count = |group: &str, kind: &str| counts.get(&(group.to_owned(), kind.to_owned())).copied();
    for kind in ["tcp", "tls", "stream", "auth", "bind", "sm", "join"] {
        assert_eq!(
            count("secure", kind),
            Some(LIVE_BOTS),
            "secure {kind} in {counts:?}"
        );
    }
    for kind in ["tcp", "websocket", "stream", "auth", "bind", "join"] {
        assert_eq!(
            count("plain", kind),
            Some(LIVE_BOTS),
            "plain {kind} in {counts:?}"
        );
    }
    assert_eq!(count("plain", "tls"), None, "{counts:?}");
    assert_eq!(count("plain", "sm"), None, "{counts:?}");
    assert_eq!(counts.len(), 13, "no other kinds: {counts:?}");

    let report = std::fs::read_to_string(outcome.dir.join("report.md")).unwrap();
    let secure = report_counts(&report, "secure");
    assert_eq!(secure.len(), 7, "{secure:?}");
    assert!(secure.values().all(|&n| n == LIVE_BOTS), "{secure:?}");
    let plain = report_counts(&report, "plain");
    assert_eq!(plain.len(), 6, "{plain:?}");
    assert!(plain.values().all(|&n| n == LIVE_BOTS), "{plain:?}");
    assert!(!plain.contains_key("tls"), "{plain:?}");
    assert!(secure.contains_key("tls"), "{secure:?}");

    // Every bot passed every step, so each count is the group's joined bots.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(outcome.dir.join("summary.json")).unwrap())
            .unwrap();
    for group in summary["groups"].as_array().unwrap() {
        assert_eq!(group["counts"]["joined"], LIVE_BOTS, "{}", group["name"]);
        assert_eq!(group["counts"]["failed"], 0, "{}", group["name"]);
    }
}
