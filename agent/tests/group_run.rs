//! Bots over WebSocket and c2s join one room, talk and leave on a real Prosody.

mod common;

use common::*;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_proto::v1::GroupReport;

/// Lag that an agent with a handful of bots stays under even on a busy
/// 2-core machine. A bot that misses its time by more points to a bug.
const SCHEDULE_BOUND_MICROS: u64 = 1_000_000;

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

    // One join-lag sample per bot and one send-lag sample per message, and
    // an unloaded agent keeps to its schedule within a loose bound.
    let join_lag = merged_histogram(reports, |report| &report.join_lag_histogram);
    let send_lag = merged_histogram(reports, |report| &report.send_lag_histogram);
    assert_eq!(join_lag.len(), bots, "{name}: join-lag samples");
    assert_eq!(send_lag.len(), bots * per_bot, "{name}: send-lag samples");
    assert!(
        join_lag.max() < SCHEDULE_BOUND_MICROS,
        "{name}: max join lag {} µs",
        join_lag.max()
    );
    assert!(
        send_lag.max() < SCHEDULE_BOUND_MICROS,
        "{name}: max send lag {} µs",
        send_lag.max()
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

/// A group whose schedule is already past when it arrives starts every bot
/// late, which the join-lag histogram and `late_joins` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_schedule_counts_late_joins() {
    const BEHIND_MICROS: i64 = 3_000_000;
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let agent = start_agent().await;

    // Bots are due at -3.0, -2.5, -2.0 and -1.5 s: every one is late by at
    // least 1.5 s however fast the agent is.
    let request = xmppload_proto::v1::RunGroupRequest {
        start_at_unix_micros: xmppload_proto::unix_micros_now() - BEHIND_MICROS,
        join_rate: 2.0,
        talk_rate: 0.0,
        leave_after_ms: 2500,
        ..c2s_request(&prosody, "behind", "behind", 4)
    };
    let mut client = agent.client.clone();
    let reports = run_group(&mut client, request).await;

    let counters = reports.last().unwrap().counters.clone().unwrap();
    assert_eq!(counters.failed_total, 0, "failed bots: {counters:?}");
    assert_eq!(counters.joined_total, 4, "joined");
    assert_eq!(counters.late_joins, 4, "late joins");
    assert_eq!(counters.late_sends, 0, "idle bots send nothing");

    let join_lag = merged_histogram(&reports, |report| &report.join_lag_histogram);
    assert_eq!(join_lag.len(), 4, "join-lag samples");
    assert!(
        join_lag.min() >= 1_400_000,
        "min join lag {} µs",
        join_lag.min()
    );
    assert!(
        join_lag.max() >= 2_900_000,
        "max join lag {} µs",
        join_lag.max()
    );
    let send_lag = merged_histogram(&reports, |report| &report.send_lag_histogram);
    assert_eq!(send_lag.len(), 0, "send-lag samples");
}
