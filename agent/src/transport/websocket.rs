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
//!
//! tungstenite enforces the stanza limit as its maximum message and frame
//! size: it rejects a frame whose header announces more before it reads the
//! payload. tungstenite keeps partial frames to itself, so the stall check
//! counts the bytes it read since the last complete message instead. They
//! are counted above TLS, which is why the TLS session for `wss://` is set
//! up here and not by tokio-tungstenite.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::BotError;
use crate::steps::StepTimes;
use crate::transport::{CLOSE_WAIT, StreamEvent, StreamLimits};
use crate::xml::{Element, Scope};

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

/// Socket reads since the last complete message, shared between the
/// socket wrapper and the transport.
#[derive(Debug)]
struct ReadProgress {
    /// WebSocket bytes read since [`WsTransport::next`] last received a
    /// message. Above zero, part of a message is waiting for the rest.
    unconsumed: usize,
    /// Time of the last read that returned bytes.
    last_bytes_at: Instant,
}

/// A plain or TLS socket that records the WebSocket bytes it returns in a
/// [`ReadProgress`].
struct ProgressStream {
    inner: MaybeTlsStream<TcpStream>,
    progress: Arc<Mutex<ReadProgress>>,
}

impl AsyncRead for ProgressStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0
            && let Ok(mut progress) = self.progress.lock()
        {
            progress.unconsumed += read;
            progress.last_bytes_at = Instant::now();
        }
        poll
    }
}

impl AsyncWrite for ProgressStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Parses the element of one RFC 7395 text message: `<open/>` becomes the
/// header, `<close/>` the end, and anything else a stanza.
pub fn message_event(text: &str) -> Result<StreamEvent, BotError> {
    let element = Element::parse(text, &Scope::client_stream())?;
    if element.is("open", NS_FRAMING) {
        return Ok(StreamEvent::Header);
    }
    if element.is("close", NS_FRAMING) {
        return Ok(StreamEvent::End);
    }
    Ok(StreamEvent::Stanza(element))
}

/// A WebSocket connection carrying one XMPP stream.
pub struct WsTransport {
    /// The socket; `StreamExt::next` on it is cancel-safe, because
    /// tungstenite keeps partial frames in its own buffer.
    ws: WebSocketStream<ProgressStream>,
    domain: String,
    limits: StreamLimits,
    progress: Arc<Mutex<ReadProgress>>,
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
    /// upgrades to WebSocket with subprotocol `xmpp`. The `tcp`, `tls` and
    /// `websocket` steps that succeed go into `steps`.
    pub async fn connect(
        url: &str,
        domain: &str,
        tls: Arc<rustls::ClientConfig>,
        source: Option<std::net::IpAddr>,
        limits: StreamLimits,
        steps: &mut StepTimes,
    ) -> Result<WsTransport, BotError> {
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("xmpp"));

        // The TCP connect happens here rather than inside tokio-tungstenite
        // so that a refused port is reported as `refused` and the socket can
        // be bound to a source address.
        let (host, port) = connect_target(request.uri());
        let socket = steps
            .time("tcp", super::connect::open_tcp(&host, port, source))
            .await?;

        let inner = if request.uri().scheme_str() == Some("wss") {
            let server_name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| BotError::TlsServerName { name: host.clone() })?;
            let handshake = tokio_rustls::TlsConnector::from(tls).connect(server_name, socket);
            let tls = steps
                .time("tls", handshake)
                .await
                .map_err(BotError::TlsHandshake)?;
            MaybeTlsStream::Rustls(tls)
        } else {
            MaybeTlsStream::Plain(socket)
        };
        let progress = Arc::new(Mutex::new(ReadProgress {
            unconsumed: 0,
            last_bytes_at: Instant::now(),
        }));
        let socket = ProgressStream {
            inner,
            progress: Arc::clone(&progress),
        };

        // tungstenite allocates its read buffer up front (128 KiB by
        // default), which dominated an idle bot's memory. Stanzas are small,
        // and the buffer grows when a larger frame arrives.
        let config = WebSocketConfig::default()
            .read_buffer_size(WS_READ_BUFFER_BYTES)
            .max_message_size(Some(limits.max_stanza_bytes))
            .max_frame_size(Some(limits.max_stanza_bytes));
        let upgrade = tokio_tungstenite::client_async_with_config(request, socket, Some(config));
        let (ws, _response) = steps
            .time("websocket", upgrade)
            .await
            .map_err(|err| match err {
                // tungstenite checks the selected subprotocol itself.
                WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)) => {
                    BotError::NoXmppSubprotocol
                }
                other => BotError::from(other),
            })?;

        // The handshake's bytes are no part of a message.
        if let Ok(mut progress) = progress.lock() {
            progress.unconsumed = 0;
        }
        Ok(WsTransport {
            ws,
            domain: domain.to_owned(),
            limits,
            progress,
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
    /// While part of a message has arrived, the rest must follow within the
    /// stall timeout of the last read.
    // NOTE: bytes of the next message that arrive in the same read as the
    // end of the previous one are not counted, so a stall right after such a
    // read is left to the caller's timeouts.
    pub async fn next(&mut self) -> Result<StreamEvent, BotError> {
        loop {
            let (unconsumed, last_bytes_at) = self
                .progress
                .lock()
                .map(|progress| (progress.unconsumed, progress.last_bytes_at))
                .unwrap_or((0, Instant::now()));
            let message = if unconsumed > 0 {
                let stall_at = last_bytes_at + self.limits.stall_timeout;
                tokio::time::timeout_at(stall_at, self.ws.next())
                    .await
                    .map_err(|_| BotError::Stalled {
                        after: self.limits.stall_timeout,
                        buffered: unconsumed,
                    })?
            } else {
                self.ws.next().await
            };
            let message = match message {
                None => return Err(BotError::Closed),
                Some(message) => message?,
            };
            if let Ok(mut progress) = self.progress.lock() {
                progress.unconsumed = 0;
            }
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

            return message_event(text.as_str());
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
