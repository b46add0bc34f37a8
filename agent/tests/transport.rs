//! c2s transport behaviour against a scripted loopback server.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xmppload_agent::error::{BotError, FailureKind};
use xmppload_agent::transport::{Endpoint, StreamEvent, StreamLimits, TlsMode, Transport, tls};

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='test' version='1.0'>";

/// Starts a one-connection server that writes `chunks` with a pause between
/// them, and returns the endpoint to reach it.
async fn scripted_server(chunks: Vec<&'static str>, pause: Duration) -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        for chunk in chunks {
            socket.write_all(chunk.as_bytes()).await.unwrap();
            tokio::time::sleep(pause).await;
        }
        // Keep the connection open until the client goes, at most 10 s.
        let drain = async {
            let mut sink = [0u8; 256];
            while let Ok(read) = socket.read(&mut sink).await {
                if read == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    });
    Endpoint::Tcp {
        host: "127.0.0.1".to_owned(),
        port,
        domain: "test".to_owned(),
        tls_mode: TlsMode::Never,
        tls: tls::client_config(false).unwrap(),
        limits: StreamLimits::default(),
    }
}

/// A read cancelled by a timer loses no bytes of a stanza split across packets.
#[tokio::test]
async fn cancelled_reads_lose_nothing() {
    let endpoint = scripted_server(
        vec![
            SERVER_HEADER,
            "<message><body>first ha",
            "lf, second half</body></message>",
        ],
        Duration::from_millis(150),
    )
    .await;
    let mut transport = Transport::connect(&endpoint).await.unwrap();

    let mut events = Vec::new();
    let mut cancelled = 0;
    for _ in 0..200 {
        tokio::select! {
            event = transport.next() => {
                events.push(event.unwrap());
                if events.len() == 2 {
                    break;
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(10)) => cancelled += 1,
        }
    }

    assert!(cancelled > 0, "the timer cancelled at least one read");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], StreamEvent::Header);
    let StreamEvent::Stanza(message) = &events[1] else {
        panic!("expected a stanza, got {:?}", events[1])
    };
    assert_eq!(
        message.child_text("body", "jabber:client"),
        Some("first half, second half")
    );
}

/// A `<stream:error/>` becomes a stream_error failure naming the condition.
#[tokio::test]
async fn stream_error_is_reported() {
    let endpoint = scripted_server(
        vec![
            SERVER_HEADER,
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        ],
        Duration::from_millis(10),
    )
    .await;
    let mut transport = Transport::connect(&endpoint).await.unwrap();

    assert_eq!(transport.next().await.unwrap(), StreamEvent::Header);
    let err = transport.next().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::StreamError);
    assert!(
        matches!(&err, BotError::StreamError { condition } if condition == "conflict"),
        "{err}"
    );
}

/// Bytes that break the stream syntax fail with kind `protocol`.
#[tokio::test]
async fn malformed_stream_is_protocol_error() {
    let endpoint = scripted_server(
        vec![SERVER_HEADER, "<!-- comment -->"],
        Duration::from_millis(10),
    )
    .await;
    let mut transport = Transport::connect(&endpoint).await.unwrap();

    assert_eq!(transport.next().await.unwrap(), StreamEvent::Header);
    let err = transport.next().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Protocol);
}
