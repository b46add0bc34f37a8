//! Bots against hostile or broken servers: each fault fails exactly the bot
//! it hits, under its own failure kind, while the slice's other bots finish
//! normally and the agent keeps serving.

#[path = "../common/mod.rs"]
mod common;
mod fake_server;

use common::*;
use fake_server::{Fault, Wire};
use xmppload_proto::v1::{GroupReport, HelloRequest, RunGroupRequest, TlsMode, Transport};

/// Bots per slice: one gets the fault, the others must be unaffected.
const BOTS: u32 = 3;

/// Builds a slice of [`BOTS`] bots against the fake server. Talking starts
/// 500 ms after connecting, so the fault (right after the join) hits the
/// first bot before it sends anything.
fn request(wire: Wire, addr: std::net::SocketAddr, group: &str) -> RunGroupRequest {
    let base = RunGroupRequest {
        group: group.to_owned(),
        domain: fake_server::DOMAIN.to_owned(),
        room: fake_server::ROOM.to_owned(),
        start_at_unix_micros: xmppload_proto::unix_micros_now() + 100_000,
        talk_after_ms: 500,
        talk_rate: 5.0,
        talk_duration_ms: 1000,
        leave_after_ms: 2500,
        ..offline_request(group, BOTS)
    };
    match wire {
        Wire::C2s => RunGroupRequest {
            transport: Transport::C2s as i32,
            host: addr.ip().to_string(),
            port: u32::from(addr.port()),
            tls: TlsMode::None as i32,
            ..base
        },
        Wire::WebSocket => RunGroupRequest {
            transport: Transport::Websocket as i32,
            websocket_url: format!("ws://{addr}/xmpp-websocket"),
            ..base
        },
    }
}

/// Runs the slice against a fake server with `fault` and returns the final
/// report, after checking the healthy bots and that the agent still responds.
async fn run_with_fault(wire: Wire, fault: Fault, tweak: RunGroupRequest) -> GroupReport {
    let addr = fake_server::start(wire, fault).await;
    let mut agent = start_agent().await;
    let request = RunGroupRequest {
        max_stanza_bytes: tweak.max_stanza_bytes,
        stall_timeout_ms: tweak.stall_timeout_ms,
        ..request(wire, addr, &tweak.group)
    };
    let per_bot = messages_per_bot(&request);
    let reports = run_group(&mut agent.client, request).await;
    let last = reports.last().unwrap().clone();
    assert!(last.done, "the slice finished");
    let counters = last.counters.clone().unwrap();

    // The healthy bots ran their whole lifecycle.
    assert_eq!(counters.connected_total, u64::from(BOTS), "{counters:?}");
    assert_eq!(counters.joined_total, u64::from(BOTS), "{counters:?}");
    assert_eq!(counters.left_total, u64::from(BOTS - 1), "{counters:?}");
    assert_eq!(counters.failed_total, 1, "{counters:?}");
    assert_eq!(
        counters.reflections,
        u64::from(BOTS - 1) * per_bot,
        "every message of the healthy bots came back: {counters:?}"
    );

    // A panicking bot task would be counted as `protocol` by the group
    // runner; the agent process must also still serve requests.
    let hello = agent
        .client
        .hello(HelloRequest {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            coordinator: "hostile".to_owned(),
        })
        .await;
    assert!(hello.is_ok(), "agent answers after the fault: {hello:?}");
    last
}

fn named(group: &str) -> RunGroupRequest {
    RunGroupRequest {
        group: group.to_owned(),
        ..RunGroupRequest::default()
    }
}

/// A stanza with mismatched tags fails one bot as `protocol`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_counts_protocol() {
    let last = run_with_fault(Wire::C2s, Fault::Malformed, named("malformed")).await;
    assert_eq!(errors_of(&last, "protocol"), 1, "{:?}", last.counters);
}

/// A c2s stanza over max_stanza_bytes fails one bot as `oversized`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_c2s_stanza_counts_oversized() {
    let tweak = RunGroupRequest {
        max_stanza_bytes: 16 * 1024,
        ..named("bigc2s")
    };
    let last = run_with_fault(Wire::C2s, Fault::Oversized(100_000), tweak).await;
    assert_eq!(errors_of(&last, "oversized"), 1, "{:?}", last.counters);
}

/// A WebSocket message over max_stanza_bytes fails one bot as `oversized`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_websocket_message_counts_oversized() {
    let tweak = RunGroupRequest {
        max_stanza_bytes: 16 * 1024,
        ..named("bigws")
    };
    let last = run_with_fault(Wire::WebSocket, Fault::Oversized(100_000), tweak).await;
    assert_eq!(errors_of(&last, "oversized"), 1, "{:?}", last.counters);
}

/// Half a c2s stanza and then silence fails one bot as `stalled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2s_stall_mid_stanza_counts_stalled() {
    let tweak = RunGroupRequest {
        stall_timeout_ms: 800,
        ..named("stallc2s")
    };
    let last = run_with_fault(Wire::C2s, Fault::StallMidStanza, tweak).await;
    assert_eq!(errors_of(&last, "stalled"), 1, "{:?}", last.counters);
}

/// Half a WebSocket frame and then silence fails one bot as `stalled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_stall_mid_frame_counts_stalled() {
    let tweak = RunGroupRequest {
        stall_timeout_ms: 800,
        ..named("stallws")
    };
    let last = run_with_fault(Wire::WebSocket, Fault::StallMidStanza, tweak).await;
    assert_eq!(errors_of(&last, "stalled"), 1, "{:?}", last.counters);
}

/// A `<stream:error/>` after the join fails one bot as `stream_error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_error_counts_stream_error() {
    for wire in [Wire::C2s, Wire::WebSocket] {
        let last = run_with_fault(wire, Fault::StreamError, named("streamerr")).await;
        assert_eq!(
            errors_of(&last, "stream_error"),
            1,
            "{wire:?}: {:?}",
            last.counters
        );
    }
}

/// A TCP reset mid-session fails one bot as `closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reset_counts_closed() {
    for wire in [Wire::C2s, Wire::WebSocket] {
        let last = run_with_fault(wire, Fault::Reset, named("reset")).await;
        assert_eq!(
            errors_of(&last, "closed"),
            1,
            "{wire:?}: {:?}",
            last.counters
        );
    }
}
