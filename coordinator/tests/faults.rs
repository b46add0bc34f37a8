//! Fault injection: an agent, the monitor, Prosody or the coordinator
//! itself goes away in the middle of a group's talk phase, and the run's
//! files and report record the loss instead of looking complete.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tokio_util::sync::CancellationToken;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::RunOptions;
use xmppload_coordinator::scenario::Overrides;

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

/// A child process that is killed if the test ends before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An agent that stops mid-group leaves its slice incomplete, and the next
/// group, with the agent still unreachable, runs on the other agent alone.
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
        tls: None,
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
    assert_eq!(outcome.problems.len(), 1, "{:?}", outcome.problems);
    assert!(
        outcome.problems[0].starts_with("group first: agent lost did not finish its 3 bots ("),
        "{:?}",
        outcome.problems
    );

    // run.json names the lost agent in the first group, with the reason
    // and a time of loss within the run.
    let info = run_json(&dir);
    let started = info["started_unix_micros"].as_i64().unwrap();
    let finished = info["finished_unix_micros"].as_i64().unwrap();
    let run_duration_s = (finished - started) as f64 / 1e6;
    assert_eq!(info["groups"][0]["name"], "first");
    let incomplete = info["groups"][0]["incomplete"].as_array().unwrap();
    assert_eq!(incomplete.len(), 1, "{incomplete:?}");
    assert_eq!(incomplete[0]["agent"], "lost");
    assert_eq!(incomplete[0]["bots"], 3);
    assert!(
        incomplete[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("stream broke off"),
        "{}",
        incomplete[0]["reason"]
    );
    let lost_at_s = incomplete[0]["lost_at_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("lost_at_s missing: {incomplete:?}"));
    assert!(lost_at_s > 0.0, "lost_at_s {lost_at_s}");
    assert!(
        lost_at_s < run_duration_s,
        "lost_at_s {lost_at_s} not before the run's end at {run_duration_s}"
    );

    // The loss is a peer event, with no return because the agent stayed
    // down when the second group was placed.
    let events = info["peer_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "lost");
    assert_eq!(events[0]["peer"], "lost");
    assert_eq!(events[0]["t_s"].as_f64(), Some(lost_at_s));

    // The second group went to the survivor alone and is complete.
    assert_eq!(info["groups"][1]["name"], "second");
    let placement = info["groups"][1]["placement"].as_array().unwrap();
    assert_eq!(placement.len(), 1, "{placement:?}");
    assert_eq!(placement[0]["agent"], "survivor");
    assert_eq!(placement[0]["bots"], BOTS);
    assert!(
        info["groups"][1]["incomplete"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The survivor's bots joined and left in both groups.
    for (group, bots) in [("first", 3.0), ("second", BOTS as f64)] {
        let rows = last_rows(&dir, group);
        let row = &rows["survivor"];
        assert_eq!(number(row, "joined_total"), bots, "{group}: {row:?}");
        assert_eq!(number(row, "left_total"), bots, "{group}: {row:?}");
        assert_eq!(number(row, "failed_total"), 0.0, "{group}: {row:?}");
    }
    assert!(
        !last_rows(&dir, "second").contains_key("lost"),
        "the stopped agent wrote no rows in the second group"
    );

    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let first = group_section(&report, "first");
    assert!(
        first.contains("WARNING: this group is incomplete."),
        "first:\n{first}"
    );
    assert!(first.contains("- lost: 3 bots, "), "first:\n{first}");
    let second = group_section(&report, "second");
    assert!(
        !second.contains("WARNING: this group is incomplete."),
        "second:\n{second}"
    );
    let outage =
        format!("| lost | bot agent | {lost_at_s:.1} | did not return |  | stream broke off");
    assert!(report.contains(&outage), "no `{outage}` in:\n{report}");
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
        tls: None,
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
    // The report lists the monitor as lost for the rest of the run.
    let row = outage_row(&report, "monitor");
    assert_eq!(row[1], "monitor", "{row:?}");
    assert_eq!(row[3], "did not return", "{row:?}");
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
        tls: None,
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
