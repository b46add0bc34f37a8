//! Stanza-level transports: one framing type per wire format behind the
//! [`Transport`] enum, so the session and bot code never see bytes.
//!
//! - [`tcp::TcpTransport`]: an RFC 6120 c2s stream, one XML document cut into
//!   stanzas by [`crate::xml::StreamSplitter`], with STARTTLS or with TLS
//!   from the first byte (XEP-0368).
//! - [`websocket::WsTransport`]: RFC 7395, one complete element per WebSocket
//!   text message, `<open/>` and `<close/>` in place of the stream tags.
//! - [`bosh::BoshTransport`]: XEP-0124 with XEP-0206, stanzas in `<body/>`
//!   wrappers of HTTP requests, with a long-poll held by the server.
//!
//! [`Transport::next`] is cancel-safe: received data that does not yet form
//! an event stays buffered inside the transport, so the bot can race it
//! against timers in `tokio::select!` without losing bytes.
//!
//! Both framings enforce the same [`StreamLimits`] against a hostile or
//! broken server. A stanza larger than `max_stanza_bytes` fails the
//! connection before the buffer grows past the limit. A server that stops
//! sending in the middle of a stanza fails it after `stall_timeout`.
//! Reads between stanzas have no bound of their own because a quiet room is
//! normal. The caller's connect, join and leave timeouts and the group
//! deadline bound them.

pub mod bosh;
pub(crate) mod connect;
pub(crate) mod stall;
pub mod tcp;
pub mod tls;
pub mod websocket;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::error::BotError;
use crate::steps::StepTimes;
use crate::xml::{Element, NS_STREAM};

/// How long `close` waits for the server to end its side of the stream.
pub const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Default of [`StreamLimits::stall_timeout`]. A server sends a stanza in a
/// burst of packets, so half a stanza and then 30 s of silence is a stall,
/// not a slow network.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds a connection enforces on what the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Largest stanza (c2s) or WebSocket message accepted, in bytes.
    pub max_stanza_bytes: usize,
    /// Maximum silence accepted while part of a stanza is buffered.
    pub stall_timeout: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_stanza_bytes: crate::xml::DEFAULT_MAX_STANZA_BYTES,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

/// One event read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The server opened (or reopened) its stream.
    Header,
    /// One top-level element: a stanza, features, or a negotiation element.
    Stanza(Element),
    /// The server ended its stream.
    End,
}

/// Whether and how a c2s connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Never,
    /// STARTTLS when the server offers it.
    IfOffered,
    /// STARTTLS, failing the bot when the server does not offer it.
    Required,
    /// TLS from the first byte (XEP-0368), so STARTTLS is not negotiated.
    Direct,
}

/// Connection target and options, built once per group from the request.
#[derive(Debug, Clone)]
pub enum Endpoint {
    WebSocket {
        /// `ws://` or `wss://` URL.
        url: String,
        domain: String,
        tls: Arc<rustls::ClientConfig>,
        limits: StreamLimits,
    },
    Tcp {
        host: String,
        port: u16,
        domain: String,
        tls_mode: TlsMode,
        tls: Arc<rustls::ClientConfig>,
        limits: StreamLimits,
    },
    Bosh {
        /// Parsed `http://` or `https://` URL of the BOSH endpoint.
        url: bosh::BoshUrl,
        domain: String,
        tls: Arc<rustls::ClientConfig>,
        limits: StreamLimits,
        /// BOSH `hold`: requests the server may keep waiting.
        hold: u32,
        /// BOSH `wait` in seconds: how long the server may keep one waiting.
        wait_s: u32,
    },
}

impl Endpoint {
    /// Host and TCP port that [`Transport::connect`] opens, or `None` for a
    /// WebSocket URL that does not parse.
    pub fn target(&self) -> Option<(String, u16)> {
        match self {
            Endpoint::WebSocket { url, .. } => {
                let request = url.as_str().into_client_request().ok()?;
                Some(websocket::connect_target(request.uri()))
            }
            Endpoint::Tcp { host, port, .. } => Some((host.clone(), *port)),
            Endpoint::Bosh { url, .. } => Some((url.host.clone(), url.port)),
        }
    }

    /// XMPP domain sent as the stream's `to`.
    pub fn domain(&self) -> &str {
        match self {
            Endpoint::WebSocket { domain, .. }
            | Endpoint::Tcp { domain, .. }
            | Endpoint::Bosh { domain, .. } => domain,
        }
    }
}

/// An open connection of either framing.
#[derive(Debug)]
pub enum Transport {
    Tcp(tcp::TcpTransport),
    /// Boxed because the WebSocket state is several times larger than the TCP one.
    WebSocket(Box<websocket::WsTransport>),
    Bosh(Box<bosh::BoshTransport>),
}

impl Transport {
    /// Opens the network connection (TCP, TLS for `wss://` and `https://`,
    /// WebSocket upgrade, or the first BOSH HTTP connection). No XMPP stream
    /// is open yet.
    pub async fn connect(endpoint: &Endpoint) -> Result<Transport, BotError> {
        Self::connect_from(endpoint, None).await
    }

    /// Like [`Transport::connect`], with the socket bound to `source` when
    /// given.
    pub async fn connect_from(
        endpoint: &Endpoint,
        source: Option<IpAddr>,
    ) -> Result<Transport, BotError> {
        Self::connect_timed(endpoint, source, &mut StepTimes::new()).await
    }

    /// Like [`Transport::connect_from`], recording the `tcp`, `tls` and
    /// `websocket` steps that succeed into `steps`. For BOSH these are the
    /// steps of the session's first HTTP connection.
    pub async fn connect_timed(
        endpoint: &Endpoint,
        source: Option<IpAddr>,
        steps: &mut StepTimes,
    ) -> Result<Transport, BotError> {
        match endpoint {
            Endpoint::WebSocket {
                url,
                domain,
                tls,
                limits,
            } => websocket::WsTransport::connect(url, domain, tls.clone(), source, *limits, steps)
                .await
                .map(|ws| Transport::WebSocket(Box::new(ws))),
            Endpoint::Tcp {
                host,
                port,
                domain,
                tls_mode,
                tls,
                limits,
            } => {
                let connect = tcp::TcpTransport::connect(host, *port, domain, source, *limits);
                let mut tcp = steps.time("tcp", connect).await?;
                if *tls_mode == TlsMode::Direct {
                    steps
                        .time("tls", tcp.upgrade_to_tls(Arc::clone(tls)))
                        .await?;
                }
                Ok(Transport::Tcp(tcp))
            }
            Endpoint::Bosh {
                url,
                domain,
                tls,
                limits,
                hold,
                wait_s,
            } => bosh::BoshTransport::connect(
                url,
                domain,
                tls.clone(),
                source,
                *limits,
                *hold,
                *wait_s,
                steps,
            )
            .await
            .map(|bosh| Transport::Bosh(Box::new(bosh))),
        }
    }

    /// Sends the opening stream header (`<stream:stream>` or `<open/>`).
    pub async fn open_stream(&mut self) -> Result<(), BotError> {
        match self {
            Transport::Tcp(t) => t.open_stream().await,
            Transport::WebSocket(t) => t.open_stream().await,
            Transport::Bosh(t) => t.open_stream().await,
        }
    }

    /// Sends one complete element.
    pub async fn send(&mut self, xml: &str) -> Result<(), BotError> {
        match self {
            Transport::Tcp(t) => t.send(xml).await,
            Transport::WebSocket(t) => t.send(xml).await,
            Transport::Bosh(t) => t.send(xml).await,
        }
    }

    /// Reads the next event; cancel-safe. A `<stream:error/>` from the
    /// server is returned as [`BotError::StreamError`].
    pub async fn next(&mut self) -> Result<StreamEvent, BotError> {
        let event = match self {
            Transport::Tcp(t) => t.next().await?,
            Transport::WebSocket(t) => t.next().await?,
            Transport::Bosh(t) => t.next().await?,
        };
        if let StreamEvent::Stanza(element) = &event
            && element.is("error", NS_STREAM)
        {
            let condition = element
                .first_child_name()
                .unwrap_or("undefined-condition")
                .to_owned();
            return Err(BotError::StreamError { condition });
        }
        Ok(event)
    }

    /// Prepares the reader for the server's new stream header after a
    /// stream restart (RFC 6120 sections 5.4.3.3 and 6.4.6).
    pub fn restart(&mut self) {
        if let Transport::Tcp(t) = self {
            t.restart();
        }
    }

    /// Ends the stream cleanly: sends the closing element, waits up to
    /// [`CLOSE_WAIT`] for the server's, then closes the connection.
    pub async fn close(&mut self) -> Result<(), BotError> {
        match self {
            Transport::Tcp(t) => t.close().await,
            Transport::WebSocket(t) => t.close().await,
            Transport::Bosh(t) => t.close().await,
        }
    }
}
