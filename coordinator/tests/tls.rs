//! gRPC between the coordinator and its agents over TLS and mutual TLS,
//! with certificates made by `coordinator ca`: a full run against a real
//! Prosody, and the errors for each wrong setup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::AgentConfig;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::ca::{self, CaOptions};
use xmppload_coordinator::peers::{self, PeerError};
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;
use xmppload_monitor::MonitorConfig;
use xmppload_proto::auth::AuthToken;
use xmppload_proto::tls::{ClientTls, ServerTls};

const BOTS: u64 = 3;
const SECRET: &str = "tls-test-token-0123456789";

/// Bound on one connection attempt in the error tests.
const CONNECT_BOUND: Duration = Duration::from_secs(30);

/// Writes a CA with a server certificate for 127.0.0.1 into `dir`.
fn make_pki(dir: &Path) -> PathBuf {
    let options = CaOptions {
        out: dir.to_owned(),
        hosts: vec!["localhost=127.0.0.1".parse().unwrap()],
        days: 1,
        force: false,
    };
    ca::create(&options).unwrap();
    dir.to_owned()
}

fn server_tls(pki: &Path, require_client_cert: bool) -> ServerTls {
    let client_ca = pki.join("ca.pem");
    ServerTls::load(
        &pki.join("localhost.pem"),
        &pki.join("localhost.key"),
        require_client_cert.then_some(client_ca.as_path()),
    )
    .unwrap()
}

/// Coordinator TLS settings: trust `ca_pki`'s CA and, when given, present
/// the client certificate of `client_pki`.
fn client_tls(ca_pki: &Path, client_pki: Option<&Path>) -> ClientTls {
    let cert = client_pki.map(|pki| (pki.join("coordinator.pem"), pki.join("coordinator.key")));
    let client = cert
        .as_ref()
        .map(|(cert, key)| (cert.as_path(), key.as_path()));
    ClientTls::load(&ca_pki.join("ca.pem"), client).unwrap()
}

/// Starts a bot agent on a free loopback port and returns its https:// address.
async fn start_agent(tls: ServerTls, token: Option<AuthToken>, stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("https://{}", listener.local_addr().unwrap());
    let config = AgentConfig {
        name: "tls-agent".to_owned(),
        token,
        tls: Some(tls),
        ..AgentConfig::default()
    };
    tokio::spawn(xmppload_agent::serve(listener, config, stop.clone()));
    address
}

/// Starts a monitor agent on a free loopback port and returns its https:// address.
async fn start_monitor(
    tls: ServerTls,
    token: Option<AuthToken>,
    stop: &CancellationToken,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("https://{}", listener.local_addr().unwrap());
    let config = MonitorConfig {
        name: "tls-monitor".to_owned(),
        token,
        tls: Some(tls),
    };
    tokio::spawn(xmppload_monitor::serve(listener, config, stop.clone()));
    address
}

fn token() -> AuthToken {
    AuthToken::parse(SECRET, "test").unwrap()
}

fn scenario(prosody: &Prosody) -> String {
    let (host, port) = (prosody.c2s_addr().ip(), prosody.c2s_addr().port());
    format!(
        r#"
name = "tls"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{host}:{port}"

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 100

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[defaults]
room = "tls"
join_rate = 10.0
talk_after_s = 0.5
talk_rate = 2.0
talk_duration_s = 1.0
leave_after_s = 2.0

[[timeline]]
group = "c2s"
transport = "c2s"
bots = {BOTS}
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        pidfile = prosody.pidfile().display(),
    )
}

/// Last row of each agent for one group in bots.csv.
fn final_rows(path: &Path, group: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let mut last: HashMap<String, HashMap<String, String>> = HashMap::new();
    for record in reader.records() {
        let row: HashMap<String, String> = headers
            .iter()
            .map(String::from)
            .zip(record.unwrap().iter().map(String::from))
            .collect();
        if row["group"] == group {
            last.insert(row["agent"].clone(), row);
        }
    }
    last.into_values().collect()
}

/// Runs the scenario against the given peers with the given TLS settings.
async fn run_scenario(
    prosody: &Prosody,
    work: &Path,
    agent: String,
    monitor: String,
    token: Option<AuthToken>,
    tls: ClientTls,
) -> xmppload_coordinator::run::RunOutcome {
    let scenario_path = work.join("tls.toml");
    std::fs::write(&scenario_path, scenario(prosody)).unwrap();
    let options = RunOptions {
        scenario: scenario_path,
        results_root: work.join("results"),
        overrides: Overrides {
            agents: vec![agent],
            monitor: Some(monitor),
        },
        token,
        tls: Some(tls),
        metrics_listen: None,
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        run(options, CancellationToken::new()),
    )
    .await
    .expect("run ends within 120 s")
    .expect("run succeeds over mutual TLS")
}

/// Checks that both peers served Hello and Clock and every bot joined.
fn assert_clean_run(outcome: &xmppload_coordinator::run::RunOutcome) {
    assert!(!outcome.stopped_early);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);

    // Hello names and Clock offsets of both peers reached run.json.
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outcome.dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["agents"][0]["name"], "tls-agent", "{info}");
    assert_eq!(info["monitor"]["name"], "tls-monitor", "{info}");
    for peer in [&info["agents"][0], &info["monitor"]] {
        let uncertainty = peer["clock_uncertainty_micros"].as_i64().unwrap();
        assert!(uncertainty >= 0, "{peer}");
        assert!(peer["clock_offset_micros"].as_i64().is_some(), "{peer}");
    }

    let rows = final_rows(&outcome.dir.join("bots.csv"), "c2s");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["joined_total"], BOTS.to_string(), "{row:?}");
    assert_eq!(row["left_total"], BOTS.to_string(), "{row:?}");
    assert_eq!(row["failed_total"], "0", "{row:?}");
    assert_eq!(row["errors"], "", "{row:?}");
}

/// A run with mutual TLS to both agent kinds reaches Prosody with every bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_run_end_to_end() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let work = tempfile::tempdir().unwrap();
    let pki = make_pki(&work.path().join("pki"));
    let stop = CancellationToken::new();
    let agent = start_agent(server_tls(&pki, true), None, &stop).await;
    let monitor = start_monitor(server_tls(&pki, true), None, &stop).await;

    let tls = client_tls(&pki, Some(&pki));
    let outcome = run_scenario(&prosody, work.path(), agent, monitor, None, tls).await;
    stop.cancel();
    assert_clean_run(&outcome);
}

/// A token and mutual TLS together: the right token runs, a wrong one is
/// still rejected after the handshake succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_mtls_runs() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let work = tempfile::tempdir().unwrap();
    let pki = make_pki(&work.path().join("pki"));
    let stop = CancellationToken::new();
    let agent = start_agent(server_tls(&pki, true), Some(token()), &stop).await;
    let monitor = start_monitor(server_tls(&pki, true), Some(token()), &stop).await;
    let tls = client_tls(&pki, Some(&pki));

    let wrong = AuthToken::parse("wrong-token-0123456789", "test").unwrap();
    let err = tokio::time::timeout(
        CONNECT_BOUND,
        peers::connect_agent(&agent, Some(&wrong), Some(&tls)),
    )
    .await
    .unwrap()
    .err()
    .expect("a wrong token is rejected over mutual TLS");
    assert!(matches!(err, PeerError::Unauthenticated { .. }), "{err}");

    let outcome = run_scenario(&prosody, work.path(), agent, monitor, Some(token()), tls).await;
    stop.cancel();
    assert_clean_run(&outcome);
}

/// Connects to a bot agent and returns the error, which must come.
async fn connect_error(address: &str, tls: Option<&ClientTls>) -> PeerError {
    let result = tokio::time::timeout(CONNECT_BOUND, peers::connect_agent(address, None, tls))
        .await
        .expect("connecting ends within its bound");
    match result {
        Ok(_) => panic!("connecting to {address} should fail"),
        Err(err) => err,
    }
}

/// A server certificate from another CA is named as such.
#[tokio::test]
async fn wrong_ca_names_address() {
    let work = tempfile::tempdir().unwrap();
    let pki = make_pki(&work.path().join("pki"));
    let other = make_pki(&work.path().join("other"));
    let stop = CancellationToken::new();
    let agent = start_agent(server_tls(&pki, true), None, &stop).await;

    let err = connect_error(&agent, Some(&client_tls(&other, Some(&pki)))).await;
    stop.cancel();
    let message = err.to_string();
    assert!(matches!(err, PeerError::Tls { .. }), "{message}");
    assert!(message.contains(&agent), "{message}");
    assert!(
        message.contains("not signed by the CA given with --ca"),
        "{message}"
    );
}

/// A server certificate for another address names the `ca --host` fix.
#[tokio::test]
async fn wrong_host_names_fix() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pki");
    let options = CaOptions {
        out: dir.clone(),
        hosts: vec!["localhost=192.0.2.1".parse().unwrap()],
        days: 1,
        force: false,
    };
    ca::create(&options).unwrap();
    let stop = CancellationToken::new();
    let agent = start_agent(server_tls(&dir, false), None, &stop).await;

    let err = connect_error(&agent, Some(&client_tls(&dir, None))).await;
    stop.cancel();
    let message = err.to_string();
    assert!(matches!(err, PeerError::Tls { .. }), "{message}");
    assert!(message.contains(&agent), "{message}");
    assert!(message.contains("does not cover the host"), "{message}");
    assert!(message.contains("coordinator ca --host"), "{message}");
}

/// A coordinator without a client certificate gets an error naming
/// --client-cert.
#[tokio::test]
async fn missing_client_cert_rejected() {
    let work = tempfile::tempdir().unwrap();
    let pki = make_pki(&work.path().join("pki"));
    let stop = CancellationToken::new();
    let agent = start_agent(server_tls(&pki, true), None, &stop).await;

    let err = connect_error(&agent, Some(&client_tls(&pki, None))).await;
    stop.cancel();
    let message = err.to_string();
    assert!(matches!(err, PeerError::Tls { .. }), "{message}");
    assert!(message.contains(&agent), "{message}");
    assert!(
        message.contains("requires a client certificate"),
        "{message}"
    );
    assert!(message.contains("--client-cert"), "{message}");
}

/// A client certificate from another CA is rejected with the fix.
#[tokio::test]
async fn unsigned_client_cert_rejected() {
    let work = tempfile::tempdir().unwrap();
    let pki = make_pki(&work.path().join("pki"));
    let other = make_pki(&work.path().join("other"));
    let stop = CancellationToken::new();
    let agent = start_agent(server_tls(&pki, true), None, &stop).await;

    let err = connect_error(&agent, Some(&client_tls(&pki, Some(&other)))).await;
    stop.cancel();
    let message = err.to_string();
    assert!(matches!(err, PeerError::Tls { .. }), "{message}");
    assert!(message.contains(&agent), "{message}");
    assert!(message.contains("--client-ca"), "{message}");
}

/// An http:// address to a TLS agent gets a hint to use https:// and --ca.
#[tokio::test]
async fn http_address_to_tls_agent() {
    let work = tempfile::tempdir().unwrap();
    let pki = make_pki(&work.path().join("pki"));
    let stop = CancellationToken::new();
    let agent = start_agent(server_tls(&pki, true), None, &stop).await;
    let plain = agent.replacen("https://", "http://", 1);

    let err = connect_error(&plain, None).await;
    stop.cancel();
    let message = err.to_string();
    assert!(message.contains(&plain), "{message}");
    assert!(message.contains("https://"), "{message}");
    assert!(message.contains("--ca"), "{message}");
}

/// An https:// address without --ca fails before connecting.
#[tokio::test]
async fn https_without_ca_rejected() {
    let err = connect_error("https://127.0.0.1:9", None).await;
    let message = err.to_string();
    assert!(matches!(err, PeerError::Address { .. }), "{message}");
    assert!(message.contains("https://127.0.0.1:9"), "{message}");
    assert!(message.contains("--ca PATH"), "{message}");
}

/// An https:// address to a plain agent gets a hint to use http://.
#[tokio::test]
async fn https_address_to_plain_agent() {
    let work = tempfile::tempdir().unwrap();
    let pki = make_pki(&work.path().join("pki"));
    let stop = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(xmppload_agent::serve(
        listener,
        AgentConfig::default(),
        stop.clone(),
    ));

    let err = connect_error(&address, Some(&client_tls(&pki, Some(&pki)))).await;
    stop.cancel();
    let message = err.to_string();
    assert!(matches!(err, PeerError::Tls { .. }), "{message}");
    assert!(message.contains("use http://"), "{message}");
}
