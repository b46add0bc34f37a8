//! Reading MUC (XEP-0045) stanzas for an occupant of several rooms, shared
//! by the client bots and the flooding component. The two differ only in
//! the stanza namespace: `jabber:client` on c2s and WebSocket streams,
//! `jabber:component:accept` on a component stream.

use std::sync::atomic::Ordering::Relaxed;

use crate::bot::Marker;
use crate::clock::AgentClock;
use crate::group::stats::GroupStats;
use crate::xml::Element;

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_DELAY: &str = "urn:xmpp:delay";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Meaning of a presence for the occupant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomPresence {
    /// A room echoed the occupant's own presence (status 110); `room` is
    /// the position in the occupant's room list.
    SelfPresence {
        room: usize,
        available: bool,
    },
    /// A room rejected the occupant's presence.
    JoinError {
        condition: String,
    },
    Other,
}

/// The occupant's identity in its rooms.
#[derive(Debug, Clone, Copy)]
pub struct Occupant<'a> {
    /// Stanza namespace of the stream.
    pub ns: &'a str,
    /// Nickname, which the body markers carry.
    pub nick: &'a str,
    /// Bare JIDs of the rooms.
    pub rooms: &'a [String],
    /// `ROOM/NICK` in the same order, which are also the `from` of the
    /// occupant's reflections.
    pub occupants: &'a [String],
}

impl Occupant<'_> {
    /// Classifies a presence stanza.
    pub fn presence(&self, presence: &Element) -> RoomPresence {
        let from = presence.attr("from").unwrap_or_default();
        let from_room = self
            .rooms
            .iter()
            .zip(self.occupants)
            .any(|(room, occupant)| from == room || from == occupant);

        if presence.attr("type") == Some("error") && from_room {
            let condition = presence
                .child("error", self.ns)
                .and_then(|error| error.children.iter().find(|c| c.ns == NS_STANZAS))
                .map_or("undefined-condition", |c| c.name.as_str())
                .to_owned();
            return RoomPresence::JoinError { condition };
        }

        let Some(room) = self.occupants.iter().position(|occupant| occupant == from) else {
            return RoomPresence::Other;
        };
        let is_self = presence.child("x", NS_MUC_USER).is_some_and(|x| {
            x.children_named("status", NS_MUC_USER)
                .any(|status| status.attr("code") == Some("110"))
        });
        if is_self {
            return RoomPresence::SelfPresence {
                room,
                available: presence.attr("type") != Some("unavailable"),
            };
        }
        RoomPresence::Other
    }

    /// Counts a message stanza in `stats`. Every groupchat message with a
    /// body and without `<delay/>` (history) counts as received, and the
    /// occupant's own reflections also give a latency sample.
    pub fn count_message(&self, message: &Element, stats: &GroupStats, clock: AgentClock) {
        if message.attr("type") != Some("groupchat") || message.child("delay", NS_DELAY).is_some() {
            return;
        }
        let Some(body) = message.child_text("body", self.ns) else {
            // Subject changes and chat states carry no body.
            return;
        };
        stats.messages_received.fetch_add(1, Relaxed);

        let Some(marker) = Marker::parse(body) else {
            return;
        };
        let from = message.attr("from").unwrap_or_default();
        if marker.nick == self.nick && self.occupants.iter().any(|occupant| occupant == from) {
            stats.reflections.fetch_add(1, Relaxed);
            // NOTE: the latency subtracts two wall-clock readings, so a clock
            // step on the agent host during a run skews these samples.
            let latency = clock.now().saturating_sub(marker.sent_unix_micros).max(0);
            stats.latency.record(latency as u64);
        }
    }
}
