//! Helpers shared by the coordinator's tests: a monitor on loopback, a
//! bounded run of a scenario text, and readers for the results files.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_coordinator::run::{RunOptions, RunOutcome, run};
use xmppload_coordinator::scenario::Overrides;

/// Starts a monitor agent on a free loopback port until `stop` is cancelled,
/// and returns its address.
pub async fn start_monitor(stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let config = xmppload_monitor::MonitorConfig::default();
    tokio::spawn(xmppload_monitor::serve(listener, config, stop.clone()));
    address
}

/// Writes `scenario` into `work` and runs it against `agents` and `monitor`,
/// failing the test when the run errs or outlasts `bound`.
pub async fn run_scenario(
    work: &Path,
    scenario: &str,
    agents: Vec<String>,
    monitor: String,
    bound: Duration,
) -> RunOutcome {
    let scenario_path = work.join("scenario.toml");
    std::fs::write(&scenario_path, scenario).unwrap();
    let options = RunOptions {
        scenario: scenario_path,
        results_root: work.join("results"),
        overrides: Overrides {
            agents,
            monitor: Some(monitor),
        },
        token: None,
    };
    tokio::time::timeout(bound, run(options, CancellationToken::new()))
        .await
        .expect("run ends within its bound")
        .expect("run succeeds")
}

/// Reads a CSV file into one map from column name to cell per row.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .map(String::from)
                .zip(record.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Parses a numeric cell, naming the column when it is not a number.
pub fn number(row: &HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} is not a number", row[column]))
}
