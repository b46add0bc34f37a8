//! Readers for the replies and pushes that the web-client requests bring.
//!
//! Each reader takes a parsed stanza and returns what the bot acts on, or
//! a [`ReplyError`] naming what is missing, so a server that sends a
//! malformed reply is counted and logged instead of being trusted.

use crate::xml::{Element, NS_CLIENT};

pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_ROSTER: &str = "jabber:iq:roster";
pub const NS_VCARD: &str = "vcard-temp";
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
pub const NS_MAM: &str = "urn:xmpp:mam:2";
pub const NS_RSM: &str = "http://jabber.org/protocol/rsm";
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// A reply that lacks what its request type requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("`{stanza}` has no `type` attribute")]
    MissingType { stanza: String },
    #[error("`{stanza}` has type `{found}`, expected result or error")]
    UnexpectedType { stanza: String, found: String },
    #[error("the reply has no <{element} xmlns='{ns}'/>")]
    MissingChild {
        element: &'static str,
        ns: &'static str,
    },
    #[error("<{element}/> has no `{attr}` attribute")]
    MissingAttr {
        element: &'static str,
        attr: &'static str,
    },
}

/// Outcome of an iq request as its reply states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IqReply<'a> {
    Result(&'a Element),
    /// Type `error`, with the defined condition such as `item-not-found`.
    Error {
        condition: String,
    },
}

/// Reads the type of a reply to an iq request.
pub fn iq_reply(iq: &Element) -> Result<IqReply<'_>, ReplyError> {
    match iq.attr("type") {
        Some("result") => Ok(IqReply::Result(iq)),
        Some("error") => Ok(IqReply::Error {
            condition: error_condition(iq),
        }),
        Some(other) => Err(ReplyError::UnexpectedType {
            stanza: iq.name.clone(),
            found: other.to_owned(),
        }),
        None => Err(ReplyError::MissingType {
            stanza: iq.name.clone(),
        }),
    }
}

/// Defined condition of an error stanza, or `undefined-condition` when the
/// `<error/>` child or its condition is missing.
pub fn error_condition(stanza: &Element) -> String {
    stanza
        .child("error", NS_CLIENT)
        .and_then(|error| error.children.iter().find(|c| c.ns == NS_STANZAS))
        .map_or("undefined-condition", |c| c.name.as_str())
        .to_owned()
}

/// Features (the `var` of each `<feature/>`) of a disco#info result.
pub fn disco_features(result: &Element) -> Result<Vec<&str>, ReplyError> {
    let query = result
        .child("query", NS_DISCO_INFO)
        .ok_or(ReplyError::MissingChild {
            element: "query",
            ns: NS_DISCO_INFO,
        })?;
    query
        .children_named("feature", NS_DISCO_INFO)
        .map(|feature| {
            feature.attr("var").ok_or(ReplyError::MissingAttr {
                element: "feature",
                attr: "var",
            })
        })
        .collect()
}

/// Number of `<item/>` entries of a disco#items result.
pub fn disco_item_count(result: &Element) -> Result<usize, ReplyError> {
    let query = result
        .child("query", NS_DISCO_ITEMS)
        .ok_or(ReplyError::MissingChild {
            element: "query",
            ns: NS_DISCO_ITEMS,
        })?;
    Ok(query.children_named("item", NS_DISCO_ITEMS).count())
}

/// One archived message pushed in reply to a MAM query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedMessage<'a> {
    /// `queryid` of the query this result belongs to.
    pub query_id: &'a str,
    /// Body of the forwarded message, if it has one.
    pub body: Option<&'a str>,
}

/// Reads a `<message/>` that carries a MAM `<result/>`; `Ok(None)` for any
/// other message.
pub fn archived_message(message: &Element) -> Result<Option<ArchivedMessage<'_>>, ReplyError> {
    let Some(result) = message.child("result", NS_MAM) else {
        return Ok(None);
    };
    let query_id = result.attr("queryid").ok_or(ReplyError::MissingAttr {
        element: "result",
        attr: "queryid",
    })?;
    let forwarded = result
        .child("forwarded", NS_FORWARD)
        .ok_or(ReplyError::MissingChild {
            element: "forwarded",
            ns: NS_FORWARD,
        })?;
    let inner = forwarded
        .child("message", NS_CLIENT)
        .ok_or(ReplyError::MissingChild {
            element: "message",
            ns: NS_CLIENT,
        })?;
    Ok(Some(ArchivedMessage {
        query_id,
        body: inner.child_text("body", NS_CLIENT),
    }))
}

/// The `<fin/>` of a finished MAM query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MamFin {
    /// True when the archive has no more pages in the queried direction.
    pub complete: bool,
    /// RSM `<count/>`: messages that match the query in the whole archive,
    /// when the server states it.
    pub count: Option<u64>,
}

/// Reads the `<fin/>` of a MAM query's result iq.
pub fn mam_fin(result: &Element) -> Result<MamFin, ReplyError> {
    let fin = result
        .child("fin", NS_MAM)
        .ok_or(ReplyError::MissingChild {
            element: "fin",
            ns: NS_MAM,
        })?;
    let count = fin
        .child("set", NS_RSM)
        .and_then(|set| set.child_text("count", NS_RSM))
        .and_then(|count| count.trim().parse().ok());
    Ok(MamFin {
        complete: matches!(fin.attr("complete"), Some("true" | "1")),
        count,
    })
}

/// MUC status codes of a presence (`<x xmlns='…muc#user'><status code=…/>`);
/// codes that are not numbers are skipped.
pub fn muc_status_codes(presence: &Element) -> Vec<u16> {
    let Some(x) = presence.child("x", NS_MUC_USER) else {
        return Vec::new();
    };
    x.children_named("status", NS_MUC_USER)
        .filter_map(|status| status.attr("code")?.parse().ok())
        .collect()
}

/// New nickname of a nick-change presence (status 303): the `nick` of its
/// `<item/>`.
pub fn new_nick(presence: &Element) -> Result<&str, ReplyError> {
    let item = presence
        .child("x", NS_MUC_USER)
        .and_then(|x| x.child("item", NS_MUC_USER))
        .ok_or(ReplyError::MissingChild {
            element: "item",
            ns: NS_MUC_USER,
        })?;
    item.attr("nick").ok_or(ReplyError::MissingAttr {
        element: "item",
        attr: "nick",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Scope;

    fn parse(xml: &str) -> Element {
        Element::parse(xml, &Scope::client_stream()).unwrap()
    }

    /// Result and error replies are distinguished; a missing condition is undefined.
    #[test]
    fn iq_reply_types() {
        let result = parse("<iq type='result' id='a'/>");
        assert!(matches!(iq_reply(&result), Ok(IqReply::Result(_))));

        let error = parse(
            "<iq type='error' id='a'><error type='cancel'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        );
        assert_eq!(
            iq_reply(&error).unwrap(),
            IqReply::Error {
                condition: "item-not-found".to_owned()
            }
        );

        let bare_error = parse("<iq type='error' id='a'/>");
        assert_eq!(
            iq_reply(&bare_error).unwrap(),
            IqReply::Error {
                condition: "undefined-condition".to_owned()
            }
        );
    }

    /// A reply without a type, or with a request type, is malformed.
    #[test]
    fn iq_reply_rejects_bad_types() {
        assert_eq!(
            iq_reply(&parse("<iq id='a'/>")).unwrap_err().to_string(),
            "`iq` has no `type` attribute"
        );
        assert_eq!(
            iq_reply(&parse("<iq id='a' type='get'/>"))
                .unwrap_err()
                .to_string(),
            "`iq` has type `get`, expected result or error"
        );
    }

    /// disco#info features are listed in order.
    #[test]
    fn disco_features_listed() {
        let result = parse(
            "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='conference' type='text'/>\
             <feature var='http://jabber.org/protocol/muc'/>\
             <feature var='urn:xmpp:mam:2'/></query></iq>",
        );
        assert_eq!(
            disco_features(&result).unwrap(),
            ["http://jabber.org/protocol/muc", "urn:xmpp:mam:2"]
        );
    }

    /// A disco#info result without its query, or a feature without `var`, is malformed.
    #[test]
    fn disco_features_malformed() {
        let no_query = parse("<iq type='result'/>");
        assert_eq!(
            disco_features(&no_query).unwrap_err().to_string(),
            "the reply has no <query xmlns='http://jabber.org/protocol/disco#info'/>"
        );
        let no_var = parse(
            "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>\
             <feature/></query></iq>",
        );
        assert_eq!(
            disco_features(&no_var).unwrap_err(),
            ReplyError::MissingAttr {
                element: "feature",
                attr: "var"
            }
        );
        // A query in the items namespace is not an info query.
        let wrong_ns =
            parse("<iq type='result'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        assert!(disco_features(&wrong_ns).is_err());
    }

    /// disco#items counts items and rejects a reply without a query.
    #[test]
    fn disco_items_counted() {
        let result = parse(
            "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#items'>\
             <item jid='a@muc'/><item jid='b@muc'/></query></iq>",
        );
        assert_eq!(disco_item_count(&result).unwrap(), 2);
        assert!(disco_item_count(&parse("<iq type='result'/>")).is_err());
    }

    /// An archived message yields its query id and body.
    #[test]
    fn archived_message_read() {
        let message = parse(
            "<message to='u@h/r' from='room@muc'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='28'>\
             <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/>\
             <message xmlns='jabber:client' type='groupchat' from='room@muc/n'><body>hi</body></message>\
             </forwarded></result></message>",
        );
        assert_eq!(
            archived_message(&message).unwrap(),
            Some(ArchivedMessage {
                query_id: "q1",
                body: Some("hi")
            })
        );
        let plain = parse("<message type='groupchat'><body>hi</body></message>");
        assert_eq!(archived_message(&plain).unwrap(), None);
    }

    /// Archived messages without a query id or forwarded stanza are malformed.
    #[test]
    fn archived_message_malformed() {
        let no_id = parse(
            "<message><result xmlns='urn:xmpp:mam:2'><forwarded xmlns='urn:xmpp:forward:0'/></result></message>",
        );
        assert_eq!(
            archived_message(&no_id).unwrap_err(),
            ReplyError::MissingAttr {
                element: "result",
                attr: "queryid"
            }
        );
        let no_forwarded = parse("<message><result xmlns='urn:xmpp:mam:2' queryid='q'/></message>");
        assert!(matches!(
            archived_message(&no_forwarded),
            Err(ReplyError::MissingChild {
                element: "forwarded",
                ..
            })
        ));
        let empty_forwarded = parse(
            "<message><result xmlns='urn:xmpp:mam:2' queryid='q'><forwarded xmlns='urn:xmpp:forward:0'/></result></message>",
        );
        assert!(matches!(
            archived_message(&empty_forwarded),
            Err(ReplyError::MissingChild {
                element: "message",
                ..
            })
        ));
    }

    /// `<fin/>` gives completeness and the RSM count; a bad count is ignored.
    #[test]
    fn mam_fin_read() {
        let fin = parse(
            "<iq type='result'><fin xmlns='urn:xmpp:mam:2' complete='true'>\
             <set xmlns='http://jabber.org/protocol/rsm'><count>7</count></set></fin></iq>",
        );
        assert_eq!(
            mam_fin(&fin).unwrap(),
            MamFin {
                complete: true,
                count: Some(7)
            }
        );
        let partial = parse(
            "<iq type='result'><fin xmlns='urn:xmpp:mam:2'>\
             <set xmlns='http://jabber.org/protocol/rsm'><count>many</count></set></fin></iq>",
        );
        assert_eq!(
            mam_fin(&partial).unwrap(),
            MamFin {
                complete: false,
                count: None
            }
        );
        assert!(mam_fin(&parse("<iq type='result'/>")).is_err());
    }

    /// Status codes are read; non-numeric ones are skipped.
    #[test]
    fn status_codes_read() {
        let presence = parse(
            "<presence type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item nick='new'/><status code='303'/><status code='110'/><status code='x'/></x></presence>",
        );
        assert_eq!(muc_status_codes(&presence), [303, 110]);
        assert_eq!(new_nick(&presence).unwrap(), "new");
        assert!(muc_status_codes(&parse("<presence/>")).is_empty());
    }

    /// A nick change without an item nick is malformed.
    #[test]
    fn new_nick_missing() {
        let no_item =
            parse("<presence><x xmlns='http://jabber.org/protocol/muc#user'/></presence>");
        assert!(new_nick(&no_item).is_err());
        let no_nick = parse(
            "<presence><x xmlns='http://jabber.org/protocol/muc#user'><item/></x></presence>",
        );
        assert_eq!(
            new_nick(&no_nick).unwrap_err(),
            ReplyError::MissingAttr {
                element: "item",
                attr: "nick"
            }
        );
    }
}
