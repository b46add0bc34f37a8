//! Bad input stops a run before anything starts, with an error that names
//! the culprit, and leaves no results folder behind.

use std::path::Path;

use tokio_util::sync::CancellationToken;
use xmppload_coordinator::run::{RunError, RunOptions, run};
use xmppload_coordinator::scenario::Overrides;

const SCENARIO: &str = r#"
name = "unreachable"

[server]
domain = "anon.localhost"
muc_domain = "conference.anon.localhost"
c2s = "127.0.0.1:9"

[agents]
addresses = ["http://127.0.0.1:9"]

[[timeline]]
group = "g"
transport = "c2s"
bots = 1
"#;

async fn run_text(dir: &Path, text: &str, overrides: Overrides) -> RunError {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    let options = RunOptions {
        scenario: path,
        results_root: dir.join("results"),
        overrides,
        token: None,
        tls: None,
        metrics_listen: None,
    };
    run(options, CancellationToken::new())
        .await
        .expect_err("run must fail")
}

/// An agent that does not listen is named with its address.
#[tokio::test]
async fn unreachable_agent_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // Bind and drop a listener to get a loopback port that nothing serves.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let overrides = Overrides {
        agents: vec![address.clone()],
        monitor: None,
    };

    let err = run_text(dir.path(), SCENARIO, overrides).await;
    let message = err.to_string();
    assert!(matches!(err, RunError::Peer(_)), "{message}");
    assert!(
        message.contains(&format!("cannot reach bot agent at {address}")),
        "{message}"
    );
    assert!(
        !dir.path().join("results").exists(),
        "no results folder for a run that never started"
    );
}

/// An unreachable monitor is named too.
#[tokio::test]
async fn unreachable_monitor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let text = format!(
        "{SCENARIO}\n[monitor]\naddress = \"{address}\"\n[[monitor.process]]\nname = \"p\"\npid = 1\n"
    );

    let err = run_text(dir.path(), &text, Overrides::default()).await;
    assert!(
        err.to_string()
            .contains(&format!("cannot reach monitor agent at {address}")),
        "{err}"
    );
}

/// An invalid scenario is rejected with file, line and field before any connection.
#[tokio::test]
async fn invalid_scenario_is_rejected_first() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_text(
        dir.path(),
        &SCENARIO.replace("bots = 1", "bots = -3"),
        Overrides::default(),
    )
    .await;
    let message = err.to_string();
    assert!(matches!(err, RunError::Scenario(_)), "{message}");
    assert!(message.contains("scenario.toml:15:"), "{message}");
    assert!(!dir.path().join("results").exists());
}
