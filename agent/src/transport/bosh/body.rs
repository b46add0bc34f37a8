//! The `<body/>` wrapper of XEP-0124, with the XEP-0206 attributes for XMPP.
//!
//! Every HTTP request and response carries exactly one `<body/>` element in
//! the namespace `http://jabber.org/protocol/httpbind`. Its attributes
//! manage the session (`sid`, `rid`, `type`, `condition`) and its children
//! are the XMPP stanzas. This module builds the request bodies and turns a
//! response body into a [`Response`], checking what the client relies on.

use crate::xml::{Element, ParseError, Scope, escape};

/// Namespace of the `<body/>` element.
pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// Namespace of the XEP-0206 attributes `xmpp:version` and `xmpp:restart`.
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";
/// Protocol version the client implements (XEP-0124 version 1.11 uses 1.6).
const BOSH_VERSION: &str = "1.6";

/// Reasons a response body is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("response body is not UTF-8")]
    NotUtf8,
    #[error("response body is not one XML element: {0}")]
    NotXml(#[from] ParseError),
    #[error("response root is <{name} xmlns='{ns}'>, expected <body xmlns='{NS_HTTPBIND}'>")]
    NotBody { name: String, ns: String },
    #[error("session creation response has no `sid` attribute")]
    MissingSid,
    #[error("response carries sid `{got}`, but the session's sid is `{expected}`")]
    SidMismatch { expected: String, got: String },
    #[error("response acknowledges rid {ack}, but the highest rid sent is {highest}")]
    AckAhead { ack: u64, highest: u64 },
    #[error("response attribute `{attribute}` is `{value}`, expected a whole number")]
    NotANumber {
        attribute: &'static str,
        value: String,
    },
    #[error("response body exceeds the limit of {max} bytes (max_stanza_bytes)")]
    TooLarge { max: usize },
}

/// Client state that a response is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Session id, or `None` while the creation request is outstanding.
    pub sid: Option<&'a str>,
    /// Highest `rid` sent so far.
    pub highest_rid: u64,
}

/// A checked response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Session id; always present in a creation response without `type`.
    pub sid: Option<String>,
    /// `Some` when the connection manager ended the session
    /// (`type='terminate'`). The inner value is the `condition` attribute,
    /// absent when the session ended normally.
    pub terminate: Option<Option<String>>,
    /// Maximum simultaneous requests the connection manager allows.
    pub requests: Option<u32>,
    /// Longest time, in seconds, the connection manager keeps a request waiting.
    pub wait: Option<u32>,
    /// The XMPP elements inside the body, in order.
    pub stanzas: Vec<Element>,
}

/// Builds the session creation request (XEP-0124 section 7, XEP-0206
/// section 4).
pub fn creation_request(rid: u64, domain: &str, hold: u32, wait_s: u32) -> String {
    format!(
        "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}' content='text/xml; charset=utf-8' \
         rid='{rid}' to='{}' hold='{hold}' wait='{wait_s}' ver='{BOSH_VERSION}' \
         xml:lang='en' xmpp:version='1.0'/>",
        escape(domain)
    )
}

/// Builds a request that carries `payload` (zero or more stanzas).
pub fn payload_request(rid: u64, sid: &str, payload: &str) -> String {
    if payload.is_empty() {
        return format!(
            "<body xmlns='{NS_HTTPBIND}' rid='{rid}' sid='{}'/>",
            escape(sid)
        );
    }
    format!(
        "<body xmlns='{NS_HTTPBIND}' rid='{rid}' sid='{}'>{payload}</body>",
        escape(sid)
    )
}

/// Builds the stream restart request that follows SASL success (XEP-0206
/// section 5).
pub fn restart_request(rid: u64, sid: &str, domain: &str) -> String {
    format!(
        "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}' rid='{rid}' sid='{}' to='{}' \
         xml:lang='en' xmpp:restart='true'/>",
        escape(sid),
        escape(domain)
    )
}

/// Builds the request that ends the session (XEP-0124 section 13), with
/// the last stanzas in `payload`.
pub fn terminate_request(rid: u64, sid: &str, payload: &str) -> String {
    format!(
        "<body xmlns='{NS_HTTPBIND}' rid='{rid}' sid='{}' type='terminate'>{payload}</body>",
        escape(sid)
    )
}

/// Parses and checks one response body of at most `max_bytes` bytes.
pub fn parse_response(
    bytes: &[u8],
    expected: Expected<'_>,
    max_bytes: usize,
) -> Result<Response, BodyError> {
    if bytes.len() > max_bytes {
        return Err(BodyError::TooLarge { max: max_bytes });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| BodyError::NotUtf8)?;
    let body = Element::parse(text, &Scope::client_stream())?;
    if !body.is("body", NS_HTTPBIND) {
        return Err(BodyError::NotBody {
            name: body.name,
            ns: body.ns,
        });
    }

    // A terminate may respond to the creation request too, for example with
    // `host-unknown`, and then carries no sid. XEP-0124 before version 1.6
    // used `type='error'`, which ends the session just the same.
    let terminate = match body.attr("type") {
        Some("terminate" | "error") => Some(body.attr("condition").map(str::to_owned)),
        _ => None,
    };

    let sid = body.attr("sid").map(str::to_owned);
    match (expected.sid, &sid) {
        (None, None) if terminate.is_none() => return Err(BodyError::MissingSid),
        (Some(known), Some(got)) if known != got => {
            return Err(BodyError::SidMismatch {
                expected: known.to_owned(),
                got: got.clone(),
            });
        }
        _ => {}
    }

    // `ack` reports the highest rid the connection manager received in
    // order. A value above anything sent means it tracks some other session.
    if let Some(ack) = number(&body, "ack")?
        && ack > expected.highest_rid
    {
        return Err(BodyError::AckAhead {
            ack,
            highest: expected.highest_rid,
        });
    }

    let requests = number(&body, "requests")?.map(saturate);
    let wait = number(&body, "wait")?.map(saturate);
    Ok(Response {
        sid,
        terminate,
        requests,
        wait,
        stanzas: body.children,
    })
}

/// Reads a numeric attribute, if present.
fn number(body: &Element, attribute: &'static str) -> Result<Option<u64>, BodyError> {
    let Some(value) = body.attr(attribute) else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| BodyError::NotANumber {
            attribute,
            value: value.to_owned(),
        })
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::NS_CLIENT;

    const MAX: usize = 4096;

    fn creation() -> Expected<'static> {
        Expected {
            sid: None,
            highest_rid: 100,
        }
    }

    fn in_session() -> Expected<'static> {
        Expected {
            sid: Some("s1"),
            highest_rid: 105,
        }
    }

    /// A Prosody 0.12 creation response yields the sid, limits and features.
    #[test]
    fn creation_response_from_prosody() {
        let text = "<body inactivity='60' ver='1.6' polling='5' from='anon.localhost' hold='1' \
            authid='s1' sid='s1' xmlns='http://jabber.org/protocol/httpbind' requests='2' \
            xmlns:xmpp='urn:xmpp:xbosh' secure='true' \
            xmlns:stream='http://etherx.jabber.org/streams' xmpp:version='1.0' wait='5'>\
            <stream:features xmlns='jabber:client'><mechanisms \
            xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>ANONYMOUS</mechanism>\
            </mechanisms></stream:features></body>";
        let response = parse_response(text.as_bytes(), creation(), MAX).unwrap();
        assert_eq!(response.sid.as_deref(), Some("s1"));
        assert_eq!(response.requests, Some(2));
        assert_eq!(response.wait, Some(5));
        assert_eq!(response.terminate, None);
        assert_eq!(response.stanzas.len(), 1);
        assert!(
            response.stanzas[0].is("features", crate::xml::NS_STREAM),
            "{:?}",
            response.stanzas[0]
        );
    }

    /// Several stanzas in one body come out in order, in `jabber:client`.
    #[test]
    fn stanzas_in_order() {
        let text = "<body xmlns='http://jabber.org/protocol/httpbind'>\
            <message xmlns='jabber:client' id='a'/><presence xmlns='jabber:client' id='b'/>\
            </body>";
        let response = parse_response(text.as_bytes(), in_session(), MAX).unwrap();
        let ids: Vec<_> = response.stanzas.iter().map(|s| s.attr("id")).collect();
        assert_eq!(ids, [Some("a"), Some("b")]);
        assert!(response.stanzas.iter().all(|s| s.ns == NS_CLIENT));
    }

    /// An empty body is the response to a long-poll that timed out.
    #[test]
    fn empty_body() {
        let text = "<body xmlns='http://jabber.org/protocol/httpbind'/>";
        let response = parse_response(text.as_bytes(), in_session(), MAX).unwrap();
        assert!(response.stanzas.is_empty());
        assert_eq!(response.terminate, None);
    }

    #[test]
    fn not_xml() {
        let err = parse_response(b"HTTP error page", in_session(), MAX).unwrap_err();
        assert!(matches!(err, BodyError::NotXml(_)), "{err:?}");
    }

    #[test]
    fn not_utf8() {
        let err = parse_response(b"<body \xff/>", in_session(), MAX).unwrap_err();
        assert_eq!(err, BodyError::NotUtf8);
    }

    #[test]
    fn wrong_namespace() {
        let text = "<body xmlns='jabber:client'/>";
        let err = parse_response(text.as_bytes(), in_session(), MAX).unwrap_err();
        assert_eq!(
            err,
            BodyError::NotBody {
                name: "body".to_owned(),
                ns: NS_CLIENT.to_owned()
            }
        );
        assert_eq!(
            err.to_string(),
            "response root is <body xmlns='jabber:client'>, expected \
             <body xmlns='http://jabber.org/protocol/httpbind'>"
        );
    }

    #[test]
    fn wrong_root_element() {
        let text = "<html xmlns='http://jabber.org/protocol/httpbind'/>";
        let err = parse_response(text.as_bytes(), in_session(), MAX).unwrap_err();
        assert!(matches!(err, BodyError::NotBody { ref name, .. } if name == "html"));
    }

    #[test]
    fn creation_missing_sid() {
        let text = "<body xmlns='http://jabber.org/protocol/httpbind' wait='60'/>";
        let err = parse_response(text.as_bytes(), creation(), MAX).unwrap_err();
        assert_eq!(err, BodyError::MissingSid);
    }

    /// A rejected creation has no sid but must report its condition.
    #[test]
    fn creation_terminated_without_sid() {
        let text = "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' \
            condition='host-unknown'/>";
        let response = parse_response(text.as_bytes(), creation(), MAX).unwrap();
        assert_eq!(response.terminate, Some(Some("host-unknown".to_owned())));
    }

    #[test]
    fn sid_mismatch() {
        let text = "<body xmlns='http://jabber.org/protocol/httpbind' sid='other'/>";
        let err = parse_response(text.as_bytes(), in_session(), MAX).unwrap_err();
        assert_eq!(
            err,
            BodyError::SidMismatch {
                expected: "s1".to_owned(),
                got: "other".to_owned()
            }
        );
    }

    /// An `ack` beyond the highest rid sent is a rid mismatch.
    #[test]
    fn rid_ack_mismatch() {
        let ahead = "<body xmlns='http://jabber.org/protocol/httpbind' ack='106'/>";
        let err = parse_response(ahead.as_bytes(), in_session(), MAX).unwrap_err();
        assert_eq!(
            err,
            BodyError::AckAhead {
                ack: 106,
                highest: 105
            }
        );

        let behind = "<body xmlns='http://jabber.org/protocol/httpbind' ack='104'/>";
        assert!(parse_response(behind.as_bytes(), in_session(), MAX).is_ok());

        let garbage = "<body xmlns='http://jabber.org/protocol/httpbind' ack='x1'/>";
        let err = parse_response(garbage.as_bytes(), in_session(), MAX).unwrap_err();
        assert_eq!(
            err,
            BodyError::NotANumber {
                attribute: "ack",
                value: "x1".to_owned()
            }
        );
    }

    #[test]
    fn truncated_body() {
        let text =
            "<body xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'>";
        let err = parse_response(text.as_bytes(), in_session(), MAX).unwrap_err();
        assert!(matches!(err, BodyError::NotXml(_)), "{err:?}");
    }

    /// A terminate with a condition keeps the condition and the stanzas before it.
    #[test]
    fn terminate_with_condition() {
        let text = "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' \
            condition='remote-stream-error' xmlns:stream='http://etherx.jabber.org/streams'>\
            <stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
            </stream:error></body>";
        let response = parse_response(text.as_bytes(), in_session(), MAX).unwrap();
        assert_eq!(
            response.terminate,
            Some(Some("remote-stream-error".to_owned()))
        );
        assert_eq!(response.stanzas.len(), 1);
        assert!(response.stanzas[0].is("error", crate::xml::NS_STREAM));
    }

    /// A terminate without a condition is a normal end.
    #[test]
    fn terminate_without_condition() {
        let text = "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate'/>";
        let response = parse_response(text.as_bytes(), in_session(), MAX).unwrap();
        assert_eq!(response.terminate, Some(None));
    }

    #[test]
    fn oversized_body() {
        let text = format!(
            "<body xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'>\
             <body>{}</body></message></body>",
            "x".repeat(MAX)
        );
        let err = parse_response(text.as_bytes(), in_session(), MAX).unwrap_err();
        assert_eq!(err, BodyError::TooLarge { max: MAX });
    }

    /// Request bodies are well-formed and carry the attributes the XEPs require.
    #[test]
    fn requests_parse_back() {
        let creation =
            Element::parse(&creation_request(7, "a'b", 1, 60), &Scope::client_stream()).unwrap();
        assert!(creation.is("body", NS_HTTPBIND));
        assert_eq!(creation.attr("rid"), Some("7"));
        assert_eq!(creation.attr("to"), Some("a'b"));
        assert_eq!(creation.attr("hold"), Some("1"));
        assert_eq!(creation.attr("wait"), Some("60"));
        assert_eq!(creation.attr("ver"), Some("1.6"));
        assert_eq!(creation.attr("xmpp:version"), Some("1.0"));
        assert_eq!(creation.attr("xml:lang"), Some("en"));

        let restart =
            Element::parse(&restart_request(8, "s1", "d"), &Scope::client_stream()).unwrap();
        assert_eq!(restart.attr("xmpp:restart"), Some("true"));
        assert_eq!(restart.attr("sid"), Some("s1"));

        let payload = Element::parse(
            &payload_request(9, "s1", "<presence xmlns='jabber:client'/>"),
            &Scope::client_stream(),
        )
        .unwrap();
        assert_eq!(payload.children.len(), 1);
        assert_eq!(payload.attr("rid"), Some("9"));

        let terminate = Element::parse(
            &terminate_request(
                10,
                "s1",
                "<presence xmlns='jabber:client' type='unavailable'/>",
            ),
            &Scope::client_stream(),
        )
        .unwrap();
        assert_eq!(terminate.attr("type"), Some("terminate"));
        assert_eq!(terminate.children.len(), 1);
    }
}
