//! A scenario with a component group floods the room of the bot group that
//! follows it, because the run starts a component group in the background.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::testing::{COMPONENT_DOMAIN, COMPONENT_SECRET, Prosody, ProsodyOptions};
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;

/// Messages of the flood, and listening bots that each receive all of them.
const MESSAGES: u64 = 30;
const LISTENERS: u64 = 3;

/// Last `bots.csv` row of `group`, split into columns.
fn last_row(bots_csv: &str, group: &str) -> Vec<String> {
    let row = bots_csv
        .lines()
        .rfind(|line| line.split(',').nth(2) == Some(group))
        .unwrap_or_else(|| panic!("no bots.csv row for group {group}"));
    row.split(',').map(str::to_owned).collect()
}

/// Every listener receives every flood message, and the flood sends its count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_floods_later_group() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(xmppload_agent::serve(
        listener,
        xmppload_agent::AgentConfig::default(),
        stop.clone(),
    ));

    // The flood starts 4 s after its connect; the listeners start about
    // 1 s after the component and have all joined well before that.
    let scenario = format!(
        r#"
name = "component-flood"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{c2s}"
component = "{component}"

[[timeline]]
group = "flood"
transport = "component"
component_domain = "{component_domain}"
secret = "{secret}"
room = "busy"
rate = 20.0
flood_after_s = 4.0
duration_s = 5.0
messages = {MESSAGES}

[[timeline]]
group = "listeners"
transport = "c2s"
room = "busy"
bots = {LISTENERS}
join_rate = 20.0
talk_after_s = 0.0
talk_rate = 0.0
talk_duration_s = 0.0
leave_after_s = 10.0
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        c2s = prosody.c2s_addr(),
        component = prosody.component_addr(),
        component_domain = COMPONENT_DOMAIN,
        secret = COMPONENT_SECRET,
    );
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("component-flood.toml");
    std::fs::write(&path, scenario).unwrap();

    let options = RunOptions {
        scenario: path,
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents: vec![agent],
            monitor: None,
        },
        token: None,
        tls: None,
        metrics_listen: None,
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        run(options, CancellationToken::new()),
    )
    .await
    .expect("run ends within its bound")
    .expect("run succeeds");
    stop.cancel();
    assert_eq!(outcome.problems, Vec::<String>::new(), "problems");

    // Columns: t_s, agent, group, connecting, connected, joined,
    // connect_attempts, connected_total, joined_total, left_total,
    // failed_total, messages_sent, messages_received, reflections, ...
    let bots_csv = std::fs::read_to_string(outcome.dir.join("bots.csv")).unwrap();
    let flood = last_row(&bots_csv, "flood");
    assert_eq!(flood[8], "1", "flood joined_total: {flood:?}");
    assert_eq!(flood[9], "1", "flood left_total: {flood:?}");
    assert_eq!(flood[10], "0", "flood failed_total: {flood:?}");
    assert_eq!(
        flood[11],
        MESSAGES.to_string(),
        "flood messages_sent: {flood:?}"
    );
    assert_eq!(
        flood[13],
        MESSAGES.to_string(),
        "flood reflections: {flood:?}"
    );

    let listeners = last_row(&bots_csv, "listeners");
    assert_eq!(
        listeners[9],
        LISTENERS.to_string(),
        "listeners left_total: {listeners:?}"
    );
    assert_eq!(listeners[10], "0", "listeners failed_total: {listeners:?}");
    assert_eq!(
        listeners[12],
        (MESSAGES * LISTENERS).to_string(),
        "listeners messages_received: {listeners:?}"
    );

    let run_info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outcome.dir.join("run.json")).unwrap()).unwrap();
    let groups = run_info["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    let flood_info = groups
        .iter()
        .find(|group| group["name"] == "flood")
        .unwrap();
    assert_eq!(flood_info["transport"], "component");
    assert_eq!(flood_info["talk_rate"], 20.0);
    assert_eq!(flood_info["bots"], 1);
    let run_json = std::fs::read_to_string(outcome.dir.join("run.json")).unwrap();
    assert!(
        !run_json.contains(COMPONENT_SECRET),
        "run.json keeps the secret out"
    );
    let scenario_copy = std::fs::read_to_string(outcome.dir.join("scenario.toml")).unwrap();
    assert!(
        !scenario_copy.contains(COMPONENT_SECRET),
        "the scenario copy keeps the secret out"
    );
}
