//! BOSH transport behaviour against a scripted loopback HTTP server: faults
//! that Prosody does not produce, `rid` order, connection reuse and
//! cancel-safety.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xmppload_agent::error::{BotError, FailureKind};
use xmppload_agent::transport::bosh::BoshUrl;
use xmppload_agent::transport::{Endpoint, StreamEvent, StreamLimits, Transport, tls};
use xmppload_agent::xml::{Element, Scope};

/// Bound on everything one scripted connection does.
const CONNECTION_BOUND: Duration = Duration::from_secs(10);

const CREATED: &str = "<body xmlns='http://jabber.org/protocol/httpbind' sid='s1' wait='5' \
    requests='2' xmlns:stream='http://etherx.jabber.org/streams'><stream:features \
    xmlns='jabber:client'/></body>";

/// How the server responds to one request, in the order requests arrive.
#[derive(Debug, Clone)]
enum Reply {
    /// 200 OK with this body, after a pause.
    Body(Duration, String),
    /// A message whose id is the request's rid, so the client's order of
    /// stanzas shows the order in which it handled responses.
    EchoRid,
    /// An empty response with this status.
    Status(u16),
    /// Announces this body in full but sends only its first half, then
    /// keeps the connection silent.
    HalfThenSilence(String),
}

fn now(body: &str) -> Reply {
    Reply::Body(Duration::ZERO, body.to_owned())
}

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    /// Request bodies in arrival order.
    requests: Vec<String>,
}

/// Starts a server that responds to requests with `replies` in turn and keeps
/// any request after the last one waiting until the client disconnects.
async fn scripted_bosh(replies: Vec<Reply>, limits: StreamLimits) -> (Endpoint, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let replies = Arc::new(Mutex::new(replies.into_iter()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server_seen = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            server_seen.lock().unwrap().connections += 1;
            let (replies, seen) = (Arc::clone(&replies), Arc::clone(&server_seen));
            tokio::spawn(tokio::time::timeout(
                CONNECTION_BOUND,
                serve(socket, replies, seen),
            ));
        }
    });
    let endpoint = Endpoint::Bosh {
        url: BoshUrl::parse(&format!("http://{addr}/http-bind")).unwrap(),
        domain: "test".to_owned(),
        tls: tls::client_config(false).unwrap(),
        limits,
        hold: 1,
        wait_s: 5,
    };
    (endpoint, seen)
}

async fn serve(
    mut socket: TcpStream,
    replies: Arc<Mutex<std::vec::IntoIter<Reply>>>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut buffer = Vec::new();
    while let Some(body) = read_request(&mut socket, &mut buffer).await {
        seen.lock().unwrap().requests.push(body.clone());
        let reply = replies.lock().unwrap().next();
        let reply = match reply {
            Some(reply) => reply,
            None => {
                // Out of script: hold the request like a quiet server.
                tokio::time::sleep(CONNECTION_BOUND).await;
                return;
            }
        };
        let written = match reply {
            Reply::Body(pause, body) => {
                tokio::time::sleep(pause).await;
                socket.write_all(response(200, &body).as_bytes()).await
            }
            Reply::EchoRid => {
                let request = Element::parse(&body, &Scope::client_stream()).unwrap();
                let rid = request.attr("rid").unwrap();
                socket
                    .write_all(response(200, &message(rid)).as_bytes())
                    .await
            }
            Reply::Status(status) => socket.write_all(response(status, "").as_bytes()).await,
            Reply::HalfThenSilence(body) => {
                let full = response(200, &body);
                let cut = full.len() - body.len() / 2;
                let written = socket.write_all(&full.as_bytes()[..cut]).await;
                tokio::time::sleep(CONNECTION_BOUND).await;
                written
            }
        };
        if written.is_err() {
            return;
        }
    }
}

fn response(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} Scripted\r\nContent-Type: text/xml; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one request with a `Content-Length` body and returns the body.
async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())?;
    while buffer.len() < header_end + length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8_lossy(&buffer[header_end..header_end + length]).into_owned();
    buffer.drain(..header_end + length);
    Some(body)
}

fn message(id: impl std::fmt::Display) -> String {
    format!(
        "<body xmlns='http://jabber.org/protocol/httpbind'>\
         <message xmlns='jabber:client' id='{id}'/></body>"
    )
}

/// Opens the session and checks the header and features of [`CREATED`].
async fn open(endpoint: &Endpoint) -> Transport {
    let mut transport = Transport::connect(endpoint).await.unwrap();
    transport.open_stream().await.unwrap();
    assert_eq!(transport.next().await.unwrap(), StreamEvent::Header);
    let StreamEvent::Stanza(features) = transport.next().await.unwrap() else {
        panic!("expected the features");
    };
    assert_eq!(features.name, "features");
    transport
}

/// A terminate with a condition in the middle of a session fails the bot
/// as `stream_error` and names the condition.
#[tokio::test]
async fn terminate_mid_session() {
    let terminate = "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' \
        condition='remote-connection-failed'/>";
    let (endpoint, _) =
        scripted_bosh(vec![now(CREATED), now(terminate)], StreamLimits::default()).await;
    let mut transport = open(&endpoint).await;

    let err = transport.next().await.unwrap_err();
    assert!(
        matches!(&err, BotError::BoshTerminated { condition } if condition == "remote-connection-failed"),
        "{err}"
    );
    assert_eq!(err.kind(), FailureKind::StreamError);
    assert!(
        err.to_string().contains("remote-connection-failed"),
        "{err}"
    );
}

/// A `<stream:error/>` inside the terminate body is reported as a stream error.
#[tokio::test]
async fn terminate_with_stream_error() {
    let terminate = "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' \
        condition='remote-stream-error' xmlns:stream='http://etherx.jabber.org/streams'>\
        <stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
        </stream:error></body>";
    let (endpoint, _) =
        scripted_bosh(vec![now(CREATED), now(terminate)], StreamLimits::default()).await;
    let mut transport = open(&endpoint).await;

    let err = transport.next().await.unwrap_err();
    assert!(
        matches!(&err, BotError::StreamError { condition } if condition == "system-shutdown"),
        "{err}"
    );
}

/// An HTTP 500 in the middle of a session fails the bot as `http`.
#[tokio::test]
async fn server_error_status() {
    let (endpoint, _) = scripted_bosh(
        vec![now(CREATED), Reply::Status(500)],
        StreamLimits::default(),
    )
    .await;
    let mut transport = open(&endpoint).await;

    let err = transport.next().await.unwrap_err();
    assert!(matches!(err, BotError::HttpStatus { status: 500 }), "{err}");
    assert_eq!(err.kind(), FailureKind::Http);
}

/// A response body over `max_stanza_bytes` fails as `oversized`.
#[tokio::test]
async fn oversized_response() {
    let limits = StreamLimits {
        max_stanza_bytes: 1024,
        ..StreamLimits::default()
    };
    let big = format!(
        "<body xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'>\
         <body>{}</body></message></body>",
        "x".repeat(2000)
    );
    let (endpoint, _) = scripted_bosh(vec![now(CREATED), now(&big)], limits).await;
    let mut transport = open(&endpoint).await;

    let err = transport.next().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Oversized, "{err}");
}

/// Half a response body and then silence fails as `stalled`.
#[tokio::test]
async fn stall_mid_body() {
    let limits = StreamLimits {
        stall_timeout: Duration::from_millis(300),
        ..StreamLimits::default()
    };
    let (endpoint, _) = scripted_bosh(
        vec![now(CREATED), Reply::HalfThenSilence(message(1))],
        limits,
    )
    .await;
    let mut transport = open(&endpoint).await;

    let started = tokio::time::Instant::now();
    let err = transport.next().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Stalled, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// Requests carry consecutive rids and the session's sid, and a bot uses
/// no more than hold + 1 = 2 connections however many requests it makes.
#[tokio::test]
async fn rids_consecutive_connections_reused() {
    const ROUNDS: usize = 8;
    let mut replies = vec![now(CREATED)];
    replies.extend((0..2 * ROUNDS).map(|_| Reply::EchoRid));
    let (endpoint, seen) = scripted_bosh(replies, StreamLimits::default()).await;
    let mut transport = open(&endpoint).await;

    let mut received = Vec::new();
    for _ in 0..ROUNDS {
        transport
            .send("<presence xmlns='jabber:client'/>")
            .await
            .unwrap();
        let StreamEvent::Stanza(stanza) = transport.next().await.unwrap() else {
            panic!("expected a stanza");
        };
        received.push(stanza.attr("id").unwrap().to_owned());
    }

    let seen = seen.lock().unwrap();
    assert!(seen.connections <= 2, "connections: {}", seen.connections);
    assert!(
        seen.requests.len() > ROUNDS,
        "requests: {}",
        seen.requests.len()
    );

    let bodies: Vec<Element> = seen
        .requests
        .iter()
        .map(|text| Element::parse(text, &Scope::client_stream()).unwrap())
        .collect();
    let mut rids: Vec<u64> = bodies
        .iter()
        .map(|body| body.attr("rid").unwrap().parse().unwrap())
        .collect();
    rids.sort_unstable();
    assert!(
        rids.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "rids: {rids:?}"
    );
    assert_eq!(bodies[0].attr("sid"), None, "creation has no sid");
    assert!(
        bodies[1..]
            .iter()
            .all(|body| body.attr("sid") == Some("s1")),
        "later requests carry the sid"
    );

    // Each stanza names the rid of its response, so handling in rid order
    // gives increasing ids.
    let received: Vec<u64> = received.iter().map(|id| id.parse().unwrap()).collect();
    assert!(
        received.windows(2).all(|pair| pair[0] < pair[1]),
        "stanza order: {received:?}"
    );
}

/// A read cancelled by a timer loses no response.
#[tokio::test]
async fn cancelled_reads_lose_nothing() {
    let delayed = Reply::Body(Duration::from_millis(150), message(7));
    let (endpoint, _) = scripted_bosh(vec![now(CREATED), delayed], StreamLimits::default()).await;
    let mut transport = open(&endpoint).await;

    let mut cancelled = 0;
    let mut stanza = None;
    for _ in 0..200 {
        tokio::select! {
            event = transport.next() => {
                stanza = Some(event.unwrap());
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(10)) => cancelled += 1,
        }
    }
    assert!(cancelled > 0, "the timer cancelled at least one read");
    let Some(StreamEvent::Stanza(stanza)) = stanza else {
        panic!("expected a stanza, got {stanza:?}");
    };
    assert_eq!(stanza.attr("id"), Some("7"));
}

/// `close` sends a terminate with the next rid and returns promptly.
#[tokio::test]
async fn close_sends_terminate() {
    let ended = "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate'/>";
    let (endpoint, seen) =
        scripted_bosh(vec![now(CREATED), now(ended)], StreamLimits::default()).await;
    let mut transport = open(&endpoint).await;

    let started = tokio::time::Instant::now();
    transport.close().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));

    let seen = seen.lock().unwrap();
    let last = Element::parse(seen.requests.last().unwrap(), &Scope::client_stream()).unwrap();
    assert_eq!(last.attr("type"), Some("terminate"));
    assert_eq!(last.attr("sid"), Some("s1"));
}

/// Stanzas sent while hold + 1 requests are in flight wait in a queue and
/// leave together in the next request, without blocking the sender.
#[tokio::test]
async fn queued_stanzas_share_request() {
    let slow = || Reply::Body(Duration::from_millis(300), message("slow"));
    let (endpoint, seen) = scripted_bosh(
        vec![now(CREATED), slow(), slow(), slow()],
        StreamLimits::default(),
    )
    .await;
    let mut transport = open(&endpoint).await;

    // Two requests fill both slots, so the last two stanzas wait.
    for id in ["a", "b", "c", "d"] {
        transport
            .send(&format!("<presence xmlns='jabber:client' id='{id}'/>"))
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let StreamEvent::Stanza(stanza) = transport.next().await.unwrap() else {
            panic!("expected a stanza");
        };
        assert_eq!(stanza.attr("id"), Some("slow"));
    }
    // The third response comes 300 ms after the queued request went out.
    let third = tokio::time::timeout(Duration::from_secs(5), transport.next()).await;
    assert!(matches!(third, Ok(Ok(StreamEvent::Stanza(_)))), "{third:?}");

    let seen = seen.lock().unwrap();
    let children: Vec<Vec<String>> = seen.requests[1..]
        .iter()
        .map(|text| {
            let body = Element::parse(text, &Scope::client_stream()).unwrap();
            body.children
                .iter()
                .map(|child| child.attr("id").unwrap_or_default().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(children[0], ["a"]);
    assert_eq!(children[1], ["b"]);
    assert_eq!(children[2], ["c", "d"], "queued stanzas share one request");
}
