//! RFC 7395 XMPP over WebSocket.
//!
//! The WebSocket upgrade requests subprotocol `xmpp` and the connection fails
//! unless the server selects it. After that, each text message carries
//! exactly one complete element:
//!
//! 1. The client sends `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'
//!    to='DOMAIN' version='1.0'/>` and the server replies with its own
//!    `<open/>`, then `<stream:features/>`.
//! 2. Stanzas follow, one per message. They carry `xmlns='jabber:client'`
//!    themselves because there is no enclosing stream element to inherit it
//!    from; the bot's stanza builders always include it.
//! 3. A stream restart after SASL is simply a new `<open/>`.
//! 4. `<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>` ends the
//!    stream, and the WebSocket close handshake ends the connection.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::BotError;
use crate::transport::{CLOSE_WAIT, StreamEvent};
use crate::xml::{DEFAULT_MAX_STANZA_BYTES, Element, Scope};

/// Initial read buffer of one WebSocket connection.
const WS_READ_BUFFER_BYTES: usize = 8 * 1024;

/// Namespace of the RFC 7395 `<open/>` and `<close/>` elements.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// Host (an IPv6 address without brackets) and TCP port that a connection
/// to `uri` opens: the URL's port, or 80 for `ws://` and 443 for `wss://`.
pub fn connect_target(uri: &Uri) -> (String, u16) {
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let secure = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    (host, port)
}

/// A WebSocket connection carrying one XMPP stream.
pub struct WsTransport {
    /// The socket; `StreamExt::next` on it is cancel-safe, because
    /// tungstenite keeps partial frames in its own buffer.
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    domain: String,
}

impl std::fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTransport")
            .field("domain", &self.domain)
            .finish()
    }
}

impl WsTransport {
    /// Connects TCP (from `source` when given), runs TLS for `wss://`, and
    /// upgrades to WebSocket with subprotocol `xmpp`.
    pub async fn connect(
        url: &str,
        domain: &str,
        tls: Arc<rustls::ClientConfig>,
        source: Option<std::net::IpAddr>,
    ) -> Result<WsTransport, BotError> {
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("xmpp"));

        // The TCP connect happens here rather than inside tokio-tungstenite
        // so that a refused port is reported as `refused` and the socket can
        // be bound to a source address.
        let (host, port) = connect_target(request.uri());
        let socket = super::connect::open_tcp(&host, port, source).await?;

        // tungstenite allocates its read buffer up front (128 KiB by
        // default), which dominated an idle bot's memory. Stanzas are small,
        // and the buffer grows when a larger frame arrives.
        let config = WebSocketConfig::default()
            .read_buffer_size(WS_READ_BUFFER_BYTES)
            .max_message_size(Some(DEFAULT_MAX_STANZA_BYTES))
            .max_frame_size(Some(DEFAULT_MAX_STANZA_BYTES));
        let (ws, _response) = tokio_tungstenite::client_async_tls_with_config(
            request,
            socket,
            Some(config),
            Some(Connector::Rustls(tls)),
        )
        .await
        .map_err(|err| match err {
            // tungstenite checks the selected subprotocol itself.
            WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)) => {
                BotError::NoXmppSubprotocol
            }
            other => BotError::from(other),
        })?;

        Ok(WsTransport {
            ws,
            domain: domain.to_owned(),
        })
    }

    pub async fn open_stream(&mut self) -> Result<(), BotError> {
        let open = format!(
            "<open xmlns='{NS_FRAMING}' to='{}' version='1.0'/>",
            crate::xml::escape(&self.domain)
        );
        self.send(&open).await
    }

    pub async fn send(&mut self, xml: &str) -> Result<(), BotError> {
        self.ws.send(Message::text(xml)).await?;
        Ok(())
    }

    /// Reads the next element; `<open/>` and `<close/>` become header and end.
    pub async fn next(&mut self) -> Result<StreamEvent, BotError> {
        loop {
            let message = match self.ws.next().await {
                None => return Err(BotError::Closed),
                Some(message) => message?,
            };
            let text = match message {
                Message::Text(text) => text,
                // A close frame without <close/> still ends the stream.
                Message::Close(_) => return Ok(StreamEvent::End),
                // tungstenite replies to pings itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Binary(_) => {
                    return Err(BotError::Unexpected {
                        expected: "text message",
                        got: "binary message".to_owned(),
                    });
                }
            };

            let element = Element::parse(text.as_str(), &Scope::client_stream())?;
            if element.is("open", NS_FRAMING) {
                return Ok(StreamEvent::Header);
            }
            if element.is("close", NS_FRAMING) {
                return Ok(StreamEvent::End);
            }
            return Ok(StreamEvent::Stanza(element));
        }
    }

    pub async fn close(&mut self) -> Result<(), BotError> {
        self.send(&format!("<close xmlns='{NS_FRAMING}'/>")).await?;

        let drain = async {
            loop {
                match self.next().await {
                    Ok(StreamEvent::End) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;

        // Start the WebSocket close handshake and wait briefly for the reply.
        if self.ws.close(None).await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while self.ws.next().await.is_some() {}
            })
            .await;
        }
        Ok(())
    }
}
