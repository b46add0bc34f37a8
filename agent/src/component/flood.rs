//! The flood itself: one component connection that joins the group's rooms
//! and sends on a fixed timetable. Its outcome goes into the slice's
//! [`GroupStats`] like a bot's, so the report needs no new fields.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use super::settings::ComponentSettings;
use super::stream::{ComponentStream, ComponentTarget};
use crate::bot::{LATE_JOIN_THRESHOLD, LATE_SEND_THRESHOLD, Marker, instant_at};
use crate::error::{BotError, FailureKind};
use crate::group::plan::GroupPlan;
use crate::group::stats::{GaugeGuard, GroupStats, Phase};
use crate::muc::{NS_MUC, NS_STANZAS, Occupant, RoomPresence};
use crate::transport::Endpoint;
use crate::xml::{Element, NS_COMPONENT, escape};

/// Maximum wait after the last send for its reflections to come back.
const REFLECTION_WAIT: Duration = Duration::from_secs(2);
/// Maximum wait for the rooms to confirm the leave.
const LEAVE_CONFIRM_WAIT: Duration = Duration::from_secs(2);
/// Local part of the component's sender JID.
const SENDER_LOCAL: &str = "flood";

/// The component of one group slice.
pub struct Flood {
    plan: Arc<GroupPlan>,
    stats: Arc<GroupStats>,
    settings: ComponentSettings,
    /// Nickname in every room, also the marker's sender name.
    nick: String,
    /// Full JID the component sends from.
    sender: String,
    /// Bare JIDs of every room of the group.
    rooms: Vec<String>,
    /// `ROOM/NICK` in the same order.
    occupants: Vec<String>,
}

impl Flood {
    /// Builds the flood of a plan with component settings. Returns `None`
    /// for a plan of client bots.
    pub fn new(plan: Arc<GroupPlan>, stats: Arc<GroupStats>) -> Option<Flood> {
        let settings = plan.component.clone()?;
        let nick = plan.group.clone();
        let sender = format!("{SENDER_LOCAL}@{}/{}", plan.endpoint.domain(), plan.group);
        let rooms: Vec<String> = (0..plan.rooms.len())
            .map(|room| plan.rooms.name(room).to_owned())
            .collect();
        let occupants = rooms.iter().map(|room| format!("{room}/{nick}")).collect();
        Some(Flood {
            plan,
            stats,
            settings,
            nick,
            sender,
            rooms,
            occupants,
        })
    }

    /// Runs the flood to its end and records the outcome in the stats:
    /// errors are counted by kind, not returned.
    pub async fn run(self, cancel: CancellationToken) {
        let span =
            tracing::info_span!("component", group = %self.plan.group, sender = %self.sender);
        self.run_inner(cancel).instrument(span).await;
    }

    async fn run_inner(self, cancel: CancellationToken) {
        let scheduled = self.plan.start_at_unix_micros;
        tokio::select! {
            _ = cancel.cancelled() => {
                self.stats.record_failure(FailureKind::Timeout);
                return;
            }
            _ = tokio::time::sleep_until(instant_at(self.plan.clock, scheduled)) => {}
        }
        let join_lag = u64::try_from(self.plan.clock.now() - scheduled).unwrap_or(0);
        self.stats.join_lag.record(join_lag);
        if Duration::from_micros(join_lag) > LATE_JOIN_THRESHOLD {
            self.stats.late_joins.fetch_add(1, Relaxed);
        }

        self.stats.connect_attempts.fetch_add(1, Relaxed);
        let connecting = GaugeGuard::enter(&self.stats.connecting);
        let started = Instant::now();
        let connected = tokio::select! {
            _ = cancel.cancelled() => None,
            result = tokio::time::timeout(self.plan.connect_timeout, self.connect()) => Some(match result {
                Ok(result) => result,
                Err(_) => Err(BotError::Timeout { step: "component connect", after: self.plan.connect_timeout }),
            }),
        };
        drop(connecting);
        let mut stream = match connected {
            None => {
                debug!("stopped by the group deadline or a dropped report stream");
                self.stats.record_failure(FailureKind::Timeout);
                return;
            }
            Some(Err(err)) => {
                warn!(kind = %err.kind(), %err, "component failed to connect");
                self.stats.record_failure(err.kind());
                return;
            }
            Some(Ok(stream)) => stream,
        };
        self.stats
            .round_trips
            .record("handshake", started.elapsed());
        let connected_at = Instant::now();
        let _connected = GaugeGuard::enter(&self.stats.connected);
        self.stats.connected_total.fetch_add(1, Relaxed);
        info!(rooms = self.rooms.len(), "component connected");

        let outcome = tokio::select! {
            _ = cancel.cancelled() => None,
            result = self.in_rooms(&mut stream, connected_at) => Some(result),
        };
        match outcome {
            Some(Ok(())) => {
                self.stats.left_total.fetch_add(1, Relaxed);
                info!(
                    sent = self.stats.messages_sent.load(Relaxed),
                    "component finished"
                );
                return;
            }
            Some(Err(err)) => {
                warn!(kind = %err.kind(), %err, "component failed");
                self.stats.record_failure(err.kind());
            }
            None => {
                debug!("stopped by the group deadline or a dropped report stream");
                self.stats.record_failure(FailureKind::Timeout);
            }
        }
        if let Err(err) = stream.close().await {
            debug!(%err, "closing the component stream after a stop failed");
        }
    }

    async fn connect(&self) -> Result<ComponentStream, BotError> {
        let Endpoint::Tcp {
            host,
            port,
            domain,
            limits,
            ..
        } = &self.plan.endpoint
        else {
            // GroupPlan::from_request builds a TCP endpoint for every component group.
            return Err(BotError::Unexpected {
                expected: "a TCP endpoint for the component",
                got: "a WebSocket URL".to_owned(),
            });
        };
        ComponentStream::connect(&ComponentTarget {
            host,
            port: *port,
            domain,
            secret: &self.settings.secret,
            limits: *limits,
            source: self.plan.source_address(0),
        })
        .await
    }

    /// Join, flood, wait for reflections and leave.
    async fn in_rooms(
        &self,
        stream: &mut ComponentStream,
        connected_at: Instant,
    ) -> Result<(), BotError> {
        let join_started = Instant::now();
        self.join(stream).await?;
        self.stats
            .round_trips
            .record("join", join_started.elapsed());
        let joined = GaugeGuard::enter(&self.stats.joined);

        // Sends begin at talk_after like a bot's, but never before the
        // rooms are joined, so a slow join does not turn into a burst.
        let flood_start = (connected_at + self.plan.talk_after).max(Instant::now());
        self.flood(stream, flood_start).await?;
        self.await_reflections(stream).await?;

        drop(joined);
        self.leave(stream).await;
        Ok(())
    }

    async fn join(&self, stream: &mut ComponentStream) -> Result<(), BotError> {
        for occupant in &self.occupants {
            stream
                .send(&format!(
                    "<presence from='{}' to='{}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>",
                    escape(&self.sender),
                    escape(occupant)
                ))
                .await?;
        }

        let mut pending = vec![true; self.occupants.len()];
        let deadline = Instant::now() + self.plan.join_timeout;
        while pending.contains(&true) {
            let element = tokio::time::timeout_at(deadline, self.next(stream))
                .await
                .map_err(|_| BotError::Timeout {
                    step: "room join",
                    after: self.plan.join_timeout,
                })??;
            match self.observe(stream, &element).await? {
                RoomPresence::SelfPresence {
                    room,
                    available: true,
                } => pending[room] = false,
                RoomPresence::JoinError { condition } => {
                    return Err(BotError::JoinRejected { condition });
                }
                RoomPresence::SelfPresence { .. } | RoomPresence::Other => {}
            }
        }
        self.stats.joined_total.fetch_add(1, Relaxed);
        self.stats.record_phase(Phase::Join, self.plan.clock.now());
        debug!(rooms = self.rooms.len(), "joined the rooms");
        Ok(())
    }

    /// Sends on the timetable while reading the rooms: message `seq` is due
    /// at `start + seq / rate`, independent of when earlier sends happened.
    async fn flood(&self, stream: &mut ComponentStream, start: Instant) -> Result<(), BotError> {
        let rate = self.plan.talk_rate;
        let mut seq: u64 = 0;
        loop {
            let offset = Duration::from_secs_f64(seq as f64 / rate);
            let count_left = self.settings.max_messages.is_none_or(|max| seq < max);
            if !count_left || offset >= self.plan.talk_duration {
                return Ok(());
            }
            let due = start + offset;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {
                    self.send_message(stream, seq, due).await?;
                    seq += 1;
                }
                element = self.next(stream) => {
                    self.observe_in_room(stream, &element?).await?;
                }
            }
        }
    }

    async fn send_message(
        &self,
        stream: &mut ComponentStream,
        seq: u64,
        due: Instant,
    ) -> Result<(), BotError> {
        let send_lag = Instant::now().saturating_duration_since(due);
        self.stats
            .send_lag
            .record(u64::try_from(send_lag.as_micros()).unwrap_or(u64::MAX));
        if send_lag > LATE_SEND_THRESHOLD {
            self.stats.late_sends.fetch_add(1, Relaxed);
        }
        let sent_unix_micros = self.plan.clock.now();
        let body = Marker {
            nick: &self.nick,
            seq,
            sent_unix_micros,
        }
        .to_body(self.plan.body_bytes);
        let room = &self.rooms[(seq % self.rooms.len() as u64) as usize];
        stream
            .send(&format!(
                "<message from='{}' to='{}' type='groupchat'><body>{}</body></message>",
                escape(&self.sender),
                escape(room),
                escape(&body)
            ))
            .await?;
        self.stats.messages_sent.fetch_add(1, Relaxed);
        self.stats.record_phase(Phase::Talk, sent_unix_micros);
        Ok(())
    }

    /// Reads the rooms until every sent message has come back or
    /// [`REFLECTION_WAIT`] has passed. A reflection still missing then
    /// shows in the report as sent minus reflections.
    async fn await_reflections(&self, stream: &mut ComponentStream) -> Result<(), BotError> {
        let deadline = Instant::now() + REFLECTION_WAIT;
        while self.stats.reflections.load(Relaxed) < self.stats.messages_sent.load(Relaxed) {
            let Ok(element) = tokio::time::timeout_at(deadline, self.next(stream)).await else {
                debug!("not every reflection came back in time");
                return Ok(());
            };
            self.observe_in_room(stream, &element?).await?;
        }
        Ok(())
    }

    /// Leaves every room and waits briefly for the confirmations, then
    /// closes the stream. Failures here come after the work is done, so
    /// they are logged and not counted.
    async fn leave(&self, stream: &mut ComponentStream) {
        for occupant in &self.occupants {
            let presence = format!(
                "<presence from='{}' to='{}' type='unavailable'/>",
                escape(&self.sender),
                escape(occupant)
            );
            if let Err(err) = stream.send(&presence).await {
                debug!(%err, "sending the leave failed");
                return;
            }
        }
        self.stats.record_phase(Phase::Leave, self.plan.clock.now());

        let confirm = async {
            let mut pending = vec![true; self.occupants.len()];
            while pending.contains(&true) {
                let element = self.next(stream).await?;
                if let RoomPresence::SelfPresence {
                    room,
                    available: false,
                } = self.observe(stream, &element).await?
                {
                    pending[room] = false;
                }
            }
            Ok::<(), BotError>(())
        };
        match tokio::time::timeout(LEAVE_CONFIRM_WAIT, confirm).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => debug!(%err, "stream failed while waiting for the leave confirmation"),
            Err(_) => debug!("rooms did not confirm the leave in time"),
        }
        if let Err(err) = stream.close().await {
            debug!(%err, "closing the component stream failed");
        }
    }

    /// Reads the next stanza. The end of the server's stream is an error
    /// here because the flood ends its stream itself.
    async fn next(&self, stream: &mut ComponentStream) -> Result<Element, BotError> {
        stream.next().await?.ok_or(BotError::Closed)
    }

    /// Observes a stanza while in the rooms. Removal from a room is an
    /// error.
    async fn observe_in_room(
        &self,
        stream: &mut ComponentStream,
        element: &Element,
    ) -> Result<(), BotError> {
        match self.observe(stream, element).await? {
            RoomPresence::SelfPresence {
                available: false, ..
            } => Err(BotError::JoinRejected {
                condition: "removed from the room".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Counts one inbound stanza and classifies it.
    async fn observe(
        &self,
        stream: &mut ComponentStream,
        element: &Element,
    ) -> Result<RoomPresence, BotError> {
        if element.ns != NS_COMPONENT {
            return Ok(RoomPresence::Other);
        }
        if matches!(element.name.as_str(), "message" | "presence" | "iq") {
            self.stats.stanzas_received.fetch_add(1, Relaxed);
        }
        match element.name.as_str() {
            "message" => self
                .occupant()
                .count_message(element, &self.stats, self.plan.clock),
            "presence" => return Ok(self.occupant().presence(element)),
            "iq" => self.answer_iq(stream, element).await?,
            _ => {}
        }
        Ok(RoomPresence::Other)
    }

    fn occupant(&self) -> Occupant<'_> {
        Occupant {
            ns: NS_COMPONENT,
            nick: &self.nick,
            rooms: &self.rooms,
            occupants: &self.occupants,
        }
    }

    /// Replies to a request addressed to the component with
    /// `service-unavailable`, so that the sender does not wait for a reply
    /// that never comes. Results and errors get no reply.
    async fn answer_iq(&self, stream: &mut ComponentStream, iq: &Element) -> Result<(), BotError> {
        if !matches!(iq.attr("type"), Some("get" | "set")) {
            return Ok(());
        }
        let reply = format!(
            "<iq type='error' from='{}' to='{}' id='{}'><error type='cancel'>\
             <service-unavailable xmlns='{NS_STANZAS}'/></error></iq>",
            escape(iq.attr("to").unwrap_or(&self.sender)),
            escape(iq.attr("from").unwrap_or_default()),
            escape(iq.attr("id").unwrap_or_default()),
        );
        stream.send(&reply).await
    }
}
