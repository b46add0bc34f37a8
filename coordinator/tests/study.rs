//! End-to-end: a shortened WebSocket-vs-c2s study through real agents, a
//! real monitor and a real Prosody, checked from the files it leaves.

mod common;

use std::collections::HashMap;

use common::{read_csv, start_agent, start_monitor};
use tokio_util::sync::CancellationToken;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;

const BOTS: u64 = 10;
const TALK_RATE: f64 = 2.0;
const TALK_DURATION_S: f64 = 3.0;

fn scenario(prosody: &Prosody) -> String {
    let (host, port) = (prosody.c2s_addr().ip(), prosody.c2s_addr().port());
    format!(
        r#"
name = "short-study"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{host}:{port}"
websocket_url = "{ws}"

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 100

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[defaults]
room = "study"
join_rate = 10.0
talk_after_s = 2.0
talk_rate = {TALK_RATE}
talk_duration_s = {TALK_DURATION_S}
leave_after_s = 7.0
stream_management = true

[[timeline]]
wait_s = 1.0

[[timeline]]
group = "websocket"
transport = "websocket"
bots = {BOTS}

[[timeline]]
wait_s = 1.0

[[timeline]]
group = "c2s"
transport = "c2s"
bots = {BOTS}

[[timeline]]
wait_s = 1.0
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        ws = prosody.websocket_url(),
        pidfile = prosody.pidfile().display(),
    )
}

fn number(row: &HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} is not a number", row[column]))
}

/// Final cumulative counters of one group, summed over agents.
fn group_totals(bots: &[HashMap<String, String>], group: &str) -> HashMap<&'static str, u64> {
    let mut last_per_agent: HashMap<String, &HashMap<String, String>> = HashMap::new();
    for row in bots.iter().filter(|row| row["group"] == group) {
        last_per_agent.insert(row["agent"].clone(), row);
    }
    let mut totals = HashMap::new();
    for column in [
        "joined_total",
        "left_total",
        "failed_total",
        "messages_sent",
        "messages_received",
        "reflections",
    ] {
        let sum = last_per_agent
            .values()
            .map(|row| number(row, column) as u64)
            .sum();
        totals.insert(column, sum);
    }
    let errors: Vec<&str> = last_per_agent
        .values()
        .map(|row| row["errors"].as_str())
        .filter(|e| !e.is_empty())
        .collect();
    assert!(errors.is_empty(), "group {group} had errors: {errors:?}");
    assert_eq!(
        last_per_agent.len(),
        2,
        "group {group} should run on both agents"
    );
    totals
}

/// The shortened study runs end to end and its files agree with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortened_study_end_to_end() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let agents = vec![
        start_agent("agent-a", &stop).await.0,
        start_agent("agent-b", &stop).await.0,
    ];
    let monitor = start_monitor(&stop).await;

    let work = tempfile::tempdir().unwrap();
    let scenario_path = work.path().join("short.toml");
    std::fs::write(&scenario_path, scenario(&prosody)).unwrap();

    let options = RunOptions {
        scenario: scenario_path,
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents,
            monitor: Some(monitor),
        },
        token: None,
        tls: None,
        metrics_listen: None,
    };
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        run(options, CancellationToken::new()),
    )
    .await
    .expect("run ends within its bound")
    .expect("run succeeds");
    stop.cancel();

    let dir = outcome.dir;
    assert_eq!(dir, work.path().join("results/01"));
    assert!(!outcome.stopped_early);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);

    // Every bot joined and left, and every message reached every occupant.
    let messages_per_bot = (TALK_RATE * TALK_DURATION_S).round() as u64;
    let bots = read_csv(&dir.join("bots.csv"));
    for group in ["websocket", "c2s"] {
        let totals = group_totals(&bots, group);
        assert_eq!(totals["joined_total"], BOTS, "{group} joined");
        assert_eq!(totals["left_total"], BOTS, "{group} left");
        assert_eq!(totals["failed_total"], 0, "{group} failed");
        assert_eq!(
            totals["messages_sent"],
            BOTS * messages_per_bot,
            "{group} sent"
        );
        assert_eq!(
            totals["reflections"],
            BOTS * messages_per_bot,
            "{group} reflections"
        );
        assert_eq!(
            totals["messages_received"],
            BOTS * messages_per_bot * BOTS,
            "{group} received"
        );
    }

    // Every reflection has a latency sample.
    let latency = read_csv(&dir.join("latency.csv"));
    for group in ["websocket", "c2s"] {
        let count: u64 = latency
            .iter()
            .filter(|row| row["group"] == group)
            .map(|row| number(row, "count") as u64)
            .sum();
        assert_eq!(count, BOTS * messages_per_bot, "{group} latency samples");
    }

    // Prosody was sampled in every phase, and worked while the bots talked.
    let phases = read_csv(&dir.join("phases.csv"));
    let monitor_rows = read_csv(&dir.join("monitor.csv"));
    assert_eq!(phases.len(), 6, "three phases per group: {phases:?}");
    for phase in &phases {
        let (start, end) = (number(phase, "start_s"), number(phase, "end_s"));
        assert!(start <= end, "{phase:?}");
        let inside: Vec<f64> = monitor_rows
            .iter()
            .filter(|row| row["process"] == "prosody")
            .filter(|row| (start..=end).contains(&number(row, "t_s")))
            .map(|row| number(row, "cpu_percent"))
            .collect();
        assert!(!inside.is_empty(), "no Prosody sample in {phase:?}");
        if phase["phase"] == "talk" {
            let mean = inside.iter().sum::<f64>() / inside.len() as f64;
            assert!(
                mean > 0.0,
                "Prosody CPU while {} talked is {mean}",
                phase["group"]
            );
        }
    }
    assert!(
        monitor_rows
            .iter()
            .all(|row| row["pid"] == prosody.pid().to_string())
    );

    // The report states the same totals as the CSV files, group by group.
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let sent = BOTS * messages_per_bot;
    for group in ["websocket", "c2s"] {
        let section = report
            .split("## Group ")
            .find(|section| section.starts_with(group))
            .unwrap_or_else(|| panic!("report has no section for {group}:\n{report}"));
        let bots_line = format!("Bots: {BOTS} planned, {BOTS} joined, 0 failed, {BOTS} left");
        assert!(
            section.contains(&bots_line),
            "{group} section lacks `{bots_line}`:\n{section}"
        );
        let whole = section
            .lines()
            .find(|line| line.starts_with("| whole group |") && line.matches('|').count() == 11)
            .unwrap_or_else(|| {
                panic!("{group} section has no whole-group traffic row:\n{section}")
            });
        let cells: Vec<&str> = whole.split('|').map(str::trim).collect();
        assert_eq!(
            cells[3],
            sent.to_string(),
            "{group} sent in report: {whole}"
        );
        assert_eq!(
            cells[4],
            (sent * BOTS).to_string(),
            "{group} received in report: {whole}"
        );
        assert_eq!(
            cells[5],
            sent.to_string(),
            "{group} reflections in report: {whole}"
        );
        assert_eq!(
            cells[6],
            sent.to_string(),
            "{group} latency samples in report: {whole}"
        );
    }
    assert!(
        report.contains("## Groups compared while talking"),
        "{report}"
    );

    // The graph decodes at the size the report promises.
    let image = image::open(dir.join("monitor_server.png")).unwrap();
    assert_eq!((image.width(), image.height()), (1600, 1000));
    assert!(dir.join("monitor_server.svg").exists());

    // The run's record names both agents with their clock offsets.
    let run_info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_info["agents"].as_array().unwrap().len(), 2);
    assert!(run_info["finished_unix_micros"].is_i64());
    assert_eq!(run_info["groups"][0]["stream_management"], true);
    assert_eq!(run_info["groups"][0]["tls"], "none");
    assert_eq!(run_info["groups"][1]["tls"], "none");
    assert_eq!(
        run_info["groups"][0]["incomplete"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(run_info["stopped_early"], false);
}
