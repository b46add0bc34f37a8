//! STARTTLS against a Prosody with a self-signed certificate.

mod common;

use common::*;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_proto::v1::{RunGroupRequest, TlsMode};

/// Bots that require STARTTLS and accept the self-signed certificate run cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_accepted_self_signed_cert() {
    let prosody = prosody_with_certificate();
    let mut agent = start_agent().await;

    let request = RunGroupRequest {
        tls: TlsMode::StarttlsRequired as i32,
        accept_invalid_certs: true,
        talk_after_ms: 800,
        talk_duration_ms: 400,
        leave_after_ms: 2000,
        ..c2s_request(&prosody, "tls", "secure", 2)
    };
    let per_bot = messages_per_bot(&request);
    let reports = run_group(&mut agent.client, request).await;

    let last = reports.last().unwrap();
    let counters = last.counters.as_ref().unwrap();
    if counters.failed_total > 0 {
        dump_log(&prosody);
    }
    assert!(last.done);
    assert_eq!(counters.errors, vec![]);
    assert_eq!(counters.joined_total, 2);
    assert_eq!(counters.left_total, 2);
    assert_eq!(counters.messages_sent, 2 * per_bot);
    assert_eq!(counters.messages_received, 2 * 2 * per_bot);
}

/// Verifying the self-signed certificate against the web roots fails with kind `tls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_rejects_untrusted_cert() {
    let prosody = prosody_with_certificate();
    let mut agent = start_agent().await;

    let request = RunGroupRequest {
        tls: TlsMode::StarttlsIfOffered as i32,
        accept_invalid_certs: false,
        ..c2s_request(&prosody, "untrusted", "secure", 3)
    };
    let reports = run_group(&mut agent.client, request).await;

    let last = reports.last().unwrap();
    let counters = last.counters.as_ref().unwrap();
    assert!(last.done);
    assert_eq!(errors_of(last, "tls"), 3);
    assert_eq!(counters.failed_total, 3);
    assert_eq!(counters.connected_total, 0);
}

/// Requiring STARTTLS from a server without a certificate fails with kind `tls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_required_but_not_offered() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut agent = start_agent().await;

    let request = RunGroupRequest {
        tls: TlsMode::StarttlsRequired as i32,
        ..c2s_request(&prosody, "notls", "secure", 2)
    };
    let reports = run_group(&mut agent.client, request).await;

    let last = reports.last().unwrap();
    assert!(last.done);
    assert_eq!(errors_of(last, "tls"), 2);
    assert_eq!(last.counters.as_ref().unwrap().failed_total, 2);
}

/// WebSocket bots over `wss://` accept the self-signed certificate only with `accept_invalid_certs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_websocket_with_accepted_cert() {
    let prosody = prosody_with_certificate();
    let mut agent = start_agent().await;
    let url = prosody.websocket_tls_url().unwrap();

    let request = RunGroupRequest {
        websocket_url: url,
        accept_invalid_certs: true,
        talk_after_ms: 800,
        talk_duration_ms: 400,
        leave_after_ms: 2000,
        ..websocket_request(&prosody, "wss", "secure", 2)
    };
    let per_bot = messages_per_bot(&request);
    let reports = run_group(&mut agent.client, request.clone()).await;

    let last = reports.last().unwrap();
    let counters = last.counters.as_ref().unwrap();
    if counters.failed_total > 0 {
        dump_log(&prosody);
    }
    assert!(last.done);
    assert_eq!(counters.errors, vec![]);
    assert_eq!(counters.left_total, 2);
    assert_eq!(counters.messages_received, 2 * 2 * per_bot);

    let strict = RunGroupRequest {
        accept_invalid_certs: false,
        group: "wssstrict".to_owned(),
        ..request
    };
    let reports = run_group(&mut agent.client, strict).await;
    let last = reports.last().unwrap();
    assert!(last.done);
    assert_eq!(errors_of(last, "tls"), 2, "{:?}", last.counters);
}
