//! Builds a synthetic results folder with known values and checks that the
//! report, its statistics and the graphs show exactly those values.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2Serializer};
use xmppload_coordinator::report::compare::NotComparable;
use xmppload_coordinator::report::summary::{WindowKind, summarize};
use xmppload_coordinator::report::{self, Phase, ReportError};
use xmppload_coordinator::results::run_info::{
    GroupInfo, IncompleteSlice, PeerInfo, Placement, RunInfo,
};

const WEBSOCKET: &str = "websocket";
const C2S: &str = "c2s";
const AGENTS: [(&str, f64); 2] = [("agent-a", 0.0), ("agent-b", 0.3)];
/// Phase windows of both groups: (group, phase, start_s, end_s).
const PHASES: [(&str, &str, f64, f64); 6] = [
    (WEBSOCKET, "join", 0.0, 10.0),
    (WEBSOCKET, "talk", 10.0, 40.0),
    (WEBSOCKET, "leave", 40.0, 45.0),
    (C2S, "join", 50.0, 60.0),
    (C2S, "talk", 60.0, 90.0),
    (C2S, "leave", 90.0, 95.0),
];
/// CPU while talking cycles through these values, so the mean is the middle one.
const WEBSOCKET_TALK_CPU: [f64; 3] = [36.0, 40.0, 44.0];
const C2S_TALK_CPU: [f64; 3] = [46.0, 50.0, 54.0];
const IDLE_CPU: f64 = 5.0;

fn group_info(name: &str, transport: &str, start_s: f64) -> GroupInfo {
    GroupInfo {
        name: name.to_owned(),
        transport: transport.to_owned(),
        tls: "none".to_owned(),
        stream_management: name == C2S,
        web_client: "off".to_owned(),
        web_client_counts: Default::default(),
        auth: "anonymous".to_string(),
        bots: 100,
        room: "load@conference.localhost".to_owned(),
        rooms: 1,
        room_distribution: "uniform".to_owned(),
        zipf_exponent: None,
        rooms_per_bot: 1,
        join_rate: 10.0,
        talk_after_s: 10.0,
        talk_rate: 0.2,
        talk_duration_s: 30.0,
        leave_after_s: 40.0,
        body_bytes: 64,
        scheduled_start_s: start_s,
        placement: AGENTS
            .iter()
            .map(|(agent, _)| Placement {
                agent: (*agent).to_owned(),
                bots: 50,
                share: 0.5,
                limit: "cores".to_owned(),
            })
            .collect(),
        incomplete: Vec::new(),
    }
}

fn peer(name: &str, offset_micros: i64) -> PeerInfo {
    PeerInfo {
        name: name.to_owned(),
        address: format!("http://{name}:7100"),
        version: "0.1.0".to_owned(),
        cores: 4,
        fd_limit: 65536,
        source_addresses: Vec::new(),
        ports_per_destination: 28_232,
        max_bots: 20_000,
        running_bots: 0,
        reserved_descriptors: 64,
        max_connect_rate: 0.0,
        clock_offset_micros: offset_micros,
        clock_uncertainty_micros: 250,
    }
}

fn run_info() -> RunInfo {
    RunInfo {
        scenario_name: "transport-cost".to_owned(),
        scenario_path: "scenarios/transport-cost.toml".to_owned(),
        started_unix_micros: 1_700_000_000_000_000,
        finished_unix_micros: Some(1_700_000_100_000_000),
        stopped_early: false,
        monitor: Some(peer("server-host", -800)),
        monitored_processes: vec!["prosody".to_owned()],
        monitor_interval_ms: 1000,
        server_metrics_url: None,
        agents: vec![peer("agent-a", 1500), peer("agent-b", -2000)],
        groups: vec![
            group_info(WEBSOCKET, "websocket", 0.0),
            group_info(C2S, "c2s", 50.0),
        ],
        peer_events: Vec::new(),
    }
}

fn talk_window(group: &str) -> (f64, f64) {
    PHASES
        .iter()
        .find(|p| p.0 == group && p.1 == "talk")
        .map(|p| (p.2, p.3))
        .expect("every group has a talk phase")
}

/// CPU of prosody at sample time `t_s`: cycling values while a group talks, idle otherwise.
fn cpu_at(t_s: f64) -> f64 {
    for (group, values) in [(WEBSOCKET, WEBSOCKET_TALK_CPU), (C2S, C2S_TALK_CPU)] {
        let (start, end) = talk_window(group);
        if start <= t_s && t_s <= end {
            let index = (t_s - start).floor() as usize;
            return values[index % values.len()];
        }
    }
    IDLE_CPU
}

fn monitor_csv() -> String {
    let mut csv = String::from("t_s,process,pid,cpu_percent,rss_bytes,host_cpu_percent,gap\n");
    for second in 0..100 {
        let t_s = f64::from(second) + 0.5;
        let host = if cpu_at(t_s) == IDLE_CPU { 20.0 } else { 30.0 };
        let _ = writeln!(
            csv,
            "{t_s},prosody,4242,{},52428800,{host},false",
            cpu_at(t_s)
        );
    }
    // A restart while c2s talks: the gap row's CPU must stay out of the statistics.
    let _ = writeln!(csv, "75.25,prosody,0,999,0,30,true");
    csv
}

/// Report times of one agent for one group: every second from the group's
/// start until two seconds after its last phase, shifted by the agent's jitter.
fn report_times(group: &str, jitter: f64) -> Vec<f64> {
    let first = if group == WEBSOCKET { 1 } else { 51 };
    (first..first + 46).map(|s| f64::from(s) + jitter).collect()
}

/// Messages an agent sends and receives per report: traffic only in reports
/// whose second overlaps the talk phase.
fn per_report_traffic(group: &str, t_s: f64) -> (u64, u64) {
    let (start, end) = talk_window(group);
    let talking = start < t_s && t_s < end + 1.0;
    match (group, talking) {
        (WEBSOCKET, true) => (10, 100),
        (_, true) => (20, 200),
        _ => (0, 0),
    }
}

fn bots_csv() -> String {
    let mut csv = String::from(
        "t_s,agent,group,connecting,connected,joined,connect_attempts,connected_total,\
         joined_total,left_total,failed_total,messages_sent,messages_received,reflections,\
         stanzas_received,late_sends,errors\n",
    );
    for group in [WEBSOCKET, C2S] {
        let group_start = if group == WEBSOCKET { 0.0 } else { 50.0 };
        for (agent_index, (agent, jitter)) in AGENTS.iter().enumerate() {
            let (mut sent, mut received, mut joined_total) = (0u64, 0u64, 0u64);
            let times = report_times(group, *jitter);
            for (index, &t_s) in times.iter().enumerate() {
                let elapsed = t_s - group_start;
                let connected = if elapsed > 45.0 {
                    0
                } else {
                    ((elapsed * 5.0) as u64).min(50)
                };
                joined_total = joined_total.max(connected);
                let (sent_now, received_now) = per_report_traffic(group, t_s);
                sent += sent_now;
                received += received_now;
                let last = index + 1 == times.len();
                let failed = if last { agent_index as u64 + 1 } else { 0 };
                let errors = match (last, agent_index) {
                    (true, 0) => "timeout=2;refused=1",
                    (true, _) => "timeout=2",
                    _ => "",
                };
                let left = if elapsed > 45.0 { 50 } else { 0 };
                let _ = writeln!(
                    csv,
                    "{t_s},{agent},{group},0,{connected},{connected},{},{joined_total},{joined_total},\
                     {left},{failed},{sent},{received},{sent},{received},0,{errors}",
                    joined_total + failed,
                );
            }
        }
    }
    csv
}

/// Serializes a histogram of `(value in µs, count)` pairs as `latency.csv` stores it.
fn encoded_histogram(values: &[(u64, u64)]) -> String {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    for &(value, count) in values {
        histogram
            .record_n(value, count)
            .expect("value within bounds");
    }
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(&histogram, &mut bytes)
        .expect("serializing to memory");
    BASE64.encode(bytes)
}

/// Per-report latency of the websocket talk phase. Over 20 reports this gives
/// 1600 × 1 ms, 1200 × 1.5 ms, 180 × 1.9 ms and 20 × 2 ms, so that p50, p90,
/// p99 and max fall clearly inside the buckets 1, 1.5, 1.9 and 2 ms.
const WEBSOCKET_LATENCY: [(u64, u64); 4] = [(1000, 80), (1500, 60), (1900, 9), (2000, 1)];

fn latency_csv() -> String {
    let mut csv = String::from("t_s,agent,group,count,histogram\n");
    for second in 11..=30 {
        let _ = writeln!(
            csv,
            "{second},agent-a,{WEBSOCKET},150,{}",
            encoded_histogram(&WEBSOCKET_LATENCY)
        );
    }
    // Outside every window, so it must not reach any percentile.
    let _ = writeln!(
        csv,
        "48,agent-b,{WEBSOCKET},1,{}",
        encoded_histogram(&[(50_000, 1)])
    );
    for second in 61..=70 {
        let _ = writeln!(
            csv,
            "{}.3,agent-b,{C2S},10,{}",
            second,
            encoded_histogram(&[(1800, 10)])
        );
    }
    csv
}

fn phases_csv() -> String {
    let mut csv = String::from("group,phase,start_s,end_s\n");
    for (group, phase, start, end) in PHASES {
        let _ = writeln!(csv, "{group},{phase},{start},{end}");
    }
    csv
}

fn write_folder(dir: &Path) {
    let run = serde_json::to_string_pretty(&run_info()).expect("RunInfo serializes");
    std::fs::write(dir.join("run.json"), run).expect("write run.json");
    std::fs::write(dir.join("monitor.csv"), monitor_csv()).expect("write monitor.csv");
    std::fs::write(dir.join("bots.csv"), bots_csv()).expect("write bots.csv");
    std::fs::write(dir.join("latency.csv"), latency_csv()).expect("write latency.csv");
    std::fs::write(dir.join("phases.csv"), phases_csv()).expect("write phases.csv");
}

fn synthetic_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create temp dir");
    write_folder(dir.path());
    dir
}

/// Writes the synthetic folder with `run.json` replaced by `run`.
fn folder_with_run(run: &RunInfo) -> tempfile::TempDir {
    let dir = synthetic_folder();
    let text = serde_json::to_string_pretty(run).expect("RunInfo serializes");
    std::fs::write(dir.path().join("run.json"), text).expect("write run.json");
    dir
}

/// Builds the outputs of `dir` and returns `report.md`.
fn build_report(dir: &Path) -> String {
    report::build_outputs(dir).expect("outputs built");
    std::fs::read_to_string(dir.join("report.md")).expect("report.md written")
}

fn assert_lines(text: &str, expected_lines: &[&str]) {
    for line in expected_lines {
        assert!(
            text.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{text}"
        );
    }
}

/// Rewrites the CSV file `name` of `dir` without the rows that `drop` selects.
fn drop_rows(dir: &Path, name: &str, drop: impl Fn(&str) -> bool) {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).expect("read CSV");
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|&(index, line)| index == 0 || !drop(line))
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    std::fs::write(&path, kept).expect("rewrite CSV");
}

fn incomplete_slice(agent: &str, reason: &str) -> IncompleteSlice {
    IncompleteSlice {
        agent: agent.to_owned(),
        bots: 50,
        reason: reason.to_owned(),
        lost_at_s: None,
    }
}

/// Independent count of the messages in a window: per agent, the cumulative
/// counter at its last report before `end + 1` minus that at its last report
/// at or before `start`.
fn expected_sent(group: &str, start: f64, end: f64) -> u64 {
    let mut total = 0;
    for (_, jitter) in AGENTS {
        let mut cumulative = 0;
        let (mut at_start, mut at_end) = (0, 0);
        for t_s in report_times(group, jitter) {
            cumulative += per_report_traffic(group, t_s).0;
            if t_s <= start {
                at_start = cumulative;
            }
            if t_s < end + 1.0 {
                at_end = cumulative;
            }
        }
        total += at_end - at_start;
    }
    total
}

/// CPU mean, standard deviation and max per phase equal the values written.
#[test]
fn cpu_statistics_match_input() {
    let dir = synthetic_folder();
    let data = report::load(dir.path()).expect("valid folder");
    let summary = summarize(&data).expect("summary");

    let expected_std = (320.0f64 / 29.0).sqrt();
    for (group, middle, gaps) in [(WEBSOCKET, 40.0, 0), (C2S, 50.0, 1)] {
        let group = summary
            .groups
            .iter()
            .find(|g| g.name == group)
            .expect("group present");
        let talk = group
            .windows
            .iter()
            .find(|w| w.window.kind == WindowKind::Phase(Phase::Talk))
            .expect("talk window");
        let cpu = &talk.processes[0];
        assert_eq!(cpu.process, "prosody");
        assert_eq!(cpu.cpu.count(), 30);
        assert!((cpu.cpu.mean().expect("mean") - middle).abs() < 1e-9);
        assert!((cpu.cpu.std_dev().expect("std dev") - expected_std).abs() < 1e-9);
        assert_eq!(cpu.cpu.max(), Some(middle + 4.0));
        assert_eq!(cpu.excluded_samples, gaps);
        assert!((talk.host_cpu.mean().expect("host mean") - 30.0).abs() < 1e-9);

        let join = &group.windows[0];
        assert_eq!(join.window.kind, WindowKind::Phase(Phase::Join));
        assert_eq!(join.processes[0].cpu.mean(), Some(IDLE_CPU));
    }
}

/// Messages per phase equal the deltas of the cumulative counters.
#[test]
fn messages_match_counter_deltas() {
    let dir = synthetic_folder();
    let data = report::load(dir.path()).expect("valid folder");
    let summary = summarize(&data).expect("summary");

    for group in &summary.groups {
        for window in &group.windows {
            let expected = expected_sent(&group.name, window.window.start_s, window.window.end_s);
            assert_eq!(
                window.messages.sent, expected,
                "{} {:?}",
                group.name, window.window
            );
            assert_eq!(
                window.messages.received,
                expected * 10,
                "{} {:?}",
                group.name,
                window.window
            );
        }
    }
    // Agent a has 30 reports overlapping the websocket talk phase and agent b 31.
    let websocket_talk = &summary.groups[0].windows[1];
    assert_eq!(websocket_talk.messages.sent, 610);
    let totals = &summary.groups[0].totals;
    assert_eq!((totals.joined, totals.failed, totals.agents), (100, 3, 2));
    assert_eq!(totals.errors.get("timeout"), Some(&4));
    assert_eq!(totals.errors.get("refused"), Some(&1));
}

/// Latency percentiles come from the merged histograms inside the window only.
#[test]
fn latency_percentiles_match_histograms() {
    let dir = synthetic_folder();
    let data = report::load(dir.path()).expect("valid folder");
    let summary = summarize(&data).expect("summary");

    let websocket_talk = summary.groups[0].windows[1]
        .latency
        .expect("latency recorded");
    assert_eq!(websocket_talk.count, 3000);
    assert_eq!(websocket_talk.p50_ms, 1.0);
    assert_eq!(websocket_talk.p90_ms, 1.5);
    assert_eq!(websocket_talk.p99_ms, 1.9);
    assert_eq!(websocket_talk.max_ms, 2.0);
    assert!(
        summary.groups[0].windows[0].latency.is_none(),
        "no reflections while joining"
    );

    let c2s_talk = summary.groups[1].windows[1]
        .latency
        .expect("latency recorded");
    assert_eq!(
        (c2s_talk.count, c2s_talk.p50_ms, c2s_talk.max_ms),
        (100, 1.8, 1.8)
    );
}

/// The talk comparison finds c2s dearer and its interval contains the true difference.
#[test]
fn comparison_interval_contains_difference() {
    let dir = synthetic_folder();
    let data = report::load(dir.path()).expect("valid folder");
    let summary = summarize(&data).expect("summary");

    let comparison = &summary.comparisons[0];
    assert_eq!(comparison.baseline_group, WEBSOCKET);
    let c2s = &comparison.others[0];
    assert_eq!(c2s.group, C2S);
    let difference = c2s.difference.expect("both sides have samples");
    assert!((difference.difference - 10.0).abs() < 1e-9);
    assert!(difference.contains(10.0), "{difference:?}");
    assert!(difference.low > 0.0, "{difference:?}");
}

/// report.md shows the settings, the phase tables, the errors and the verdict.
#[test]
fn markdown_shows_values() {
    let dir = synthetic_folder();
    report::build_outputs(dir.path()).expect("outputs built");
    let text = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md written");

    let expected_lines = [
        "# Load test report: transport-cost",
        "| started | 2023-11-14 22:13:20.000 UTC |",
        "| duration | 100.0 s |",
        "| monitor | every 1000 ms, on `server-host` (4 cores), processes: prosody |",
        "| c2s | c2s | none | on | 100 | 10 | 10 | 0.2 | 30 | 40 | 64 | load@conference.localhost | 50.0 | agent-a: 50, agent-b: 50 |",
        "| agent-a | bot agent | http://agent-a:7100 | 0.1.0 | 4 | 65536 | +1.500 ± 0.250 | websocket: 50, c2s: 50 |",
        "| talk | 10.0 – 40.0 | prosody | 30 | 100 | 40.0 | 3.3 | 44.0 | 0 |",
        "| talk | 60.0 – 90.0 | prosody | 30 | 100 | 50.0 | 3.3 | 54.0 | 1 (first at 75.2 s) |",
        "| talk | 10.0 – 40.0 | host | 30 | 100 | 30.0 | 0.0 | 30.0 | |",
        "| talk | 10.0 – 40.0 | 610 | 6100 | 610 | 3000 | 1.00 | 1.50 | 1.90 | 2.00 |",
        "| timeout | 4 |",
        "| refused | 1 |",
    ];
    assert_lines(&text, &expected_lines);
    assert!(
        text.contains("Bots: 100 planned, 100 joined, 3 failed"),
        "bots line missing in:\n{text}"
    );
    assert!(
        text.contains("(final counters of 2 agents)."),
        "agent count missing in:\n{text}"
    );
    for absent in [
        "| status |",
        "WARNING",
        "skipped a truncated",
        "not compared",
    ] {
        assert!(
            !text.contains(absent),
            "{absent:?} in a complete run:\n{text}"
        );
    }
    assert!(
        text.contains(
            "- c2s vs websocket: c2s costs 10.0 points more prosody CPU while talking (95% CI "
        ),
        "verdict missing in:\n{text}"
    );
    assert!(
        text.contains("autocorrelated"),
        "autocorrelation note missing"
    );
}

/// The PNG is 1600x1000 with many colours and the SVG names every phase.
#[test]
fn graphs_render() {
    let dir = synthetic_folder();
    report::build_outputs(dir.path()).expect("outputs built");

    let png = image::open(dir.path().join("monitor_server.png")).expect("PNG decodes");
    assert_eq!((png.width(), png.height()), (1600, 1000));
    let rgb = png.to_rgb8();
    let colors: HashSet<[u8; 3]> = rgb.pixels().map(|p| p.0).collect();
    assert!(colors.len() > 20, "only {} distinct colours", colors.len());
    let white = rgb.pixels().filter(|p| p.0 == [255, 255, 255]).count();
    assert!(white < rgb.pixels().len() * 9 / 10, "image is almost blank");

    let svg = std::fs::read_to_string(dir.path().join("monitor_server.svg")).expect("SVG written");
    for (group, phase, _, _) in PHASES {
        let label = format!("{group} {phase}");
        assert!(svg.contains(&label), "SVG lacks label {label:?}");
    }
    assert!(svg.contains("seconds from start"));
}

/// A slice lost at a known time gets a labelled line in the graph.
#[test]
fn graphs_mark_lost_slice() {
    let mut run = run_info();
    run.groups[1].incomplete = vec![IncompleteSlice {
        lost_at_s: Some(75.0),
        ..incomplete_slice("agent-b", "stream broke off: connection reset")
    }];
    let dir = folder_with_run(&run);
    report::build_outputs(dir.path()).expect("outputs built");

    let svg = std::fs::read_to_string(dir.path().join("monitor_server.svg")).expect("SVG written");
    assert!(svg.contains("lost agent-b"), "SVG lacks the loss label");
    assert!(
        svg.contains("stroke=\"#C80000\""),
        "SVG lacks the red loss line"
    );
}

/// A slice without a time of loss, as in older folders, gets no label.
#[test]
fn graphs_skip_loss_without_time() {
    let mut run = run_info();
    run.groups[1].incomplete = vec![incomplete_slice("agent-b", "rejected: busy")];
    let dir = folder_with_run(&run);
    report::build_outputs(dir.path()).expect("outputs built");

    let svg = std::fs::read_to_string(dir.path().join("monitor_server.svg")).expect("SVG written");
    assert!(
        !svg.contains("lost agent-b"),
        "SVG has a label without a time"
    );
}

/// A folder without latency.csv still gives a report, which names the missing file.
#[test]
fn missing_latency_is_allowed() {
    let dir = synthetic_folder();
    std::fs::remove_file(dir.path().join("latency.csv")).expect("remove latency.csv");
    let data = report::load(dir.path()).expect("folder without latency.csv");
    assert_eq!(data.missing_files, vec!["latency.csv"]);
    report::build_outputs(dir.path()).expect("outputs built");
    let text = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md written");
    assert!(text.contains("latency.csv"));
}

/// A malformed row is rejected with its file and line.
#[test]
fn malformed_rows_name_file_and_line() {
    let cases = [
        (
            "monitor.csv",
            "t_s,process,pid,cpu_percent,rss_bytes,host_cpu_percent,gap\n1,prosody,1,2,3,4,false\n2,prosody,1,busy,3,4,false\n",
            3,
        ),
        (
            "monitor.csv",
            "t_s,process,pid,cpu_percent,rss_bytes,host_cpu_percent,gap\n1,prosody,1,2,3,4,maybe\n",
            2,
        ),
        (
            "bots.csv",
            "t_s,agent,group,connecting,connected,joined,connect_attempts,connected_total,joined_total,left_total,failed_total,messages_sent,messages_received,reflections,stanzas_received,late_sends,errors\n1,a,g,0,0,0,0,0,0,0,0,0,0,0,0,0,timeout\n",
            2,
        ),
        (
            "latency.csv",
            "t_s,agent,group,count,histogram\n1,a,g,1,!!!\n",
            2,
        ),
        (
            "latency.csv",
            "t_s,agent,group,count,histogram\n1,a,g,1,AAAAAA==\n",
            2,
        ),
        (
            "phases.csv",
            "group,phase,start_s,end_s\ng,join,0,1\ng,chat,1,2\n",
            3,
        ),
        ("phases.csv", "group,phase,start_s,end_s\ng,join,5,1\n", 2),
        ("phases.csv", "group,phase,start_s,end_s\ng,join,0\n", 2),
    ];
    for (file, content, line) in cases {
        let dir = synthetic_folder();
        std::fs::write(dir.path().join(file), content).expect("overwrite CSV");
        let error = report::load(dir.path()).expect_err(content);
        let message = error.to_string();
        assert!(message.contains(file), "{message:?} does not name {file}");
        assert!(
            message.contains(&format!("line {line}")),
            "{message:?} does not name line {line}"
        );
    }
}

/// A header without a required column is rejected by column name.
#[test]
fn missing_column_rejected() {
    let dir = synthetic_folder();
    std::fs::write(
        dir.path().join("phases.csv"),
        "group,phase,start_s\ng,join,0\n",
    )
    .expect("overwrite");
    let error = report::load(dir.path()).expect_err("end_s is missing");
    assert!(
        matches!(
            error,
            ReportError::MissingColumn {
                column: "end_s",
                ..
            }
        ),
        "{error}"
    );
}

/// A run that died before any CSV row still gets a report and graphs.
#[test]
fn empty_folder_builds_outputs() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let run = serde_json::to_string(&run_info()).expect("RunInfo serializes");
    std::fs::write(dir.path().join("run.json"), run).expect("write run.json");

    report::build_outputs(dir.path()).expect("outputs built");
    let text = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md written");
    assert!(
        text.contains("monitor.csv, bots.csv, latency.csv, phases.csv"),
        "{text}"
    );
    assert!(
        text.contains("`phases.csv` has no phase of this group."),
        "{text}"
    );
    assert!(dir.path().join("monitor_server.png").exists());
    assert!(dir.path().join("monitor_server.svg").exists());
}

/// An interrupted run is marked in the header, which names the group that never ran.
#[test]
fn stopped_early_names_unstarted_groups() {
    let mut run = run_info();
    run.stopped_early = true;
    run.finished_unix_micros = Some(1_700_000_048_000_000);
    let dir = folder_with_run(&run);
    let is_c2s = |line: &str| line.contains(",c2s,") || line.starts_with("c2s,");
    for file in ["bots.csv", "latency.csv", "phases.csv"] {
        drop_rows(dir.path(), file, is_c2s);
    }

    let text = build_report(dir.path());
    assert_lines(
        &text,
        &[
            "| duration | 48.0 s |",
            "| status | stopped early: the run was interrupted before its timeline ended |",
            "| did not start | c2s |",
            "## Group c2s",
            "Did not start: 100 planned, but `bots.csv` has no row of this group.",
        ],
    );
    let c2s_section = text.split("## Group c2s").nth(1).expect("c2s section");
    assert!(
        !c2s_section.contains("Bots:"),
        "a group that did not start has no counters:\n{text}"
    );
    let svg = std::fs::read_to_string(dir.path().join("monitor_server.svg")).expect("SVG written");
    assert!(
        svg.contains("(stopped early)"),
        "graph title lacks the note"
    );
}

/// An incomplete group warns, counts only finished agents and is not compared.
#[test]
fn incomplete_group_not_compared() {
    let mut run = run_info();
    run.groups[1].incomplete = vec![incomplete_slice(
        "agent-b",
        "stream broke off: connection reset",
    )];
    let dir = folder_with_run(&run);

    let data = report::load(dir.path()).expect("valid folder");
    let summary = summarize(&data).expect("summary");
    let c2s = &summary.groups[1];
    assert_eq!((c2s.totals.agents, c2s.totals.joined), (1, 50));
    let c2s_talk = &c2s.windows[1];
    assert_eq!(c2s_talk.window.kind, WindowKind::Phase(Phase::Talk));
    // Agent a has 30 reports of 20 messages in the c2s talk phase; agent b
    // would add 31 more.
    assert_eq!(c2s_talk.messages.sent, 600, "agent-a's messages only");
    assert!(
        c2s_talk.latency.is_none(),
        "c2s latency came from agent-b only"
    );
    let comparison = &summary.comparisons[0].others[0];
    assert!(comparison.difference.is_none());
    assert_eq!(
        comparison.not_compared,
        vec![NotComparable::Incomplete {
            group: C2S.to_owned(),
            agents: vec!["agent-b".to_owned()],
        }]
    );

    let text = build_report(dir.path());
    assert_lines(
        &text,
        &[
            "WARNING: this group is incomplete. The bot counters, messages and latency below \
             cover only the agents that finished, while CPU includes the load of every agent. \
             Agents whose slice did not run to its end:",
            "- agent-b: 50 bots, stream broke off: connection reset",
            "Bots: 100 planned, 50 joined, 1 failed, 50 left, 51 connect attempts, \
             0 sends more than 100 ms late (final counters of 1 agent).",
            "| c2s | 30 | 50.0 | not compared | n/a |",
            "- c2s vs websocket: not compared: c2s is incomplete (agent-b)",
        ],
    );
    let websocket_section = text
        .split("## Group websocket")
        .nth(1)
        .and_then(|rest| rest.split("## Group c2s").next())
        .expect("websocket section");
    assert!(!websocket_section.contains("WARNING"), "{text}");
}

/// An incomplete baseline stops every comparison against it.
#[test]
fn incomplete_baseline_not_compared() {
    let mut run = run_info();
    run.groups[0].incomplete = vec![
        incomplete_slice("agent-a", "rejected the group: too many bots"),
        incomplete_slice("agent-b", "ran past its bound"),
    ];
    let dir = folder_with_run(&run);

    let text = build_report(dir.path());
    assert_lines(
        &text,
        &[
            "- agent-a: 50 bots, rejected the group: too many bots",
            "- agent-b: 50 bots, ran past its bound",
            "- c2s vs websocket: not compared: websocket is incomplete (agent-a, agent-b)",
        ],
    );
}

/// A group whose joined bots differ from the plan is not compared, with both numbers.
#[test]
fn joined_not_planned_not_compared() {
    let mut run = run_info();
    run.groups[1].bots = 120;
    let dir = folder_with_run(&run);

    let text = build_report(dir.path());
    assert_lines(
        &text,
        &["- c2s vs websocket: not compared: c2s joined 100 bots, not the 120 planned"],
    );
}

/// Windows with too few valid monitor samples are flagged with their coverage.
#[test]
fn low_monitor_coverage_flagged() {
    let dir = synthetic_folder();
    // prosody is missing from 20 s to 35 s: the monitor writes gap rows with pid 0.
    let monitor = monitor_csv()
        .lines()
        .map(|line| {
            let t_s: f64 = line
                .split(',')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(-1.0);
            if (20.0..35.0).contains(&t_s) {
                format!("{t_s},prosody,0,0,0,30,true\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect::<String>();
    std::fs::write(dir.path().join("monitor.csv"), monitor).expect("write monitor.csv");

    let text = build_report(dir.path());
    assert_lines(
        &text,
        &[
            // 15 valid samples at 10.5-19.5 and 35.5-39.5: five each of 36, 40 and 44.
            "| talk | 10.0 – 40.0 | prosody | 15 | 50 | 40.0 | 3.4 | 44.0 | 15 (first at 20.5 s) |",
            "| talk | 10.0 – 40.0 | host | 30 | 100 | 30.0 | 0.0 | 30.0 | |",
            "| join | 0.0 – 10.0 | prosody | 10 | 100 | 5.0 | 0.0 | 5.0 | 0 |",
            "WARNING: prosody has 15 of 30 expected monitor samples (50%) in the talk window \
             (10.0 – 40.0 s). The monitor lost samples or the process was not running.",
            "WARNING: prosody has 30 of 45 expected monitor samples (67%) in the whole group \
             window (0.0 – 45.0 s). The monitor lost samples or the process was not running.",
        ],
    );
    let warnings = text.lines().filter(|l| l.starts_with("WARNING")).count();
    assert_eq!(
        warnings, 2,
        "only the websocket talk and whole-group rows:\n{text}"
    );
}

/// A truncated last row is skipped and named; rows before it still count.
#[test]
fn truncated_last_row_skipped() {
    let dir = synthetic_folder();
    let append = |name: &str, tail: &str| {
        let path = dir.path().join(name);
        let mut text = std::fs::read_to_string(&path).expect("read CSV");
        text.push_str(tail);
        std::fs::write(&path, text).expect("write CSV");
    };
    // 184 rows follow the header, so the cut row is line 186.
    append("bots.csv", "47.3,agent-b,c2s,0,0");
    // 31 rows follow the header; the cut row ends inside its histogram.
    append("latency.csv", "71.3,agent-b,c2s,10,HISTFAAAAB");

    let data = report::load(dir.path()).expect("truncated last rows are tolerated");
    assert_eq!(data.bots.len(), 184);
    assert_eq!(data.latency.len(), 31);
    let text = build_report(dir.path());
    assert_lines(
        &text,
        &[
            "- skipped a truncated last row in bots.csv (line 186)",
            "- skipped a truncated last row in latency.csv (line 33)",
        ],
    );
}

/// A malformed row before the last one, or a last row ending in a newline, still fails.
#[test]
fn malformed_rows_not_at_end_fail() {
    let header = "t_s,process,pid,cpu_percent,rss_bytes,host_cpu_percent,gap\n";
    let cases = [
        (format!("{header}1,prosody,1,2\n2,prosody,1,2,3,4,false"), 2),
        (
            format!("{header}1,prosody,1,2,3,4,false\n2,prosody,1,2\n"),
            3,
        ),
    ];
    for (content, line) in cases {
        let dir = synthetic_folder();
        std::fs::write(dir.path().join("monitor.csv"), &content).expect("overwrite CSV");
        let error = report::load(dir.path()).expect_err(&content);
        let message = error.to_string();
        assert!(
            message.contains("monitor.csv"),
            "{message:?} does not name the file"
        );
        assert!(
            message.contains(&format!("line {line}")),
            "{message:?} does not name line {line}"
        );
    }
}
