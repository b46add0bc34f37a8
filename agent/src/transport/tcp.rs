//! RFC 6120 client-to-server TCP transport with STARTTLS or direct TLS.
//!
//! The connection is one XML stream per direction. Received bytes go into a
//! [`StreamSplitter`], which returns the server's header, each stanza, and the
//! final `</stream:stream>`. STARTTLS (RFC 6120 section 5) wraps the plain
//! socket in a TLS session, after which both sides start new streams. The
//! splitter is replaced then, because nothing sent in plaintext may survive
//! the upgrade. Direct TLS (XEP-0368) runs the same handshake right after
//! the TCP connect, before any XML.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use crate::error::BotError;
use crate::transport::{CLOSE_WAIT, StreamEvent, StreamLimits};
use crate::xml::{Element, Frame, Scope, StreamSplitter};

/// Bytes read from the socket per read call.
const READ_CHUNK: usize = 4096;

/// The socket, plain or wrapped in TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Placeholder while STARTTLS moves the socket into the TLS session; a
    /// failed handshake leaves it here and the connection unusable.
    Upgrading,
}

/// A c2s connection with its read buffer.
pub struct TcpTransport {
    io: Io,
    /// Buffered bytes and scanner state; kept here so that a cancelled
    /// `next` loses nothing.
    splitter: StreamSplitter,
    read_chunk: Box<[u8; READ_CHUNK]>,
    domain: String,
    limits: StreamLimits,
    /// Time of the last read that returned bytes. It is stored here rather
    /// than in a local timer, so a cancelled `next` does not restart the
    /// stall clock.
    last_bytes_at: Instant,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tls = matches!(self.io, Io::Tls(_));
        f.debug_struct("TcpTransport")
            .field("domain", &self.domain)
            .field("tls", &tls)
            .finish()
    }
}

impl TcpTransport {
    /// Opens the TCP connection, from `source` when given.
    pub async fn connect(
        host: &str,
        port: u16,
        domain: &str,
        source: Option<std::net::IpAddr>,
        limits: StreamLimits,
    ) -> Result<TcpTransport, BotError> {
        let stream = super::connect::open_tcp(host, port, source).await?;
        Ok(TcpTransport {
            io: Io::Plain(stream),
            splitter: StreamSplitter::new(limits.max_stanza_bytes),
            read_chunk: Box::new([0; READ_CHUNK]),
            domain: domain.to_owned(),
            limits,
            last_bytes_at: Instant::now(),
        })
    }

    pub async fn open_stream(&mut self) -> Result<(), BotError> {
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
            crate::xml::escape(&self.domain)
        );
        self.send(&header).await
    }

    pub async fn send(&mut self, xml: &str) -> Result<(), BotError> {
        match &mut self.io {
            Io::Plain(stream) => stream.write_all(xml.as_bytes()).await?,
            Io::Tls(stream) => {
                stream.write_all(xml.as_bytes()).await?;
                // rustls buffers records until flushed.
                stream.flush().await?;
            }
            Io::Upgrading => return Err(BotError::Closed),
        }
        Ok(())
    }

    /// Reads until the splitter yields an event; cancel-safe because bytes
    /// are moved into the splitter only after a read completes. While part
    /// of a stanza is buffered, each read must return within the stall
    /// timeout of the previous one.
    pub async fn next(&mut self) -> Result<StreamEvent, BotError> {
        loop {
            if let Some(frame) = self.splitter.next_frame()? {
                return match frame {
                    Frame::Header(_) => Ok(StreamEvent::Header),
                    Frame::Stanza(text) => Ok(StreamEvent::Stanza(Element::parse(
                        &text,
                        &Scope::client_stream(),
                    )?)),
                    Frame::End => Ok(StreamEvent::End),
                };
            }

            // After next_frame returned None, buffered bytes are an
            // unfinished unit.
            let partial = self.splitter.buffered();
            let chunk = &mut self.read_chunk[..];
            let read = async {
                match &mut self.io {
                    Io::Plain(stream) => stream.read(chunk).await,
                    Io::Tls(stream) => stream.read(chunk).await,
                    // A failed STARTTLS left no socket: the stream is closed.
                    Io::Upgrading => Ok(0),
                }
            };
            let read = super::stall::read_within_stall_bound(
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

    pub fn restart(&mut self) {
        self.splitter.restart();
    }

    /// Runs the TLS handshake on the plain socket with the domain as SNI:
    /// after the server's `<proceed/>` for STARTTLS, or right after the TCP
    /// connect for direct TLS. ALPN is whatever `config` offers.
    pub async fn upgrade_to_tls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<(), BotError> {
        // Bytes after <proceed/> would have arrived in plaintext, which the
        // TLS session must not accept as its own (RFC 6120 section 5.4.3.3).
        if self.splitter.buffered() > 0 {
            return Err(BotError::Unexpected {
                expected: "TLS handshake",
                got: "plaintext after <proceed/>".to_owned(),
            });
        }
        let server_name =
            rustls::pki_types::ServerName::try_from(self.domain.clone()).map_err(|_| {
                BotError::TlsServerName {
                    name: self.domain.clone(),
                }
            })?;

        let Io::Plain(stream) = std::mem::replace(&mut self.io, Io::Upgrading) else {
            return Err(BotError::Unexpected {
                expected: "plain socket",
                got: "TLS already active".to_owned(),
            });
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = connector
            .connect(server_name, stream)
            .await
            .map_err(BotError::TlsHandshake)?;

        self.io = Io::Tls(Box::new(tls));
        self.splitter = StreamSplitter::new(self.limits.max_stanza_bytes);
        Ok(())
    }

    pub async fn close(&mut self) -> Result<(), BotError> {
        self.send("</stream:stream>").await?;

        // The server replies with its own end tag; anything else that is
        // still in flight is read and dropped.
        let drain = async {
            loop {
                match self.next().await {
                    Ok(StreamEvent::End) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;

        match &mut self.io {
            Io::Plain(stream) => stream.shutdown().await?,
            Io::Tls(stream) => stream.shutdown().await?,
            Io::Upgrading => {}
        }
        Ok(())
    }
}
