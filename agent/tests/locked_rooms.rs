//! Bots join rooms that stay locked until their creator configures them
//! (Prosody with `muc_room_locking = true`, as XEP-0045 section 10.1 describes).

mod common;

use common::*;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_proto::v1::RunGroupRequest;

/// Bots of each group; every one after the first meets a room that its
/// creator must unlock.
const BOTS: u32 = 4;

/// The creator unlocks a locked room, so every bot joins and all messages flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_room_unlocked_by_creator() {
    let prosody = Prosody::start(ProsodyOptions {
        muc_room_locking: true,
        ..ProsodyOptions::default()
    })
    .unwrap();
    let agent = start_agent().await;

    // One room per transport, so each group's first bot creates a room.
    // The WebSocket bots connect all at once, so the others usually ask to
    // join before the creator has unlocked the room, and have to retry.
    let requests = [
        RunGroupRequest {
            join_rate: 1000.0,
            ..websocket_request(&prosody, "ws-locked", "locked-ws", BOTS)
        },
        RunGroupRequest {
            stream_management: true,
            ..c2s_request(&prosody, "c2s-locked", "locked-c2s", BOTS)
        },
    ];
    for request in requests {
        let per_bot = messages_per_bot(&request);
        let name = request.group.clone();
        let mut client = agent.client.clone();
        let reports = run_group(&mut client, request).await;

        let counters = reports.last().unwrap().counters.clone().unwrap();
        if counters.failed_total > 0 {
            dump_log(&prosody);
        }
        assert_eq!(counters.errors, vec![], "{name}: errors");
        assert_eq!(counters.failed_total, 0, "{name}: failed_total");
        assert_eq!(counters.joined_total, u64::from(BOTS), "{name}: joined");
        assert_eq!(counters.left_total, u64::from(BOTS), "{name}: left");
        let sent = u64::from(BOTS) * per_bot;
        assert_eq!(counters.messages_sent, sent, "{name}: messages_sent");
        assert_eq!(counters.reflections, sent, "{name}: reflections");
        assert_eq!(
            counters.messages_received,
            sent * u64::from(BOTS),
            "{name}: messages_received"
        );
    }
}
