//! An XEP-0114 component floods rooms on a real Prosody: bots count its
//! messages, the handshake rejects a wrong secret, and malformed server
//! replies fail with clear errors.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xmppload_agent::clock::AgentClock;
use xmppload_agent::component::{ComponentStream, ComponentTarget};
use xmppload_agent::error::{BotError, FailureKind};
use xmppload_agent::group::plan::GroupPlan;
use xmppload_agent::testing::{COMPONENT_DOMAIN, COMPONENT_SECRET, Prosody, ProsodyOptions};
use xmppload_agent::transport::StreamLimits;
use xmppload_proto::v1::{RunGroupRequest, TlsMode, Transport};

/// Messages the component sends in the flood test.
const FLOOD_MESSAGES: u64 = 40;
/// Its rate in messages per second, so the flood lasts about two seconds.
const FLOOD_RATE: f64 = 20.0;
/// Allowed deviation of the measured rate from the requested one. The
/// timetable never sends early, so only a late last send lowers the rate.
const RATE_TOLERANCE: f64 = 0.2;

/// Builds a component group for `rooms` rooms of `room` on the test server.
fn component_request(
    prosody: &Prosody,
    room: &str,
    rooms: u32,
    start_in: Duration,
) -> RunGroupRequest {
    let address = prosody.component_addr();
    RunGroupRequest {
        protocol_version: xmppload_proto::PROTOCOL_VERSION,
        group: "flood".to_owned(),
        transport: Transport::Component as i32,
        host: address.ip().to_string(),
        port: u32::from(address.port()),
        domain: COMPONENT_DOMAIN.to_owned(),
        tls: TlsMode::Unspecified as i32,
        room: format!("{room}@{}", prosody.muc_domain()),
        rooms,
        index_offset: 0,
        index_stride: 1,
        count: 1,
        start_at_unix_micros: xmppload_proto::unix_micros_now() + start_in.as_micros() as i64,
        join_rate: 1.0,
        talk_rate: FLOOD_RATE,
        // Long enough that the message count, not the duration, ends the flood.
        talk_duration_ms: 10_000,
        leave_after_ms: 10_000,
        body_bytes: 100,
        connect_timeout_ms: 5000,
        join_timeout_ms: 5000,
        deadline_ms: 20_000,
        component_secret: COMPONENT_SECRET.to_owned(),
        component_messages: FLOOD_MESSAGES,
        ..RunGroupRequest::default()
    }
}

fn target<'a>(host: &'a str, port: u16, domain: &'a str, secret: &'a str) -> ComponentTarget<'a> {
    ComponentTarget {
        host,
        port,
        domain,
        secret,
        limits: StreamLimits::default(),
        source: None,
    }
}

/// Every idle bot receives each flood message once, and the component sends
/// exactly its count at the requested rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_reaches_every_bot() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let agent = start_agent().await;
    let bots: u64 = 3;

    // Idle bots in both rooms, present from well before the flood until
    // well after it.
    let watchers = RunGroupRequest {
        talk_after_ms: 0,
        talk_rate: 0.0,
        talk_duration_ms: 0,
        leave_after_ms: 9000,
        rooms: 2,
        rooms_per_bot: 2,
        ..c2s_request(&prosody, "watch", "flood", bots as u32)
    };
    let flood = component_request(&prosody, "flood", 2, Duration::from_millis(2500));

    let (mut watch_client, mut flood_client) = (agent.client.clone(), agent.client.clone());
    let (watch_reports, flood_reports) = tokio::join!(
        run_group(&mut watch_client, watchers),
        run_group(&mut flood_client, flood)
    );

    let flood_last = flood_reports.last().unwrap();
    let flood_counters = flood_last.counters.as_ref().unwrap();
    if flood_counters.failed_total > 0 {
        dump_log(&prosody);
    }
    assert!(flood_last.done, "component: final report");
    assert_eq!(flood_counters.errors, vec![], "component: no errors");
    assert_eq!(
        flood_counters.connected_total, 1,
        "component: connected_total"
    );
    assert_eq!(flood_counters.joined_total, 1, "component: joined_total");
    assert_eq!(flood_counters.left_total, 1, "component: left_total");
    assert_eq!(
        flood_counters.messages_sent, FLOOD_MESSAGES,
        "component: messages_sent"
    );
    assert_eq!(
        flood_counters.reflections, FLOOD_MESSAGES,
        "component: reflections"
    );
    assert_eq!(
        histogram_count(&flood_reports),
        FLOOD_MESSAGES,
        "component: latency samples"
    );
    let send_lag = merged_histogram(&flood_reports, |report| &report.send_lag_histogram);
    assert_eq!(
        send_lag.len(),
        FLOOD_MESSAGES,
        "component: send-lag samples"
    );
    let kinds: Vec<&str> = flood_reports
        .iter()
        .flat_map(|report| report.round_trips.iter().map(|kind| kind.kind.as_str()))
        .collect();
    assert!(
        kinds.contains(&"handshake"),
        "component: handshake timed, {kinds:?}"
    );
    assert!(kinds.contains(&"join"), "component: join timed, {kinds:?}");

    // First to last send spans (N - 1) / R on the timetable.
    let phases = flood_last.phases.as_ref().unwrap();
    let span_s = (phases.talk_last_unix_micros - phases.talk_first_unix_micros) as f64 / 1e6;
    let measured = (FLOOD_MESSAGES - 1) as f64 / span_s;
    assert!(
        (measured - FLOOD_RATE).abs() <= FLOOD_RATE * RATE_TOLERANCE,
        "component: measured {measured:.2} msg/s over {span_s:.3} s, requested {FLOOD_RATE}"
    );

    let watch_last = watch_reports.last().unwrap();
    let watch_counters = watch_last.counters.as_ref().unwrap();
    assert_eq!(watch_counters.errors, vec![], "bots: no errors");
    assert_eq!(watch_counters.left_total, bots, "bots: left_total");
    assert_eq!(watch_counters.messages_sent, 0, "bots: idle");
    assert_eq!(
        watch_counters.messages_received,
        FLOOD_MESSAGES * bots,
        "bots: each bot received every flood message once"
    );
    // The flood is the only traffic and no bot talked, so no reflections.
    assert_eq!(watch_counters.reflections, 0, "bots: reflections");
    assert!(
        phases.talk_first_unix_micros >= watch_last.phases.as_ref().unwrap().join_last_unix_micros,
        "the flood started after every bot joined"
    );
}

/// A wrong secret fails the handshake with `not-authorized` and a hint, and
/// a component group with it counts one `sasl` failure and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_rejected() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let address = prosody.component_addr();
    let host = address.ip().to_string();

    let err = ComponentStream::connect(&target(&host, address.port(), COMPONENT_DOMAIN, "wrong"))
        .await
        .unwrap_err();
    match &err {
        BotError::ComponentRejected { domain, condition } => {
            assert_eq!(domain, COMPONENT_DOMAIN);
            assert_eq!(condition, "not-authorized");
        }
        other => panic!("expected a rejected handshake, got {other:?}"),
    }
    assert!(err.to_string().contains("secret"), "{err}");

    let agent = start_agent().await;
    let mut client = agent.client.clone();
    let request = RunGroupRequest {
        component_secret: "wrong".to_owned(),
        ..component_request(&prosody, "locked", 1, Duration::from_millis(100))
    };
    let reports = run_group(&mut client, request).await;
    let last = reports.last().unwrap();
    let counters = last.counters.as_ref().unwrap();
    assert_eq!(errors_of(last, "sasl"), 1, "sasl failures");
    assert_eq!(counters.failed_total, 1, "failed_total");
    assert_eq!(counters.connected_total, 0, "connected_total");
    assert_eq!(counters.messages_sent, 0, "messages_sent");
}

/// A domain without a Component entry is rejected with `host-unknown`.
#[tokio::test]
async fn unknown_domain_rejected() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let address = prosody.component_addr();
    let host = address.ip().to_string();
    let err = ComponentStream::connect(&target(
        &host,
        address.port(),
        "nowhere.anon.localhost",
        COMPONENT_SECRET,
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, BotError::ComponentRejected { condition, .. } if condition == "host-unknown"),
        "{err:?}"
    );
    assert!(err.to_string().contains("Component"), "{err}");
}

/// Serves one connection on a loopback port: reads the component's header,
/// writes `header`, reads the handshake, writes `reply`, then closes.
async fn scripted_server(header: &'static str, reply: &'static str) -> u16 {
    scripted_server_holding(header, reply.to_owned(), Duration::ZERO).await
}

/// Serves like [`scripted_server`] and keeps the connection open for `hold`
/// after the reply.
async fn scripted_server_holding(header: &'static str, reply: String, hold: Duration) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let mut buffer = [0u8; 1024];
        // One read each for the header and the handshake is enough for
        // these few bytes on loopback; a short read only shortens the script.
        let _ = socket.read(&mut buffer).await;
        let _ = socket.write_all(header.as_bytes()).await;
        let _ = socket.read(&mut buffer).await;
        let _ = socket.write_all(reply.as_bytes()).await;
        tokio::time::sleep(hold).await;
        let _ = socket.shutdown().await;
    });
    port
}

const GOOD_HEADER: &str = "<?xml version='1.0'?><stream:stream \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' \
    from='flood.example' id='abc123'>";

/// Malformed replies from the server fail the handshake with protocol errors.
#[tokio::test]
async fn malformed_replies_fail() {
    let cases: [(&str, &'static str, &'static str, &str); 5] = [
        (
            "header without id",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept'>",
            "",
            "`id`",
        ),
        (
            "c2s reply",
            GOOD_HEADER,
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            "<handshake/>",
        ),
        ("closed before reply", GOOD_HEADER, "", "closed"),
        ("not XML", "hello\r\n", "", "stream"),
        (
            "handshake in the client namespace",
            GOOD_HEADER,
            "<handshake xmlns='jabber:client'/>",
            "<handshake/>",
        ),
    ];
    for (name, header, reply, expected) in cases {
        let port = scripted_server(header, reply).await;
        let server = target("127.0.0.1", port, "flood.example", "s");
        let connect = ComponentStream::connect(&server);
        let err = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .unwrap_or_else(|_| panic!("{name}: no error within 5 s"))
            .unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{name}: `{err}` should contain `{expected}`"
        );
    }
}

/// A reply cut off in the middle fails as stalled, and one over the stanza
/// limit as oversized, the same limits the c2s transport enforces.
#[tokio::test]
async fn stream_limits_apply() {
    let port =
        scripted_server_holding(GOOD_HEADER, "<handshake".to_owned(), Duration::from_secs(5)).await;
    let stalled = ComponentTarget {
        limits: StreamLimits {
            stall_timeout: Duration::from_millis(300),
            ..StreamLimits::default()
        },
        ..target("127.0.0.1", port, "flood.example", "s")
    };
    let err = tokio::time::timeout(Duration::from_secs(4), ComponentStream::connect(&stalled))
        .await
        .expect("the stall bound ends the handshake")
        .unwrap_err();
    assert!(matches!(err, BotError::Stalled { .. }), "{err:?}");

    let huge = format!("<handshake>{}</handshake>", "a".repeat(8192));
    let port = scripted_server_holding(GOOD_HEADER, huge, Duration::ZERO).await;
    let small = ComponentTarget {
        limits: StreamLimits {
            max_stanza_bytes: 4096,
            ..StreamLimits::default()
        },
        ..target("127.0.0.1", port, "flood.example", "s")
    };
    let err = ComponentStream::connect(&small).await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Oversized, "{err:?}");
}

/// A component request with a bad field is rejected naming that field.
#[test]
fn component_request_validated() {
    let valid = RunGroupRequest {
        protocol_version: xmppload_proto::PROTOCOL_VERSION,
        group: "flood".to_owned(),
        transport: Transport::Component as i32,
        host: "127.0.0.1".to_owned(),
        port: 5347,
        domain: "flood.example".to_owned(),
        room: "lobby@conference.example".to_owned(),
        count: 1,
        index_stride: 1,
        start_at_unix_micros: 1,
        join_rate: 1.0,
        talk_rate: 5000.0,
        talk_duration_ms: 1000,
        leave_after_ms: 1000,
        connect_timeout_ms: 1000,
        join_timeout_ms: 1000,
        deadline_ms: 5000,
        component_secret: "s".to_owned(),
        ..RunGroupRequest::default()
    };
    let plan = GroupPlan::from_request(valid.clone(), AgentClock::default()).unwrap();
    let settings = plan.component.as_ref().unwrap();
    assert_eq!(settings.max_messages, None);
    assert!(
        !format!("{settings:?}").contains("\"s\""),
        "secret kept out of Debug"
    );

    let cases = [
        (
            "component_secret",
            RunGroupRequest {
                component_secret: String::new(),
                ..valid.clone()
            },
        ),
        (
            "count",
            RunGroupRequest {
                count: 2,
                ..valid.clone()
            },
        ),
        (
            "talk_rate",
            RunGroupRequest {
                talk_rate: 0.0,
                ..valid.clone()
            },
        ),
        (
            "talk_duration_ms",
            RunGroupRequest {
                talk_duration_ms: 0,
                ..valid.clone()
            },
        ),
        (
            "rooms",
            RunGroupRequest {
                rooms: 5000,
                ..valid.clone()
            },
        ),
        (
            "port",
            RunGroupRequest {
                port: 0,
                ..valid.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let status = GroupPlan::from_request(request, AgentClock::default()).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}");
        assert!(
            status.message().contains(&format!("`{field}`")),
            "{field}: {}",
            status.message()
        );
    }
}
