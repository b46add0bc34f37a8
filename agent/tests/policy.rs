//! The agent's own target allowlist and load limits, checked through real
//! gRPC on loopback. Rejected targets are never contacted, so the
//! documentation addresses below (192.0.2.0/24, example.org) see no traffic.

mod common;

use std::time::Duration;

use common::*;
use tonic::{Code, Status};
use xmppload_agent::AgentConfig;
use xmppload_agent::policy::{Limits, RunningBots, TargetPolicy};
use xmppload_proto::v1::{RunGroupRequest, Transport};

/// Sends a request and returns the status it was rejected with.
async fn rejection(agent: &mut TestAgent, request: RunGroupRequest) -> Status {
    match agent.client.run_group(request).await {
        Ok(_) => panic!("the agent accepted a request it should reject"),
        Err(status) => status,
    }
}

/// Polls `running` until it equals `expected`, for at most `bound`.
async fn wait_for_running(running: &RunningBots, expected: u32, bound: Duration) {
    let waited = tokio::time::timeout(bound, async {
        while running.current() != expected {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "running bots stayed at {} instead of {expected} for {bound:?}",
        running.current()
    );
}

/// Out of the box, c2s and WebSocket targets off loopback are denied.
#[tokio::test]
async fn default_denies_non_loopback() {
    let mut agent = start_agent().await;

    let c2s = RunGroupRequest {
        host: "192.0.2.10".to_owned(),
        port: 5222,
        ..offline_request("remote", 1)
    };
    let status = rejection(&mut agent, c2s).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert!(status.message().contains("192.0.2.10:5222"), "{status}");
    assert!(
        status.message().contains("--allow-target 192.0.2.10:5222"),
        "{status}"
    );
    assert!(status.message().contains("loopback"), "{status}");

    let websocket = RunGroupRequest {
        transport: Transport::Websocket as i32,
        websocket_url: "wss://XMPP.example.org/xmpp-websocket".to_owned(),
        ..offline_request("remote-ws", 1)
    };
    let status = rejection(&mut agent, websocket).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert!(
        status.message().contains("xmpp.example.org:443"),
        "{status}"
    );

    let mapped = RunGroupRequest {
        host: "::ffff:192.0.2.10".to_owned(),
        ..offline_request("mapped", 1)
    };
    let status = rejection(&mut agent, mapped).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
}

/// Loopback is accepted by default: the bots run and count the refused port.
#[tokio::test]
async fn default_accepts_loopback() {
    let mut agent = start_agent().await;
    let request = RunGroupRequest {
        host: "localhost".to_owned(),
        ..offline_request("local", 2)
    };
    let reports = run_group(&mut agent.client, request).await;
    let last = reports.last().unwrap();
    assert!(last.done);
    assert_eq!(last.counters.as_ref().unwrap().connect_attempts, 2);
}

/// An allowlist replaces the loopback default and compares ports.
#[tokio::test]
async fn allowlist_matches_host_and_port() {
    let port = closed_port();
    let mut agent = start_agent_with(AgentConfig {
        targets: TargetPolicy::Only(vec![format!("127.0.0.1:{port}").parse().unwrap()]),
        ..AgentConfig::default()
    })
    .await;

    let allowed = RunGroupRequest {
        port: u32::from(port),
        ..offline_request("listed", 1)
    };
    let reports = run_group(&mut agent.client, allowed).await;
    assert_eq!(errors_of(reports.last().unwrap(), "refused"), 1);

    let other_port = RunGroupRequest {
        port: u32::from(port) ^ 1,
        ..offline_request("unlisted", 1)
    };
    let status = rejection(&mut agent, other_port).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert!(
        status.message().contains(&format!("only 127.0.0.1:{port}")),
        "{status}"
    );

    let localhost = RunGroupRequest {
        host: "localhost".to_owned(),
        port: u32::from(port),
        ..offline_request("by-name", 1)
    };
    let status = rejection(&mut agent, localhost).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
}

/// `--max-bots` counts bots over all running groups and frees them when a group ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_bots_spans_groups() {
    let running = RunningBots::default();
    let mut agent = start_agent_with(AgentConfig {
        limits: Limits {
            max_bots: 3,
            ..Limits::default()
        },
        running_bots: running.clone(),
        ..AgentConfig::default()
    })
    .await;

    let too_many = rejection(&mut agent, offline_request("huge", 4)).await;
    assert_eq!(too_many.code(), Code::ResourceExhausted, "{too_many}");
    assert!(too_many.message().contains("limit of 3 bots"), "{too_many}");
    assert!(too_many.message().contains("--max-bots"), "{too_many}");

    // A group that starts in 10 s keeps its two places while its stream is open.
    let waiting = RunGroupRequest {
        start_at_unix_micros: xmppload_proto::unix_micros_now() + 10_000_000,
        ..offline_request("waiting", 2)
    };
    let stream = agent.client.clone().run_group(waiting).await.unwrap();
    assert_eq!(running.current(), 2);

    let second = rejection(&mut agent, offline_request("second", 2)).await;
    assert_eq!(second.code(), Code::ResourceExhausted, "{second}");
    assert!(
        second
            .message()
            .contains("2 more bots with 2 already running"),
        "{second}"
    );

    // Dropping the stream ends the waiting group and frees its places.
    drop(stream);
    wait_for_running(&running, 0, Duration::from_secs(5)).await;
    let reports = run_group(&mut agent.client, offline_request("third", 3)).await;
    assert!(reports.last().unwrap().done);
    assert_eq!(running.current(), 0);
}

/// `--max-connect-rate` applies to this agent's share of the group's rate.
#[tokio::test]
async fn max_connect_rate_per_slice() {
    let mut agent = start_agent_with(AgentConfig {
        limits: Limits {
            max_connect_rate: 10.0,
            ..Limits::default()
        },
        ..AgentConfig::default()
    })
    .await;

    let fast = RunGroupRequest {
        join_rate: 20.0,
        ..offline_request("fast", 1)
    };
    let status = rejection(&mut agent, fast).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("20.0 bots/s"), "{status}");
    assert!(status.message().contains("limit of 10 bots/s"), "{status}");
    assert!(status.message().contains("--max-connect-rate"), "{status}");

    // Every second bot of a 20/s group makes 10/s on this agent.
    let shared = RunGroupRequest {
        join_rate: 20.0,
        index_stride: 2,
        ..offline_request("shared", 1)
    };
    let reports = run_group(&mut agent.client, shared).await;
    assert!(reports.last().unwrap().done);
}

/// `--max-run-seconds` bounds the deadline and how far ahead a group may start.
#[tokio::test]
async fn max_run_bounds_deadline_and_start() {
    let mut agent = start_agent_with(AgentConfig {
        limits: Limits {
            max_run: Duration::from_secs(60),
            ..Limits::default()
        },
        ..AgentConfig::default()
    })
    .await;

    let long = RunGroupRequest {
        deadline_ms: 61_000,
        ..offline_request("long", 1)
    };
    let status = rejection(&mut agent, long).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("deadline_ms 61000"), "{status}");
    assert!(status.message().contains("limit of 60 s"), "{status}");
    assert!(status.message().contains("--max-run-seconds"), "{status}");

    let late = RunGroupRequest {
        start_at_unix_micros: xmppload_proto::unix_micros_now() + 120_000_000,
        ..offline_request("late", 1)
    };
    let status = rejection(&mut agent, late).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("in the future"), "{status}");

    let within = RunGroupRequest {
        deadline_ms: 60_000,
        ..offline_request("within", 1)
    };
    let reports = run_group(&mut agent.client, within).await;
    assert!(reports.last().unwrap().done);
}
