//! Request kinds and the stanzas a bot sends for them.

use crate::xml::{NS_CLIENT, escape};

use super::parse::{
    NS_CARBONS, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MAM, NS_PING, NS_ROSTER, NS_RSM, NS_VCARD,
};

/// Kind of a web-client request; its name keys round trips and error counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DiscoInfo,
    DiscoItems,
    Roster,
    VcardSelf,
    VcardRoom,
    VcardOccupant,
    Carbons,
    Mam,
    Ping,
    Nick,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::DiscoInfo,
        Kind::DiscoItems,
        Kind::Roster,
        Kind::VcardSelf,
        Kind::VcardRoom,
        Kind::VcardOccupant,
        Kind::Carbons,
        Kind::Mam,
        Kind::Ping,
        Kind::Nick,
    ];

    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DiscoInfo => "disco_info",
            Kind::DiscoItems => "disco_items",
            Kind::Roster => "roster",
            Kind::VcardSelf => "vcard_self",
            Kind::VcardRoom => "vcard_room",
            Kind::VcardOccupant => "vcard_occupant",
            Kind::Carbons => "carbons",
            Kind::Mam => "mam",
            Kind::Ping => "ping",
            Kind::Nick => "nick",
        }
    }

    /// Position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Builds an iq of type `get` or `set` with one payload element. `to` of
/// `None` addresses the bot's own account, for which the server replies.
fn iq(kind_type: &str, to: Option<&str>, id: &str, payload: &str) -> String {
    let to = to
        .map(|to| format!(" to='{}'", escape(to)))
        .unwrap_or_default();
    format!(
        "<iq xmlns='{NS_CLIENT}' type='{kind_type}'{to} id='{}'>{payload}</iq>",
        escape(id)
    )
}

pub fn disco_info(to: &str, id: &str) -> String {
    iq(
        "get",
        Some(to),
        id,
        &format!("<query xmlns='{NS_DISCO_INFO}'/>"),
    )
}

pub fn disco_items(to: &str, id: &str) -> String {
    iq(
        "get",
        Some(to),
        id,
        &format!("<query xmlns='{NS_DISCO_ITEMS}'/>"),
    )
}

pub fn roster(id: &str) -> String {
    iq("get", None, id, &format!("<query xmlns='{NS_ROSTER}'/>"))
}

/// vcard-temp get; `to` of `None` fetches the bot's own vCard.
pub fn vcard(to: Option<&str>, id: &str) -> String {
    iq("get", to, id, &format!("<vCard xmlns='{NS_VCARD}'/>"))
}

pub fn carbons_enable(id: &str) -> String {
    iq("set", None, id, &format!("<enable xmlns='{NS_CARBONS}'/>"))
}

/// MAM query for the last `max` messages of `room`: RSM `<before/>` pages
/// from the end of the archive. The results carry `query_id`.
pub fn mam_last(room: &str, id: &str, query_id: &str, max: u32) -> String {
    iq(
        "set",
        Some(room),
        id,
        &format!(
            "<query xmlns='{NS_MAM}' queryid='{}'><set xmlns='{NS_RSM}'><max>{max}</max><before/></set></query>",
            escape(query_id)
        ),
    )
}

pub fn ping(to: &str, id: &str) -> String {
    iq("get", Some(to), id, &format!("<ping xmlns='{NS_PING}'/>"))
}

/// Presence to a new occupant JID of a room the bot is in: a nick change.
pub fn nick_change(occupant: &str, id: &str) -> String {
    // No MUC `<x/>`: it would mark a new join, not a change of nickname.
    format!(
        "<presence xmlns='{NS_CLIENT}' to='{}' id='{}'/>",
        escape(occupant),
        escape(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Element, Scope};

    /// Kind names are unique and indices match positions.
    #[test]
    fn kinds_have_unique_names() {
        for (position, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), position);
        }
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }

    /// The MAM query parses and carries max, before and the query id.
    #[test]
    fn mam_query_is_well_formed() {
        let xml = mam_last("r@muc.example", "i1", "q&1", 20);
        let iq = Element::parse(&xml, &Scope::client_stream()).unwrap();
        assert_eq!(iq.attr("type"), Some("set"));
        assert_eq!(iq.attr("to"), Some("r@muc.example"));
        let query = iq.child("query", NS_MAM).unwrap();
        assert_eq!(query.attr("queryid"), Some("q&1"));
        let set = query.child("set", NS_RSM).unwrap();
        assert_eq!(set.child_text("max", NS_RSM), Some("20"));
        assert!(set.child("before", NS_RSM).is_some());
    }

    /// Requests to the own account carry no `to`.
    #[test]
    fn own_account_requests_have_no_to() {
        for xml in [roster("a"), vcard(None, "b"), carbons_enable("c")] {
            let iq = Element::parse(&xml, &Scope::client_stream()).unwrap();
            assert_eq!(iq.attr("to"), None, "{xml}");
        }
    }
}
