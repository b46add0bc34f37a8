//! Helpers shared by the end-to-end run tests: in-process peers, a scenario
//! of WebSocket groups, readers for the results files and a bounded run.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod study;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::AgentConfig;
use xmppload_agent::policy::RunningBots;
use xmppload_agent::testing::Prosody;
use xmppload_coordinator::run::{RunOptions, RunOutcome, run};
use xmppload_coordinator::scenario::Overrides;

/// Bots of every group, split over the agents.
pub const BOTS: u64 = 6;
/// Bound on a whole run, well above the estimated 17 s of two groups that
/// run without faults.
pub const RUN_BOUND: Duration = Duration::from_secs(90);
/// Bound on waiting for a group to reach its talk phase.
pub const TALK_BOUND: Duration = Duration::from_secs(30);
/// Pause between two reads of a results file that is still growing.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

pub async fn start_agent(name: &str, stop: &CancellationToken) -> (String, RunningBots) {
    let config = AgentConfig {
        name: name.to_string(),
        ..AgentConfig::default()
    };
    let running = config.running_bots.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(xmppload_agent::serve(listener, config, stop.clone()));
    (address, running)
}

pub async fn start_monitor(stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let config = xmppload_monitor::MonitorConfig {
        name: "monitor".to_string(),
        ..xmppload_monitor::MonitorConfig::default()
    };
    tokio::spawn(xmppload_monitor::serve(listener, config, stop.clone()));
    address
}

/// Builds a scenario with one WebSocket group per name, a second's wait before
/// each and two after the last, and a monitor that watches Prosody every
/// 100 ms.
pub fn scenario(prosody: &Prosody, groups: &[&str]) -> String {
    let mut text = format!(
        r#"
name = "faults"

[server]
domain = "{domain}"
muc_domain = "{muc}"
websocket_url = "{ws}"

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 100

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[defaults]
room = "faults"
join_rate = 10.0
talk_after_s = 1.0
talk_rate = 2.0
talk_duration_s = 3.0
leave_after_s = 5.0
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        ws = prosody.websocket_url(),
        pidfile = prosody.pidfile().display(),
    );
    for group in groups {
        text.push_str(&format!(
            "\n[[timeline]]\nwait_s = 1.0\n\n[[timeline]]\ngroup = \"{group}\"\n\
             transport = \"websocket\"\nbots = {BOTS}\n"
        ));
    }
    text.push_str("\n[[timeline]]\nwait_s = 2.0\n");
    text
}

pub fn write_scenario(work: &Path, text: &str) -> PathBuf {
    let path = work.join("faults.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Rows of a CSV file as column maps. Rows with the wrong number of
/// fields are skipped, because the file may still be half written.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split(',').collect();
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields.len() == columns.len()).then(|| {
                columns
                    .iter()
                    .map(|c| c.to_string())
                    .zip(fields.iter().map(|f| f.to_string()))
                    .collect()
            })
        })
        .collect()
}

pub fn number(row: &HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} is not a number", row[column]))
}

/// Last `bots.csv` row of each agent in `group`.
pub fn last_rows(dir: &Path, group: &str) -> HashMap<String, HashMap<String, String>> {
    let mut last = HashMap::new();
    for row in read_csv(&dir.join("bots.csv")) {
        if row["group"] == group {
            last.insert(row["agent"].clone(), row);
        }
    }
    last
}

/// Waits until `agent` has sent messages in `group`, that is, until its
/// bots are talking.
pub async fn wait_for_talk(dir: &Path, group: &str, agent: &str) {
    let started = Instant::now();
    loop {
        let talking = last_rows(dir, group)
            .get(agent)
            .is_some_and(|row| number(row, "messages_sent") > 0.0);
        if talking {
            return;
        }
        assert!(
            started.elapsed() < TALK_BOUND,
            "agent {agent} sent no message in group {group} within {TALK_BOUND:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Seconds since the run's time zero of a Unix time, from run.json.
pub fn run_seconds(dir: &Path, unix_micros: i64) -> f64 {
    let started = run_json(dir)["started_unix_micros"].as_i64().unwrap();
    (unix_micros - started) as f64 / 1e6
}

pub fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

pub fn now_micros() -> i64 {
    xmppload_proto::unix_micros_now()
}

pub async fn run_bounded(options: RunOptions) -> RunOutcome {
    tokio::time::timeout(RUN_BOUND, run(options, CancellationToken::new()))
        .await
        .expect("run ends within its bound")
        .expect("run succeeds")
}

/// Returns the cells of the row of `peer` in the report's "Lost peers" table.
pub fn outage_row(report: &str, peer: &str) -> Vec<String> {
    let start = report
        .find("## Lost peers\n")
        .unwrap_or_else(|| panic!("no Lost peers section in:\n{report}"));
    let section = &report[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let prefix = format!("| {peer} |");
    let line = section
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no row of {peer} under Lost peers in:\n{report}"));
    line.trim_matches('|')
        .split('|')
        .map(|cell| cell.trim().to_string())
        .collect()
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
        tls: None,
        metrics_listen: None,
    };
    tokio::time::timeout(bound, run(options, CancellationToken::new()))
        .await
        .expect("run ends within its bound")
        .expect("run succeeds")
}
