//! Bots over WebSocket and c2s join one room, talk and leave on a real Prosody.

mod common;

use common::*;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_proto::v1::GroupReport;

/// Checks the exact final counters of a slice whose bots all shared the room.
fn assert_clean_run(
    name: &str,
    reports: &[GroupReport],
    bots: u64,
    per_bot: u64,
    room_total_sent: u64,
) {
    let last = reports.last().unwrap();
    assert!(last.done, "{name}: last report is final");
    let counters = last.counters.as_ref().unwrap();
    assert_eq!(counters.errors, vec![], "{name}: no errors");
    assert_eq!(counters.failed_total, 0, "{name}: failed_total");
    assert_eq!(counters.connect_attempts, bots, "{name}: connect_attempts");
    assert_eq!(counters.connected_total, bots, "{name}: connected_total");
    assert_eq!(counters.joined_total, bots, "{name}: joined_total");
    assert_eq!(counters.left_total, bots, "{name}: left_total");
    assert_eq!(
        counters.connecting + counters.connected + counters.joined,
        0,
        "{name}: gauges at the end"
    );
    assert_eq!(
        counters.messages_sent,
        bots * per_bot,
        "{name}: messages_sent"
    );
    assert_eq!(counters.reflections, bots * per_bot, "{name}: reflections");
    assert_eq!(
        counters.messages_received,
        room_total_sent * bots,
        "{name}: messages_received"
    );
    assert!(
        counters.stanzas_received >= counters.messages_received,
        "{name}: stanzas_received"
    );
    assert_eq!(
        histogram_count(reports),
        counters.reflections,
        "{name}: histogram samples"
    );

    let phases = last.phases.as_ref().unwrap();
    assert!(
        phases.join_first_unix_micros > 0,
        "{name}: join phase recorded"
    );
    assert!(
        phases.join_first_unix_micros <= phases.join_last_unix_micros,
        "{name}: join order"
    );
    assert!(
        phases.join_last_unix_micros <= phases.talk_first_unix_micros,
        "{name}: everyone joined before talking"
    );
    assert!(
        phases.talk_last_unix_micros <= phases.leave_first_unix_micros,
        "{name}: talking ended before leaving"
    );
    assert!(
        phases.leave_first_unix_micros <= phases.leave_last_unix_micros,
        "{name}: leave order"
    );
}

/// WebSocket and c2s bots in one room see every message and leave cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_c2s_bots_share_room() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let agent = start_agent().await;

    let ws_request = websocket_request(&prosody, "ws", "mixed", 4);
    let c2s_request = c2s_request(&prosody, "tcp", "mixed", 4);
    let per_bot = messages_per_bot(&ws_request);
    assert_eq!(per_bot, 5);
    let room_total_sent = 8 * per_bot;

    let (mut ws_client, mut c2s_client) = (agent.client.clone(), agent.client.clone());
    let (ws_reports, c2s_reports) = tokio::join!(
        run_group(&mut ws_client, ws_request),
        run_group(&mut c2s_client, c2s_request)
    );

    if ws_reports
        .last()
        .and_then(|r| r.counters.as_ref())
        .is_none_or(|c| c.failed_total > 0)
    {
        dump_log(&prosody);
    }
    assert!(
        ws_reports.len() >= 2,
        "reports arrive every second before the final one"
    );
    assert_clean_run("websocket", &ws_reports, 4, per_bot, room_total_sent);
    assert_clean_run("c2s", &c2s_reports, 4, per_bot, room_total_sent);
}

/// With XEP-0198 enabled, bots negotiate it, reply to acks and still get every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_management_keeps_all_messages() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let agent = start_agent().await;

    let ws_request = xmppload_proto::v1::RunGroupRequest {
        stream_management: true,
        ..websocket_request(&prosody, "smws", "sm", 3)
    };
    let c2s_request = xmppload_proto::v1::RunGroupRequest {
        stream_management: true,
        ..c2s_request(&prosody, "smtcp", "sm", 3)
    };
    let per_bot = messages_per_bot(&ws_request);

    let (mut ws_client, mut c2s_client) = (agent.client.clone(), agent.client.clone());
    let (ws_reports, c2s_reports) = tokio::join!(
        run_group(&mut ws_client, ws_request),
        run_group(&mut c2s_client, c2s_request)
    );

    if c2s_reports
        .last()
        .and_then(|r| r.counters.as_ref())
        .is_none_or(|c| c.failed_total > 0)
    {
        dump_log(&prosody);
    }
    assert_clean_run("websocket with SM", &ws_reports, 3, per_bot, 6 * per_bot);
    assert_clean_run("c2s with SM", &c2s_reports, 3, per_bot, 6 * per_bot);
}
