//! Rooms that stay locked until their creator configures them.
//!
//! The first join creates a room, and the service marks the creator's own
//! presence with status 201. XEP-0045 (section 10.1) then keeps the room
//! locked, and rejects other joiners with `item-not-found`, until the owner
//! submits a configuration. Servers differ here. Prosody 0.12 locks new
//! rooms unless `muc_room_locking = false`. ejabberd 23.01 sends 201 but
//! lets others in at once. The bots follow the behaviour, not the server
//! name. A bot whose self-presence carries 201 submits an empty form, the
//! "instant room" of XEP-0045 section 10.1.2, which unlocks a locked room
//! and leaves an open one as it is. A bot that joins in between gets
//! `item-not-found` and retries until its join timeout.

use std::time::Duration;

use crate::xml::{Element, NS_CLIENT, escape};

/// Status code in the self-presence that marks the creator of a new room.
pub const STATUS_CREATED: &str = "201";
/// Pause before a join rejected with `item-not-found` is sent again. The
/// creator unlocks within one round trip, so a few retries suffice.
pub const JOIN_RETRY_PAUSE: Duration = Duration::from_millis(200);

const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_DATA: &str = "jabber:x:data";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// Prefix of the request ids; the room's position in the bot's list follows.
const ID_PREFIX: &str = "instant-room-";

/// Server's response to an instant-room request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Accepted,
    /// An iq error; `condition` is the defined condition's element name.
    Rejected {
        condition: String,
    },
}

/// Builds the owner's empty configuration form for the room `room` (a bare
/// JID), the `index`-th room of the bot.
pub fn request(room: &str, index: usize) -> String {
    format!(
        "<iq xmlns='{NS_CLIENT}' type='set' to='{}' id='{ID_PREFIX}{index}'>\
         <query xmlns='{NS_MUC_OWNER}'><x xmlns='{NS_DATA}' type='submit'/></query></iq>",
        escape(room)
    )
}

/// Reads an iq as the response to an instant-room request. Returns the
/// room's index from the request id and the response, or `None` for any
/// other element. The caller checks that the response comes from that room.
pub fn parse_response(iq: &Element) -> Option<(usize, Response)> {
    if !iq.is("iq", NS_CLIENT) {
        return None;
    }
    let index = iq.attr("id")?.strip_prefix(ID_PREFIX)?.parse().ok()?;
    let response = match iq.attr("type")? {
        "result" => Response::Accepted,
        "error" => Response::Rejected {
            condition: iq
                .child("error", NS_CLIENT)
                .and_then(|error| error.children.iter().find(|c| c.ns == NS_STANZAS))
                .map_or("undefined-condition", |c| c.name.as_str())
                .to_owned(),
        },
        _ => return None,
    };
    Some((index, response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Scope;

    fn parse(xml: &str) -> Element {
        Element::parse(xml, &Scope::client_stream()).unwrap()
    }

    #[test]
    fn request_submits_empty_owner_form() {
        let iq = parse(&request("study@conference.example", 2));
        assert_eq!(iq.attr("type"), Some("set"));
        assert_eq!(iq.attr("to"), Some("study@conference.example"));
        assert_eq!(iq.attr("id"), Some("instant-room-2"));
        let form = iq
            .child("query", NS_MUC_OWNER)
            .and_then(|query| query.child("x", NS_DATA))
            .expect("owner query with a data form");
        assert_eq!(form.attr("type"), Some("submit"));
        assert!(form.children.is_empty(), "an instant room sets no field");
    }

    #[test]
    fn request_escapes_room_jid() {
        let iq = parse(&request("a'b@conference.example", 0));
        assert_eq!(iq.attr("to"), Some("a'b@conference.example"));
    }

    #[test]
    fn response_reads_result() {
        let iq = parse("<iq type='result' id='instant-room-1' from='r@c'/>");
        assert_eq!(parse_response(&iq), Some((1, Response::Accepted)));
    }

    #[test]
    fn response_reads_error_condition() {
        let iq = parse(
            "<iq type='error' id='instant-room-0' from='r@c'><error type='cancel'>\
             <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></iq>",
        );
        let expected = Response::Rejected {
            condition: "forbidden".to_owned(),
        };
        assert_eq!(parse_response(&iq), Some((0, expected)));
    }

    #[test]
    fn response_ignores_other_iqs() {
        for xml in [
            "<iq type='result' id='bind-1'/>",
            "<iq type='result' id='instant-room-x'/>",
            "<iq type='get' id='instant-room-0'/>",
            "<iq type='result'/>",
            "<message id='instant-room-0'/>",
        ] {
            assert_eq!(parse_response(&parse(xml)), None, "{xml}");
        }
    }
}
