//! Fault injection: an agent, the monitor, Prosody or the coordinator
//! itself goes away in the middle of a group's talk phase, and the run's
//! files and report record the loss instead of looking complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::AgentConfig;
use xmppload_agent::policy::RunningBots;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::{RunOptions, RunOutcome, run};
use xmppload_coordinator::scenario::Overrides;

/// Bots of every group, split over the agents.
const BOTS: u64 = 6;
/// Bound on a whole run, well above the estimated 7 s of one group that
/// runs without faults.
const RUN_BOUND: Duration = Duration::from_secs(90);
/// Bound on waiting for a group to reach its talk phase.
const TALK_BOUND: Duration = Duration::from_secs(30);
/// Pause between two reads of a results file that is still growing.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

async fn start_agent(name: &str, stop: &CancellationToken) -> (String, RunningBots) {
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

async fn start_monitor(stop: &CancellationToken) -> String {
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
fn scenario(prosody: &Prosody, groups: &[&str]) -> String {
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

fn write_scenario(work: &Path, text: &str) -> PathBuf {
    let path = work.join("faults.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Rows of a CSV file as column maps. Rows with the wrong number of
/// fields are skipped, because the file may still be half written.
fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
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

fn number(row: &HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} is not a number", row[column]))
}

/// Last `bots.csv` row of each agent in `group`.
fn last_rows(dir: &Path, group: &str) -> HashMap<String, HashMap<String, String>> {
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
async fn wait_for_talk(dir: &Path, group: &str, agent: &str) {
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
fn run_seconds(dir: &Path, unix_micros: i64) -> f64 {
    let started = run_json(dir)["started_unix_micros"].as_i64().unwrap();
    (unix_micros - started) as f64 / 1e6
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

/// Section `## Group NAME` of report.md, up to the next level-2 heading.
fn group_section(report: &str, group: &str) -> String {
    let heading = format!("## Group {group}\n");
    let start = report
        .find(&heading)
        .unwrap_or_else(|| panic!("no section for group {group} in:\n{report}"));
    let rest = &report[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

fn now_micros() -> i64 {
    xmppload_proto::unix_micros_now()
}

/// A child process that is killed if the test ends before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_bounded(options: RunOptions) -> RunOutcome {
    tokio::time::timeout(RUN_BOUND, run(options, CancellationToken::new()))
        .await
        .expect("run ends within its bound")
        .expect("run succeeds")
}

/// An agent that stops mid-group leaves its slices incomplete, in this
/// group and the next, while the other agent's bots run to their end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_lost_mid_run() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let lost_stop = CancellationToken::new();
    let (survivor, _) = start_agent("survivor", &stop).await;
    let (lost, _) = start_agent("lost", &lost_stop).await;
    let monitor = start_monitor(&stop).await;

    let work = tempfile::tempdir().unwrap();
    let options = RunOptions {
        scenario: write_scenario(work.path(), &scenario(&prosody, &["first", "second"])),
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents: vec![survivor, lost],
            monitor: Some(monitor),
        },
        token: None,
        metrics_listen: None,
    };
    let dir = work.path().join("results/01");
    let running = tokio::spawn(run_bounded(options));

    wait_for_talk(&dir, "first", "lost").await;
    lost_stop.cancel();
    let outcome = running.await.unwrap();
    stop.cancel();

    assert_eq!(outcome.dir, dir);
    assert!(!outcome.stopped_early);
    for group in ["first", "second"] {
        let prefix = format!("group {group}: agent lost did not finish its 3 bots (");
        assert!(
            outcome.problems.iter().any(|p| p.starts_with(&prefix)),
            "{group}: {:?}",
            outcome.problems
        );
    }
    assert!(
        !outcome.problems.iter().any(|p| p.contains("survivor")),
        "{:?}",
        outcome.problems
    );

    // run.json names the lost agent in both groups, with the reason and a
    // time of loss within the run.
    let info = run_json(&dir);
    let started = info["started_unix_micros"].as_i64().unwrap();
    let finished = info["finished_unix_micros"].as_i64().unwrap();
    let run_duration_s = (finished - started) as f64 / 1e6;
    for (index, group, reason) in [(0, "first", "stream broke off"), (1, "second", "rejected:")] {
        assert_eq!(info["groups"][index]["name"], group);
        let incomplete = info["groups"][index]["incomplete"].as_array().unwrap();
        assert_eq!(incomplete.len(), 1, "{group}: {incomplete:?}");
        assert_eq!(incomplete[0]["agent"], "lost", "{group}");
        assert_eq!(incomplete[0]["bots"], 3, "{group}");
        assert!(
            incomplete[0]["reason"]
                .as_str()
                .unwrap()
                .starts_with(reason),
            "{group}: {}",
            incomplete[0]["reason"]
        );
        let lost_at_s = incomplete[0]["lost_at_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("{group}: lost_at_s missing: {incomplete:?}"));
        assert!(lost_at_s > 0.0, "{group}: lost_at_s {lost_at_s}");
        assert!(
            lost_at_s < run_duration_s,
            "{group}: lost_at_s {lost_at_s} not before the run's end at {run_duration_s}"
        );
    }

    // The survivor's bots joined and left in both groups.
    for group in ["first", "second"] {
        let rows = last_rows(&dir, group);
        let row = &rows["survivor"];
        assert_eq!(number(row, "joined_total"), 3.0, "{group}: {row:?}");
        assert_eq!(number(row, "left_total"), 3.0, "{group}: {row:?}");
        assert_eq!(number(row, "failed_total"), 0.0, "{group}: {row:?}");
    }
    assert!(
        !last_rows(&dir, "second").contains_key("lost"),
        "the stopped agent wrote no rows in the second group"
    );

    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for group in ["first", "second"] {
        let section = group_section(&report, group);
        assert!(
            section.contains("WARNING: this group is incomplete."),
            "{group}:\n{section}"
        );
        assert!(section.contains("- lost: 3 bots, "), "{group}:\n{section}");
    }
}

/// A monitor that stops mid-run leaves no samples after its loss, and the
/// report flags the later windows' coverage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_lost_mid_run() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let monitor_stop = CancellationToken::new();
    let (agent, _) = start_agent("agent", &stop).await;
    let monitor = start_monitor(&monitor_stop).await;

    let work = tempfile::tempdir().unwrap();
    let options = RunOptions {
        scenario: write_scenario(work.path(), &scenario(&prosody, &["first", "second"])),
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents: vec![agent],
            monitor: Some(monitor),
        },
        token: None,
        metrics_listen: None,
    };
    let dir = work.path().join("results/01");
    let running = tokio::spawn(run_bounded(options));

    wait_for_talk(&dir, "first", "agent").await;
    let lost_at = now_micros();
    monitor_stop.cancel();
    let outcome = running.await.unwrap();
    stop.cancel();

    // Losing the monitor costs samples, not bots.
    assert!(!outcome.stopped_early);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);

    // Samples stop at the loss. The slack covers a batch that was in
    // flight, a slow shutdown on a loaded machine and the clock offset
    // estimate, and is still far shorter than the 5 s of run that follow.
    let lost_s = run_seconds(&dir, lost_at);
    let times: Vec<f64> = read_csv(&dir.join("monitor.csv"))
        .iter()
        .map(|row| number(row, "t_s"))
        .collect();
    let before = times.iter().filter(|t| **t < lost_s).count();
    assert!(
        before > 10,
        "{before} samples before the loss at {lost_s:.3} s"
    );
    let last = times.iter().copied().fold(f64::MIN, f64::max);
    assert!(
        last < lost_s + 1.0,
        "last sample at {last:.3} s, monitor lost at {lost_s:.3} s"
    );

    // The second group's talk and whole-group windows have no sample at all.
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let section = group_section(&report, "second");
    for process in ["prosody", "host"] {
        for window in ["talk", "whole group"] {
            let warning = format!("WARNING: {process} has 0 of ");
            let place = format!("(0%) in the {window} window");
            assert!(
                section
                    .lines()
                    .any(|line| line.starts_with(&warning) && line.contains(&place)),
                "no warning for {process} in the {window} window:\n{section}"
            );
        }
    }
}

/// Killing Prosody mid-group fails the bots that had not left, and the
/// monitor marks the missing process as a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_killed_mid_run() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let (agent, _) = start_agent("agent", &stop).await;
    let monitor = start_monitor(&stop).await;

    let work = tempfile::tempdir().unwrap();
    let options = RunOptions {
        scenario: write_scenario(work.path(), &scenario(&prosody, &["only"])),
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents: vec![agent],
            monitor: Some(monitor),
        },
        token: None,
        metrics_listen: None,
    };
    let dir = work.path().join("results/01");
    let running = tokio::spawn(run_bounded(options));

    wait_for_talk(&dir, "only", "agent").await;
    let killed_at = now_micros();
    let status = Command::new("kill")
        .args(["-KILL", &prosody.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -KILL {}: {status}", prosody.pid());
    let outcome = running.await.unwrap();
    stop.cancel();

    // The agent finished its slice, with the bots that had not left failed.
    let rows = last_rows(&dir, "only");
    let row = &rows["agent"];
    let left = number(row, "left_total") as u64;
    let failed = number(row, "failed_total") as u64;
    assert!(failed > 0, "{row:?}");
    assert_eq!(failed, BOTS - left, "{row:?}");
    assert!(!row["errors"].is_empty(), "{row:?}");
    for error in row["errors"].split(';') {
        let (kind, count) = error.split_once('=').unwrap();
        assert!(!kind.is_empty(), "{error}");
        assert!(count.parse::<u64>().unwrap() > 0, "{error}");
    }
    assert_eq!(
        outcome.problems,
        [format!("group only: {failed} of {BOTS} bots failed")]
    );
    assert!(
        run_json(&dir)["groups"][0]["incomplete"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Before the kill Prosody is sampled. From shortly after it on, every
    // sample is a gap, and the slack covers a sample already in progress.
    let killed_s = run_seconds(&dir, killed_at);
    let monitor_rows = read_csv(&dir.join("monitor.csv"));
    assert!(
        monitor_rows
            .iter()
            .any(|r| number(r, "t_s") < killed_s && r["gap"] == "false" && r["pid"] != "0"),
        "no valid sample before the kill at {killed_s:.3} s"
    );
    let after: Vec<_> = monitor_rows
        .iter()
        .filter(|r| number(r, "t_s") > killed_s + 0.5)
        .collect();
    assert!(after.len() > 5, "{} samples after the kill", after.len());
    for row in after {
        assert_eq!(row["gap"], "true", "{row:?}");
        assert_eq!(row["pid"], "0", "{row:?}");
    }

    assert!(dir.join("report.md").exists());
    // Drop kills and reaps a process that is already dead without panicking.
    drop(prosody);
}

/// A coordinator killed with SIGKILL stops the agents' bots through the
/// closed connection, and its folder still yields an unfinished report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let (first, first_running) = start_agent("first", &stop).await;
    let (second, second_running) = start_agent("second", &stop).await;
    let monitor = start_monitor(&stop).await;

    let work = tempfile::tempdir().unwrap();
    let scenario = write_scenario(work.path(), &scenario(&prosody, &["only"]));
    let results = work.path().join("results");
    let log = std::fs::File::create(work.path().join("coordinator.log")).unwrap();
    let mut coordinator = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_coordinator"))
            .arg("run")
            .arg(&scenario)
            .arg("--results-dir")
            .arg(&results)
            .args(["--agent", &first, "--agent", &second, "--monitor", &monitor])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let dir = results.join("01");

    wait_for_talk(&dir, "only", "first").await;
    let running_before = first_running.current() + second_running.current();
    coordinator.0.kill().unwrap();
    let status = coordinator.0.wait().unwrap();
    assert!(!status.success(), "{status}");
    assert_eq!(running_before, BOTS as u32, "bots reserved at the kill");

    // Each agent detects the closed connection and stops its slice.
    let killed = Instant::now();
    while first_running.current() + second_running.current() > 0 {
        assert!(
            killed.elapsed() < Duration::from_secs(12),
            "bots still running 12 s after the kill: {} and {}",
            first_running.current(),
            second_running.current()
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    stop.cancel();

    assert!(!read_csv(&dir.join("monitor.csv")).is_empty());
    assert!(!read_csv(&dir.join("bots.csv")).is_empty());
    assert!(run_json(&dir)["finished_unix_micros"].is_null());

    let report = Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .arg("report")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "coordinator report: {}\n{}",
        report.status,
        String::from_utf8_lossy(&report.stderr)
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("| duration | unfinished: the run recorded no end, last data at "),
        "{report}"
    );
}
