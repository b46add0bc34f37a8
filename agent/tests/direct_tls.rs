//! Direct TLS (XEP-0368) against a Prosody with a self-signed certificate,
//! the ALPN and SNI a bot offers, and the connection steps it times.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::net::TcpListener;
use xmppload_agent::steps::StepTimes;
use xmppload_agent::testing::Prosody;
use xmppload_agent::transport::{self, Endpoint, StreamLimits, Transport, tls};
use xmppload_proto::v1::{RunGroupRequest, TlsMode};

/// Bound on the handshake with the in-test TLS server.
const HANDSHAKE_BOUND: Duration = Duration::from_secs(10);

/// Builds a c2s request for the direct-TLS listener of `prosody`.
fn direct_request(prosody: &Prosody, group: &str, count: u32) -> RunGroupRequest {
    let direct = prosody.c2s_direct_tls_addr().expect("direct-TLS listener");
    RunGroupRequest {
        host: direct.ip().to_string(),
        port: u32::from(direct.port()),
        tls: TlsMode::Direct as i32,
        ..c2s_request(prosody, group, "direct", count)
    }
}

/// Bots over direct TLS join, talk and leave, and each step is timed once per bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_tls_bots_run_cleanly() {
    let prosody = prosody_with_certificate();
    let mut agent = start_agent().await;

    let request = RunGroupRequest {
        accept_invalid_certs: true,
        stream_management: true,
        talk_after_ms: 800,
        talk_duration_ms: 400,
        leave_after_ms: 2000,
        ..direct_request(&prosody, "direct", 3)
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
    assert_eq!(counters.connected_total, 3);
    assert_eq!(counters.joined_total, 3);
    assert_eq!(counters.left_total, 3);
    assert_eq!(counters.messages_sent, 3 * per_bot);
    assert_eq!(counters.messages_received, 3 * 3 * per_bot);

    let counts = round_trip_counts(&reports);
    for kind in ["tcp", "tls", "stream", "auth", "bind", "sm", "join"] {
        assert_eq!(counts.get(kind), Some(&3), "{kind} in {counts:?}");
    }
    assert_eq!(counts.len(), 7, "no other kinds: {counts:?}");
}

/// Without `accept_invalid_certs` the self-signed certificate fails every bot as `tls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_tls_rejects_untrusted_cert() {
    let prosody = prosody_with_certificate();
    let mut agent = start_agent().await;

    let request = RunGroupRequest {
        accept_invalid_certs: false,
        ..direct_request(&prosody, "untrusted", 3)
    };
    let reports = run_group(&mut agent.client, request).await;

    let last = reports.last().unwrap();
    let counters = last.counters.as_ref().unwrap();
    assert!(last.done);
    assert_eq!(errors_of(last, "tls"), 3);
    assert_eq!(counters.failed_total, 3);
    assert_eq!(counters.connected_total, 0);

    // The TCP connects succeeded, and no handshake did.
    let counts = round_trip_counts(&reports);
    assert_eq!(counts.get("tcp"), Some(&3), "{counts:?}");
    assert_eq!(counts.get("tls"), None, "{counts:?}");
}

/// A direct-TLS connect offers ALPN `xmpp-client` and the domain as SNI.
#[tokio::test]
async fn direct_tls_offers_alpn_and_sni() {
    let certified = rcgen::generate_simple_self_signed(vec!["anon.localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(socket).await.unwrap();
        let (_, connection) = tls.get_ref();
        (
            connection.alpn_protocol().map(<[u8]>::to_vec),
            connection.server_name().map(str::to_owned),
        )
    });

    let endpoint = Endpoint::Tcp {
        host: "127.0.0.1".to_owned(),
        port,
        domain: "anon.localhost".to_owned(),
        tls_mode: transport::TlsMode::Direct,
        tls: tls::direct_tls_config(true).unwrap(),
        limits: StreamLimits::default(),
    };
    let mut steps = StepTimes::new();
    let connect = Transport::connect_timed(&endpoint, None, &mut steps);
    let transport = tokio::time::timeout(HANDSHAKE_BOUND, connect)
        .await
        .expect("handshake within its bound")
        .expect("handshake succeeds");
    let (alpn, sni) = tokio::time::timeout(HANDSHAKE_BOUND, server)
        .await
        .expect("server side within its bound")
        .unwrap();
    drop(transport);

    assert_eq!(alpn.as_deref(), Some(&b"xmpp-client"[..]));
    assert_eq!(sni.as_deref(), Some("anon.localhost"));
    let kinds: Vec<&str> = steps.steps().iter().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds, ["tcp", "tls"]);
}
