//! Negotiation of a client session, and stream management.
//!
//! [`Session::establish`] runs these steps on a fresh [`Transport`]:
//!
//! 1. Open the stream and read the server's header and `<stream:features/>`.
//! 2. c2s only: negotiate STARTTLS (`urn:ietf:params:xml:ns:xmpp-tls`) as the
//!    [`TlsMode`] requires. After `<proceed/>` the TLS handshake runs on the same
//!    socket and the stream restarts, giving new features. With direct TLS the
//!    transport is encrypted before step 1 and this step is skipped.
//! 3. SASL (`urn:ietf:params:xml:ns:xmpp-sasl`) with the mechanism the group
//!    requests: ANONYMOUS (RFC 4505), PLAIN or SCRAM (see [`crate::sasl`]),
//!    ending in `<success/>` or `<failure/>`.
//! 4. Stream restart, new features, then resource binding
//!    (`urn:ietf:params:xml:ns:xmpp-bind`); the server assigns the full JID.
//! 5. With stream management requested: XEP-0198 `<enable/>` and `<enabled/>`
//!    (`urn:xmpp:sm:3`). From then on every inbound message, presence and iq
//!    increments the handled counter `h`, and the bot replies to each `<r/>`
//!    from the server with `<a h='…'/>`.
//!
//! The caller bounds the whole negotiation with its connect timeout.
//! [`Session::establish_timed`] also records how long each step took (see
//! [`crate::steps`]). Only the first stream open is timed as `stream`,
//! because timing the restarts after TLS and SASL as well would count each
//! bot more than once.
//! A `<stream:error/>` at any step is returned as [`BotError::StreamError`].

use std::sync::Arc;

use crate::error::BotError;
use crate::sasl::xmpp::Login;
use crate::sasl::{Mechanism, SaltedPasswordCache};
use crate::steps::StepTimes;
use crate::transport::{Endpoint, StreamEvent, TlsMode, Transport};
use crate::xml::{Element, NS_CLIENT, NS_STREAM};

pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SM: &str = "urn:xmpp:sm:3";

/// Id of the bind request, matched against the result.
const BIND_ID: &str = "bind-1";

/// Element or event read by [`Session::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A stanza or other top-level element for the bot.
    Stanza(Element),
    /// The server requested an ack; reply with [`Session::send_ack`].
    AckRequest,
    /// The server ended its stream.
    End,
}

/// An established, bound session.
#[derive(Debug)]
pub struct Session {
    transport: Transport,
    /// Full JID the server bound.
    jid: String,
    /// XEP-0198 handled-stanza counter `h`; `None` without stream management.
    /// It wraps at 2^32 as the XEP requires.
    handled: Option<u32>,
}

impl Session {
    /// Connects and negotiates up to a bound resource (and enabled stream
    /// management when requested).
    pub async fn establish(
        endpoint: &Endpoint,
        stream_management: bool,
    ) -> Result<Session, BotError> {
        Self::establish_from(endpoint, None, stream_management).await
    }

    /// Like [`Session::establish`], with the socket bound to `source` when
    /// given.
    pub async fn establish_from(
        endpoint: &Endpoint,
        source: Option<std::net::IpAddr>,
        stream_management: bool,
    ) -> Result<Session, BotError> {
        let mut steps = StepTimes::new();
        Self::establish_timed(endpoint, source, stream_management, &mut steps).await
    }

    /// Like [`Session::establish_from`], recording each step that succeeds
    /// into `steps`. Steps finished before a failure stay recorded.
    pub async fn establish_timed(
        endpoint: &Endpoint,
        source: Option<std::net::IpAddr>,
        stream_management: bool,
        steps: &mut StepTimes,
    ) -> Result<Session, BotError> {
        let cache = SaltedPasswordCache::new();
        let login = Login {
            mechanism: Mechanism::Anonymous,
            credentials: None,
            cache: &cache,
        };
        Self::establish_with(endpoint, source, stream_management, login, steps).await
    }

    /// Like [`Session::establish_from`], with the mechanism and account of
    /// `login`.
    pub async fn establish_as(
        endpoint: &Endpoint,
        source: Option<std::net::IpAddr>,
        stream_management: bool,
        login: Login<'_>,
    ) -> Result<Session, BotError> {
        let mut steps = StepTimes::new();
        Self::establish_with(endpoint, source, stream_management, login, &mut steps).await
    }

    /// Connects, logs in with `login` and binds, recording each step that
    /// succeeds into `steps`.
    pub async fn establish_with(
        endpoint: &Endpoint,
        source: Option<std::net::IpAddr>,
        stream_management: bool,
        login: Login<'_>,
        steps: &mut StepTimes,
    ) -> Result<Session, BotError> {
        let (mut transport, features) = connect_secured(endpoint, source, steps).await?;

        steps
            .time(
                "auth",
                crate::sasl::xmpp::authenticate(&mut transport, &features, login),
            )
            .await?;

        transport.restart();
        let features = open_stream(&mut transport).await?;
        if features.child("bind", NS_BIND).is_none() {
            return Err(BotError::Unexpected {
                expected: "bind feature",
                got: describe(&features),
            });
        }
        let jid = steps.time("bind", bind(&mut transport)).await?;

        let handled = if stream_management {
            if features.child("sm", NS_SM).is_none() {
                return Err(BotError::Unexpected {
                    expected: "stream management feature (urn:xmpp:sm:3)",
                    got: describe(&features),
                });
            }
            steps
                .time("sm", enable_stream_management(&mut transport))
                .await?;
            Some(0)
        } else {
            None
        };

        Ok(Session {
            transport,
            jid,
            handled,
        })
    }

    /// Full JID assigned by the server.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    pub async fn send(&mut self, xml: &str) -> Result<(), BotError> {
        self.transport.send(xml).await
    }

    /// Reads the next element and counts it for stream management.
    /// Cancel-safe: it never writes.
    pub async fn next(&mut self) -> Result<Inbound, BotError> {
        loop {
            match self.transport.next().await? {
                StreamEvent::End => return Ok(Inbound::End),
                StreamEvent::Header => {
                    return Err(BotError::Unexpected {
                        expected: "stanza",
                        got: "a second stream header".to_owned(),
                    });
                }
                StreamEvent::Stanza(element) => {
                    if element.ns == NS_SM {
                        match element.name.as_str() {
                            "r" if self.handled.is_some() => return Ok(Inbound::AckRequest),
                            // Acks for our own requests; the bots never request any.
                            "a" => continue,
                            _ => {}
                        }
                    }
                    if let Some(handled) = &mut self.handled
                        && is_stanza(&element)
                    {
                        *handled = handled.wrapping_add(1);
                    }
                    return Ok(Inbound::Stanza(element));
                }
            }
        }
    }

    /// Sends `<a/>` with the current handled count, in reply to `<r/>`.
    pub async fn send_ack(&mut self) -> Result<(), BotError> {
        let Some(handled) = self.handled else {
            return Ok(());
        };
        self.transport
            .send(&format!("<a xmlns='{NS_SM}' h='{handled}'/>"))
            .await
    }

    /// Closes the stream cleanly, waiting briefly for the server's close.
    pub async fn close(&mut self) -> Result<(), BotError> {
        self.transport.close().await
    }
}

/// True for the three stanza kinds that XEP-0198 counts.
pub fn is_stanza(element: &Element) -> bool {
    element.ns == NS_CLIENT && matches!(element.name.as_str(), "message" | "presence" | "iq")
}

/// Sends the stream header and reads the server's header and features.
async fn open_stream(transport: &mut Transport) -> Result<Element, BotError> {
    transport.open_stream().await?;
    match transport.next().await? {
        StreamEvent::Header => {}
        StreamEvent::End => return Err(BotError::Closed),
        StreamEvent::Stanza(element) => {
            return Err(BotError::Unexpected {
                expected: "stream header",
                got: describe(&element),
            });
        }
    }
    let features = expect_stanza(transport, "<stream:features/>").await?;
    if !features.is("features", NS_STREAM) {
        return Err(BotError::Unexpected {
            expected: "<stream:features/>",
            got: describe(&features),
        });
    }
    Ok(features)
}

/// Connects and negotiates STARTTLS as the endpoint requires, up to the
/// features that offer SASL, recording the `tcp`, `tls`, `websocket` and
/// `stream` steps that succeed into `steps`. Only the first stream open is
/// timed as `stream`.
pub(crate) async fn connect_secured(
    endpoint: &Endpoint,
    source: Option<std::net::IpAddr>,
    steps: &mut StepTimes,
) -> Result<(Transport, Element), BotError> {
    let mut transport = Transport::connect_timed(endpoint, source, steps).await?;

    // NOTE: over direct TLS and https:// BOSH this step measured about 40 ms
    // at p50, against under 3 ms in plain text. The cause is not confirmed
    // (a Nagle or delayed-ACK wait is a guess), so it may not be TLS cost.
    let mut features = steps.time("stream", open_stream(&mut transport)).await?;

    if let (Transport::Tcp(tcp), Endpoint::Tcp { tls_mode, tls, .. }) = (&mut transport, endpoint) {
        let offered = features.child("starttls", NS_TLS).is_some();
        match (tls_mode, offered) {
            (TlsMode::Required, false) => return Err(BotError::TlsNotOffered),
            (TlsMode::Never | TlsMode::Direct, _) | (TlsMode::IfOffered, false) => {}
            (TlsMode::IfOffered | TlsMode::Required, true) => {
                tcp.send(&format!("<starttls xmlns='{NS_TLS}'/>")).await?;
                let answer = expect_stanza(&mut transport, "STARTTLS <proceed/>").await?;
                if !answer.is("proceed", NS_TLS) {
                    return Err(BotError::TlsRejected);
                }
                if let Transport::Tcp(tcp) = &mut transport {
                    steps
                        .time("tls", tcp.upgrade_to_tls(Arc::clone(tls)))
                        .await?;
                }
                features = open_stream(&mut transport).await?;
            }
        }
    }
    Ok((transport, features))
}

/// Requests a server-assigned resource and returns the bound full JID.
async fn bind(transport: &mut Transport) -> Result<String, BotError> {
    transport
        .send(&format!(
            "<iq xmlns='{NS_CLIENT}' type='set' id='{BIND_ID}'><bind xmlns='{NS_BIND}'/></iq>"
        ))
        .await?;
    loop {
        let answer = expect_stanza(transport, "bind result").await?;
        if !answer.is("iq", NS_CLIENT) || answer.attr("id") != Some(BIND_ID) {
            // Servers may push other stanzas here; none matter before bind.
            continue;
        }
        if answer.attr("type") != Some("result") {
            return Err(BotError::Unexpected {
                expected: "bind result",
                got: describe(&answer),
            });
        }
        let jid = answer
            .child("bind", NS_BIND)
            .and_then(|b| b.child_text("jid", NS_BIND));
        return match jid {
            Some(jid) if !jid.trim().is_empty() => Ok(jid.trim().to_owned()),
            _ => Err(BotError::Unexpected {
                expected: "<jid/> in the bind result",
                got: describe(&answer),
            }),
        };
    }
}

/// Sends `<enable/>` and waits for `<enabled/>`.
async fn enable_stream_management(transport: &mut Transport) -> Result<(), BotError> {
    transport
        .send(&format!("<enable xmlns='{NS_SM}'/>"))
        .await?;
    let answer = expect_stanza(transport, "stream management <enabled/>").await?;
    if answer.is("enabled", NS_SM) {
        return Ok(());
    }
    Err(BotError::Unexpected {
        expected: "stream management <enabled/>",
        got: describe(&answer),
    })
}

/// Reads the next event, which must be a stanza.
pub(crate) async fn expect_stanza(
    transport: &mut Transport,
    expected: &'static str,
) -> Result<Element, BotError> {
    match transport.next().await? {
        StreamEvent::Stanza(element) => Ok(element),
        StreamEvent::End => Err(BotError::Closed),
        StreamEvent::Header => Err(BotError::Unexpected {
            expected,
            got: "a stream header".to_owned(),
        }),
    }
}

/// Short description of an element for error messages: `<name xmlns='ns'>`
/// plus the condition child if there is one.
fn describe(element: &Element) -> String {
    match element.first_child_name() {
        Some(child) => format!(
            "<{} xmlns='{}'> containing <{child}/>",
            element.name, element.ns
        ),
        None => format!("<{} xmlns='{}'/>", element.name, element.ns),
    }
}
