//! Error types of the agent.
//!
//! [`BotError`] is what a single bot's connection can fail with. Each variant
//! maps onto one [`FailureKind`], the label that the group report counts, so
//! a failure is both logged with its detail and counted by kind.
//! [`AgentError`] covers the gRPC server itself.

use std::time::Duration;

use crate::xml::{FramingError, ParseError};

/// Failure kinds counted in `GroupCounters.errors`, with the names the proto
/// documents for `ErrorCount.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Refused,
    Timeout,
    Tls,
    Sasl,
    StreamError,
    JoinError,
    Closed,
    Protocol,
    Io,
    /// The server sent a stanza larger than the group's `max_stanza_bytes`.
    Oversized,
    /// The server stopped sending in the middle of a stanza.
    Stalled,
    /// A BOSH connection manager responded with an HTTP error status.
    Http,
}

impl FailureKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [FailureKind; 12] = [
        FailureKind::Refused,
        FailureKind::Timeout,
        FailureKind::Tls,
        FailureKind::Sasl,
        FailureKind::StreamError,
        FailureKind::JoinError,
        FailureKind::Closed,
        FailureKind::Protocol,
        FailureKind::Io,
        FailureKind::Oversized,
        FailureKind::Stalled,
        FailureKind::Http,
    ];

    /// Name of the kind as it appears in `ErrorCount.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Tls => "tls",
            FailureKind::Sasl => "sasl",
            FailureKind::StreamError => "stream_error",
            FailureKind::JoinError => "join_error",
            FailureKind::Closed => "closed",
            FailureKind::Protocol => "protocol",
            FailureKind::Io => "io",
            FailureKind::Oversized => "oversized",
            FailureKind::Stalled => "stalled",
            FailureKind::Http => "http",
        }
    }

    /// Position of the kind in [`FailureKind::ALL`], used to index counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Failure of one bot's connection, session or room membership.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("connection to {addr} refused")]
    Refused { addr: String },

    #[error("{step} timed out after {after:?}")]
    Timeout { step: &'static str, after: Duration },

    #[error("server did not offer STARTTLS, but the request requires it")]
    TlsNotOffered,

    #[error("server rejected STARTTLS with <failure/>")]
    TlsRejected,

    #[error(
        "TLS handshake failed: {0}; if the server's certificate is self-signed, set \
         accept_invalid_certs = true for it, and check that the address speaks TLS"
    )]
    TlsHandshake(#[source] std::io::Error),

    #[error("invalid TLS server name {name:?}")]
    TlsServerName { name: String },

    /// Any WebSocket failure, during the opening handshake or after it.
    #[error("WebSocket connection failed: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),

    #[error("server did not select the `xmpp` WebSocket subprotocol")]
    NoXmppSubprotocol,

    #[error("SASL authentication failed: {condition}")]
    Sasl { condition: String },

    #[error("server does not offer the SASL mechanism {mechanism}; it offers {offered}")]
    SaslNotOffered {
        mechanism: &'static str,
        offered: String,
    },

    #[error("SASL exchange failed: {0}")]
    SaslExchange(#[from] crate::sasl::SaslError),

    #[error("server sent stream error <{condition}/>")]
    StreamError { condition: String },

    #[error(
        "component handshake for {domain} rejected with <{condition}/>: {}",
        crate::component::handshake::rejection_hint(condition)
    )]
    ComponentRejected { domain: String, condition: String },

    #[error("room join rejected: {condition}")]
    JoinRejected { condition: String },

    #[error("server closed the stream")]
    Closed,

    #[error("invalid stream framing: {0}")]
    Framing(#[from] FramingError),

    #[error("invalid XML stanza: {0}")]
    Parse(#[from] ParseError),

    #[error(
        "server stopped sending for {after:?} with {buffered} bytes of an unfinished stanza buffered"
    )]
    Stalled { after: Duration, buffered: usize },

    #[error("BOSH HTTP exchange failed: {0}")]
    Http(#[source] hyper::Error),

    #[error("BOSH connection manager responded with HTTP {status} instead of 200 OK")]
    HttpStatus { status: u16 },

    #[error("invalid BOSH response: {0}")]
    Bosh(#[from] crate::transport::bosh::BodyError),

    #[error("BOSH connection manager terminated the session with condition `{condition}`")]
    BoshTerminated { condition: String },

    #[error("unexpected {got} while waiting for {expected}")]
    Unexpected { expected: &'static str, got: String },

    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl BotError {
    /// Kind under which the report counts this failure.
    pub fn kind(&self) -> FailureKind {
        use tokio_tungstenite::tungstenite::Error as WsError;
        use tokio_tungstenite::tungstenite::error::ProtocolError;
        match self {
            BotError::Refused { .. } => FailureKind::Refused,
            BotError::Timeout { .. } => FailureKind::Timeout,
            BotError::TlsNotOffered
            | BotError::TlsRejected
            | BotError::TlsHandshake(_)
            | BotError::TlsServerName { .. } => FailureKind::Tls,
            BotError::WebSocket(err) => match err.as_ref() {
                WsError::Tls(_) => FailureKind::Tls,
                // tokio-tungstenite reports a failed rustls handshake as an
                // I/O error that wraps the rustls error.
                WsError::Io(io) if is_tls_io_error(io) => FailureKind::Tls,
                WsError::Io(io) if is_closed_io_error(io) => FailureKind::Closed,
                WsError::Io(_) => FailureKind::Io,
                // A server that dies drops the TCP connection without the
                // WebSocket close handshake: the peer went away.
                WsError::Capacity(_) => FailureKind::Oversized,
                WsError::ConnectionClosed
                | WsError::AlreadyClosed
                | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                    FailureKind::Closed
                }
                _ => FailureKind::Protocol,
            },
            BotError::NoXmppSubprotocol => FailureKind::Protocol,
            // The kind covers every authentication step, XEP-0114 included.
            BotError::Sasl { .. }
            | BotError::SaslNotOffered { .. }
            | BotError::SaslExchange(_)
            | BotError::ComponentRejected { .. } => FailureKind::Sasl,
            BotError::StreamError { .. } => FailureKind::StreamError,
            BotError::JoinRejected { .. } => FailureKind::JoinError,
            BotError::Closed => FailureKind::Closed,
            BotError::Framing(FramingError::TooLarge { .. }) => FailureKind::Oversized,
            BotError::Stalled { .. } => FailureKind::Stalled,
            BotError::Framing(_) | BotError::Parse(_) | BotError::Unexpected { .. } => {
                FailureKind::Protocol
            }
            BotError::Io(err) if is_closed_io_error(err) => FailureKind::Closed,
            BotError::Io(_) => FailureKind::Io,
            BotError::Http(err) if err.is_closed() || err.is_incomplete_message() => {
                FailureKind::Closed
            }
            BotError::Http(err) if err.is_parse() || err.is_parse_status() => FailureKind::Protocol,
            BotError::Http(_) => FailureKind::Io,
            BotError::HttpStatus { .. } => FailureKind::Http,
            BotError::Bosh(crate::transport::bosh::BodyError::TooLarge { .. }) => {
                FailureKind::Oversized
            }
            BotError::Bosh(_) => FailureKind::Protocol,
            BotError::BoshTerminated { .. } => FailureKind::StreamError,
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for BotError {
    fn from(err: tokio_tungstenite::tungstenite::Error) -> Self {
        BotError::WebSocket(Box::new(err))
    }
}

/// True when an I/O error carries a rustls error, which is how tokio-rustls
/// reports handshake failures such as an untrusted certificate.
pub(crate) fn is_tls_io_error(err: &std::io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// True when an I/O error means the peer went away rather than a local fault.
fn is_closed_io_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
    )
}

/// Failure of the agent's gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("gRPC server failed: {0}")]
    Server(#[from] tonic::transport::Error),
}

#[cfg(test)]
mod kind_tests {
    use super::*;
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;

    /// A server that vanishes mid-session counts as closed, not as a protocol fault.
    #[test]
    fn websocket_reset_is_closed() {
        let reset = BotError::from(WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake,
        ));
        assert_eq!(reset.kind(), FailureKind::Closed);

        let io_reset = BotError::from(WsError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(io_reset.kind(), FailureKind::Closed);

        let other = BotError::from(WsError::Protocol(ProtocolError::WrongHttpMethod));
        assert_eq!(other.kind(), FailureKind::Protocol);
    }

    /// Both framings report a stanza over the limit as `oversized`.
    #[test]
    fn too_large_is_oversized() {
        use tokio_tungstenite::tungstenite::error::CapacityError;

        let c2s = BotError::from(FramingError::TooLarge { max: 4096 });
        assert_eq!(c2s.kind(), FailureKind::Oversized);

        let websocket = BotError::from(WsError::Capacity(CapacityError::MessageTooLong {
            size: 5000,
            max_size: 4096,
        }));
        assert_eq!(websocket.kind(), FailureKind::Oversized);

        let stalled = BotError::Stalled {
            after: Duration::from_secs(1),
            buffered: 10,
        };
        assert_eq!(stalled.kind(), FailureKind::Stalled);
        assert_eq!(FailureKind::Stalled.as_str(), "stalled");
    }
}
