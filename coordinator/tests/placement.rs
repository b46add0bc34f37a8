//! Capacity-aware placement through real agents and a real Prosody: the
//! bots each agent ran, and a group rejected before any bot starts.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::AgentConfig;
use xmppload_agent::policy::HostCapacity;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::{RunError, RunOptions, RunOutcome, run};
use xmppload_coordinator::scenario::Overrides;

/// Bound on one short run in these tests.
const RUN_BOUND: Duration = Duration::from_secs(120);

async fn start_agent(name: &str, fd_limit: Option<u64>, stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let config = AgentConfig {
        name: name.to_string(),
        capacity: HostCapacity {
            fd_limit,
            ..HostCapacity::default()
        },
        ..AgentConfig::default()
    };
    tokio::spawn(xmppload_agent::serve(listener, config, stop.clone()));
    address
}

/// A one-group scenario; `agents` is the whole `[agents]` table body.
fn scenario(prosody: &Prosody, agents: &str, bots: u32) -> String {
    let (host, port) = (prosody.c2s_addr().ip(), prosody.c2s_addr().port());
    format!(
        r#"
name = "placement"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{host}:{port}"

[agents]
{agents}

[defaults]
room = "placed"
rooms = 2
join_rate = 20.0
talk_after_s = 1.0
talk_rate = 2.0
talk_duration_s = 1.0
leave_after_s = 3.0

[[timeline]]
group = "placed"
transport = "c2s"
bots = {bots}
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
    )
}

fn options(work: &Path, text: &str) -> RunOptions {
    let path = work.join("placement.toml");
    std::fs::write(&path, text).unwrap();
    RunOptions {
        scenario: path,
        results_root: work.join("results"),
        overrides: Overrides::default(),
        token: None,
        tls: None,
        metrics_listen: None,
    }
}

/// Runs the scenario `text` with results under `work`, within [`RUN_BOUND`].
async fn run_bounded(work: &Path, text: &str) -> Result<RunOutcome, RunError> {
    tokio::time::timeout(
        RUN_BOUND,
        run(options(work, text), CancellationToken::new()),
    )
    .await
    .expect("run ends within its bound")
}

/// Final `joined_total` of each agent in `bots.csv`.
fn joined_per_agent(dir: &Path) -> HashMap<String, u64> {
    let mut reader = csv::Reader::from_path(dir.join("bots.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let agent = headers.iter().position(|h| h == "agent").unwrap();
    let joined = headers.iter().position(|h| h == "joined_total").unwrap();
    let mut last = HashMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        last.insert(record[agent].to_string(), record[joined].parse().unwrap());
    }
    last
}

/// Placement rows of the only group in `run.json`: agent, bots, limit.
fn placement_of(dir: &Path) -> Vec<(String, u64, String)> {
    let text = std::fs::read_to_string(dir.join("run.json")).unwrap();
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    info["groups"][0]["placement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["agent"].as_str().unwrap().to_string(),
                row["bots"].as_u64().unwrap(),
                row["limit"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Scenario weights 3:1 give the agents 6 and 2 of 8 bots, and each runs exactly those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_set_bots_per_agent() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let stop = CancellationToken::new();
    let heavy = start_agent("heavy", None, &stop).await;
    let light = start_agent("light", None, &stop).await;
    let work = tempfile::tempdir().unwrap();
    let agents = format!("addresses = [\"{heavy}\", \"{light}\"]\nweights = [3.0, 1.0]");

    let outcome = run_bounded(work.path(), &scenario(&prosody, &agents, 8))
        .await
        .expect("run succeeds");
    stop.cancel();

    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(
        placement_of(&outcome.dir),
        [
            ("heavy".to_string(), 6, "weight".to_string()),
            ("light".to_string(), 2, "weight".to_string())
        ]
    );
    let joined = joined_per_agent(&outcome.dir);
    assert_eq!(joined.get("heavy"), Some(&6), "{joined:?}");
    assert_eq!(joined.get("light"), Some(&2), "{joined:?}");
}

/// An agent with few descriptors is filled to its limit, and a group
/// beyond all limits is rejected before a results folder exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_caps_and_rejects() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let stop = CancellationToken::new();
    // 64 descriptors are the agent's reserve, so 67 leaves room for 3 bots.
    let small = start_agent("small", Some(67), &stop).await;
    let large = start_agent("large", Some(100_000), &stop).await;
    let work = tempfile::tempdir().unwrap();
    let agents = format!("addresses = [\"{small}\", \"{large}\"]");

    let outcome = run_bounded(work.path(), &scenario(&prosody, &agents, 8))
        .await
        .expect("run succeeds");
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(
        placement_of(&outcome.dir),
        [
            ("small".to_string(), 3, "descriptors".to_string()),
            ("large".to_string(), 5, "cores".to_string())
        ]
    );
    let joined = joined_per_agent(&outcome.dir);
    assert_eq!(joined.get("small"), Some(&3), "{joined:?}");
    assert_eq!(joined.get("large"), Some(&5), "{joined:?}");

    // Two agents that hold 3 bots each cannot take 7.
    let other_small = start_agent("small2", Some(67), &stop).await;
    let agents = format!("addresses = [\"{small}\", \"{other_small}\"]");
    let rejected_root = tempfile::tempdir().unwrap();
    let result = run_bounded(rejected_root.path(), &scenario(&prosody, &agents, 7)).await;
    stop.cancel();
    let Err(RunError::Placement(err)) = result else {
        panic!("expected a placement error, got {result:?}");
    };
    let message = err.to_string();
    assert!(
        message.contains("group placed: 7 bots do not fit"),
        "{message}"
    );
    assert!(message.contains("can hold 6 together"), "{message}");
    assert!(message.contains("small: 3 (descriptors)"), "{message}");
    assert!(
        !rejected_root.path().join("results").exists(),
        "no results folder for a rejected run"
    );
}
