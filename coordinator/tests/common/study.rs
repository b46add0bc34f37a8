//! The shortened WebSocket-vs-c2s study, shared by the tests that run it
//! against different servers: its scenario, a run through two in-process
//! agents and a monitor, and the checks on the files it leaves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{number, read_csv, run_scenario, start_agent, start_monitor};

/// Bots of each group.
pub const BOTS: u64 = 10;
const TALK_RATE: f64 = 2.0;
const TALK_DURATION_S: f64 = 3.0;
/// Bound on the whole run, well above the 25 s or so that it takes.
const RUN_BOUND: Duration = Duration::from_secs(120);

/// The server under test, as the scenario and the checks see it.
pub struct StudyServer {
    /// Process name in the monitor's rows, such as `prosody`.
    pub process: &'static str,
    pub domain: String,
    pub muc_domain: String,
    pub c2s: SocketAddr,
    pub websocket_url: String,
    /// Pidfile that the monitor reads.
    pub pidfile: PathBuf,
    /// Pid that every monitor row must name.
    pub pid: u32,
}

fn scenario(server: &StudyServer) -> String {
    format!(
        r#"
name = "short-study"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{c2s}"
websocket_url = "{ws}"

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 100

[[monitor.process]]
name = "{process}"
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
        domain = server.domain,
        muc = server.muc_domain,
        c2s = server.c2s,
        ws = server.websocket_url,
        process = server.process,
        pidfile = server.pidfile.display(),
    )
}

/// Runs the shortened study against `server` through two agents and a
/// monitor, then checks every results file (see [`check_results`]).
pub async fn run_and_check(server: &StudyServer) {
    let stop = CancellationToken::new();
    let agents = vec![
        start_agent("agent-a", &stop).await.0,
        start_agent("agent-b", &stop).await.0,
    ];
    let monitor = start_monitor(&stop).await;

    let work = tempfile::tempdir().unwrap();
    let outcome = run_scenario(work.path(), &scenario(server), agents, monitor, RUN_BOUND).await;
    stop.cancel();

    assert_eq!(outcome.dir, work.path().join("results/01"));
    assert!(!outcome.stopped_early);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    check_results(&outcome.dir, server);
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

/// Checks that the results folder is complete and that its files agree
/// with each other and with the scenario.
fn check_results(dir: &Path, server: &StudyServer) {
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

    // The server was sampled in every phase, and worked while the bots talked.
    let process = server.process;
    let phases = read_csv(&dir.join("phases.csv"));
    let monitor_rows = read_csv(&dir.join("monitor.csv"));
    assert_eq!(phases.len(), 6, "three phases per group: {phases:?}");
    for phase in &phases {
        let (start, end) = (number(phase, "start_s"), number(phase, "end_s"));
        assert!(start <= end, "{phase:?}");
        let inside: Vec<f64> = monitor_rows
            .iter()
            .filter(|row| row["process"] == process)
            .filter(|row| (start..=end).contains(&number(row, "t_s")))
            .map(|row| number(row, "cpu_percent"))
            .collect();
        assert!(!inside.is_empty(), "no {process} sample in {phase:?}");
        if phase["phase"] == "talk" {
            let mean = inside.iter().sum::<f64>() / inside.len() as f64;
            assert!(
                mean > 0.0,
                "{process} CPU while {} talked is {mean}",
                phase["group"]
            );
        }
    }
    assert!(
        monitor_rows
            .iter()
            .all(|row| row["pid"] == server.pid.to_string()),
        "every monitor row should name pid {}",
        server.pid
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
