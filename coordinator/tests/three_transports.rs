//! End-to-end: one scenario with WebSocket, c2s and BOSH groups against a
//! real Prosody gives clean rows for each of the three in the results.

mod common;

use std::collections::HashMap;

use common::{read_csv, start_agent};
use tokio_util::sync::CancellationToken;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;

const BOTS: u64 = 4;
const TALK_RATE: f64 = 2.0;
const TALK_DURATION_S: f64 = 1.0;
const GROUPS: [&str; 3] = ["websocket", "c2s", "bosh"];

fn scenario(prosody: &Prosody) -> String {
    let c2s = prosody.c2s_addr();
    format!(
        r#"
name = "three-transports"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{c2s}"
websocket_url = "{ws}"
bosh_url = "{bosh}"

[defaults]
room = "three"
join_rate = 20.0
talk_after_s = 1.0
talk_rate = {TALK_RATE}
talk_duration_s = {TALK_DURATION_S}
leave_after_s = 3.0
stream_management = true

[[timeline]]
group = "websocket"
transport = "websocket"
bots = {BOTS}

[[timeline]]
group = "c2s"
transport = "c2s"
bots = {BOTS}

[[timeline]]
group = "bosh"
transport = "bosh"
bots = {BOTS}
bosh_wait_s = 20
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        ws = prosody.websocket_url(),
        bosh = prosody.bosh_url(),
    )
}

/// Last row of `column` for `group`, as a whole number.
fn last_value(rows: &[HashMap<String, String>], group: &str, column: &str) -> u64 {
    let row = rows
        .iter()
        .rfind(|row| row["group"] == group)
        .unwrap_or_else(|| panic!("no row for group {group}"));
    row[column]
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("{column} = {:?} is not a number", row[column])) as u64
}

/// Each transport's group has its own clean rows in bots.csv and latency.csv.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_c2s_bosh_rows() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let agents = vec![start_agent("agent-a", &stop).await.0];

    let work = tempfile::tempdir().unwrap();
    let scenario_path = work.path().join("three.toml");
    std::fs::write(&scenario_path, scenario(&prosody)).unwrap();
    let options = RunOptions {
        scenario: scenario_path,
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents,
            monitor: None,
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
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);

    let sent = BOTS * (TALK_RATE * TALK_DURATION_S).round() as u64;
    let bots = read_csv(&outcome.dir.join("bots.csv"));
    let latency = read_csv(&outcome.dir.join("latency.csv"));
    for group in GROUPS {
        let row = bots.iter().rfind(|row| row["group"] == group).unwrap();
        assert_eq!(row["errors"], "", "{group} errors");
        assert_eq!(
            last_value(&bots, group, "joined_total"),
            BOTS,
            "{group} joined"
        );
        assert_eq!(last_value(&bots, group, "left_total"), BOTS, "{group} left");
        assert_eq!(
            last_value(&bots, group, "failed_total"),
            0,
            "{group} failed"
        );
        assert_eq!(
            last_value(&bots, group, "messages_sent"),
            sent,
            "{group} sent"
        );
        assert_eq!(
            last_value(&bots, group, "messages_received"),
            sent * BOTS,
            "{group} received"
        );
        let samples: u64 = latency
            .iter()
            .filter(|row| row["group"] == group)
            .map(|row| row["count"].parse::<f64>().unwrap() as u64)
            .sum();
        assert_eq!(samples, sent, "{group} latency samples");
    }

    let report = std::fs::read_to_string(outcome.dir.join("report.md")).unwrap();
    for group in GROUPS {
        assert!(
            report.contains(&format!("## Group {group}")),
            "report has no section for {group}:\n{report}"
        );
    }
}
