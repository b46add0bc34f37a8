//! Validation of a `RunGroupRequest` into a [`GroupPlan`].
//!
//! Every check names the invalid field and how to fix it, because the
//! message travels back to the author of the scenario. Past this boundary the
//! agent works only with the plan's domain types.

use crate::clock::AgentClock;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::Status;
use xmppload_proto::v1::{
    RoomDistribution as ProtoRoomDistribution, RunGroupRequest, TlsMode as ProtoTlsMode,
    Transport as ProtoTransport,
};

use super::login::LoginPlan;
use super::rooms::{RoomDistribution, RoomMap};
use crate::transport::bosh::{self, BoshUrl};
use crate::transport::{DEFAULT_STALL_TIMEOUT, Endpoint, StreamLimits, TlsMode, tls};
use crate::webclient::WebClientPlan;
use crate::xml::DEFAULT_MAX_STANZA_BYTES;

/// Largest accepted message body. Prosody 0.12 closes c2s streams whose
/// stanzas exceed its default `c2s_stanza_size_limit` of 256 KiB, so bodies
/// stay well below that.
pub const MAX_BODY_BYTES: u32 = 128 * 1024;
/// Highest accepted per-bot message rate, in messages per second.
pub const MAX_TALK_RATE: f64 = 1000.0;
/// Longest accepted duration of any timing field, and of the arrival spread
/// (count / join_rate): seven days, far beyond any load run, so that time
/// arithmetic on the monotonic clock cannot overflow.
pub const MAX_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;
/// Largest accepted number of rooms in one group.
pub const MAX_ROOMS: u32 = 100_000;
/// Largest accepted number of rooms one bot joins. Every room multiplies
/// the stanzas a bot receives, so more is a typo rather than a load test.
pub const MAX_ROOMS_PER_BOT: u32 = 100;
/// Largest accepted Zipf exponent; beyond it nearly every bot is in room 0.
pub const MAX_ZIPF_EXPONENT: f64 = 10.0;
/// Smallest accepted stanza limit: the server's stream features and the
/// room's presences must fit.
pub const MIN_MAX_STANZA_BYTES: u32 = 4096;
/// Largest accepted stanza limit, 16 MiB, which bounds each bot's read buffer.
pub const MAX_MAX_STANZA_BYTES: u32 = 16 * 1024 * 1024;
/// Room the stanza limit must leave beyond `body_bytes` for the envelope of
/// a reflected message (addresses, ids and the server's added elements).
pub const STANZA_ENVELOPE_BYTES: u32 = 4096;

/// A validated slice of a bot group.
#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub group: String,
    pub endpoint: Endpoint,
    /// Rooms of the group and which of them each bot joins.
    pub rooms: RoomMap,
    pub index_offset: u32,
    pub index_stride: u32,
    /// Explicit global indices, used instead of offset and stride when set.
    pub indices: Option<Vec<u32>>,
    pub count: u32,
    pub start_at_unix_micros: i64,
    /// Bots per second, group-wide.
    pub join_rate: f64,
    pub talk_after: Duration,
    /// Messages per second per bot.
    pub talk_rate: f64,
    pub talk_duration: Duration,
    pub leave_after: Duration,
    pub body_bytes: usize,
    pub stream_management: bool,
    pub connect_timeout: Duration,
    pub join_timeout: Duration,
    pub deadline: Duration,
    /// Local addresses the bots bind to, in turn; empty lets the kernel
    /// choose. Set from the agent's configuration, not from the request.
    pub source_addresses: Vec<IpAddr>,
    /// The agent's clock, which all of the slice's times are read from.
    pub clock: AgentClock,
    /// Browser-like requests of each bot; `None` when none is switched on.
    pub web_client: Option<Arc<WebClientPlan>>,
    /// Set for a component group: one XEP-0114 connection floods the rooms
    /// instead of `count` client bots.
    pub component: Option<crate::component::ComponentSettings>,
    /// SASL mechanism and accounts.
    pub login: LoginPlan,
}

/// Checks `max_stanza_bytes` and `stall_timeout_ms` and resolves their
/// defaults.
fn stream_limits(request: &RunGroupRequest) -> Result<StreamLimits, Status> {
    let max_stanza_bytes = match request.max_stanza_bytes {
        0 => DEFAULT_MAX_STANZA_BYTES,
        bytes => {
            if !(MIN_MAX_STANZA_BYTES..=MAX_MAX_STANZA_BYTES).contains(&bytes) {
                return Err(invalid(
                    "max_stanza_bytes",
                    &bytes,
                    &format!(
                        "set 0 for the default, or {MIN_MAX_STANZA_BYTES} to {MAX_MAX_STANZA_BYTES} bytes"
                    ),
                ));
            }
            bytes as usize
        }
    };
    let needed = request.body_bytes as usize + STANZA_ENVELOPE_BYTES as usize;
    if max_stanza_bytes < needed {
        return Err(invalid(
            "max_stanza_bytes",
            &max_stanza_bytes,
            &format!(
                "set at least body_bytes + {STANZA_ENVELOPE_BYTES} = {needed} so the bots' own messages fit"
            ),
        ));
    }

    let stall_timeout = match request.stall_timeout_ms {
        0 => DEFAULT_STALL_TIMEOUT,
        ms if ms > MAX_DURATION_MS => {
            return Err(invalid(
                "stall_timeout_ms",
                &ms,
                &format!("set 0 for the default, or at most {MAX_DURATION_MS} ms (seven days)"),
            ));
        }
        ms => Duration::from_millis(ms),
    };
    Ok(StreamLimits {
        max_stanza_bytes,
        stall_timeout,
    })
}

impl GroupPlan {
    /// Checks the request and converts it; a bad field yields
    /// `invalid_argument`, a protocol mismatch `failed_precondition`.
    pub fn from_request(request: RunGroupRequest, clock: AgentClock) -> Result<GroupPlan, Status> {
        xmppload_proto::check_version(request.protocol_version)?;

        let group = request.group.trim().to_owned();
        if group.is_empty() || group.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
            return Err(invalid(
                "group",
                &request.group,
                "set a non-empty name without whitespace, '/' or '@'; it becomes part of bot nicknames",
            ));
        }

        let domain = request.domain.trim().to_owned();
        if domain.is_empty() || domain.contains(|c: char| c.is_whitespace() || c == '/' || c == '@')
        {
            return Err(invalid(
                "domain",
                &request.domain,
                "set the XMPP domain of the VirtualHost the bots log in to",
            ));
        }

        let room = request.room.trim().to_owned();
        let room_valid = room.split_once('@').is_some_and(|(local, host)| {
            !local.is_empty() && !host.is_empty() && !room.contains('/')
        });
        if !room_valid {
            return Err(invalid(
                "room",
                &request.room,
                "set the bare JID of the MUC room, like lobby@conference.example.org",
            ));
        }

        let rooms = room_map(&request, &room)?;

        if request.count == 0 {
            return Err(invalid(
                "count",
                &request.count,
                "set the number of bots in this slice to at least 1",
            ));
        }
        if request.index_stride == 0 {
            return Err(invalid(
                "index_stride",
                &request.index_stride,
                "set it to at least 1 so bot indices differ",
            ));
        }
        let indices = explicit_indices(&request)?;
        let last_index = match &indices {
            Some(indices) => u64::from(indices.iter().copied().max().unwrap_or(0)),
            None => {
                u64::from(request.index_offset)
                    + u64::from(request.count - 1) * u64::from(request.index_stride)
            }
        };
        if last_index > u64::from(u32::MAX) {
            return Err(invalid(
                "count",
                &request.count,
                "lower index_offset, index_stride or count so indices fit in 32 bits",
            ));
        }
        if request.start_at_unix_micros <= 0 {
            return Err(invalid(
                "start_at_unix_micros",
                &request.start_at_unix_micros,
                "set the group start on the agent clock",
            ));
        }
        if !(request.join_rate.is_finite() && request.join_rate > 0.0) {
            return Err(invalid(
                "join_rate",
                &request.join_rate,
                "set a positive number of bots per second",
            ));
        }
        // A component's rate is checked with its own bound in ComponentSettings.
        let component = crate::component::ComponentSettings::from_request(&request)?;
        if component.is_none()
            && !(request.talk_rate.is_finite()
                && request.talk_rate >= 0.0
                && request.talk_rate <= MAX_TALK_RATE)
        {
            return Err(invalid(
                "talk_rate",
                &request.talk_rate,
                &format!("set messages per second per bot from 0 (idle bots) to {MAX_TALK_RATE}"),
            ));
        }
        if request.body_bytes > MAX_BODY_BYTES {
            return Err(invalid(
                "body_bytes",
                &request.body_bytes,
                &format!("set at most {MAX_BODY_BYTES} bytes"),
            ));
        }
        if request.leave_after_ms
            < request
                .talk_after_ms
                .saturating_add(request.talk_duration_ms)
        {
            return Err(invalid(
                "leave_after_ms",
                &request.leave_after_ms,
                "set it to at least talk_after_ms + talk_duration_ms so that bots finish talking before they leave",
            ));
        }
        for (name, value) in [
            ("connect_timeout_ms", request.connect_timeout_ms),
            ("join_timeout_ms", request.join_timeout_ms),
            ("deadline_ms", request.deadline_ms),
        ] {
            if value == 0 {
                return Err(invalid(
                    name,
                    &value,
                    "set a positive number of milliseconds",
                ));
            }
        }
        for (name, value) in [
            ("talk_after_ms", request.talk_after_ms),
            ("talk_duration_ms", request.talk_duration_ms),
            ("leave_after_ms", request.leave_after_ms),
            ("connect_timeout_ms", request.connect_timeout_ms),
            ("join_timeout_ms", request.join_timeout_ms),
            ("deadline_ms", request.deadline_ms),
        ] {
            if value > MAX_DURATION_MS {
                return Err(invalid(
                    name,
                    &value,
                    &format!("set at most {MAX_DURATION_MS} ms (seven days)"),
                ));
            }
        }
        let arrival_spread_ms = last_index as f64 / request.join_rate * 1000.0;
        if arrival_spread_ms > MAX_DURATION_MS as f64 {
            return Err(invalid(
                "join_rate",
                &request.join_rate,
                "raise it so that all bots arrive within seven days of start_at",
            ));
        }

        // Checked after body_bytes, which the stanza limit must exceed.
        let limits = stream_limits(&request)?;
        let endpoint = endpoint(&request, domain, limits)?;
        let web_client = WebClientPlan::from_proto(request.web_client.as_ref())?.map(Arc::new);
        let login = LoginPlan::from_request(&request)?;

        Ok(GroupPlan {
            group,
            endpoint,
            rooms,
            index_offset: request.index_offset,
            index_stride: request.index_stride,
            indices,
            count: request.count,
            start_at_unix_micros: request.start_at_unix_micros,
            join_rate: request.join_rate,
            talk_after: Duration::from_millis(request.talk_after_ms),
            talk_rate: request.talk_rate,
            talk_duration: Duration::from_millis(request.talk_duration_ms),
            leave_after: Duration::from_millis(request.leave_after_ms),
            body_bytes: request.body_bytes as usize,
            stream_management: request.stream_management,
            connect_timeout: Duration::from_millis(request.connect_timeout_ms),
            join_timeout: Duration::from_millis(request.join_timeout_ms),
            deadline: Duration::from_millis(request.deadline_ms),
            source_addresses: Vec::new(),
            clock,
            web_client,
            component,
            login,
        })
    }

    /// Global index of the k-th bot of this slice.
    pub fn global_index(&self, k: u32) -> u32 {
        if let Some(indices) = &self.indices {
            // from_request checked that there are `count` indices.
            return indices[k as usize];
        }
        // from_request checked that the last index fits in u32.
        self.index_offset + k * self.index_stride
    }

    /// Fraction of the group's arrivals that this slice starts: 1 / stride
    /// for a progression, and the slice's density over the range of its
    /// indices for a list.
    pub fn arrival_share(&self) -> f64 {
        match &self.indices {
            Some(indices) => {
                let first = indices.iter().copied().min().unwrap_or(0);
                let last = indices.iter().copied().max().unwrap_or(0);
                f64::from(self.count) / (f64::from(last - first) + 1.0)
            }
            None => 1.0 / f64::from(self.index_stride),
        }
    }

    /// Local address the k-th bot of the slice binds to, round robin over
    /// the agent's source addresses, or `None` to let the kernel choose.
    pub fn source_address(&self, k: u32) -> Option<IpAddr> {
        if self.source_addresses.is_empty() {
            return None;
        }
        Some(self.source_addresses[k as usize % self.source_addresses.len()])
    }

    /// Wall-clock start of the bot with this global index: start_at + i / join_rate.
    pub fn start_of(&self, global_index: u32) -> i64 {
        let offset_micros = f64::from(global_index) / self.join_rate * 1e6;
        self.start_at_unix_micros
            .saturating_add(offset_micros as i64)
    }

    /// Room nickname of the bot with this global index, unique per group.
    pub fn nickname(&self, global_index: u32) -> String {
        format!("{}-{global_index:06}", self.group)
    }
}

/// Checks the room fields and builds the room map. Zero counts mean one,
/// so that a request from a coordinator without these fields keeps its
/// single room.
fn room_map(request: &RunGroupRequest, base: &str) -> Result<RoomMap, Status> {
    let rooms = request.rooms.max(1);
    if rooms > MAX_ROOMS {
        return Err(invalid(
            "rooms",
            &request.rooms,
            &format!("set at most {MAX_ROOMS} rooms"),
        ));
    }
    let rooms_per_bot = request.rooms_per_bot.max(1);
    if rooms_per_bot > rooms || rooms_per_bot > MAX_ROOMS_PER_BOT {
        return Err(invalid(
            "rooms_per_bot",
            &request.rooms_per_bot,
            &format!("set at most `rooms` ({rooms}) and at most {MAX_ROOMS_PER_BOT} rooms per bot"),
        ));
    }
    let distribution = match ProtoRoomDistribution::try_from(request.room_distribution) {
        Ok(ProtoRoomDistribution::Unspecified | ProtoRoomDistribution::Uniform) => {
            RoomDistribution::Uniform
        }
        Ok(ProtoRoomDistribution::Zipf) => {
            let exponent = request.zipf_exponent;
            if !(exponent.is_finite() && exponent > 0.0 && exponent <= MAX_ZIPF_EXPONENT) {
                return Err(invalid(
                    "zipf_exponent",
                    &exponent,
                    &format!("set a number above 0 and at most {MAX_ZIPF_EXPONENT}"),
                ));
            }
            RoomDistribution::Zipf { exponent }
        }
        Err(_) => {
            return Err(invalid(
                "room_distribution",
                &request.room_distribution,
                "set ROOM_DISTRIBUTION_UNIFORM or ROOM_DISTRIBUTION_ZIPF",
            ));
        }
    };
    Ok(RoomMap::new(base, rooms, rooms_per_bot, distribution))
}

/// Checks the explicit index list: one index per bot and no index twice.
fn explicit_indices(request: &RunGroupRequest) -> Result<Option<Vec<u32>>, Status> {
    if request.indices.is_empty() {
        return Ok(None);
    }
    if request.indices.len() != request.count as usize {
        return Err(invalid(
            "indices",
            &request.indices.len(),
            &format!(
                "send exactly `count` ({}) indices, or none to use index_offset and index_stride",
                request.count
            ),
        ));
    }
    let mut sorted = request.indices.clone();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(invalid(
            "indices",
            &pair[0],
            "send each global index once, because it fixes the bot's nickname",
        ));
    }
    Ok(Some(request.indices.clone()))
}

/// Builds the connection endpoint from the transport fields.
fn endpoint(
    request: &RunGroupRequest,
    domain: String,
    limits: StreamLimits,
) -> Result<Endpoint, Status> {
    let transport =
        ProtoTransport::try_from(request.transport).unwrap_or(ProtoTransport::Unspecified);
    let tls_config = |accept_invalid: bool, direct: bool| {
        let config = if direct {
            tls::direct_tls_config(accept_invalid)
        } else {
            tls::client_config(accept_invalid)
        };
        config.map_err(|err| {
            Status::internal(format!(
                "failed to build the TLS client configuration: {err}"
            ))
        })
    };

    match transport {
        ProtoTransport::Unspecified => Err(invalid(
            "transport",
            &request.transport,
            "set TRANSPORT_WEBSOCKET, TRANSPORT_C2S, TRANSPORT_BOSH or TRANSPORT_COMPONENT",
        )),
        ProtoTransport::Bosh => bosh_endpoint(request, domain, limits, |accept_invalid| {
            tls_config(accept_invalid, false)
        }),
        ProtoTransport::Websocket => {
            let url = request.websocket_url.trim();
            let valid = url
                .strip_prefix("ws://")
                .or_else(|| url.strip_prefix("wss://"))
                .is_some_and(|rest| {
                    !rest.is_empty()
                        && !rest.starts_with('/')
                        && !rest.contains(char::is_whitespace)
                });
            if !valid {
                return Err(invalid(
                    "websocket_url",
                    &request.websocket_url,
                    "set a ws:// or wss:// URL with a host, like ws://127.0.0.1:5280/xmpp-websocket",
                ));
            }
            Ok(Endpoint::WebSocket {
                url: url.to_owned(),
                domain,
                tls: tls_config(request.accept_invalid_certs, false)?,
                limits,
            })
        }
        ProtoTransport::C2s | ProtoTransport::Component => {
            let host = request.host.trim();
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(invalid(
                    "host",
                    &request.host,
                    "set the host name or IP address of the c2s or component listener",
                ));
            }
            let port = u16::try_from(request.port)
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| {
                    invalid(
                        "port",
                        &request.port,
                        "set the c2s or component port, between 1 and 65535",
                    )
                })?;
            // XEP-0114 has no STARTTLS, so a component connection is plain.
            let tls = if transport == ProtoTransport::Component {
                ProtoTlsMode::None as i32
            } else {
                request.tls
            };
            let tls_mode = match ProtoTlsMode::try_from(tls).unwrap_or(ProtoTlsMode::Unspecified) {
                ProtoTlsMode::None => TlsMode::Never,
                ProtoTlsMode::StarttlsIfOffered => TlsMode::IfOffered,
                ProtoTlsMode::StarttlsRequired => TlsMode::Required,
                ProtoTlsMode::Direct => TlsMode::Direct,
                ProtoTlsMode::Unspecified => {
                    return Err(invalid(
                        "tls",
                        &request.tls,
                        "set TLS_MODE_NONE, TLS_MODE_STARTTLS_IF_OFFERED, TLS_MODE_STARTTLS_REQUIRED or TLS_MODE_DIRECT",
                    ));
                }
            };
            Ok(Endpoint::Tcp {
                host: host.to_owned(),
                port,
                domain,
                tls_mode,
                tls: tls_config(request.accept_invalid_certs, tls_mode == TlsMode::Direct)?,
                limits,
            })
        }
    }
}

/// Builds a BOSH endpoint; `hold` and `wait` of 0 select the defaults.
fn bosh_endpoint(
    request: &RunGroupRequest,
    domain: String,
    limits: StreamLimits,
    tls_config: impl Fn(bool) -> Result<std::sync::Arc<rustls::ClientConfig>, Status>,
) -> Result<Endpoint, Status> {
    let url = BoshUrl::parse(&request.bosh_url).ok_or_else(|| {
        invalid(
            "bosh_url",
            &request.bosh_url,
            "set an http:// or https:// URL with a host, like http://127.0.0.1:5280/http-bind",
        )
    })?;
    let hold = match request.bosh_hold {
        0 => bosh::DEFAULT_HOLD,
        hold => hold,
    };
    let wait_s = match request.bosh_wait_s {
        0 => bosh::DEFAULT_WAIT_S,
        wait => wait,
    };
    Ok(Endpoint::Bosh {
        url,
        domain,
        tls: tls_config(request.accept_invalid_certs)?,
        limits,
        hold,
        wait_s,
    })
}

/// `invalid_argument` naming the field, its value and the fix.
pub(crate) fn invalid(field: &str, value: &dyn std::fmt::Debug, fix: &str) -> Status {
    Status::invalid_argument(format!("invalid `{field}` {value:?}: {fix}"))
}
