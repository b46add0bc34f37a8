//! A scripted XMPP server for faults that a real Prosody cannot produce.
//!
//! It speaks just enough of RFC 6120 (c2s) or RFC 7395 (WebSocket) for the
//! agent's bots: SASL ANONYMOUS, bind, a MUC join confirmed with status 110,
//! reflection of each groupchat message to its sender, and the leave. The
//! first accepted connection gets the [`Fault`] right after its join; every
//! later one is served normally, so a test can check that the fault stays
//! with one bot.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use xmppload_agent::xml::{Element, Frame, Scope, StreamSplitter};

pub const DOMAIN: &str = "test";
pub const ROOM: &str = "hostile@conference.test";

/// Bound on everything one fake connection does, so no task outlives a test.
const CONNECTION_BOUND: Duration = Duration::from_secs(30);

const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
const FEATURES_AUTH: &str = "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
    <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>ANONYMOUS</mechanism></mechanisms>\
    </stream:features>";
const FEATURES_BIND: &str = "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
    <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";

/// Wire format the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    C2s,
    WebSocket,
}

/// What the server does to the first bot once it has joined the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A stanza whose end tag does not match its start tag.
    Malformed,
    /// A groupchat message of this many bytes.
    Oversized(usize),
    /// The first half of a stanza, then silence with the socket open.
    StallMidStanza,
    /// `<stream:error><system-shutdown/></stream:error>`, then the close.
    StreamError,
    /// A TCP reset (RST through SO_LINGER 0) instead of a clean close.
    Reset,
}

/// Starts the server on a loopback port and returns its address.
pub async fn start(wire: Wire, fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for index in 0.. {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let fault = (index == 0).then_some(fault);
            tokio::spawn(tokio::time::timeout(
                CONNECTION_BOUND,
                serve(socket, wire, fault, index),
            ));
        }
    });
    addr
}

/// One accepted connection of either wire format.
enum Conn {
    Tcp {
        socket: TcpStream,
        splitter: StreamSplitter,
    },
    WebSocket(Box<WebSocketStream<TcpStream>>),
}

impl Conn {
    /// Returns the next frame from the client, or `None` when it is gone.
    async fn recv(&mut self) -> Option<Frame> {
        match self {
            Conn::Tcp { socket, splitter } => loop {
                if let Some(frame) = splitter.next_frame().ok()? {
                    return Some(frame);
                }
                let mut chunk = [0u8; 4096];
                let read = socket.read(&mut chunk).await.ok()?;
                if read == 0 {
                    return None;
                }
                splitter.push(&chunk[..read]);
            },
            Conn::WebSocket(ws) => loop {
                let Message::Text(text) = ws.next().await?.ok()? else {
                    continue;
                };
                let element = Element::parse(text.as_str(), &Scope::client_stream()).ok()?;
                return Some(if element.is("open", NS_FRAMING) {
                    Frame::Header(text.to_string())
                } else if element.is("close", NS_FRAMING) {
                    Frame::End
                } else {
                    Frame::Stanza(text.to_string())
                });
            },
        }
    }

    /// Returns the next stanza, parsed, skipping nothing.
    async fn recv_stanza(&mut self) -> Option<Element> {
        match self.recv().await? {
            Frame::Stanza(text) => Element::parse(&text, &Scope::client_stream()).ok(),
            Frame::Header(_) | Frame::End => None,
        }
    }

    /// Sends one element, or bytes of one for the c2s faults.
    async fn send(&mut self, xml: &str) -> Option<()> {
        match self {
            Conn::Tcp { socket, .. } => socket.write_all(xml.as_bytes()).await.ok(),
            Conn::WebSocket(ws) => ws.send(Message::text(xml)).await.ok(),
        }
    }

    /// Sends the server's stream header and then `features`.
    async fn open_stream(&mut self, id: &str, features: &str) -> Option<()> {
        let header = match self {
            Conn::Tcp { .. } => format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                 xmlns:stream='http://etherx.jabber.org/streams' id='{id}' from='{DOMAIN}' version='1.0'>"
            ),
            Conn::WebSocket(_) => {
                format!("<open xmlns='{NS_FRAMING}' id='{id}' from='{DOMAIN}' version='1.0'/>")
            }
        };
        self.send(&header).await?;
        self.send(features).await
    }

    /// Sends the first half of a message and nothing more: raw bytes on
    /// c2s, and on WebSocket a text frame header announcing 100 bytes
    /// followed by 10 of them.
    async fn send_half_stanza(&mut self) -> Option<()> {
        match self {
            Conn::Tcp { socket, .. } => socket
                .write_all(b"<message from='hostile@conference.test/x' type='groupchat'><bo")
                .await
                .ok(),
            Conn::WebSocket(ws) => {
                let socket = ws.get_mut();
                // FIN + text opcode, unmasked, 7-bit payload length 100.
                socket.write_all(&[0x81, 100]).await.ok()?;
                socket.write_all(b"<message x").await.ok()
            }
        }
    }

    /// Resets the TCP connection instead of closing it.
    fn reset(self) {
        let socket = match &self {
            Conn::Tcp { socket, .. } => socket,
            Conn::WebSocket(ws) => ws.get_ref(),
        };
        if let Err(err) = socket.set_zero_linger() {
            eprintln!("fake server: SO_LINGER 0 failed: {err}");
        }
        drop(self);
    }

    /// Reads and drops whatever the client sends until it goes away.
    async fn drain(&mut self) {
        while self.recv().await.is_some() {}
    }
}

/// Serves one connection: negotiation, join, then the fault or the normal
/// room traffic until the client leaves.
async fn serve(socket: TcpStream, wire: Wire, fault: Option<Fault>, index: u32) -> Option<()> {
    let mut conn = match wire {
        Wire::C2s => Conn::Tcp {
            socket,
            splitter: StreamSplitter::default(),
        },
        Wire::WebSocket => {
            let offer_xmpp = |_: &Request, mut response: Response| {
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("xmpp"));
                Ok(response)
            };
            let ws = tokio_tungstenite::accept_hdr_async(socket, offer_xmpp)
                .await
                .ok()?;
            Conn::WebSocket(Box::new(ws))
        }
    };

    // Stream, SASL ANONYMOUS, restart, bind.
    let Frame::Header(_) = conn.recv().await? else {
        return None;
    };
    conn.open_stream(&format!("s{index}a"), FEATURES_AUTH)
        .await?;
    conn.recv_stanza().await?;
    conn.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        .await?;
    if let Conn::Tcp { splitter, .. } = &mut conn {
        splitter.restart();
    }
    let Frame::Header(_) = conn.recv().await? else {
        return None;
    };
    conn.open_stream(&format!("s{index}b"), FEATURES_BIND)
        .await?;
    let bind = conn.recv_stanza().await?;
    let bind_id = bind.attr("id").unwrap_or_default().to_owned();
    conn.send(&format!(
        "<iq xmlns='jabber:client' type='result' id='{bind_id}'>\
         <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>bot{index}@{DOMAIN}/r</jid></bind></iq>"
    ))
    .await?;

    // MUC join: echo the self-presence with status 110.
    let join = conn.recv_stanza().await?;
    let occupant = join.attr("to").unwrap_or_default().to_owned();
    conn.send(&self_presence(&occupant, false)).await?;

    match fault {
        Some(fault) => inject(conn, fault).await,
        None => serve_room(conn, &occupant).await,
    }
}

/// Reflects groupchat messages and confirms the leave until the client closes.
async fn serve_room(mut conn: Conn, occupant: &str) -> Option<()> {
    loop {
        match conn.recv().await? {
            Frame::End => {
                let end = match conn {
                    Conn::Tcp { .. } => "</stream:stream>".to_owned(),
                    Conn::WebSocket(_) => format!("<close xmlns='{NS_FRAMING}'/>"),
                };
                conn.send(&end).await?;
                return Some(());
            }
            Frame::Header(_) => return None,
            Frame::Stanza(text) => {
                let stanza = Element::parse(&text, &Scope::client_stream()).ok()?;
                if stanza.name == "presence" && stanza.attr("type") == Some("unavailable") {
                    conn.send(&self_presence(occupant, true)).await?;
                } else if stanza.name == "message" {
                    let body = stanza
                        .child_text("body", "jabber:client")
                        .unwrap_or_default();
                    conn.send(&format!(
                        "<message xmlns='jabber:client' from='{occupant}' type='groupchat'><body>{}</body></message>",
                        xmppload_agent::xml::escape(body)
                    ))
                    .await?;
                }
            }
        }
    }
}

/// Applies the fault to a joined connection.
async fn inject(mut conn: Conn, fault: Fault) -> Option<()> {
    match fault {
        Fault::Malformed => {
            conn.send("<message xmlns='jabber:client' type='groupchat'><body>x</wrong></message>")
                .await?;
            conn.drain().await;
        }
        Fault::Oversized(bytes) => {
            let filler = "x".repeat(bytes);
            conn.send(&format!(
                "<message xmlns='jabber:client' type='groupchat'><body>{filler}</body></message>"
            ))
            .await?;
            conn.drain().await;
        }
        Fault::StallMidStanza => {
            conn.send_half_stanza().await?;
            conn.drain().await;
        }
        Fault::StreamError => {
            conn.send(
                "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>\
                 <system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
            )
            .await?;
            conn.drain().await;
        }
        Fault::Reset => conn.reset(),
    }
    Some(())
}

fn self_presence(occupant: &str, unavailable: bool) -> String {
    let kind = if unavailable {
        " type='unavailable'"
    } else {
        ""
    };
    format!(
        "<presence xmlns='jabber:client' from='{occupant}'{kind}>\
         <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>\
         <status code='110'/></x></presence>"
    )
}
