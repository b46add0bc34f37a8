//! Helpers shared by the integration tests: an in-process agent on port 0,
//! request templates for a local Prosody, and a bounded stream reader.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use xmppload_agent::testing::{Prosody, ProsodyOptions, TlsFiles};
use xmppload_agent::{AgentConfig, serve};
use xmppload_proto::v1::bot_agent_client::BotAgentClient;
use xmppload_proto::v1::{GroupReport, RunGroupRequest, TlsMode, Transport};

/// Upper bound on one RunGroup stream in these tests.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// An agent serving on a loopback port, stopped on drop.
pub struct TestAgent {
    pub client: BotAgentClient<Channel>,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the agent on port 0 and connects a gRPC client to it.
pub async fn start_agent() -> TestAgent {
    start_agent_with(AgentConfig {
        name: "test-agent".to_owned(),
        ..AgentConfig::default()
    })
    .await
}

/// Starts an agent with `config` on port 0 and connects a client without a token.
pub async fn start_agent_with(config: AgentConfig) -> TestAgent {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, config, shutdown.clone()));
    let client = BotAgentClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    TestAgent {
        client,
        addr,
        shutdown,
    }
}

/// Builds a valid WebSocket request for `count` bots in `room` of the given server,
/// starting shortly after now. Times are short so tests stay fast.
pub fn websocket_request(
    prosody: &Prosody,
    group: &str,
    room: &str,
    count: u32,
) -> RunGroupRequest {
    RunGroupRequest {
        protocol_version: xmppload_proto::PROTOCOL_VERSION,
        group: group.to_owned(),
        transport: Transport::Websocket as i32,
        websocket_url: prosody.websocket_url(),
        host: String::new(),
        port: 0,
        domain: prosody.domain().to_owned(),
        tls: TlsMode::Unspecified as i32,
        accept_invalid_certs: false,
        room: format!("{room}@{}", prosody.muc_domain()),
        index_offset: 0,
        index_stride: 1,
        count,
        start_at_unix_micros: xmppload_proto::unix_micros_now() + 300_000,
        join_rate: 20.0,
        talk_after_ms: 1500,
        talk_rate: 5.0,
        talk_duration_ms: 1000,
        leave_after_ms: 4000,
        body_bytes: 120,
        stream_management: false,
        connect_timeout_ms: 5000,
        join_timeout_ms: 5000,
        deadline_ms: 20_000,
        ..RunGroupRequest::default()
    }
}

/// Builds the same request for bots over a plain c2s connection.
pub fn c2s_request(prosody: &Prosody, group: &str, room: &str, count: u32) -> RunGroupRequest {
    let c2s = prosody.c2s_addr();
    RunGroupRequest {
        transport: Transport::C2s as i32,
        websocket_url: String::new(),
        host: c2s.ip().to_string(),
        port: u32::from(c2s.port()),
        tls: TlsMode::None as i32,
        ..websocket_request(prosody, group, room, count)
    }
}

/// Messages each bot of a request sends: one per 1/talk_rate within talk_duration.
pub fn messages_per_bot(request: &RunGroupRequest) -> u64 {
    (request.talk_duration_ms as f64 / 1000.0 * request.talk_rate).ceil() as u64
}

/// Runs a group and collects every report until the final one.
pub async fn run_group(
    client: &mut BotAgentClient<Channel>,
    request: RunGroupRequest,
) -> Vec<GroupReport> {
    let collect = async {
        let mut stream = client.run_group(request).await.unwrap().into_inner();
        let mut reports = Vec::new();
        while let Some(report) = stream.message().await.unwrap() {
            let done = report.done;
            reports.push(report);
            if done {
                break;
            }
        }
        reports
    };
    tokio::time::timeout(STREAM_TIMEOUT, collect)
        .await
        .expect("RunGroup stream did not finish in time")
}

/// Number of errors of one kind in a report.
pub fn errors_of(report: &GroupReport, kind: &str) -> u64 {
    let counters = report.counters.as_ref().unwrap();
    counters
        .errors
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.count)
        .sum()
}

/// Sum of the sample counts of all interval histograms in the reports.
pub fn histogram_count(reports: &[GroupReport]) -> u64 {
    use hdrhistogram::serialization::Deserializer;
    let mut deserializer = Deserializer::new();
    reports
        .iter()
        .map(|report| {
            let histogram: hdrhistogram::Histogram<u64> = deserializer
                .deserialize(&mut &report.latency_histogram[..])
                .unwrap();
            histogram.len()
        })
        .sum()
}

/// Merges one histogram field (chosen by `pick`) over all reports.
pub fn merged_histogram(
    reports: &[GroupReport],
    pick: impl Fn(&GroupReport) -> &[u8],
) -> hdrhistogram::Histogram<u64> {
    use hdrhistogram::serialization::Deserializer;
    let mut deserializer = Deserializer::new();
    let mut merged = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for report in reports {
        let interval: hdrhistogram::Histogram<u64> =
            deserializer.deserialize(&mut &pick(report)[..]).unwrap();
        merged.add(&interval).unwrap();
    }
    merged
}

/// Starts Prosody with a fresh self-signed certificate for its domain, so
/// it offers STARTTLS, `wss://` and direct TLS.
pub fn prosody_with_certificate() -> Prosody {
    let certified = rcgen::generate_simple_self_signed(vec!["anon.localhost".to_owned()]).unwrap();
    let tls = TlsFiles {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    };
    Prosody::start(ProsodyOptions {
        tls: Some(tls),
        ..ProsodyOptions::default()
    })
    .unwrap()
}

/// Prints the Prosody log, for failing tests.
pub fn dump_log(prosody: &Prosody) {
    if let Ok(log) = std::fs::read_to_string(prosody.log_path()) {
        eprintln!("--- prosody log ---\n{log}");
    }
}

/// Returns a loopback port that nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Builds a request that needs no server, because only the failing address matters.
pub fn offline_request(group: &str, count: u32) -> RunGroupRequest {
    RunGroupRequest {
        protocol_version: xmppload_proto::PROTOCOL_VERSION,
        group: group.to_owned(),
        transport: Transport::C2s as i32,
        websocket_url: String::new(),
        host: "127.0.0.1".to_owned(),
        port: u32::from(closed_port()),
        domain: "anon.localhost".to_owned(),
        tls: TlsMode::None as i32,
        accept_invalid_certs: false,
        room: "room@conference.anon.localhost".to_owned(),
        index_offset: 0,
        index_stride: 1,
        count,
        start_at_unix_micros: xmppload_proto::unix_micros_now(),
        join_rate: 100.0,
        talk_after_ms: 0,
        talk_rate: 1.0,
        talk_duration_ms: 1000,
        leave_after_ms: 2000,
        body_bytes: 64,
        stream_management: false,
        connect_timeout_ms: 2000,
        join_timeout_ms: 2000,
        deadline_ms: 10_000,
        ..RunGroupRequest::default()
    }
}

/// Runs a one-bot watcher group in `room` and checks that it hears only its
/// own messages, so no earlier bot is still talking there.
pub async fn assert_room_quiet(
    client: &mut BotAgentClient<Channel>,
    prosody: &Prosody,
    room: &str,
) {
    let watcher = RunGroupRequest {
        start_at_unix_micros: xmppload_proto::unix_micros_now(),
        talk_after_ms: 300,
        talk_duration_ms: 400,
        leave_after_ms: 1200,
        ..websocket_request(prosody, "watcher", room, 1)
    };
    let per_bot = messages_per_bot(&watcher);
    let reports = run_group(client, watcher).await;
    let counters = reports.last().unwrap().counters.clone().unwrap();
    assert_eq!(counters.errors, vec![]);
    assert_eq!(counters.messages_sent, per_bot);
    assert_eq!(
        counters.messages_received, per_bot,
        "no messages from the stopped bots"
    );
}

/// Samples per round-trip kind, summed over all reports.
pub fn round_trip_counts(
    reports: &[xmppload_proto::v1::GroupReport],
) -> std::collections::BTreeMap<String, u64> {
    let mut deserializer = hdrhistogram::serialization::Deserializer::new();
    let mut counts = std::collections::BTreeMap::new();
    for trips in reports.iter().flat_map(|report| &report.round_trips) {
        let histogram: hdrhistogram::Histogram<u64> =
            deserializer.deserialize(&mut &trips.histogram[..]).unwrap();
        *counts.entry(trips.kind.clone()).or_default() += histogram.len();
    }
    counts
}
