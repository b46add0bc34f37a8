//! An XEP-0114 component connection: TCP, the `jabber:component:accept`
//! stream and its handshake.
//!
//! [`ComponentStream::connect`] runs the steps in order:
//!
//! 1. Open TCP to the server's component port.
//! 2. Send the stream header with `to` = the component's domain and no
//!    `version`, because XEP-0114 streams have no stream features.
//! 3. Read the server's header and take its `id`.
//! 4. Send `<handshake>` with the digest of that id and the secret, and read
//!    `<handshake/>` or a stream error.
//!
//! The byte stream is cut by the same [`StreamSplitter`] as c2s and obeys
//! the same [`StreamLimits`]: a stanza over the limit fails the connection,
//! and so does a server that stalls in the middle of a stanza. Stanzas are
//! parsed with `jabber:component:accept` as the default namespace.

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::handshake;
use crate::error::BotError;
use crate::transport::stall::read_within_stall_bound;
use crate::transport::{CLOSE_WAIT, StreamLimits};
use crate::xml::{Element, Frame, NS_COMPONENT, NS_STREAM, Scope, StreamSplitter, escape};

/// Bytes read from the socket per read call.
const READ_CHUNK: usize = 4096;
/// Maximum wait for a stream error after a header without an id. Prosody
/// 0.12 rejects an unknown domain with `id=''` followed at once by the
/// error, which names the cause better than the missing id does.
const HEADER_ERROR_WAIT: Duration = Duration::from_secs(1);

/// Address, domain and secret of a component connection.
#[derive(Clone)]
pub struct ComponentTarget<'a> {
    pub host: &'a str,
    pub port: u16,
    /// Domain of the component, the stream's `to`.
    pub domain: &'a str,
    pub secret: &'a str,
    pub limits: StreamLimits,
    /// Local address to bind, or `None` for the kernel's choice.
    pub source: Option<IpAddr>,
}

/// An authenticated component stream.
pub struct ComponentStream {
    socket: TcpStream,
    /// Buffered bytes and scanner state; kept here so that a cancelled
    /// `next` loses nothing.
    splitter: StreamSplitter,
    read_chunk: Box<[u8; READ_CHUNK]>,
    limits: StreamLimits,
    /// Time of the last read that returned bytes, for the stall timeout.
    last_bytes_at: Instant,
    scope: Scope,
}

impl std::fmt::Debug for ComponentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentStream")
            .field("buffered", &self.splitter.buffered())
            .finish()
    }
}

impl ComponentStream {
    /// Connects and completes the handshake. The caller bounds the whole
    /// negotiation with its connect timeout.
    pub async fn connect(target: &ComponentTarget<'_>) -> Result<ComponentStream, BotError> {
        let socket =
            crate::transport::connect::open_tcp(target.host, target.port, target.source).await?;
        let mut stream = ComponentStream {
            socket,
            splitter: StreamSplitter::new(target.limits.max_stanza_bytes),
            read_chunk: Box::new([0; READ_CHUNK]),
            limits: target.limits,
            last_bytes_at: Instant::now(),
            scope: Scope::component_stream(),
        };

        stream
            .send(&format!(
                "<?xml version='1.0'?><stream:stream xmlns='{NS_COMPONENT}' \
                 xmlns:stream='{NS_STREAM}' to='{}'>",
                escape(target.domain)
            ))
            .await?;
        let stream_id = match stream.next_frame().await? {
            Frame::Header(header) => match handshake::stream_id(&header) {
                Ok(id) => id,
                Err(missing_id) => {
                    return Err(stream.error_after_header(missing_id, target.domain).await);
                }
            },
            Frame::Stanza(text) => {
                return Err(BotError::Unexpected {
                    expected: "component stream header",
                    got: describe(&Element::parse(&text, &stream.scope)?),
                });
            }
            Frame::End => return Err(BotError::Closed),
        };

        let digest = handshake::digest(&stream_id, target.secret);
        stream
            .send(&format!("<handshake>{digest}</handshake>"))
            .await?;
        match stream.next_frame().await? {
            Frame::Stanza(text) => {
                let reply = Element::parse(&text, &stream.scope)?;
                handshake::check_reply(&reply, target.domain)?;
            }
            Frame::Header(_) => {
                return Err(BotError::Unexpected {
                    expected: "<handshake/>",
                    got: "a second stream header".to_owned(),
                });
            }
            Frame::End => return Err(BotError::Closed),
        }
        Ok(stream)
    }

    pub async fn send(&mut self, xml: &str) -> Result<(), BotError> {
        self.socket.write_all(xml.as_bytes()).await?;
        Ok(())
    }

    /// Reads the next stanza, or `None` when the server ended its stream.
    /// A `<stream:error/>` is returned as [`BotError::StreamError`]. The
    /// read is cancel-safe, like the c2s transport's.
    pub async fn next(&mut self) -> Result<Option<Element>, BotError> {
        match self.next_frame().await? {
            Frame::End => Ok(None),
            Frame::Header(_) => Err(BotError::Unexpected {
                expected: "stanza",
                got: "a second stream header".to_owned(),
            }),
            Frame::Stanza(text) => {
                let element = Element::parse(&text, &self.scope)?;
                if element.is("error", NS_STREAM) {
                    let condition = element
                        .first_child_name()
                        .unwrap_or("undefined-condition")
                        .to_owned();
                    return Err(BotError::StreamError { condition });
                }
                Ok(Some(element))
            }
        }
    }

    /// Ends the stream, waits up to [`CLOSE_WAIT`] for the server's end tag,
    /// and shuts the socket down.
    pub async fn close(&mut self) -> Result<(), BotError> {
        self.send("</stream:stream>").await?;
        let drain = async {
            // Stanzas still in flight are read and dropped.
            while let Ok(Some(_)) = self.next().await {}
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
        self.socket.shutdown().await?;
        Ok(())
    }

    /// Returns the stream error the server sends right after a header
    /// without an id as a rejected handshake, or else `missing_id`.
    async fn error_after_header(&mut self, missing_id: BotError, domain: &str) -> BotError {
        let Ok(Ok(Frame::Stanza(text))) =
            tokio::time::timeout(HEADER_ERROR_WAIT, self.next_frame()).await
        else {
            return missing_id;
        };
        match Element::parse(&text, &self.scope) {
            Ok(element) if element.is("error", NS_STREAM) => {
                handshake::check_reply(&element, domain)
                    .err()
                    .unwrap_or(missing_id)
            }
            _ => missing_id,
        }
    }

    /// Reads until the splitter yields a frame. Bytes move into the
    /// splitter only after a read completes, so cancelling loses nothing.
    /// While part of a stanza is buffered, each read must return within the
    /// stall timeout of the previous one.
    async fn next_frame(&mut self) -> Result<Frame, BotError> {
        loop {
            if let Some(frame) = self.splitter.next_frame()? {
                return Ok(frame);
            }

            let partial = self.splitter.buffered();
            let read = self.socket.read(&mut self.read_chunk[..]);
            let read = read_within_stall_bound(
                read,
                partial,
                self.last_bytes_at,
                self.limits.stall_timeout,
            )
            .await?;
            if read == 0 {
                return Err(BotError::Closed);
            }
            self.last_bytes_at = Instant::now();
            self.splitter.push(&self.read_chunk[..read]);
        }
    }
}

/// Short description of an unexpected element for error messages.
fn describe(element: &Element) -> String {
    format!("<{} xmlns='{}'>", element.name, element.ns)
}
