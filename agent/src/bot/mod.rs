//! Lifecycle of one bot, run as one tokio task.
//!
//! 1. Sleep until the bot's start time: start_at + global index / join_rate.
//!    The wake-up's lag behind that time goes into the join-lag histogram,
//!    and a lag over [`LATE_JOIN_THRESHOLD`] counts as a late join.
//! 2. Connect and negotiate a session within `connect_timeout`. The moment
//!    bind (and stream management, if requested) completes is "connected";
//!    talk and leave times are offsets from it. The duration of each step
//!    that succeeded goes into the group's round trips by kind.
//! 3. Join its rooms: presence to `ROOM/NICK` with an MUC `<x/>` that
//!    requests no history, sent to every room of the bot at once. The bot
//!    has joined when its own presence (status code 110) has come back from
//!    each room; a presence of type error fails the join. A bot that created
//!    a room (status 201) unlocks it first, and a join rejected with
//!    `item-not-found` is retried, because the room may still be locked (see
//!    [`instant_room`]). Bounded by `join_timeout`. Each room's wait, from
//!    the first join presence to the self-presence, is recorded as a `join`
//!    round trip.
//! 4. Talk: from `talk_after`, send groupchat messages on a fixed timetable
//!    (message k is due at talk start + k / talk_rate) for `talk_duration`,
//!    to the bot's rooms in turn.
//!    Each send's lag behind its due time goes into the send-lag histogram,
//!    and a lag over [`LATE_SEND_THRESHOLD`] counts as a late send. Every groupchat message with a body and without `<delay/>`
//!    (history) is counted; the bot's own reflections also give a latency.
//! 5. Leave at `leave_after`: unavailable presence to every room, a short
//!    wait for the rooms to confirm, then a clean stream close.
//!
//! With a `web_client` plan, the bot also sends a browser's requests after
//! bind and after the join, and on timers while it talks ([`crate::webclient`]).
//! Every bot replies to the iq get and set requests it receives.
//!
//! A failure at any step ends the bot; it is counted by kind and logged with
//! the bot's nickname. Cancellation (group deadline or a dropped report
//! stream) closes the connection and counts the bot as timed out.

mod instant_room;
mod marker;
mod web;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::AgentClock;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, warn};

use crate::error::{BotError, FailureKind};
use crate::group::plan::GroupPlan;
use crate::group::stats::{GaugeGuard, GroupStats, Phase};
use crate::muc::{NS_DELAY, NS_MUC, NS_MUC_USER, NS_STANZAS};
use crate::sasl::xmpp::Login;
use crate::session::{Inbound, Session, is_stanza};
use crate::steps::StepTimes;
use crate::webclient::WebClient;
use crate::xml::{Element, NS_CLIENT, escape};

pub use marker::Marker;

/// Sends later than this behind their due time count in `late_sends`.
pub const LATE_SEND_THRESHOLD: Duration = Duration::from_millis(100);
/// Connects that start later than this behind their scheduled time count in
/// `late_joins`.
pub const LATE_JOIN_THRESHOLD: Duration = Duration::from_millis(100);
/// Maximum wait for the room to confirm a leave before the stream is closed.
const LEAVE_CONFIRM_WAIT: Duration = Duration::from_secs(2);

/// Reason a bot stopped before leaving normally.
enum Stop {
    Failed(BotError),
    /// The group's cancellation token fired.
    Cancelled,
}

impl From<BotError> for Stop {
    fn from(err: BotError) -> Self {
        Stop::Failed(err)
    }
}

/// Meaning of an inbound element for the bot.
enum Observed {
    /// A room echoed the bot's own presence (status 110); `room` is the
    /// position in the bot's room list. `created` marks a room that this
    /// join created (status 201).
    SelfPresence {
        room: usize,
        available: bool,
        created: bool,
    },
    /// The room at position `room` rejected the bot's presence.
    JoinError {
        room: usize,
        condition: String,
    },
    /// The room at position `room` responded to the bot's instant-room request.
    InstantRoom {
        room: usize,
        response: instant_room::Response,
    },
    Other,
}

/// One bot of a group slice.
pub struct Bot {
    global_index: u32,
    /// Position k of the bot within its slice.
    slice_position: u32,
    nick: String,
    /// Bare JIDs of the bot's rooms, first room first.
    rooms: Vec<String>,
    /// Occupant JIDs `ROOM/NICK` in the same order, which are also the
    /// `from` of the bot's reflections. A nick change replaces an entry.
    occupants: Mutex<Vec<String>>,
    /// Local address to bind before connecting, or `None` for the kernel's choice.
    source_address: Option<std::net::IpAddr>,
    plan: Arc<GroupPlan>,
    stats: Arc<GroupStats>,
    /// Web-client state, created after bind when the plan has one.
    web: Mutex<Option<WebClient>>,
}

impl Bot {
    /// Creates the k-th bot of the slice.
    pub fn new(plan: Arc<GroupPlan>, stats: Arc<GroupStats>, k: u32) -> Bot {
        let global_index = plan.global_index(k);
        let nick = plan.nickname(global_index);
        let rooms: Vec<String> = plan
            .rooms
            .rooms_of(global_index)
            .into_iter()
            .map(|room| plan.rooms.name(room).to_owned())
            .collect();
        let occupants = Mutex::new(rooms.iter().map(|room| format!("{room}/{nick}")).collect());
        let source_address = plan.source_address(k);
        Bot {
            global_index,
            slice_position: k,
            nick,
            rooms,
            occupants,
            source_address,
            plan,
            stats,
            web: Mutex::new(None),
        }
    }

    /// Runs the whole lifecycle and records its own outcome: errors are
    /// counted by kind, not returned.
    pub async fn run(self, cancel: CancellationToken) {
        let span = tracing::info_span!("bot", bot = %self.nick, group = %self.plan.group);
        self.run_inner(cancel).instrument(span).await;
    }

    async fn run_inner(self, cancel: CancellationToken) {
        let start = instant_at(self.plan.clock, self.plan.start_of(self.global_index));
        tokio::select! {
            _ = cancel.cancelled() => {
                // Never started: the deadline passed or the client went away.
                self.stats.record_failure(FailureKind::Timeout);
                return;
            }
            _ = tokio::time::sleep_until(start) => {}
        }
        // Lag behind the schedule, on the wall clock: `start` maps a time
        // already past to now, so it would hide a bot spawned late.
        let scheduled = self.plan.start_of(self.global_index);
        let join_lag = u64::try_from(self.plan.clock.now() - scheduled).unwrap_or(0);
        self.stats.join_lag.record(join_lag);
        if Duration::from_micros(join_lag) > LATE_JOIN_THRESHOLD {
            self.stats
                .late_joins
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }

        self.stats
            .connect_attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let connecting = GaugeGuard::enter(&self.stats.connecting);
        let mut steps = StepTimes::new();
        let credentials = self
            .plan
            .login
            .credentials(self.slice_position, self.global_index);
        let login = Login {
            mechanism: self.plan.login.mechanism,
            credentials: credentials.as_ref(),
            cache: &self.plan.login.cache,
        };
        let established = tokio::select! {
            _ = cancel.cancelled() => Err(Stop::Cancelled),
            result = tokio::time::timeout(
                self.plan.connect_timeout,
                Session::establish_with(&self.plan.endpoint, self.source_address, self.plan.stream_management, login, &mut steps),
            ) => match result {
                Ok(Ok(session)) => Ok(session),
                Ok(Err(err)) => Err(Stop::Failed(err)),
                Err(_) => Err(Stop::Failed(BotError::Timeout { step: "connect", after: self.plan.connect_timeout })),
            },
        };
        drop(connecting);
        steps.record_into(&self.stats.round_trips);

        let mut session = match established {
            Ok(session) => session,
            Err(stop) => {
                self.record_stop(stop, None).await;
                return;
            }
        };

        let connected_at = Instant::now();
        let _connected = GaugeGuard::enter(&self.stats.connected);
        self.stats
            .connected_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        debug!(jid = session.jid(), "connected");

        let outcome = tokio::select! {
            _ = cancel.cancelled() => Err(Stop::Cancelled),
            result = self.in_room(&mut session, connected_at) => result.map_err(Stop::Failed),
        };
        match outcome {
            Ok(()) => {
                self.stats
                    .left_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                debug!("left");
            }
            Err(stop) => self.record_stop(stop, Some(&mut session)).await,
        }
    }

    /// Counts and logs a stop, and closes the session when it is still usable.
    async fn record_stop(&self, stop: Stop, session: Option<&mut Session>) {
        let usable = match &stop {
            Stop::Cancelled => {
                debug!("stopped by the group deadline or a dropped report stream");
                self.stats.record_failure(FailureKind::Timeout);
                true
            }
            Stop::Failed(err) => {
                let kind = err.kind();
                warn!(kind = %kind, %err, "bot failed");
                self.stats.record_failure(kind);
                // After these the server has gone or the stream is unusable.
                !matches!(
                    kind,
                    FailureKind::Closed
                        | FailureKind::StreamError
                        | FailureKind::Io
                        | FailureKind::Protocol
                        | FailureKind::Oversized
                        | FailureKind::Stalled
                )
            }
        };
        if let (true, Some(session)) = (usable, session)
            && let Err(err) = session.close().await
        {
            debug!(%err, "closing the stream after a stop failed");
        }
    }

    /// Join, talk and leave on an established session.
    async fn in_room(&self, session: &mut Session, connected_at: Instant) -> Result<(), BotError> {
        self.web_after_bind(session).await?;
        self.join(session).await?;
        let joined = GaugeGuard::enter(&self.stats.joined);
        self.web_after_join(session).await?;

        self.talk(session, connected_at).await?;

        drop(joined);
        self.leave(session).await
    }

    async fn join(&self, session: &mut Session) -> Result<(), BotError> {
        // Each room's join is timed from its first presence to its
        // self-presence, so a retry while the room is locked counts in it.
        let room_count = self.lock_occupants().len();
        let mut sent_at = Vec::with_capacity(room_count);
        for room in 0..room_count {
            self.send_join(session, room).await?;
            sent_at.push(Instant::now());
        }

        let mut pending = vec![true; room_count];
        // Rooms this bot created and requested to unlock, until they respond.
        let mut unlocking = vec![false; room_count];
        let deadline = Instant::now() + self.plan.join_timeout;
        while pending.contains(&true) || unlocking.contains(&true) {
            let inbound = tokio::time::timeout_at(deadline, session.next())
                .await
                .map_err(|_| BotError::Timeout {
                    step: "room join",
                    after: self.plan.join_timeout,
                })??;
            match self.handle(session, inbound).await? {
                Observed::SelfPresence {
                    room,
                    available: true,
                    created,
                } => {
                    if created && pending[room] {
                        let request = instant_room::request(&self.rooms[room], room);
                        session.send(&request).await?;
                        unlocking[room] = true;
                    }
                    if pending[room] {
                        pending[room] = false;
                        self.stats
                            .round_trips
                            .record("join", sent_at[room].elapsed());
                    }
                }
                Observed::JoinError { room, condition } => {
                    // A locked room looks missing to everyone but its
                    // creator; retry while the creator may still unlock it.
                    let retry_at = Instant::now() + instant_room::JOIN_RETRY_PAUSE;
                    if condition != "item-not-found" || !pending[room] || retry_at >= deadline {
                        return Err(BotError::JoinRejected { condition });
                    }
                    debug!(room = %self.rooms[room], "room not found, maybe still locked; retrying the join");
                    tokio::time::sleep_until(retry_at).await;
                    self.send_join(session, room).await?;
                }
                Observed::InstantRoom { room, response } => {
                    if let instant_room::Response::Rejected { condition } = response {
                        // Harmless on a server that never locked the room.
                        // On one that did, the other joiners fail visibly.
                        warn!(room = %self.rooms[room], %condition, "the room rejected the instant-room form");
                    }
                    unlocking[room] = false;
                }
                Observed::SelfPresence { .. } | Observed::Other => {}
            }
        }

        self.stats
            .joined_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.stats.record_phase(Phase::Join, self.plan.clock.now());
        debug!(rooms = self.rooms.len(), "joined the rooms");
        Ok(())
    }

    /// Sends the join presence to the `room`-th room of the bot.
    async fn send_join(&self, session: &mut Session, room: usize) -> Result<(), BotError> {
        // The occupant JID is copied out so that no lock is held across the send.
        let occupant = self.lock_occupants()[room].clone();
        let presence = format!(
            "<presence xmlns='{NS_CLIENT}' to='{}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>",
            escape(&occupant)
        );
        session.send(&presence).await
    }

    /// Sends on the timetable and reads the room until the leave time.
    async fn talk(&self, session: &mut Session, connected_at: Instant) -> Result<(), BotError> {
        let talk_start = connected_at + self.plan.talk_after;
        let leave_at = connected_at + self.plan.leave_after;
        let mut seq: u64 = 0;

        loop {
            // Message `seq` is due at talk_start + seq / rate, independent of
            // when earlier sends happened, so a slow send does not shift the
            // rest of the timetable.
            // A talk rate of 0 means an idle bot: it only reads until it leaves.
            let due = if self.plan.talk_rate > 0.0 {
                let offset = Duration::from_secs_f64(seq as f64 / self.plan.talk_rate);
                (offset < self.plan.talk_duration)
                    .then_some(talk_start + offset)
                    .filter(|due| *due < leave_at)
            } else {
                None
            };

            let web_wake = self.web_wake();

            tokio::select! {
                _ = tokio::time::sleep_until(web_wake.unwrap_or(leave_at)), if web_wake.is_some() => {
                    self.web_poll(session).await?;
                }
                _ = tokio::time::sleep_until(due.unwrap_or(leave_at)), if due.is_some() => {
                    if let Some(due) = due {
                        self.send_message(session, seq, due).await?;
                        seq += 1;
                    }
                }
                _ = tokio::time::sleep_until(leave_at) => return Ok(()),
                inbound = session.next() => {
                    let inbound = inbound?;
                    if let Observed::SelfPresence { available: false, .. } = self.handle(session, inbound).await? {
                        return Err(BotError::JoinRejected { condition: "removed from the room".to_owned() });
                    }
                }
            }
        }
    }

    async fn send_message(
        &self,
        session: &mut Session,
        seq: u64,
        due: Instant,
    ) -> Result<(), BotError> {
        let send_lag = Instant::now().saturating_duration_since(due);
        self.stats.send_lag.record(micros(send_lag));
        if send_lag > LATE_SEND_THRESHOLD {
            self.stats
                .late_sends
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let sent_unix_micros = self.plan.clock.now();
        let body = Marker {
            nick: &self.nick,
            seq,
            sent_unix_micros,
        }
        .to_body(self.plan.body_bytes);
        // Rooms take turns, so each of the bot's rooms gets an equal share.
        let room = &self.rooms[(seq % self.rooms.len() as u64) as usize];
        let message = format!(
            "<message xmlns='{NS_CLIENT}' to='{}' type='groupchat'><body>{}</body></message>",
            escape(room),
            escape(&body)
        );
        session.send(&message).await?;
        self.stats
            .messages_sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.stats.record_phase(Phase::Talk, sent_unix_micros);
        Ok(())
    }

    /// Leaves the rooms, waits briefly for the confirmations, closes the stream.
    async fn leave(&self, session: &mut Session) -> Result<(), BotError> {
        let occupants = self.lock_occupants().clone();
        for occupant in &occupants {
            let presence = format!(
                "<presence xmlns='{NS_CLIENT}' to='{}' type='unavailable'/>",
                escape(occupant)
            );
            session.send(&presence).await?;
        }
        self.stats.record_phase(Phase::Leave, self.plan.clock.now());

        // Messages that arrive before the confirmations still count.
        let confirm = async {
            let mut pending = vec![true; occupants.len()];
            while pending.contains(&true) {
                let inbound = session.next().await?;
                if let Observed::SelfPresence {
                    room,
                    available: false,
                    ..
                } = self.handle(session, inbound).await?
                {
                    pending[room] = false;
                }
            }
            Ok::<(), BotError>(())
        };
        match tokio::time::timeout(LEAVE_CONFIRM_WAIT, confirm).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => debug!(%err, "stream failed while waiting for the leave confirmation"),
            Err(_) => debug!("room did not confirm the leave in time"),
        }

        // The bot has left the room; a failed close is not a bot failure.
        if let Err(err) = session.close().await {
            debug!(%err, "closing the stream failed");
        }
        Ok(())
    }

    /// Replies to ack requests, and classifies and counts one inbound element.
    async fn handle(&self, session: &mut Session, inbound: Inbound) -> Result<Observed, BotError> {
        match inbound {
            Inbound::AckRequest => {
                session.send_ack().await?;
                Ok(Observed::Other)
            }
            Inbound::End => Err(BotError::Closed),
            Inbound::Stanza(element) => {
                let consumed = self.web_react(session, &element).await?;
                let observed = self.observe(&element);
                Ok(if consumed { Observed::Other } else { observed })
            }
        }
    }

    fn observe(&self, element: &Element) -> Observed {
        use std::sync::atomic::Ordering::Relaxed;

        if is_stanza(element) {
            self.stats.stanzas_received.fetch_add(1, Relaxed);
        }
        if element.ns != NS_CLIENT {
            return Observed::Other;
        }

        match element.name.as_str() {
            "message" => {
                self.observe_message(element);
                Observed::Other
            }
            "presence" => self.observe_presence(element),
            "iq" => self.observe_iq(element),
            _ => Observed::Other,
        }
    }

    fn observe_message(&self, message: &Element) {
        use std::sync::atomic::Ordering::Relaxed;

        if message.attr("type") != Some("groupchat") || message.child("delay", NS_DELAY).is_some() {
            return;
        }
        let Some(body) = message.child_text("body", NS_CLIENT) else {
            // Subject changes and chat states carry no body.
            return;
        };
        self.stats.messages_received.fetch_add(1, Relaxed);

        let Some(marker) = Marker::parse(body) else {
            return;
        };
        let from = message.attr("from").unwrap_or_default();
        let own = self
            .lock_occupants()
            .iter()
            .any(|occupant| occupant == from);
        if marker.nick == self.nick && own {
            self.stats.reflections.fetch_add(1, Relaxed);
            // NOTE: the latency subtracts two wall-clock readings, so a clock
            // step on the agent host during a run skews these samples.
            let latency = self
                .plan
                .clock
                .now()
                .saturating_sub(marker.sent_unix_micros)
                .max(0);
            self.stats.latency.record(latency as u64);
        }
    }

    fn observe_presence(&self, presence: &Element) -> Observed {
        let from = presence.attr("from").unwrap_or_default();
        let occupants = self.lock_occupants();
        let from_room = self
            .rooms
            .iter()
            .zip(occupants.iter())
            .position(|(room, occupant)| from == room || from == occupant);

        if presence.attr("type") == Some("error")
            && let Some(room) = from_room
        {
            let condition = presence
                .child("error", NS_CLIENT)
                .and_then(|error| error.children.iter().find(|c| c.ns == NS_STANZAS))
                .map_or("undefined-condition", |c| c.name.as_str())
                .to_owned();
            return Observed::JoinError { room, condition };
        }

        let Some(room) = occupants.iter().position(|occupant| occupant == from) else {
            return Observed::Other;
        };
        let has_status = |code: &str| {
            presence.child("x", NS_MUC_USER).is_some_and(|x| {
                x.children_named("status", NS_MUC_USER)
                    .any(|status| status.attr("code") == Some(code))
            })
        };
        if has_status("110") {
            return Observed::SelfPresence {
                room,
                available: presence.attr("type") != Some("unavailable"),
                created: has_status(instant_room::STATUS_CREATED),
            };
        }
        Observed::Other
    }

    /// Matches a response to an instant-room request to the room it came from.
    fn observe_iq(&self, iq: &Element) -> Observed {
        let Some((room, response)) = instant_room::parse_response(iq) else {
            return Observed::Other;
        };
        let from_that_room = self
            .rooms
            .get(room)
            .is_some_and(|jid| iq.attr("from") == Some(jid.as_str()));
        if !from_that_room {
            return Observed::Other;
        }
        Observed::InstantRoom { room, response }
    }
}

/// Maps a Unix-microsecond time of `clock` onto the monotonic clock. A time
/// in the past maps to now, and one more than a year ahead to a year ahead.
pub fn instant_at(clock: AgentClock, unix_micros: i64) -> Instant {
    const MAX_AHEAD: Duration = Duration::from_secs(365 * 24 * 3600);
    let ahead = unix_micros.saturating_sub(clock.now());
    let ahead = Duration::from_micros(u64::try_from(ahead).unwrap_or(0)).min(MAX_AHEAD);
    Instant::now() + ahead
}

/// Whole microseconds of `duration`, saturating at `u64::MAX`.
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
