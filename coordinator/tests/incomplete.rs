//! A group that one agent rejects still runs on the others, and the run
//! records the missing slice instead of reporting it as complete.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;

async fn start_agent(config: xmppload_agent::AgentConfig, stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(xmppload_agent::serve(listener, config, stop.clone()));
    address
}

/// An agent whose run-time limit the group exceeds leaves its slice out,
/// and the run records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_slice_is_recorded() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();

    let willing = xmppload_agent::AgentConfig {
        name: "willing".to_string(),
        ..Default::default()
    };
    let mut small = xmppload_agent::AgentConfig {
        name: "small".to_string(),
        ..Default::default()
    };
    // The coordinator checks each agent's capacity and connect rate before
    // the run, so the rejection comes from a limit it does not plan for:
    // the group's deadline is well over one second.
    small.limits.max_run = std::time::Duration::from_secs(1);
    let agents = vec![
        start_agent(willing, &stop).await,
        start_agent(small, &stop).await,
    ];

    let scenario = format!(
        r#"
name = "incomplete"

[server]
domain = "{domain}"
muc_domain = "{muc}"
websocket_url = "{ws}"

[[timeline]]
group = "ws"
transport = "websocket"
bots = 6
join_rate = 20.0
talk_after_s = 0.0
talk_rate = 0.0
talk_duration_s = 0.0
leave_after_s = 1.0
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        ws = prosody.websocket_url(),
    );
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("incomplete.toml");
    std::fs::write(&path, scenario).unwrap();

    let options = RunOptions {
        scenario: path,
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
        std::time::Duration::from_secs(60),
        run(options, CancellationToken::new()),
    )
    .await
    .expect("run ends within its bound")
    .expect("run succeeds");
    stop.cancel();

    // The willing agent ran its three bots; the small one ran none.
    assert_eq!(outcome.problems.len(), 1, "{:?}", outcome.problems);
    assert!(
        outcome.problems[0]
            .starts_with("group ws: agent small did not finish its 3 bots (rejected:"),
        "{:?}",
        outcome.problems
    );

    let run_info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outcome.dir.join("run.json")).unwrap()).unwrap();
    let incomplete = run_info["groups"][0]["incomplete"].as_array().unwrap();
    assert_eq!(incomplete.len(), 1);
    assert_eq!(incomplete[0]["agent"], "small");
    assert_eq!(incomplete[0]["bots"], 3);
    assert!(
        incomplete[0]["reason"]
            .as_str()
            .unwrap()
            .contains("--max-run-seconds"),
        "{}",
        incomplete[0]["reason"]
    );

    let bots = std::fs::read_to_string(outcome.dir.join("bots.csv")).unwrap();
    let last_willing = bots
        .lines()
        .filter(|line| line.contains(",willing,"))
        .last()
        .unwrap();
    let columns: Vec<&str> = last_willing.split(',').collect();
    assert_eq!(
        columns[8], "3",
        "joined_total of the willing agent: {last_willing}"
    );
    assert!(
        !bots.contains(",small,"),
        "the rejected agent wrote no rows"
    );
}
