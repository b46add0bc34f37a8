//! Session negotiation against a real Prosody, below the group runner.

use std::sync::Arc;
use std::time::Duration;

use xmppload_agent::session::{Inbound, Session};
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_agent::transport::{Endpoint, StreamLimits, TlsMode, tls};

fn c2s_endpoint(prosody: &Prosody) -> Endpoint {
    Endpoint::Tcp {
        host: "127.0.0.1".to_owned(),
        port: prosody.c2s_addr().port(),
        domain: prosody.domain().to_owned(),
        tls_mode: TlsMode::Never,
        tls: tls::client_config(false).unwrap(),
        limits: StreamLimits::default(),
    }
}

fn websocket_endpoint(prosody: &Prosody) -> Endpoint {
    Endpoint::WebSocket {
        url: prosody.websocket_url(),
        domain: prosody.domain().to_owned(),
        tls: Arc::clone(&tls::client_config(false).unwrap()),
        limits: StreamLimits::default(),
    }
}

/// Sends a message to itself and waits for the server's ack request.
async fn expect_ack_request(session: &mut Session) {
    let jid = session.jid().to_owned();
    session
        .send(&format!(
            "<message xmlns='jabber:client' to='{jid}' type='chat'><body>ping</body></message>"
        ))
        .await
        .unwrap();
    let wait = async {
        loop {
            if session.next().await.unwrap() == Inbound::AckRequest {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("server sent no <r/>");
}

/// With stream management, replies to the server's ack requests are accepted.
#[tokio::test]
async fn stream_management_acks_are_accepted() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    for endpoint in [c2s_endpoint(&prosody), websocket_endpoint(&prosody)] {
        let mut session = Session::establish(&endpoint, true).await.unwrap();
        assert!(
            session.jid().contains("@anon.localhost/"),
            "bound JID {}",
            session.jid()
        );

        // Two rounds: a wrong h in the first reply would make Prosody end
        // the stream with an error before or during the second.
        for _ in 0..2 {
            expect_ack_request(&mut session).await;
            session.send_ack().await.unwrap();
        }
        session.close().await.unwrap();
    }
}

/// Without stream management a session binds and closes cleanly on both transports.
#[tokio::test]
async fn plain_session_binds_and_closes() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    for endpoint in [c2s_endpoint(&prosody), websocket_endpoint(&prosody)] {
        let mut session = Session::establish(&endpoint, false).await.unwrap();
        assert!(
            session.jid().contains("@anon.localhost/"),
            "bound JID {}",
            session.jid()
        );
        session.close().await.unwrap();
    }
}
