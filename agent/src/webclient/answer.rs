//! Replies to the iq requests that reach a bot, so that the server and the
//! occupants who asked do not wait for a timeout.

use crate::xml::{Element, NS_CLIENT, escape};

use super::parse::{NS_DISCO_INFO, NS_PING, NS_VCARD};

const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Kind of iq request a bot replied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Ping,
    DiscoInfo,
    Vcard,
    /// Any other request, which gets `service-unavailable`.
    Other,
}

impl Answered {
    pub const ALL: [Answered; 4] = [
        Answered::Ping,
        Answered::DiscoInfo,
        Answered::Vcard,
        Answered::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Answered::Ping => "ping",
            Answered::DiscoInfo => "disco_info",
            Answered::Vcard => "vcard",
            Answered::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Builds the reply to an iq `get` or `set`; `None` for results, errors and
/// other stanzas, which must get no reply.
pub fn answer(iq: &Element) -> Option<(Answered, String)> {
    if !iq.is("iq", NS_CLIENT) || !matches!(iq.attr("type"), Some("get" | "set")) {
        return None;
    }
    let to = iq
        .attr("from")
        .map(|from| format!(" to='{}'", escape(from)))
        .unwrap_or_default();
    let id = escape(iq.attr("id").unwrap_or_default()).into_owned();
    let get = iq.attr("type") == Some("get");
    let payload = iq.children.first();
    let is_get_of = |name: &str, ns: &str| get && payload.is_some_and(|p| p.is(name, ns));

    let (answered, body) = if is_get_of("ping", NS_PING) {
        (Answered::Ping, String::new())
    } else if is_get_of("query", NS_DISCO_INFO) {
        (
            Answered::DiscoInfo,
            format!(
                "<query xmlns='{NS_DISCO_INFO}'><identity category='client' type='web' name='xmppload'/>\
                 <feature var='{NS_DISCO_INFO}'/><feature var='{NS_PING}'/></query>"
            ),
        )
    } else if is_get_of("vCard", NS_VCARD) {
        // XEP-0054 allows an empty vCard as the reply of an entity without
        // one.
        (Answered::Vcard, format!("<vCard xmlns='{NS_VCARD}'/>"))
    } else {
        // RFC 6120 section 8.4: service-unavailable for a payload the
        // entity does not understand.
        let error = format!(
            "<iq xmlns='{NS_CLIENT}' type='error'{to} id='{id}'><error type='cancel'>\
             <service-unavailable xmlns='{NS_STANZAS}'/></error></iq>"
        );
        return Some((Answered::Other, error));
    };
    let reply = format!("<iq xmlns='{NS_CLIENT}' type='result'{to} id='{id}'>{body}</iq>");
    Some((answered, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Scope;

    fn parse(xml: &str) -> Element {
        Element::parse(xml, &Scope::client_stream()).unwrap()
    }

    /// A ping gets an empty result addressed to the sender with the same id.
    #[test]
    fn ping_answered_with_result() {
        let (answered, reply) = answer(&parse(
            "<iq type='get' from='h' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
        ))
        .unwrap();
        assert_eq!(answered, Answered::Ping);
        let reply = parse(&reply);
        assert_eq!(reply.attr("type"), Some("result"));
        assert_eq!(reply.attr("to"), Some("h"));
        assert_eq!(reply.attr("id"), Some("p1"));
    }

    /// disco#info and vCard gets get results with their payloads.
    #[test]
    fn disco_and_vcard_answered() {
        let (answered, reply) = answer(&parse(
            "<iq type='get' from='r@m/n' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        ))
        .unwrap();
        assert_eq!(answered, Answered::DiscoInfo);
        assert!(parse(&reply).child("query", NS_DISCO_INFO).is_some());

        let (answered, reply) = answer(&parse(
            "<iq type='get' from='r@m/n' id='v'><vCard xmlns='vcard-temp'/></iq>",
        ))
        .unwrap();
        assert_eq!(answered, Answered::Vcard);
        assert!(parse(&reply).child("vCard", NS_VCARD).is_some());
    }

    /// Unknown requests, payload-less ones and a ping sent as set get service-unavailable.
    #[test]
    fn unknown_requests_get_service_unavailable() {
        for xml in [
            "<iq type='get' id='x'><query xmlns='jabber:iq:version'/></iq>",
            "<iq type='set' id='x'><ping xmlns='urn:xmpp:ping'/></iq>",
            "<iq type='get' id='x'/>",
        ] {
            let (answered, reply) = answer(&parse(xml)).unwrap();
            assert_eq!(answered, Answered::Other, "{xml}");
            let reply = parse(&reply);
            assert_eq!(reply.attr("type"), Some("error"));
            assert_eq!(reply.attr("to"), None);
            let error = reply.child("error", NS_CLIENT).unwrap();
            assert!(error.child("service-unavailable", NS_STANZAS).is_some());
        }
    }

    /// Results, errors and non-iq stanzas are never answered.
    #[test]
    fn replies_are_not_answered() {
        for xml in [
            "<iq type='result' id='x'/>",
            "<iq type='error' id='x'/>",
            "<iq id='x'/>",
            "<message type='chat'><body>hi</body></message>",
        ] {
            assert_eq!(answer(&parse(xml)), None, "{xml}");
        }
    }
}
