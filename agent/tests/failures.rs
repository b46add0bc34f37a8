//! Failure paths: refused ports, the group deadline, a dropped stream, and
//! invalid requests.

mod common;

use std::time::Duration;

use common::*;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_proto::v1::{ClockRequest, HelloRequest, RunGroupRequest, Transport};

/// Refused c2s and WebSocket connections are counted as `refused` and the run ends.
#[tokio::test]
async fn refused_port_counts_and_finishes() {
    let mut agent = start_agent().await;

    let c2s = run_group(&mut agent.client, offline_request("refc2s", 3)).await;
    let last = c2s.last().unwrap();
    assert!(last.done);
    assert_eq!(errors_of(last, "refused"), 3);
    assert_eq!(last.counters.as_ref().unwrap().failed_total, 3);
    assert_eq!(last.counters.as_ref().unwrap().connect_attempts, 3);

    let websocket = RunGroupRequest {
        transport: Transport::Websocket as i32,
        websocket_url: format!("ws://127.0.0.1:{}/xmpp-websocket", closed_port()),
        ..offline_request("refws", 2)
    };
    let ws = run_group(&mut agent.client, websocket).await;
    let last = ws.last().unwrap();
    assert!(last.done);
    assert_eq!(errors_of(last, "refused"), 2);
}

/// Bots still in the room at the deadline are closed and counted as `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_closes_remaining_bots() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut agent = start_agent().await;

    let request = RunGroupRequest {
        start_at_unix_micros: xmppload_proto::unix_micros_now(),
        talk_after_ms: 0,
        talk_duration_ms: 10_000,
        leave_after_ms: 60_000,
        deadline_ms: 1500,
        ..websocket_request(&prosody, "late", "deadline", 2)
    };
    let started = std::time::Instant::now();
    let reports = run_group(&mut agent.client, request).await;

    let last = reports.last().unwrap();
    assert!(last.done);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the deadline ends the run promptly"
    );
    let counters = last.counters.as_ref().unwrap();
    assert_eq!(counters.joined_total, 2);
    assert_eq!(errors_of(last, "timeout"), 2);
    assert_eq!(counters.left_total, 0);
    assert_eq!(counters.joined, 0);
}

/// Dropping the report stream stops the slice's bots, which leave the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_stream_stops_bots() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut agent = start_agent().await;

    let long_request = RunGroupRequest {
        start_at_unix_micros: xmppload_proto::unix_micros_now(),
        talk_after_ms: 0,
        talk_duration_ms: 30_000,
        leave_after_ms: 60_000,
        ..websocket_request(&prosody, "dropped", "drop", 2)
    };
    let mut stream = agent
        .client
        .run_group(long_request)
        .await
        .unwrap()
        .into_inner();
    // Wait until both bots are in the room, then drop the stream.
    let joined = async {
        while let Some(report) = stream.message().await.unwrap() {
            if report.counters.as_ref().is_some_and(|c| c.joined == 2) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), joined)
        .await
        .expect("bots did not join");
    drop(stream);

    // The stopped bots would keep talking for 30 s if they were still in the
    // room, so a watcher that joins later must hear only its own messages.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_room_quiet(&mut agent.client, &prosody, "drop").await;
}

/// Each invalid field is rejected with invalid_argument naming that field.
#[tokio::test]
async fn invalid_requests_are_rejected() {
    let mut agent = start_agent().await;
    let valid = offline_request("valid", 1);

    let cases: Vec<(&str, RunGroupRequest)> = vec![
        (
            "transport",
            RunGroupRequest {
                transport: 0,
                ..valid.clone()
            },
        ),
        (
            "transport",
            RunGroupRequest {
                transport: 9,
                ..valid.clone()
            },
        ),
        (
            "group",
            RunGroupRequest {
                group: String::new(),
                ..valid.clone()
            },
        ),
        (
            "group",
            RunGroupRequest {
                group: "a b".to_owned(),
                ..valid.clone()
            },
        ),
        (
            "domain",
            RunGroupRequest {
                domain: String::new(),
                ..valid.clone()
            },
        ),
        (
            "host",
            RunGroupRequest {
                host: String::new(),
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
        (
            "port",
            RunGroupRequest {
                port: 70_000,
                ..valid.clone()
            },
        ),
        (
            "tls",
            RunGroupRequest {
                tls: 0,
                ..valid.clone()
            },
        ),
        (
            "websocket_url",
            RunGroupRequest {
                transport: Transport::Websocket as i32,
                websocket_url: "http://x/".to_owned(),
                ..valid.clone()
            },
        ),
        (
            "websocket_url",
            RunGroupRequest {
                transport: Transport::Websocket as i32,
                websocket_url: String::new(),
                ..valid.clone()
            },
        ),
        (
            "room",
            RunGroupRequest {
                room: "noat".to_owned(),
                ..valid.clone()
            },
        ),
        (
            "room",
            RunGroupRequest {
                room: "r@c/nick".to_owned(),
                ..valid.clone()
            },
        ),
        (
            "count",
            RunGroupRequest {
                count: 0,
                ..valid.clone()
            },
        ),
        (
            "index_stride",
            RunGroupRequest {
                index_stride: 0,
                ..valid.clone()
            },
        ),
        (
            "count",
            RunGroupRequest {
                index_offset: u32::MAX,
                count: 2,
                ..valid.clone()
            },
        ),
        (
            "start_at_unix_micros",
            RunGroupRequest {
                start_at_unix_micros: 0,
                ..valid.clone()
            },
        ),
        (
            "join_rate",
            RunGroupRequest {
                join_rate: 0.0,
                ..valid.clone()
            },
        ),
        (
            "join_rate",
            RunGroupRequest {
                join_rate: f64::NAN,
                ..valid.clone()
            },
        ),
        (
            "talk_rate",
            RunGroupRequest {
                talk_rate: -1.0,
                ..valid.clone()
            },
        ),
        (
            "talk_rate",
            RunGroupRequest {
                talk_rate: f64::INFINITY,
                ..valid.clone()
            },
        ),
        (
            "body_bytes",
            RunGroupRequest {
                body_bytes: 10_000_000,
                ..valid.clone()
            },
        ),
        (
            "leave_after_ms",
            RunGroupRequest {
                leave_after_ms: 500,
                ..valid.clone()
            },
        ),
        (
            "connect_timeout_ms",
            RunGroupRequest {
                connect_timeout_ms: 0,
                ..valid.clone()
            },
        ),
        (
            "join_timeout_ms",
            RunGroupRequest {
                join_timeout_ms: 0,
                ..valid.clone()
            },
        ),
        (
            "deadline_ms",
            RunGroupRequest {
                deadline_ms: 0,
                ..valid.clone()
            },
        ),
        (
            "deadline_ms",
            RunGroupRequest {
                deadline_ms: u64::MAX,
                ..valid.clone()
            },
        ),
        (
            "talk_after_ms",
            RunGroupRequest {
                talk_after_ms: u64::MAX,
                leave_after_ms: u64::MAX,
                ..valid.clone()
            },
        ),
        (
            "join_rate",
            RunGroupRequest {
                join_rate: 1e-300,
                count: 2,
                ..valid.clone()
            },
        ),
        (
            "max_stanza_bytes",
            RunGroupRequest {
                max_stanza_bytes: 100,
                ..valid.clone()
            },
        ),
        (
            "max_stanza_bytes",
            RunGroupRequest {
                max_stanza_bytes: 32 * 1024 * 1024,
                ..valid.clone()
            },
        ),
        (
            "max_stanza_bytes",
            RunGroupRequest {
                max_stanza_bytes: 8192,
                body_bytes: 8192,
                ..valid.clone()
            },
        ),
        (
            "stall_timeout_ms",
            RunGroupRequest {
                stall_timeout_ms: u64::MAX,
                ..valid.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let status = agent
            .client
            .run_group(request)
            .await
            .err()
            .unwrap_or_else(|| panic!("{field}: accepted"));
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{field}: {status:?}"
        );
        assert!(
            status.message().contains(&format!("`{field}`")),
            "{field}: message {:?}",
            status.message()
        );
    }

    let old = RunGroupRequest {
        protocol_version: xmppload_proto::PROTOCOL_VERSION + 1,
        ..valid
    };
    let status = agent.client.run_group(old).await.err().unwrap();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
}

/// Hello reports the agent's identity and Clock its wall clock.
#[tokio::test]
async fn hello_and_clock() {
    let mut agent = start_agent().await;
    let hello = agent
        .client
        .hello(HelloRequest {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            coordinator: "test".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hello.name, "test-agent");
    assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
    assert!(hello.cores >= 1);
    assert!(hello.fd_limit > 0);

    let before = xmppload_proto::unix_micros_now();
    let clock = agent
        .client
        .clock(ClockRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(clock.unix_micros >= before);
    assert!(clock.unix_micros <= xmppload_proto::unix_micros_now());

    let status = agent
        .client
        .hello(HelloRequest {
            protocol_version: 0,
            coordinator: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
}
