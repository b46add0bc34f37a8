//! Browser-like requests around the MUC join, each a scenario switch.
//!
//! A browser chat client does much more than join and talk, and that work
//! costs the server more than the transport does. [`WebClient`] adds it to a
//! bot as a state machine without I/O: the bot feeds it every inbound
//! stanza and the current time, and sends the stanzas it returns. This
//! keeps the bot's talk timetable in one loop and makes the logic testable
//! without a server.
//!
//! 1. After bind ([`WebClient::after_bind`]): disco#info and disco#items of
//!    the host, roster get, carbons enable, and the bot's own vCard.
//! 2. After the join ([`WebClient::after_join`]): disco#info of each room,
//!    disco#info and disco#items of the MUC service, the room's vCard, and a
//!    MAM query for the room's last messages. The ping and nick-change
//!    timers start here.
//! 3. In the room ([`WebClient::on_element`], [`WebClient::poll`]): every
//!    occupant seen in a room presence gets a vCard request to its occupant
//!    JID, up to a cap per bot, at most [`VCARD_IN_FLIGHT`] at a time and
//!    from an offset inside the spread window. Pings and nick changes go out
//!    on their intervals.
//!
//! Each request's round trip, to a result or an error, is recorded under its
//! kind in the group's round-trip histograms. Error replies and requests
//! without a reply within the request timeout are counted by kind as well.
//! A request still outstanding when the bot leaves is counted as neither.

pub mod answer;
pub mod parse;
pub mod requests;
pub mod settings;
pub mod stats;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use crate::group::stats::GroupStats;
use crate::xml::{Element, NS_CLIENT};
use parse::{IqReply, muc_status_codes};
use requests::Kind;
pub use settings::WebClientPlan;

/// Most occupant vCard requests one bot has outstanding at once. A browser
/// fetches the avatars of a long occupant list a few at a time.
pub const VCARD_IN_FLIGHT: usize = 4;
/// Fractional part of the golden ratio. Multiples of it modulo 1 spread
/// consecutive bot indices evenly over the vCard spread window.
const GOLDEN_FRACTION: f64 = 0.618_033_988_749_895;

/// A request waiting for its reply.
#[derive(Debug)]
struct Pending {
    kind: Kind,
    sent_at: Instant,
}

/// A nickname change waiting for the room to reflect the new name.
#[derive(Debug)]
struct PendingNick {
    /// Position of the room in the bot's room list.
    room: usize,
    /// Occupant JID `ROOM/NEW_NICK` that was requested.
    occupant: String,
    /// Id of the presence, which an error reply carries.
    id: String,
    sent_at: Instant,
}

/// Actions for the bot after the web client has read one inbound stanza.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Stanzas to send now.
    pub send: Vec<String>,
    /// The room at this position now lists the bot under this occupant JID.
    pub renamed: Option<(usize, String)>,
    /// The stanza was a reply to the web client, so the bot must not read
    /// it as a room event. A nick change's unavailable presence would
    /// otherwise look like a removal.
    pub consumed: bool,
}

/// Identity of the bot that the web client acts for.
#[derive(Debug, Clone)]
pub struct BotIdentity {
    pub global_index: u32,
    pub nick: String,
    /// Bare JIDs of the bot's rooms.
    pub rooms: Vec<String>,
    /// Full JID the server bound.
    pub jid: String,
}

/// Web-client state of one bot.
#[derive(Debug)]
pub struct WebClient {
    plan: Arc<WebClientPlan>,
    stats: Arc<GroupStats>,
    global_index: u32,
    nick: String,
    rooms: Vec<String>,
    /// Current occupant JID of the bot in each room, in the order of `rooms`.
    occupants: Vec<String>,
    /// Host part of the bound JID: the server the bot pings and discovers.
    domain: String,
    next_id: u64,
    /// Outstanding iq requests by id.
    pending: HashMap<String, Pending>,
    /// Query ids of MAM queries whose `<fin/>` has not arrived.
    mam_queries: HashSet<String>,
    /// Occupant JIDs whose vCard is still to be requested.
    vcard_queue: VecDeque<String>,
    /// Occupant JIDs already queued, so a repeated presence fetches once.
    vcard_seen: HashSet<String>,
    vcard_in_flight: usize,
    /// Earliest moment for occupant vCard requests; `None` before the join.
    vcard_from: Option<Instant>,
    next_ping: Option<Instant>,
    next_nick: Option<Instant>,
    /// Nick changes done so far, which numbers the next nickname.
    nick_changes: u32,
    pending_nicks: Vec<PendingNick>,
}

impl WebClient {
    pub fn new(plan: Arc<WebClientPlan>, stats: Arc<GroupStats>, bot: BotIdentity) -> WebClient {
        let occupants = bot
            .rooms
            .iter()
            .map(|room| format!("{room}/{}", bot.nick))
            .collect();
        let domain = bare_domain(&bot.jid).to_owned();
        WebClient {
            plan,
            stats,
            global_index: bot.global_index,
            nick: bot.nick,
            rooms: bot.rooms,
            occupants,
            domain,
            next_id: 0,
            pending: HashMap::new(),
            mam_queries: HashSet::new(),
            vcard_queue: VecDeque::new(),
            vcard_seen: HashSet::new(),
            vcard_in_flight: 0,
            vcard_from: None,
            next_ping: None,
            next_nick: None,
            nick_changes: 0,
            pending_nicks: Vec::new(),
        }
    }

    /// Requests a browser sends right after bind.
    pub fn after_bind(&mut self, now: Instant) -> Vec<String> {
        let mut send = Vec::new();
        let domain = self.domain.clone();
        if self.plan.disco {
            send.push(self.request(Kind::DiscoInfo, now, |id| requests::disco_info(&domain, id)));
            send.push(self.request(Kind::DiscoItems, now, |id| {
                requests::disco_items(&domain, id)
            }));
        }
        if self.plan.roster {
            send.push(self.request(Kind::Roster, now, requests::roster));
        }
        if self.plan.carbons {
            send.push(self.request(Kind::Carbons, now, requests::carbons_enable));
        }
        if self.plan.vcard {
            send.push(self.request(Kind::VcardSelf, now, |id| requests::vcard(None, id)));
        }
        send
    }

    /// Requests a browser sends once it is in its rooms; also starts the
    /// ping and nick-change timers.
    pub fn after_join(&mut self, now: Instant) -> Vec<String> {
        let mut send = Vec::new();
        let rooms = self.rooms.clone();
        if self.plan.disco {
            for room in &rooms {
                send.push(self.request(Kind::DiscoInfo, now, |id| requests::disco_info(room, id)));
            }
            // Room lists come from the MUC service; its address is the
            // host part of a room JID.
            let mut services: Vec<&str> = rooms.iter().map(|room| bare_domain(room)).collect();
            services.dedup();
            for service in services {
                send.push(
                    self.request(Kind::DiscoInfo, now, |id| requests::disco_info(service, id)),
                );
                send.push(self.request(Kind::DiscoItems, now, |id| {
                    requests::disco_items(service, id)
                }));
            }
        }
        if self.plan.vcard {
            for room in &rooms {
                send.push(self.request(Kind::VcardRoom, now, |id| requests::vcard(Some(room), id)));
            }
        }
        if self.plan.mam_max > 0 {
            for room in &rooms {
                let max = self.plan.mam_max;
                let mut query_id = String::new();
                send.push(self.request(Kind::Mam, now, |id| {
                    query_id = mam_query_id(id);
                    requests::mam_last(room, id, &query_id, max)
                }));
                self.mam_queries.insert(query_id);
            }
        }

        self.vcard_from = Some(now + self.vcard_offset());
        self.next_ping = self.plan.ping_interval.map(|interval| now + interval);
        self.next_nick = self.plan.nick_change_every.map(|every| now + every);
        send.extend(self.drain_vcards(now));
        send
    }

    /// Reads one inbound stanza: replies to the web client's requests,
    /// archived messages, nick-change presences and occupant presences.
    pub fn on_element(&mut self, element: &Element, now: Instant) -> Reaction {
        let mut reaction = Reaction::default();
        if element.ns != NS_CLIENT {
            return reaction;
        }
        match element.name.as_str() {
            "iq" => reaction.consumed = self.on_iq(element, now),
            "message" => reaction.consumed = self.on_message(element),
            "presence" => self.on_presence(element, now, &mut reaction),
            _ => {}
        }
        reaction.send.extend(self.drain_vcards(now));
        reaction
    }

    /// Counts timed-out requests and sends what is due: occupant vCards,
    /// pings and nick changes.
    pub fn poll(&mut self, now: Instant) -> Vec<String> {
        self.expire(now);
        let mut send = self.drain_vcards(now);

        if let (Some(due), Some(interval)) = (self.next_ping, self.plan.ping_interval)
            && due <= now
        {
            let domain = self.domain.clone();
            send.push(self.request(Kind::Ping, now, |id| requests::ping(&domain, id)));
            self.next_ping = Some(next_due(due, interval, now));
        }

        if let (Some(due), Some(every)) = (self.next_nick, self.plan.nick_change_every)
            && due <= now
        {
            // One change at a time: the next waits until this one is done.
            if self.pending_nicks.is_empty() {
                send.extend(self.change_nicks(now));
            }
            self.next_nick = Some(next_due(due, every, now));
        }
        send
    }

    /// Next moment [`WebClient::poll`] has work, if any.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        let timeout = self.plan.request_timeout;
        let expiries = self
            .pending
            .values()
            .map(|pending| pending.sent_at + timeout)
            .chain(self.pending_nicks.iter().map(|nick| nick.sent_at + timeout));
        let vcards = self.vcard_from.filter(|from| {
            *from > now && !self.vcard_queue.is_empty() && self.vcard_in_flight < VCARD_IN_FLIGHT
        });
        expiries
            .chain(vcards)
            .chain(self.next_ping)
            .chain(self.next_nick)
            .min()
    }

    /// Sends one iq request of `kind` and remembers it under a fresh id.
    fn request(&mut self, kind: Kind, now: Instant, build: impl FnOnce(&str) -> String) -> String {
        let id = self.fresh_id();
        let stanza = build(&id);
        self.pending.insert(id, Pending { kind, sent_at: now });
        stanza
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("wc{}", self.next_id)
    }

    /// Handles an iq reply; true when it is the reply to one of our requests.
    fn on_iq(&mut self, iq: &Element, now: Instant) -> bool {
        let Some(id) = iq.attr("id") else {
            return false;
        };
        let Some(pending) = self.pending.remove(id) else {
            return false;
        };
        if pending.kind == Kind::Mam {
            // Prosody sends every archived message before the iq, so none
            // arrives for this query after its reply.
            self.mam_queries.remove(&mam_query_id(id));
        }
        if pending.kind == Kind::VcardOccupant {
            self.vcard_in_flight = self.vcard_in_flight.saturating_sub(1);
        }
        self.stats.round_trips.record(
            pending.kind.as_str(),
            now.saturating_duration_since(pending.sent_at),
        );
        match parse::iq_reply(iq) {
            Ok(IqReply::Result(result)) => {
                if pending.kind == Kind::Mam {
                    self.finish_mam(result);
                }
            }
            Ok(IqReply::Error { condition }) => {
                debug!(kind = pending.kind.as_str(), %condition, "request returned an error");
                self.stats.web.record_error(pending.kind);
            }
            Err(err) => {
                debug!(kind = pending.kind.as_str(), %err, "malformed reply");
                self.stats.web.record_error(pending.kind);
            }
        }
        true
    }

    /// Ends a MAM query at its `<fin/>`.
    fn finish_mam(&mut self, result: &Element) {
        match parse::mam_fin(result) {
            Ok(fin) => {
                debug!(complete = fin.complete, count = ?fin.count, "archive query finished")
            }
            Err(err) => {
                debug!(%err, "archive query result without <fin/>");
                self.stats.web.record_error(Kind::Mam);
            }
        }
    }

    /// Counts archived messages of our queries; true when it was one.
    fn on_message(&mut self, message: &Element) -> bool {
        match parse::archived_message(message) {
            Ok(Some(archived)) if self.mam_queries.contains(archived.query_id) => {
                self.stats
                    .web
                    .mam_messages
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            Ok(_) => false,
            Err(err) => {
                debug!(%err, "malformed archived message");
                self.stats.web.record_error(Kind::Mam);
                true
            }
        }
    }

    fn on_presence(&mut self, presence: &Element, now: Instant, reaction: &mut Reaction) {
        let from = presence.attr("from").unwrap_or_default();
        let kind = presence.attr("type");

        // A rejected nick change comes back as an error from the new JID
        // with the id of our presence.
        if kind == Some("error")
            && let Some(position) = self
                .pending_nicks
                .iter()
                .position(|nick| Some(nick.id.as_str()) == presence.attr("id"))
        {
            let nick = self.pending_nicks.swap_remove(position);
            debug!(condition = %parse::error_condition(presence), "nick change rejected");
            self.stats.web.record_error(Kind::Nick);
            self.stats.round_trips.record(
                Kind::Nick.as_str(),
                now.saturating_duration_since(nick.sent_at),
            );
            reaction.consumed = true;
            return;
        }

        let codes = muc_status_codes(presence);
        // Checked before our own occupant JIDs, which the 303 has already
        // moved to the new name.
        if let Some(position) = self
            .pending_nicks
            .iter()
            .position(|nick| nick.occupant == from)
            && kind.is_none()
            && codes.contains(&110)
        {
            let nick = self.pending_nicks.swap_remove(position);
            self.occupants[nick.room] = nick.occupant;
            self.stats.round_trips.record(
                Kind::Nick.as_str(),
                now.saturating_duration_since(nick.sent_at),
            );
            return;
        }

        if let Some(room) = self.occupants.iter().position(|occupant| occupant == from) {
            // Our own old name leaving with status 303 means the change is
            // under way; the bot must not read it as a removal.
            if kind == Some("unavailable") && codes.contains(&303) {
                match parse::new_nick(presence) {
                    Ok(nick) => {
                        let occupant = format!("{}/{nick}", self.rooms[room]);
                        self.occupants[room] = occupant.clone();
                        reaction.renamed = Some((room, occupant));
                        reaction.consumed = true;
                    }
                    Err(err) => debug!(%err, "nick change presence without the new nick"),
                }
            }
            return;
        }

        // Another occupant: a browser shows its avatar, so it fetches its vCard.
        let in_our_room = from
            .split_once('/')
            .is_some_and(|(room, _)| self.rooms.iter().any(|r| r == room));
        if self.plan.vcard
            && kind.is_none()
            && in_our_room
            && self.vcard_seen.len() < self.plan.vcard_max_occupants as usize
            && !self.pending_nicks.iter().any(|nick| nick.occupant == from)
            && self.vcard_seen.insert(from.to_owned())
        {
            self.vcard_queue.push_back(from.to_owned());
        }
    }

    /// Sends queued occupant vCard requests once the spread offset has
    /// passed, keeping at most [`VCARD_IN_FLIGHT`] outstanding.
    fn drain_vcards(&mut self, now: Instant) -> Vec<String> {
        let mut send = Vec::new();
        if self.vcard_from.is_none_or(|from| from > now) {
            return send;
        }
        while self.vcard_in_flight < VCARD_IN_FLIGHT
            && let Some(occupant) = self.vcard_queue.pop_front()
        {
            self.vcard_in_flight += 1;
            send.push(self.request(Kind::VcardOccupant, now, |id| {
                requests::vcard(Some(&occupant), id)
            }));
        }
        send
    }

    /// Counts requests that have waited longer than the request timeout.
    fn expire(&mut self, now: Instant) {
        let timeout = self.plan.request_timeout;
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, pending)| now.saturating_duration_since(pending.sent_at) >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(pending) = self.pending.remove(&id) {
                debug!(kind = pending.kind.as_str(), "request timed out");
                self.stats.web.record_timeout(pending.kind);
                if pending.kind == Kind::VcardOccupant {
                    self.vcard_in_flight = self.vcard_in_flight.saturating_sub(1);
                }
            }
        }
        let before = self.pending_nicks.len();
        self.pending_nicks
            .retain(|nick| now.saturating_duration_since(nick.sent_at) < timeout);
        for _ in self.pending_nicks.len()..before {
            self.stats.web.record_timeout(Kind::Nick);
        }
    }

    /// Asks each room for the next nickname, `NICK~N`.
    fn change_nicks(&mut self, now: Instant) -> Vec<String> {
        self.nick_changes += 1;
        let nick = format!("{}~{}", self.nick, self.nick_changes);
        let mut send = Vec::new();
        for room in 0..self.rooms.len() {
            let occupant = format!("{}/{nick}", self.rooms[room]);
            let id = self.fresh_id();
            send.push(requests::nick_change(&occupant, &id));
            self.pending_nicks.push(PendingNick {
                room,
                occupant,
                id,
                sent_at: now,
            });
        }
        send
    }

    /// Offset of this bot's occupant vCard requests inside the spread window.
    fn vcard_offset(&self) -> Duration {
        let fraction = (f64::from(self.global_index) * GOLDEN_FRACTION).fract();
        self.plan.vcard_spread.mul_f64(fraction)
    }
}

/// Next due time of a timer that fired at `due`. It keeps its cadence, but
/// one far behind skips the missed times instead of firing a burst.
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now { next } else { now + interval }
}

/// `queryid` of the MAM query sent in the iq with this id.
fn mam_query_id(iq_id: &str) -> String {
    format!("q{iq_id}")
}

/// Host part of a JID: between `@` (if any) and `/` (if any).
fn bare_domain(jid: &str) -> &str {
    let bare = jid.split_once('/').map_or(jid, |(bare, _)| bare);
    bare.split_once('@').map_or(bare, |(_, host)| host)
}

#[cfg(test)]
mod tests;
