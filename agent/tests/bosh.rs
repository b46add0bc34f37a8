//! BOSH bots (XEP-0124 with XEP-0206) against a real Prosody: a full run,
//! `https://` with a self-signed certificate, and an endpoint that responds
//! with an HTTP error.

mod common;

use common::*;
use xmppload_agent::testing::{Prosody, ProsodyOptions, TlsFiles};
use xmppload_proto::v1::{GroupReport, RunGroupRequest, TlsMode, Transport};

/// Builds a BOSH request for `count` bots in `room`, with the timings of
/// [`websocket_request`].
fn bosh_request(prosody: &Prosody, group: &str, room: &str, count: u32) -> RunGroupRequest {
    RunGroupRequest {
        transport: Transport::Bosh as i32,
        websocket_url: String::new(),
        bosh_url: prosody.bosh_url(),
        tls: TlsMode::Unspecified as i32,
        ..websocket_request(prosody, group, room, count)
    }
}

fn counters_of(reports: &[GroupReport]) -> xmppload_proto::v1::GroupCounters {
    let last = reports.last().unwrap();
    assert!(last.done, "last report is final");
    last.counters.clone().unwrap()
}

/// Ten BOSH bots join one room, see every message and leave cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosh_bots_join_talk_leave() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut agent = start_agent().await;

    let request = bosh_request(&prosody, "bosh", "boshroom", 10);
    let per_bot = messages_per_bot(&request);
    assert_eq!(per_bot, 5);
    let reports = run_group(&mut agent.client, request).await;

    let counters = counters_of(&reports);
    if counters.failed_total > 0 {
        dump_log(&prosody);
    }
    assert_eq!(counters.errors, vec![], "no errors");
    assert_eq!(counters.failed_total, 0, "failed_total");
    assert_eq!(counters.connected_total, 10, "connected_total");
    assert_eq!(counters.joined_total, 10, "joined_total");
    assert_eq!(counters.left_total, 10, "left_total");
    assert_eq!(counters.messages_sent, 10 * per_bot, "messages_sent");
    assert_eq!(counters.reflections, 10 * per_bot, "reflections");
    assert_eq!(
        counters.messages_received,
        10 * 10 * per_bot,
        "messages_received: every bot hears every message"
    );
    assert_eq!(
        histogram_count(&reports),
        10 * per_bot,
        "one latency sample per reflection"
    );
}

/// BOSH and WebSocket bots in one room hear each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosh_and_websocket_share_room() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let agent = start_agent().await;

    let bosh = bosh_request(&prosody, "bosh", "shared", 3);
    let ws = websocket_request(&prosody, "ws", "shared", 3);
    let per_bot = messages_per_bot(&bosh);
    let (mut bosh_client, mut ws_client) = (agent.client.clone(), agent.client.clone());
    let (bosh_reports, ws_reports) = tokio::join!(
        run_group(&mut bosh_client, bosh),
        run_group(&mut ws_client, ws)
    );

    for (name, reports) in [("bosh", &bosh_reports), ("websocket", &ws_reports)] {
        let counters = counters_of(reports);
        if counters.failed_total > 0 {
            dump_log(&prosody);
        }
        assert_eq!(counters.errors, vec![], "{name}: no errors");
        assert_eq!(counters.left_total, 3, "{name}: left_total");
        assert_eq!(counters.reflections, 3 * per_bot, "{name}: reflections");
        assert_eq!(
            counters.messages_received,
            6 * 3 * per_bot,
            "{name}: messages_received from both groups"
        );
    }
}

/// `https://` BOSH accepts Prosody's self-signed certificate only with
/// `accept_invalid_certs`, and fails as `tls` without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosh_https_self_signed() {
    let certified = rcgen::generate_simple_self_signed(vec!["anon.localhost".to_owned()]).unwrap();
    let prosody = Prosody::start(ProsodyOptions {
        tls: Some(TlsFiles {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
        }),
        ..ProsodyOptions::default()
    })
    .unwrap();
    let mut agent = start_agent().await;

    let request = RunGroupRequest {
        bosh_url: prosody.bosh_tls_url().unwrap(),
        accept_invalid_certs: true,
        talk_after_ms: 800,
        talk_duration_ms: 400,
        leave_after_ms: 2000,
        ..bosh_request(&prosody, "boshs", "secure", 2)
    };
    let per_bot = messages_per_bot(&request);
    let reports = run_group(&mut agent.client, request.clone()).await;
    let counters = counters_of(&reports);
    if counters.failed_total > 0 {
        dump_log(&prosody);
    }
    assert_eq!(counters.errors, vec![], "accepted certificate: no errors");
    assert_eq!(counters.left_total, 2);
    assert_eq!(counters.messages_received, 2 * 2 * per_bot);

    // The first HTTP connection's TLS handshake is timed once per bot.
    let trips = round_trip_counts(&reports);
    assert_eq!(trips.get("tcp"), Some(&2), "{trips:?}");
    assert_eq!(trips.get("tls"), Some(&2), "{trips:?}");

    let strict = RunGroupRequest {
        accept_invalid_certs: false,
        group: "boshstrict".to_owned(),
        ..request
    };
    let reports = run_group(&mut agent.client, strict).await;
    let last = reports.last().unwrap();
    assert!(last.done);
    assert_eq!(errors_of(last, "tls"), 2, "{:?}", last.counters);
    assert_eq!(last.counters.as_ref().unwrap().failed_total, 2);
    let trips = round_trip_counts(&reports);
    assert_eq!(trips.get("tcp"), Some(&2), "{trips:?}");
    assert_eq!(trips.get("tls"), None, "a failed handshake is not timed");
}

/// A URL that Prosody responds to with 404 fails every bot as `http`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bosh_not_found_counts_http() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut agent = start_agent().await;

    let request = RunGroupRequest {
        bosh_url: format!("http://{}/no-such-endpoint", prosody.http_addr()),
        ..bosh_request(&prosody, "bosh404", "nowhere", 3)
    };
    let reports = run_group(&mut agent.client, request).await;
    let counters = counters_of(&reports);
    assert_eq!(counters.failed_total, 3, "{counters:?}");
    assert_eq!(
        errors_of(reports.last().unwrap(), "http"),
        3,
        "{counters:?}"
    );
    assert_eq!(counters.connected_total, 0);
}
