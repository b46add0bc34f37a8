//! Several rooms per group, source addresses and capacity rejections,
//! against a real Prosody where one is needed.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use tonic::Code;
use xmppload_agent::AgentConfig;
use xmppload_agent::policy::HostCapacity;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_proto::v1::{HelloRequest, RoomDistribution, RunGroupRequest};

/// Bots in two of three rooms each receive exactly the messages of their rooms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_talk_in_several_rooms() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut agent = start_agent().await;

    // Uniform placement with 12 bots, 3 rooms and 2 rooms per bot puts bot
    // i in rooms i mod 3 and i + 1 mod 3, so every room has 8 occupants.
    let bots = 12;
    let request = RunGroupRequest {
        rooms: 3,
        rooms_per_bot: 2,
        room_distribution: RoomDistribution::Uniform as i32,
        ..c2s_request(&prosody, "multi", "hall", bots)
    };
    let per_bot = messages_per_bot(&request);
    let reports = run_group(&mut agent.client, request).await;
    let last = reports.last().unwrap();
    let counters = last.counters.as_ref().unwrap();
    if counters.failed_total > 0 {
        dump_log(&prosody);
    }

    assert!(last.done, "last report is final");
    assert_eq!(counters.errors, vec![], "no errors");
    assert_eq!(counters.joined_total, u64::from(bots), "joined_total");
    assert_eq!(counters.left_total, u64::from(bots), "left_total");
    let sent = u64::from(bots) * per_bot;
    assert_eq!(counters.messages_sent, sent, "messages_sent");
    assert_eq!(counters.reflections, sent, "reflections");
    // Each message reaches the 8 occupants of the room it went to; one
    // shared room would give 12 per message.
    assert_eq!(counters.messages_received, sent * 8, "messages_received");
    assert_eq!(histogram_count(&reports), sent, "latency samples");
}

/// Zipf rooms and an explicit index list: every bot joins and hears its own messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipf_rooms_with_index_list() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut agent = start_agent().await;

    let indices = vec![0, 1, 3, 4, 6, 7];
    let request = RunGroupRequest {
        rooms: 4,
        room_distribution: RoomDistribution::Zipf as i32,
        zipf_exponent: 1.5,
        indices: indices.clone(),
        ..websocket_request(&prosody, "zipf", "skew", indices.len() as u32)
    };
    let per_bot = messages_per_bot(&request);
    let reports = run_group(&mut agent.client, request).await;
    let counters = reports.last().unwrap().counters.clone().unwrap();

    assert_eq!(counters.errors, vec![], "no errors");
    assert_eq!(counters.joined_total, 6, "joined_total");
    assert_eq!(counters.reflections, 6 * per_bot, "reflections");
    assert!(
        counters.messages_received >= counters.reflections,
        "received includes the reflections"
    );
}

/// Hello reports the capacity the agent enforces.
#[tokio::test]
async fn hello_reports_capacity() {
    let mut agent = start_agent_with(AgentConfig {
        capacity: HostCapacity {
            fd_limit: Some(5000),
            ports_per_destination: Some(1000),
            source_addresses: vec![IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3])],
        },
        ..AgentConfig::default()
    })
    .await;
    let hello = agent
        .client
        .hello(HelloRequest {
            protocol_version: xmppload_proto::PROTOCOL_VERSION,
            coordinator: "test".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hello.fd_limit, 5000);
    assert_eq!(hello.ports_per_destination, 1000);
    assert_eq!(hello.source_addresses, ["127.0.0.2", "127.0.0.3"]);
    assert_eq!(
        hello.max_bots,
        xmppload_agent::policy::limits::DEFAULT_MAX_BOTS
    );
    assert_eq!(hello.reserved_descriptors, 64);
}

/// A slice over the descriptor or port limit is rejected before any bot starts.
#[tokio::test]
async fn slice_over_capacity_rejected() {
    let mut tight_descriptors = start_agent_with(AgentConfig {
        capacity: HostCapacity {
            fd_limit: Some(67),
            ports_per_destination: None,
            source_addresses: Vec::new(),
        },
        ..AgentConfig::default()
    })
    .await;
    let status = tight_descriptors
        .client
        .run_group(offline_request("fds", 4))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(
        status.message().contains("need 68 open descriptors"),
        "{status}"
    );
    assert!(status.message().contains("soft limit is 67"), "{status}");

    let mut tight_ports = start_agent_with(AgentConfig {
        capacity: HostCapacity {
            fd_limit: None,
            ports_per_destination: Some(2),
            source_addresses: vec![IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3])],
        },
        ..AgentConfig::default()
    })
    .await;
    let status = tight_ports
        .client
        .run_group(offline_request("ports", 5))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(
        status
            .message()
            .contains("need 3 local ports per source address"),
        "{status}"
    );
    assert!(status.message().contains("only 2 ports"), "{status}");

    // A rejection gives the reserved places back: 4 bots fit the port limit.
    let fitting = tight_ports
        .client
        .run_group(offline_request("fits", 4))
        .await;
    assert!(fitting.is_ok(), "{:?}", fitting.err());
}

/// Local IPv4 addresses of established loopback TCP sockets whose remote port is `port`.
fn local_addresses_towards(port: u16) -> Vec<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, state) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
            // State 01 is ESTABLISHED. The address is the network-order
            // word printed as a native integer, so its native bytes are the octets.
            let (remote_port, local_ip) = (remote.split_once(':')?.1, local.split_once(':')?.0);
            let established = *state == "01";
            let local_ip = Ipv4Addr::from(u32::from_str_radix(local_ip, 16).ok()?.to_ne_bytes());
            (established && u16::from_str_radix(remote_port, 16).ok()? == port).then_some(local_ip)
        })
        .collect()
}

/// Bots bind their c2s and WebSocket sockets to the source addresses in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_bind_source_addresses() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let sources = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
    let agent = start_agent_with(AgentConfig {
        capacity: HostCapacity {
            source_addresses: sources.iter().copied().map(IpAddr::V4).collect(),
            ..HostCapacity::default()
        },
        ..AgentConfig::default()
    })
    .await;

    let websocket_port: u16 = prosody
        .websocket_url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .unwrap();
    let cases = [
        (
            "c2s",
            c2s_request(&prosody, "bound-c2s", "bound", 4),
            prosody.c2s_addr().port(),
        ),
        (
            "websocket",
            websocket_request(&prosody, "bound-ws", "bound", 4),
            websocket_port,
        ),
    ];
    for (name, request, port) in cases {
        let request = RunGroupRequest {
            talk_rate: 0.0,
            talk_after_ms: 0,
            talk_duration_ms: 0,
            leave_after_ms: 3000,
            ..request
        };
        let mut client = agent.client.clone();
        let run = tokio::spawn(async move { run_group(&mut client, request).await });

        // Sample the socket table while the bots sit in the room; the
        // loop is bounded by count and ends once all four are seen.
        let mut seen: HashMap<Ipv4Addr, usize> = HashMap::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let addresses = local_addresses_towards(port);
            if addresses.len() == 4 {
                seen = addresses
                    .into_iter()
                    .fold(HashMap::new(), |mut counts, ip| {
                        *counts.entry(ip).or_default() += 1;
                        counts
                    });
                break;
            }
        }
        assert_eq!(
            seen.get(&sources[0]),
            Some(&2),
            "{name}: sockets from 127.0.0.2: {seen:?}"
        );
        assert_eq!(
            seen.get(&sources[1]),
            Some(&2),
            "{name}: sockets from 127.0.0.3: {seen:?}"
        );

        let reports = run.await.unwrap();
        let counters = reports.last().unwrap().counters.clone().unwrap();
        assert_eq!(counters.joined_total, 4, "{name}: joined_total");
        assert_eq!(counters.errors, vec![], "{name}: no errors");
    }
}

/// A listed slice's connect rate is the group's rate times its share of the indices.
#[tokio::test]
async fn index_list_share_sets_rate() {
    let mut agent = start_agent_with(AgentConfig {
        limits: xmppload_agent::policy::Limits {
            max_connect_rate: 10.0,
            ..xmppload_agent::policy::Limits::default()
        },
        ..AgentConfig::default()
    })
    .await;

    // Four of the ten indices 0..=9 at 20/s make 8 bots/s on this agent.
    let sparse = RunGroupRequest {
        join_rate: 20.0,
        indices: vec![0, 3, 6, 9],
        ..offline_request("sparse", 4)
    };
    let reports = run_group(&mut agent.client, sparse).await;
    assert!(reports.last().unwrap().done, "sparse slice ran to its end");

    // Four consecutive indices make the whole 20 bots/s.
    let dense = RunGroupRequest {
        join_rate: 20.0,
        indices: vec![0, 1, 2, 3],
        ..offline_request("dense", 4)
    };
    let status = agent.client.run_group(dense).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("20.0 bots/s"), "{status}");

    // The list must have one index per bot, each once.
    let short = RunGroupRequest {
        indices: vec![0, 1],
        ..offline_request("short", 3)
    };
    let status = agent.client.run_group(short).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("invalid `indices` 2"), "{status}");
    let repeated = RunGroupRequest {
        indices: vec![0, 1, 1],
        ..offline_request("repeated", 3)
    };
    let status = agent.client.run_group(repeated).await.unwrap_err();
    assert!(
        status.message().contains("each global index once"),
        "{status}"
    );
}

/// Bad room fields are rejected with the field and the fix.
#[tokio::test]
async fn bad_room_fields_rejected() {
    let mut agent = start_agent().await;
    let cases = [
        (
            RunGroupRequest {
                rooms: 2,
                rooms_per_bot: 3,
                ..offline_request("perbot", 1)
            },
            "invalid `rooms_per_bot` 3",
        ),
        (
            RunGroupRequest {
                rooms: 200_000,
                ..offline_request("many", 1)
            },
            "invalid `rooms` 200000",
        ),
        (
            RunGroupRequest {
                room_distribution: RoomDistribution::Zipf as i32,
                zipf_exponent: 0.0,
                ..offline_request("flat", 1)
            },
            "invalid `zipf_exponent` 0.0",
        ),
        (
            RunGroupRequest {
                room_distribution: 9,
                ..offline_request("unknown", 1)
            },
            "invalid `room_distribution` 9",
        ),
    ];
    for (request, expected) in cases {
        let status = agent.client.run_group(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        assert!(
            status.message().contains(expected),
            "expected `{expected}` in {status}"
        );
    }
}
