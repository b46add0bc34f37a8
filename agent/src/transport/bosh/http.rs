//! One keep-alive HTTP/1.1 connection to a BOSH endpoint.
//!
//! The socket comes from the agent's own connect code, so BOSH bots bind
//! source addresses like the other transports, and `https://` runs rustls
//! with the group's client configuration. hyper does the HTTP/1.1 framing
//! (keep-alive, `Content-Length` and chunked bodies). Each connection
//! carries one request at a time, and a bot reuses its connections for all
//! of its requests.

use crate::steps::StepTimes;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::body::BodyError;
use crate::error::BotError;
use crate::transport::StreamLimits;

/// Parts of an `http://` or `https://` BOSH URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoshUrl {
    /// Host name or IP address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// True for `https://`.
    pub secure: bool,
    /// `Host` header value: host and port as written in the URL.
    pub authority: String,
    /// Path and query of the request line.
    pub path: String,
}

impl BoshUrl {
    /// Splits `url`, or returns `None` unless it is an `http://` or
    /// `https://` URL with a host.
    pub fn parse(url: &str) -> Option<BoshUrl> {
        let uri: Uri = url.trim().parse().ok()?;
        let secure = match uri.scheme_str()? {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let authority = uri.authority()?.as_str().to_owned();
        let host = uri
            .host()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return None;
        }
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        Some(BoshUrl {
            host,
            port,
            secure,
            authority,
            path,
        })
    }
}

/// Everything a request needs besides its body, shared by a bot's requests.
#[derive(Debug)]
pub struct HttpTarget {
    pub url: BoshUrl,
    pub tls: Arc<rustls::ClientConfig>,
    pub source: Option<IpAddr>,
    pub limits: StreamLimits,
}

/// An open HTTP/1.1 connection. hyper's connection task runs until this
/// value is dropped or the server closes the socket.
pub struct HttpConnection {
    sender: SendRequest<Full<Bytes>>,
}

impl HttpConnection {
    /// Opens TCP (from the target's source address), runs TLS for
    /// `https://`, and starts hyper's connection task.
    pub async fn open(target: &HttpTarget) -> Result<HttpConnection, BotError> {
        Self::open_timed(target, &mut StepTimes::new()).await
    }

    /// Like [`HttpConnection::open`], recording the `tcp` connect and the
    /// `tls` handshake into `steps` when they succeed.
    pub async fn open_timed(
        target: &HttpTarget,
        steps: &mut StepTimes,
    ) -> Result<HttpConnection, BotError> {
        let url = &target.url;
        let connect = crate::transport::connect::open_tcp(&url.host, url.port, target.source);
        let socket = steps.time("tcp", connect).await?;
        if !url.secure {
            return Self::handshake(socket).await;
        }

        let server_name =
            rustls::pki_types::ServerName::try_from(url.host.clone()).map_err(|_| {
                BotError::TlsServerName {
                    name: url.host.clone(),
                }
            })?;
        let handshake =
            tokio_rustls::TlsConnector::from(Arc::clone(&target.tls)).connect(server_name, socket);
        let tls = steps
            .time("tls", handshake)
            .await
            .map_err(BotError::TlsHandshake)?;
        Self::handshake(tls).await
    }

    async fn handshake<S>(socket: S) -> Result<HttpConnection, BotError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(socket))
            .await
            .map_err(BotError::Http)?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(%err, "BOSH HTTP connection ended with an error");
            }
        });
        Ok(HttpConnection { sender })
    }

    /// True once the server closed the connection or it failed; such a
    /// connection cannot carry another request.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// POSTs one body and returns the response body.
    ///
    /// The status line and headers must arrive within `response_timeout`,
    /// which covers the time the connection manager may hold the request.
    /// After that, the body must keep coming: a gap of the stall timeout
    /// fails it, and so does a body above `max_stanza_bytes`.
    pub async fn post(
        &mut self,
        target: &HttpTarget,
        body: Bytes,
        response_timeout: Duration,
    ) -> Result<Bytes, BotError> {
        let limits = target.limits;
        self.sender.ready().await.map_err(BotError::Http)?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(target.url.path.as_str())
            .header(HOST, target.url.authority.as_str())
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(Full::new(body))
            .map_err(|err| BotError::Unexpected {
                expected: "a valid BOSH request",
                got: err.to_string(),
            })?;

        let response = tokio::time::timeout(response_timeout, self.sender.send_request(request))
            .await
            .map_err(|_| BotError::Timeout {
                step: "BOSH response",
                after: response_timeout,
            })?
            .map_err(BotError::Http)?;
        if response.status() != StatusCode::OK {
            return Err(BotError::HttpStatus {
                status: response.status().as_u16(),
            });
        }

        // Reject an announced oversized body before reading any of it.
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if announced.is_some_and(|length| length > limits.max_stanza_bytes as u64) {
            return Err(BodyError::TooLarge {
                max: limits.max_stanza_bytes,
            }
            .into());
        }

        let mut incoming = response.into_body();
        let mut received = Vec::new();
        loop {
            let frame = tokio::time::timeout(limits.stall_timeout, incoming.frame())
                .await
                .map_err(|_| BotError::Stalled {
                    after: limits.stall_timeout,
                    buffered: received.len(),
                })?;
            let Some(frame) = frame else {
                break;
            };
            let Ok(data) = frame.map_err(BotError::Http)?.into_data() else {
                // Trailers carry nothing BOSH uses.
                continue;
            };
            if received.len() + data.len() > limits.max_stanza_bytes {
                return Err(BodyError::TooLarge {
                    max: limits.max_stanza_bytes,
                }
                .into());
            }
            received.extend_from_slice(&data);
        }
        Ok(Bytes::from(received))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        let plain = BoshUrl::parse("http://127.0.0.1:5280/http-bind").unwrap();
        assert_eq!(plain.host, "127.0.0.1");
        assert_eq!(plain.port, 5280);
        assert!(!plain.secure);
        assert_eq!(plain.authority, "127.0.0.1:5280");
        assert_eq!(plain.path, "/http-bind");

        let secure = BoshUrl::parse("https://[::1]/bind?x=1").unwrap();
        assert_eq!(secure.host, "::1");
        assert_eq!(secure.port, 443);
        assert!(secure.secure);
        assert_eq!(secure.path, "/bind?x=1");

        let bare = BoshUrl::parse("http://example.org").unwrap();
        assert_eq!(bare.port, 80);
        assert_eq!(bare.path, "/");
    }

    #[test]
    fn url_rejects() {
        for url in [
            "ws://127.0.0.1/http-bind",
            "127.0.0.1:5280",
            "http:///x",
            "",
        ] {
            assert_eq!(BoshUrl::parse(url), None, "{url}");
        }
    }
}
