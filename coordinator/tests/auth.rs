//! The coordinator sends the shared token to agents that require one, and a
//! wrong token stops the run before it starts with an error naming the agent.

use std::path::Path;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::AgentConfig;
use xmppload_coordinator::peers::PeerError;
use xmppload_coordinator::run::{RunError, RunOptions, RunOutcome, run};
use xmppload_coordinator::scenario::Overrides;
use xmppload_proto::auth::AuthToken;

const AGENT_SECRET: &str = "coordinator-test-token-0123";

/// One c2s bot aimed at a closed loopback port, so the group fails fast
/// without a server.
const SCENARIO: &str = r#"
name = "auth"

[server]
domain = "anon.localhost"
muc_domain = "conference.anon.localhost"
c2s = "127.0.0.1:9"

[defaults]
connect_timeout_s = 2.0

[[timeline]]
group = "g"
transport = "c2s"
bots = 1
"#;

/// Starts an agent that requires `AGENT_SECRET` and returns its gRPC address.
async fn start_guarded_agent(stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let config = AgentConfig {
        name: "guarded".to_owned(),
        token: Some(AuthToken::parse(AGENT_SECRET, "test").unwrap()),
        ..AgentConfig::default()
    };
    tokio::spawn(xmppload_agent::serve(listener, config, stop.clone()));
    address
}

async fn run_with_token(dir: &Path, agent: &str, secret: &str) -> Result<RunOutcome, RunError> {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    let options = RunOptions {
        scenario: path,
        results_root: dir.join("results"),
        overrides: Overrides {
            agents: vec![agent.to_owned()],
            monitor: None,
        },
        token: Some(AuthToken::parse(secret, "test").unwrap()),
        tls: None,
        metrics_listen: None,
    };
    let bounded = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(options, CancellationToken::new()),
    );
    bounded.await.expect("run ends within 60 s")
}

/// A wrong token fails the run up front, naming the agent and the cause.
#[tokio::test]
async fn wrong_token_names_agent() {
    let stop = CancellationToken::new();
    let agent = start_guarded_agent(&stop).await;
    let dir = tempfile::tempdir().unwrap();

    let err = run_with_token(dir.path(), &agent, "wrong-token-0123456789")
        .await
        .expect_err("a wrong token must fail the run");
    let message = err.to_string();
    assert!(
        matches!(err, RunError::Peer(PeerError::Unauthenticated { .. })),
        "{message}"
    );
    assert!(message.contains(&agent), "{message}");
    assert!(message.contains("unauthenticated"), "{message}");
    assert!(message.contains("--token-file"), "{message}");
    assert!(!message.contains(AGENT_SECRET), "{message}");
    assert!(!message.contains("wrong-token-0123456789"), "{message}");
    assert!(!dir.path().join("results").exists());
    stop.cancel();
}

/// The right token carries the run through every call, including RunGroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_token_runs_group() {
    let stop = CancellationToken::new();
    let agent = start_guarded_agent(&stop).await;
    let dir = tempfile::tempdir().unwrap();

    let outcome = run_with_token(dir.path(), &agent, AGENT_SECRET)
        .await
        .expect("run succeeds with the agent's token");
    assert!(!outcome.stopped_early);

    // The refused bot is counted, which shows that RunGroup reached the agent.
    let bots = std::fs::read_to_string(outcome.dir.join("bots.csv")).unwrap();
    let last = bots.lines().last().unwrap();
    assert!(last.contains("refused=1"), "{bots}");
    stop.cancel();
}
