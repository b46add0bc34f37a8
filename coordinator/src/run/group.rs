//! One bot group: split over the agents, started at one instant, streamed
//! back into `bots.csv` and `latency.csv`, closed with its phases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::future::join_all;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xmppload_proto::v1::{
    GroupCounters, GroupReport, PhaseTimes, RoomDistribution, RunGroupRequest, TlsMode, Transport,
};
use xmppload_proto::{PROTOCOL_VERSION, unix_micros_now};

use super::clocks::{self, ClockTrack};
use super::lag::ScheduleLag;
use super::login::login_fields;
use super::placement::{Indices, Share, deal};
use super::round_trips::{self, RoundTripMerge};
use super::web_counts;
use super::{GROUP_GRACE, seconds_since};
use crate::peers::AgentPeer;
use crate::progress::Progress;
use crate::results::run_info::{GroupInfo, IncompleteSlice, Placement};
use crate::results::{ResultsDir, ResultsError};
use crate::scenario::login::GroupLogin;
use crate::scenario::{self, GroupSpec, Server};

/// Time between sending the requests and the first arrival, so that every
/// agent has its request before its first bot is due.
const START_LEAD: Duration = Duration::from_secs(1);

/// End state of one agent's slice.
struct SliceOutcome {
    agent: String,
    bots: u32,
    /// Phase times on the coordinator's clock, zero where absent.
    phases: PhaseTimes,
    /// Reason the slice did not run to its final report; `None` when it did.
    unfinished: Option<String>,
    /// Seconds since run start at which the slice ended unfinished, or
    /// `None` when it finished.
    lost_at_s: Option<f64>,
    /// Counters of the last report received.
    last_counters: Option<GroupCounters>,
    /// True when the slice ended because the agent stopped responding, as
    /// opposed to rejecting the group or the run being interrupted.
    agent_lost: bool,
    /// Join and send lag of every report received.
    lag: ScheduleLag,
}

/// End state of a group, for the run's record and exit status.
pub struct GroupOutcome {
    pub incomplete: Vec<IncompleteSlice>,
    /// Bots that failed, summed over the slices' last reports.
    pub failed_bots: u64,
    /// Bots that joined the room, summed the same way.
    pub joined_bots: u64,
    /// Agents that stopped responding during the group.
    pub lost_agents: Vec<LostAgent>,
    /// Web-client error replies, timeouts, requests the bots replied to, and archived
    /// messages, summed over the slices' last reports (see `web_counts`).
    pub web_counts: BTreeMap<String, u64>,
}

/// An agent whose slice stream broke off, ended without a final report or
/// could not be opened, or that ran past the group's bound.
pub struct LostAgent {
    pub agent: String,
    /// Seconds since run start.
    pub lost_at_s: f64,
    pub reason: String,
}

/// Runs a group with the bots per agent in `shares` (one per agent) to its
/// end, and records its placement through `record` as soon as it is known.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    spec: &GroupSpec,
    server: &Server,
    agents: &[AgentPeer],
    shares: &[Share],
    clock_refresh: Duration,
    results: &Arc<ResultsDir>,
    started: i64,
    progress: &Progress,
    stop: &CancellationToken,
    record: impl FnOnce(GroupInfo) -> Result<(), ResultsError>,
) -> Result<GroupOutcome, ResultsError> {
    let start_at = unix_micros_now() + START_LEAD.as_micros() as i64;
    let counts: Vec<u32> = shares.iter().map(|share| share.bots).collect();
    let slices = deal(&counts);

    let info = GroupInfo {
        name: spec.name.clone(),
        transport: spec.transport.as_str().to_string(),
        tls: tls_label(spec.transport, server).to_string(),
        stream_management: spec.stream_management,
        web_client: spec.web_client.describe(),
        web_client_counts: BTreeMap::new(),
        auth: spec.login.mechanism().as_str().to_string(),
        bots: spec.bots,
        room: spec.room.clone(),
        rooms: spec.rooms,
        room_distribution: spec.room_distribution.as_str().to_string(),
        zipf_exponent: match spec.room_distribution {
            scenario::RoomDistribution::Zipf { exponent } => Some(exponent),
            scenario::RoomDistribution::Uniform => None,
        },
        rooms_per_bot: spec.rooms_per_bot,
        join_rate: spec.join_rate,
        talk_after_s: spec.talk_after.as_secs_f64(),
        talk_rate: spec.talk_rate,
        talk_duration_s: spec.talk_duration.as_secs_f64(),
        leave_after_s: spec.leave_after.as_secs_f64(),
        body_bytes: spec.body_bytes,
        scheduled_start_s: seconds_since(started, start_at),
        placement: agents
            .iter()
            .zip(shares)
            .filter(|(_, share)| share.bots > 0)
            .map(|(agent, share)| Placement {
                agent: agent.info.name.clone(),
                bots: share.bots,
                share: share.fraction,
                limit: share.limit.to_string(),
            })
            .collect(),
        incomplete: Vec::new(),
    };
    info!(
        group = %spec.name,
        transport = %info.transport,
        tls = %info.tls,
        stream_management = info.stream_management,
        web_client = %info.web_client,
        auth = %info.auth,
        bots = info.bots,
        rooms = info.rooms,
        join_rate = info.join_rate,
        talk_rate = info.talk_rate,
        placement = ?info.placement.iter().map(|p| format!("{}={}", p.agent, p.bots)).collect::<Vec<_>>(),
        "starting group"
    );
    record(info)?;

    // Each agent's clock is measured again while the group runs, and its
    // times are mapped with the estimate nearest to them.
    let tracks: Vec<ClockTrack> = agents
        .iter()
        .map(|agent| ClockTrack::new(agent.clock))
        .collect();
    let refresh_done = CancellationToken::new();
    let refresher = tokio::spawn(clocks::refresh_during_group(
        agents.iter().cloned().zip(tracks.iter().cloned()).collect(),
        clock_refresh,
        results.clone(),
        started,
        refresh_done.clone(),
    ));

    let trips = Arc::new(RoundTripMerge::new());
    let trips_done = CancellationToken::new();
    let trips_writer = round_trips::spawn_writer(
        trips.clone(),
        results.clone(),
        started,
        spec.name.clone(),
        trips_done.clone(),
    );

    let bound = spec.deadline() + START_LEAD + GROUP_GRACE;
    let streams = agents
        .iter()
        .zip(&tracks)
        .zip(&slices)
        .filter(|(_, slice)| slice.count() > 0)
        .map(|((agent, track), slice)| {
            let request = request(spec, server, slice, agent.clock.to_peer(start_at));
            let stream = stream_slice(agent, track, request, results, &trips, started, progress, stop);
            async move {
                match tokio::time::timeout(bound, stream).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        warn!(agent = %agent.info.name, group = %spec.name, "group did not end within its bound; giving up on this agent");
                        SliceOutcome {
                            agent: agent.info.name.clone(),
                            bots: slice.count(),
                            phases: PhaseTimes::default(),
                            unfinished: Some(format!(
                                "no final report within {:.0} s",
                                bound.as_secs_f64()
                            )),
                            last_counters: None,
                            lost_at_s: Some(seconds_since(started, unix_micros_now())),
                            agent_lost: true,
                            lag: ScheduleLag::new(),
                        }
                    }
                }
            }
        },
    );
    let outcomes = join_all(streams).await;
    refresh_done.cancel();
    if let Err(err) = refresher.await {
        warn!(group = %spec.name, %err, "the clock refresh task failed");
    }
    trips_done.cancel();
    if let Err(err) = trips_writer.await {
        warn!(group = %spec.name, %err, "the round_trips.csv writer task failed");
    }

    let mut group_outcome = GroupOutcome {
        incomplete: Vec::new(),
        failed_bots: 0,
        joined_bots: 0,
        lost_agents: Vec::new(),
        web_counts: BTreeMap::new(),
    };
    let mut lag = ScheduleLag::new();
    let (mut late_joins, mut late_sends) = (0, 0);
    for outcome in &outcomes {
        lag.merge(&outcome.lag);
        if let Some(counters) = &outcome.last_counters {
            group_outcome.failed_bots += counters.failed_total;
            group_outcome.joined_bots += counters.joined_total;
            late_joins += counters.late_joins;
            late_sends += counters.late_sends;
            web_counts::add(&mut group_outcome.web_counts, counters);
        }
        if let Some(reason) = &outcome.unfinished {
            warn!(agent = %outcome.agent, group = %spec.name, %reason, "agent did not finish its slice; its counters stop at the last report");
            group_outcome.incomplete.push(IncompleteSlice {
                agent: outcome.agent.clone(),
                bots: outcome.bots,
                reason: reason.clone(),
                lost_at_s: outcome.lost_at_s,
            });
            if outcome.agent_lost {
                group_outcome.lost_agents.push(LostAgent {
                    agent: outcome.agent.clone(),
                    lost_at_s: outcome
                        .lost_at_s
                        .unwrap_or_else(|| seconds_since(started, unix_micros_now())),
                    reason: reason.clone(),
                });
            }
        }
    }
    if !group_outcome.web_counts.is_empty() {
        info!(group = %spec.name, counts = ?group_outcome.web_counts, "web-client requests");
    }
    for row in lag.rows(&spec.name, late_joins, late_sends) {
        results.append_schedule_lag(row)?;
    }
    let merged = merge_phases(outcomes.iter().map(|outcome| &outcome.phases));
    for (phase, first, last) in [
        (
            "join",
            merged.join_first_unix_micros,
            merged.join_last_unix_micros,
        ),
        (
            "talk",
            merged.talk_first_unix_micros,
            merged.talk_last_unix_micros,
        ),
        (
            "leave",
            merged.leave_first_unix_micros,
            merged.leave_last_unix_micros,
        ),
    ] {
        if first == 0 || last == 0 {
            continue;
        }
        results.append_phase([
            spec.name.clone(),
            phase.to_string(),
            format!("{:.3}", seconds_since(started, first)),
            format!("{:.3}", seconds_since(started, last)),
        ])?;
    }
    info!(
        group = %spec.name,
        joined = group_outcome.joined_bots,
        failed = group_outcome.failed_bots,
        incomplete_agents = group_outcome.incomplete.len(),
        "group finished"
    );
    Ok(group_outcome)
}

/// TLS as the group's bots use it: STARTTLS applies to c2s only, a
/// WebSocket or BOSH group is encrypted exactly when its URL is `wss://` or
/// `https://`, and a component connection (XEP-0114) is plain.
fn tls_label(transport: scenario::Transport, server: &Server) -> &'static str {
    match transport {
        scenario::Transport::C2s => server.tls.as_str(),
        scenario::Transport::Component => "none",
        scenario::Transport::WebSocket => {
            let secure = server
                .websocket_url
                .as_deref()
                .is_some_and(|url| url.starts_with("wss://"));
            if secure { "wss" } else { "none" }
        }
        scenario::Transport::Bosh => {
            let secure = server
                .bosh_url
                .as_deref()
                .is_some_and(|url| url.starts_with("https://"));
            if secure { "https" } else { "none" }
        }
    }
}

fn request(
    spec: &GroupSpec,
    server: &Server,
    slice: &Indices,
    start_at_peer: i64,
) -> RunGroupRequest {
    let (host, port) = match spec.transport {
        scenario::Transport::Component => server.component.clone().unwrap_or_default(),
        _ => server.c2s_target().cloned().unwrap_or_default(),
    };
    let component = spec.component.as_ref();
    let (index_offset, index_stride, indices) = match slice {
        Indices::Progression { offset, stride, .. } => (*offset, *stride, Vec::new()),
        Indices::List(indices) => (0, 1, indices.clone()),
    };
    let (room_distribution, zipf_exponent) = match spec.room_distribution {
        scenario::RoomDistribution::Uniform => (RoomDistribution::Uniform, 0.0),
        scenario::RoomDistribution::Zipf { exponent } => (RoomDistribution::Zipf, exponent),
    };
    RunGroupRequest {
        protocol_version: PROTOCOL_VERSION,
        group: spec.name.clone(),
        transport: match spec.transport {
            scenario::Transport::WebSocket => Transport::Websocket,
            scenario::Transport::C2s => Transport::C2s,
            scenario::Transport::Bosh => Transport::Bosh,
            scenario::Transport::Component => Transport::Component,
        } as i32,
        websocket_url: server.websocket_url.clone().unwrap_or_default(),
        host,
        port: u32::from(port),
        // A component's stream goes to its own domain, and an account
        // group's to its accounts' VirtualHost.
        domain: match (component, &spec.login) {
            (Some(component), _) => component.domain.clone(),
            (None, GroupLogin::Anonymous) => server.domain.clone(),
            (None, GroupLogin::Accounts { domain, .. }) => domain.clone(),
        },
        tls: match server.tls {
            scenario::TlsMode::None => TlsMode::None,
            scenario::TlsMode::Starttls => TlsMode::StarttlsIfOffered,
            scenario::TlsMode::StarttlsRequired => TlsMode::StarttlsRequired,
            scenario::TlsMode::Direct => TlsMode::Direct,
        } as i32,
        accept_invalid_certs: server.accept_invalid_certs,
        room: spec.room.clone(),
        index_offset,
        index_stride,
        count: slice.count(),
        start_at_unix_micros: start_at_peer,
        join_rate: spec.join_rate,
        talk_after_ms: millis(spec.talk_after),
        talk_rate: spec.talk_rate,
        talk_duration_ms: millis(spec.talk_duration),
        leave_after_ms: millis(spec.leave_after),
        body_bytes: spec.body_bytes,
        stream_management: spec.stream_management,
        connect_timeout_ms: millis(spec.connect_timeout),
        join_timeout_ms: millis(spec.join_timeout),
        deadline_ms: millis(spec.deadline()),
        rooms: spec.rooms,
        room_distribution: room_distribution as i32,
        zipf_exponent,
        rooms_per_bot: spec.rooms_per_bot,
        indices,
        max_stanza_bytes: spec.max_stanza_bytes,
        web_client: spec.web_client.to_proto(),
        // 0 selects the agent's default; scenarios do not set it.
        stall_timeout_ms: 0,
        bosh_url: server.bosh_url.clone().unwrap_or_default(),
        bosh_hold: spec.bosh_hold,
        bosh_wait_s: spec.bosh_wait_s,
        component_secret: component
            .map(|component| component.secret.clone())
            .unwrap_or_default(),
        component_messages: component
            .and_then(|component| component.messages)
            .unwrap_or(0),
        ..login_fields(&spec.login, slice)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Reads one agent's reports until its final one, writing each as it comes.
#[allow(clippy::too_many_arguments)]
async fn stream_slice(
    agent: &AgentPeer,
    clock: &ClockTrack,
    request: RunGroupRequest,
    results: &ResultsDir,
    trips: &RoundTripMerge,
    started: i64,
    progress: &Progress,
    stop: &CancellationToken,
) -> SliceOutcome {
    let group = request.group.clone();
    let mut outcome = SliceOutcome {
        agent: agent.info.name.clone(),
        bots: request.count,
        phases: PhaseTimes::default(),
        unfinished: Some("the stream ended without a final report".to_string()),
        last_counters: None,
        lost_at_s: None,
        agent_lost: true,
        lag: ScheduleLag::new(),
    };

    let mut client = agent.client.clone();
    let mut stream = match client.run_group(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            warn!(agent = %agent.info.name, %group, %status, "agent rejected the group");
            outcome.unfinished = Some(format!("rejected: {}", status.message()));
            // `unavailable` is tonic's code for a connection that failed,
            // while the other codes come from an agent that is up.
            outcome.agent_lost = status.code() == tonic::Code::Unavailable;
            outcome.lost_at_s = Some(seconds_since(started, unix_micros_now()));
            return outcome;
        }
    };

    loop {
        let message = tokio::select! {
            // Dropping the stream makes the agent stop this slice's bots.
            _ = stop.cancelled() => {
                outcome.unfinished = Some("the run was interrupted".to_string());
                outcome.agent_lost = false;
                break;
            }
            message = stream.message() => message,
        };
        let report = match message {
            Ok(Some(report)) => report,
            Ok(None) => break,
            Err(status) => {
                warn!(agent = %agent.info.name, %group, %status, "group stream broke off");
                outcome.unfinished = Some(format!("stream broke off: {}", status.message()));
                break;
            }
        };
        if let Err(err) = write_report(agent, clock, &group, &report, results, started, progress) {
            warn!(agent = %agent.info.name, %group, %err, "cannot write a report row");
        }
        if let Err(err) = outcome.lag.add_report(&report) {
            warn!(agent = %agent.info.name, %group, %err, "dropping a report's schedule lag");
        }
        if let Err(err) = trips.add_report(&report) {
            warn!(agent = %agent.info.name, %group, %err, "dropping part of a report's round trips");
        }
        if let Some(phases) = report.phases {
            outcome.phases = phases_to_local(clock, phases);
        }
        if report.counters.is_some() {
            outcome.last_counters = report.counters;
        }
        if report.done {
            outcome.unfinished = None;
            break;
        }
    }

    // Any exit from the loop with `unfinished` still set marks the time of loss.
    if outcome.unfinished.is_some() {
        outcome.lost_at_s = Some(seconds_since(started, unix_micros_now()));
    }

    // The slice's bots are gone either way; keep them out of the live totals.
    progress.remove_counters(&agent.info.name, &group);
    outcome
}

#[derive(Debug, thiserror::Error)]
enum ReportRowError {
    #[error("report without counters")]
    MissingCounters,
    #[error("latency histogram does not decode: {0}")]
    Histogram(String),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

fn write_report(
    agent: &AgentPeer,
    clock: &ClockTrack,
    group: &str,
    report: &GroupReport,
    results: &ResultsDir,
    started: i64,
    progress: &Progress,
) -> Result<(), ReportRowError> {
    let counters = report
        .counters
        .as_ref()
        .ok_or(ReportRowError::MissingCounters)?;
    let t_s = format!(
        "{:.3}",
        seconds_since(started, clock.to_local(report.unix_micros))
    );
    let errors: Vec<String> = counters
        .errors
        .iter()
        .map(|error| format!("{}={}", error.kind, error.count))
        .collect();

    results.append_bots([
        t_s.clone(),
        agent.info.name.clone(),
        group.to_string(),
        counters.connecting.to_string(),
        counters.connected.to_string(),
        counters.joined.to_string(),
        counters.connect_attempts.to_string(),
        counters.connected_total.to_string(),
        counters.joined_total.to_string(),
        counters.left_total.to_string(),
        counters.failed_total.to_string(),
        counters.messages_sent.to_string(),
        counters.messages_received.to_string(),
        counters.reflections.to_string(),
        counters.stanzas_received.to_string(),
        counters.late_sends.to_string(),
        errors.join(";"),
    ])?;
    progress.update_counters(&agent.info.name, group, counters);

    if !report.latency_histogram.is_empty() {
        let histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut report.latency_histogram.as_slice())
            .map_err(|err| ReportRowError::Histogram(format!("{err:?}")))?;
        progress.metrics().record_latency(group, &histogram);
        if histogram.len() > 0 {
            results.append_latency([
                t_s,
                agent.info.name.clone(),
                group.to_string(),
                histogram.len().to_string(),
                base64::engine::general_purpose::STANDARD.encode(&report.latency_histogram),
            ])?;
        }
    }
    Ok(())
}

fn phases_to_local(clock: &ClockTrack, phases: PhaseTimes) -> PhaseTimes {
    let local = |micros: i64| {
        if micros == 0 {
            0
        } else {
            clock.to_local(micros)
        }
    };
    PhaseTimes {
        join_first_unix_micros: local(phases.join_first_unix_micros),
        join_last_unix_micros: local(phases.join_last_unix_micros),
        talk_first_unix_micros: local(phases.talk_first_unix_micros),
        talk_last_unix_micros: local(phases.talk_last_unix_micros),
        leave_first_unix_micros: local(phases.leave_first_unix_micros),
        leave_last_unix_micros: local(phases.leave_last_unix_micros),
    }
}

/// Earliest first and latest last time of each phase over the agents;
/// zero (absent) values are skipped.
fn merge_phases<'a>(all: impl Iterator<Item = &'a PhaseTimes>) -> PhaseTimes {
    let first = |a: i64, b: i64| match (a, b) {
        (0, b) => b,
        (a, 0) => a,
        (a, b) => a.min(b),
    };
    all.fold(PhaseTimes::default(), |merged, phases| PhaseTimes {
        join_first_unix_micros: first(merged.join_first_unix_micros, phases.join_first_unix_micros),
        join_last_unix_micros: merged
            .join_last_unix_micros
            .max(phases.join_last_unix_micros),
        talk_first_unix_micros: first(merged.talk_first_unix_micros, phases.talk_first_unix_micros),
        talk_last_unix_micros: merged
            .talk_last_unix_micros
            .max(phases.talk_last_unix_micros),
        leave_first_unix_micros: first(
            merged.leave_first_unix_micros,
            phases.leave_first_unix_micros,
        ),
        leave_last_unix_micros: merged
            .leave_last_unix_micros
            .max(phases.leave_last_unix_micros),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Overrides, Scenario, Step};

    /// A direct-TLS c2s group requests TLS_MODE_DIRECT on the direct-TLS
    /// listener from the agents.
    #[test]
    fn direct_tls_request_targets_its_listener() {
        let text = r#"
name = "direct"

[server]
domain = "anon.localhost"
muc_domain = "conference.anon.localhost"
c2s = "127.0.0.1:5222"
c2s_direct_tls = "127.0.0.1:5223"
tls = "direct"

[agents]
addresses = ["http://127.0.0.1:15051"]

[defaults]
room = "study"

[[timeline]]
group = "secure"
transport = "c2s"
bots = 2
"#;
        let scenario = Scenario::parse(
            std::path::Path::new("direct.toml"),
            text,
            &Overrides::default(),
        )
        .unwrap();
        let Some(Step::Group(spec)) = scenario.timeline.first() else {
            panic!("the timeline starts with a group");
        };
        let slice = Indices::Progression {
            offset: 0,
            stride: 1,
            count: 2,
        };
        let request = request(spec, &scenario.server, &slice, 0);
        assert_eq!(request.tls, TlsMode::Direct as i32);
        assert_eq!(request.host, "127.0.0.1");
        assert_eq!(request.port, 5223);
        assert_eq!(tls_label(spec.transport, &scenario.server), "direct");
    }

    /// Merging keeps the earliest start and latest end and ignores absent phases.
    #[test]
    fn merge_keeps_extremes() {
        let a = PhaseTimes {
            join_first_unix_micros: 10,
            join_last_unix_micros: 20,
            talk_first_unix_micros: 0,
            talk_last_unix_micros: 0,
            ..PhaseTimes::default()
        };
        let b = PhaseTimes {
            join_first_unix_micros: 5,
            join_last_unix_micros: 15,
            talk_first_unix_micros: 30,
            talk_last_unix_micros: 40,
            ..PhaseTimes::default()
        };
        let merged = merge_phases([a, b].iter());
        assert_eq!(merged.join_first_unix_micros, 5);
        assert_eq!(merged.join_last_unix_micros, 20);
        assert_eq!(merged.talk_first_unix_micros, 30);
        assert_eq!(merged.talk_last_unix_micros, 40);
        assert_eq!(merged.leave_first_unix_micros, 0);
    }
}
