//! Peers that come back: a bot agent process killed in the first group and
//! started again on its port takes bots in the second group, and a monitor
//! process killed and started again leaves a recorded gap in the samples.
//!
//! The killed peers run in child processes, so that a kill closes their
//! sockets the way a crash does. Each child is this test binary started
//! again with the ignored test `peer_process` as its only test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::AgentConfig;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::RunOptions;
use xmppload_coordinator::scenario::Overrides;

/// Bound on waiting for a child process to listen.
const READY_BOUND: Duration = Duration::from_secs(20);
/// Environment of a child process: its role (`agent` or `monitor`), its
/// name, the address it binds and the file it writes that address to once
/// it listens.
const CHILD_ROLE: &str = "XMPPLOAD_TEST_CHILD_ROLE";
const CHILD_NAME: &str = "XMPPLOAD_TEST_CHILD_NAME";
const CHILD_LISTEN: &str = "XMPPLOAD_TEST_CHILD_LISTEN";
const CHILD_READY_FILE: &str = "XMPPLOAD_TEST_CHILD_READY_FILE";
/// A child stops by itself after this long even if its parent never
/// closes its stdin.
const CHILD_LIFETIME: Duration = Duration::from_secs(150);

/// Entry point of the child processes: serves an agent or a monitor until
/// stdin closes or [`CHILD_LIFETIME`] passes. Without the environment
/// above it returns at once.
#[test]
#[ignore = "runs only as a child process of the other tests"]
fn peer_process() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let name = std::env::var(CHILD_NAME).unwrap();
    let listen = std::env::var(CHILD_LISTEN).unwrap();
    let ready_file = PathBuf::from(std::env::var(CHILD_READY_FILE).unwrap());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await.unwrap();
        let address = listener.local_addr().unwrap();
        let stop = CancellationToken::new();

        // The parent keeps our stdin open, so its end means the parent is gone.
        let stdin_closed = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            stdin_closed.cancel();
        });

        let server = match role.as_str() {
            "agent" => {
                let config = AgentConfig {
                    name,
                    ..AgentConfig::default()
                };
                let serve = xmppload_agent::serve(listener, config, stop.clone());
                tokio::spawn(async move { serve.await.map_err(|err| err.to_string()) })
            }
            "monitor" => {
                let config = xmppload_monitor::MonitorConfig {
                    name,
                    ..xmppload_monitor::MonitorConfig::default()
                };
                let serve = xmppload_monitor::serve(listener, config, stop.clone());
                tokio::spawn(async move { serve.await.map_err(|err| err.to_string()) })
            }
            other => panic!("unknown child role {other}"),
        };
        std::fs::write(&ready_file, address.to_string()).unwrap();

        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(CHILD_LIFETIME) => {}
        }
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    });
}

/// An agent or monitor in a child process, killed when dropped.
struct PeerProcess {
    child: Child,
    /// Kept open so that the child runs; closing it stops the child.
    _stdin: ChildStdin,
    /// `http://127.0.0.1:PORT`.
    address: String,
}

impl PeerProcess {
    /// Starts a child that serves `role` on `listen` and waits until it
    /// listens. `work` contains its log and ready file, numbered by `start`.
    async fn start(role: &str, name: &str, listen: &str, work: &Path, start: u32) -> PeerProcess {
        let ready_file = work.join(format!("{name}-{start}.ready"));
        let log = std::fs::File::create(work.join(format!("{name}-{start}.log"))).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["peer_process", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ROLE, role)
            .env(CHILD_NAME, name)
            .env(CHILD_LISTEN, listen)
            .env(CHILD_READY_FILE, &ready_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();

        let started = Instant::now();
        let address = loop {
            if let Ok(address) = std::fs::read_to_string(&ready_file)
                && !address.is_empty()
            {
                break address;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{role} {name} exited before it listened: {status}");
            }
            assert!(
                started.elapsed() < READY_BOUND,
                "{role} {name} did not listen on {listen} within {READY_BOUND:?}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        PeerProcess {
            child,
            _stdin: stdin,
            address: format!("http://{address}"),
        }
    }

    /// Returns the `HOST:PORT` the child listens on, to start its successor there.
    fn socket_address(&self) -> &str {
        self.address.trim_start_matches("http://")
    }

    /// Kills the child with SIGKILL and reaps it.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counts the SVG elements `<tag ...>` whose `attribute` is `color`, such
/// as `<polyline ... stroke="#00963C">`.
fn count_svg_elements(svg: &str, tag: &str, attribute: &str, color: &str) -> usize {
    let opening = format!("{tag} ");
    let value = format!("{attribute}=\"{color}\"");
    svg.split('<')
        .filter(|element| element.starts_with(&opening))
        .filter(|element| {
            element
                .split('>')
                .next()
                .is_some_and(|attrs| attrs.contains(&value))
        })
        .count()
}

/// A killed agent process started again on its port is greeted before the
/// second group and takes its half of the bots, and run.json, the report
/// and the graph show its loss and return in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_returns_for_next_group() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let (survivor, _) = start_agent("survivor", &stop).await;
    let monitor = start_monitor(&stop).await;
    let work = tempfile::tempdir().unwrap();
    let mut returning =
        PeerProcess::start("agent", "returning", "127.0.0.1:0", work.path(), 1).await;
    let returning_address = returning.address.clone();

    let options = RunOptions {
        scenario: write_scenario(work.path(), &scenario(&prosody, &["first", "second"])),
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents: vec![survivor, returning_address.clone()],
            monitor: Some(monitor),
        },
        token: None,
        tls: None,
        metrics_listen: None,
    };
    let dir = work.path().join("results/01");
    let running = tokio::spawn(run_bounded(options));

    wait_for_talk(&dir, "first", "returning").await;
    let killed_at = now_micros();
    returning.kill();
    let listen = returning.socket_address().to_string();
    let restarted = PeerProcess::start("agent", "returning", &listen, work.path(), 2).await;
    assert_eq!(restarted.address, returning_address);
    let outcome = running.await.unwrap();
    stop.cancel();

    // Only the first group lost bots.
    assert!(!outcome.stopped_early);
    assert_eq!(outcome.problems.len(), 1, "{:?}", outcome.problems);
    assert!(
        outcome.problems[0].starts_with(
            "group first: agent returning did not finish its 3 bots (stream broke off"
        ),
        "{:?}",
        outcome.problems
    );

    // The second group is placed on both agents and both finished it.
    let info = run_json(&dir);
    assert_eq!(info["groups"][1]["name"], "second");
    let placement: Vec<(String, u64)> = info["groups"][1]["placement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["agent"].as_str().unwrap().to_string(),
                p["bots"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        placement,
        [("survivor".to_string(), 3), ("returning".to_string(), 3)]
    );
    assert_eq!(info["groups"][1]["incomplete"].as_array().unwrap().len(), 0);
    let second = last_rows(&dir, "second");
    for agent in ["survivor", "returning"] {
        let row = second
            .get(agent)
            .unwrap_or_else(|| panic!("no bots.csv row of {agent} in the second group"));
        assert_eq!(number(row, "joined_total"), 3.0, "{agent}: {row:?}");
        assert_eq!(number(row, "left_total"), 3.0, "{agent}: {row:?}");
        assert_eq!(number(row, "failed_total"), 0.0, "{agent}: {row:?}");
        assert!(number(row, "messages_sent") > 0.0, "{agent}: {row:?}");
    }

    // run.json contains the loss at the kill, then the return after the first
    // group ended and before the second one started.
    let events = info["peer_events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let (lost, returned) = (&events[0], &events[1]);
    for (event, kind) in [(lost, "lost"), (returned, "returned")] {
        assert_eq!(event["kind"], kind, "{event}");
        assert_eq!(event["role"], "agent", "{event}");
        assert_eq!(event["peer"], "returning", "{event}");
    }
    assert!(
        lost["reason"]
            .as_str()
            .unwrap()
            .starts_with("stream broke off"),
        "{lost}"
    );
    let killed_s = run_seconds(&dir, killed_at);
    let lost_s = lost["t_s"].as_f64().unwrap();
    let returned_s = returned["t_s"].as_f64().unwrap();
    assert!(
        lost_s >= killed_s && lost_s < killed_s + 2.0,
        "lost at {lost_s:.3} s, killed at {killed_s:.3} s"
    );
    let first_end = read_csv(&dir.join("phases.csv"))
        .iter()
        .filter(|row| row["group"] == "first")
        .map(|row| number(row, "end_s"))
        .fold(f64::MIN, f64::max);
    let second_start = info["groups"][1]["scheduled_start_s"].as_f64().unwrap();
    assert!(
        first_end < returned_s && returned_s < second_start,
        "returned at {returned_s:.3} s, first group ended at {first_end:.3} s, \
         second started at {second_start:.3} s"
    );
    assert_eq!(
        returned["returned_as"]["address"],
        returning_address.as_str()
    );
    assert_eq!(returned["returned_as"]["name"], "returning");
    assert!(
        returned["returned_as"]["clock_offset_micros"].is_i64(),
        "{returned}"
    );

    // The report lists the outage with both times.
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let row = outage_row(&report, "returning");
    assert_eq!(row[1], "bot agent");
    assert_eq!(row[2], format!("{lost_s:.1}"));
    assert_eq!(row[3], format!("{returned_s:.1}"));
    assert!(row[5].starts_with("stream broke off"), "{row:?}");

    // The graph has a red line for the loss and a green one for the
    // return, in each of its three panels, and both names.
    let svg = std::fs::read_to_string(dir.join("monitor_server.svg")).unwrap();
    let red = count_svg_elements(&svg, "polyline", "stroke", "#C80000");
    let green = count_svg_elements(&svg, "polyline", "stroke", "#00963C");
    assert!(red >= 3, "{red} red loss line segments");
    assert!(green >= 3, "{green} green return line segments");
    assert!(svg.contains("lost returning"));
    assert!(svg.contains("back returning"));
}

/// A monitor process killed and started again on its port leaves a gap
/// in run.json and the report that matches the kill and the restart, no
/// sample inside it, and a shaded span on the graph.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_gap_after_restart() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let (agent, _) = start_agent("agent", &stop).await;
    let work = tempfile::tempdir().unwrap();
    let mut monitor = PeerProcess::start("monitor", "monitor", "127.0.0.1:0", work.path(), 1).await;

    let options = RunOptions {
        scenario: write_scenario(work.path(), &scenario(&prosody, &["first", "second"])),
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents: vec![agent],
            monitor: Some(monitor.address.clone()),
        },
        token: None,
        tls: None,
        metrics_listen: None,
    };
    let dir = work.path().join("results/01");
    let running = tokio::spawn(run_bounded(options));

    wait_for_talk(&dir, "first", "agent").await;
    let killed_at = now_micros();
    monitor.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listen = monitor.socket_address().to_string();
    let _restarted = PeerProcess::start("monitor", "monitor", &listen, work.path(), 2).await;
    let restarted_at = now_micros();
    let outcome = running.await.unwrap();
    stop.cancel();

    // Losing the monitor costs samples, not bots.
    assert!(!outcome.stopped_early);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);

    // run.json contains the loss at the kill and the return shortly after the
    // restart: the coordinator greets the monitor once a second, and the
    // first sample follows within an interval.
    let info = run_json(&dir);
    let events = info["peer_events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let (lost, returned) = (&events[0], &events[1]);
    for (event, kind) in [(lost, "lost"), (returned, "returned")] {
        assert_eq!(event["kind"], kind, "{event}");
        assert_eq!(event["role"], "monitor", "{event}");
        assert_eq!(event["peer"], "monitor", "{event}");
    }
    let killed_s = run_seconds(&dir, killed_at);
    let restarted_s = run_seconds(&dir, restarted_at);
    let lost_s = lost["t_s"].as_f64().unwrap();
    let returned_s = returned["t_s"].as_f64().unwrap();
    assert!(
        lost_s >= killed_s && lost_s < killed_s + 2.0,
        "lost at {lost_s:.3} s, killed at {killed_s:.3} s"
    );
    // The restart time is taken once the ready file is seen, up to a poll
    // interval after the child listens, so the return may precede it by that.
    assert!(
        returned_s > restarted_s - 0.5 && returned_s < restarted_s + 4.0,
        "returned at {returned_s:.3} s, restarted at {restarted_s:.3} s"
    );
    assert!(
        returned["returned_as"]["clock_offset_micros"].is_i64(),
        "{returned}"
    );

    // Samples exist before the gap and after it, and none inside it beyond
    // the clock offset's uncertainty. The CSV keeps times to the millisecond,
    // so the first sample after the return may read up to 1 ms before it.
    const CSV_RESOLUTION_S: f64 = 0.001;
    let slack = info["monitor"]["clock_uncertainty_micros"]
        .as_f64()
        .unwrap()
        / 1e6;
    let times: Vec<f64> = read_csv(&dir.join("monitor.csv"))
        .iter()
        .map(|row| number(row, "t_s"))
        .collect();
    assert!(times.iter().filter(|&&t| t <= lost_s).count() > 10);
    assert!(times.iter().filter(|&&t| t >= returned_s).count() > 10);
    let inside: Vec<f64> = times
        .iter()
        .copied()
        .filter(|&t| {
            t > lost_s + slack + CSV_RESOLUTION_S && t < returned_s - slack - CSV_RESOLUTION_S
        })
        .collect();
    assert!(
        inside.is_empty(),
        "samples inside the gap from {lost_s:.3} to {returned_s:.3} s: {inside:?}"
    );

    // The report lists the gap with start and end within a few seconds of
    // the kill and the restart.
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let row = outage_row(&report, "monitor");
    assert_eq!(row[1], "monitor");
    let reported_lost: f64 = row[2].parse().unwrap();
    let reported_back: f64 = row[3].parse().unwrap();
    assert!(
        (reported_lost - killed_s).abs() < 2.0,
        "{row:?}, killed at {killed_s:.3} s"
    );
    assert!(
        (reported_back - restarted_s).abs() < 4.0,
        "{row:?}, restarted at {restarted_s:.3} s"
    );
    assert!(row[5].starts_with("stream broke off"), "{row:?}");

    // The graph shades the gap in the CPU panel and names it.
    let svg = std::fs::read_to_string(dir.join("monitor_server.svg")).unwrap();
    assert_eq!(
        count_svg_elements(&svg, "rect", "fill", "#6E6E6E"),
        1,
        "one grey gap span"
    );
    assert_eq!(
        count_svg_elements(&svg, "text", "fill", "#323232"),
        1,
        "one gap label"
    );
    assert!(svg.contains("no monitor"));
    assert_eq!(
        count_svg_elements(&svg, "polyline", "stroke", "#00963C"),
        0,
        "no agent returned"
    );
}
