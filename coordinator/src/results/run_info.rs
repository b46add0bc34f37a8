//! `run.json`: what was run, where, and how each peer's clock relates to ours.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Contents of `run.json`. Written when the run starts and rewritten as
/// peers and groups are added and when the run ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub scenario_name: String,
    pub scenario_path: String,
    /// Coordinator clock at the run's time zero (`t_s = 0` in every CSV).
    pub started_unix_micros: i64,
    /// Set when the run ends, by itself or by being stopped.
    pub finished_unix_micros: Option<i64>,
    /// True when the run was interrupted (Ctrl-C) before its timeline ended.
    #[serde(default)]
    pub stopped_early: bool,
    pub monitor: Option<PeerInfo>,
    /// Processes the monitor watches, by the label used in `monitor.csv`.
    pub monitored_processes: Vec<String>,
    pub monitor_interval_ms: u32,
    /// Server metrics endpoint the monitor read into `server_metrics.csv`;
    /// `None` when server metrics were not collected.
    #[serde(default)]
    pub server_metrics_url: Option<String>,
    pub agents: Vec<PeerInfo>,
    pub groups: Vec<GroupInfo>,
    /// Bot agents and the monitor lost and back during the run, in the
    /// order the coordinator noticed them. Absent in folders from older
    /// versions.
    #[serde(default)]
    pub peer_events: Vec<PeerEvent>,
}

/// A bot agent or the monitor agent as the coordinator found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Name the peer reported in `Hello`.
    pub name: String,
    /// gRPC address the coordinator connected to.
    pub address: String,
    pub version: String,
    pub cores: u32,
    pub fd_limit: u64,
    /// Local addresses a bot agent binds its bots to; empty when the
    /// kernel chooses, and for the monitor.
    #[serde(default)]
    pub source_addresses: Vec<String>,
    /// Local ports per source/destination pair on a bot agent; 0 when
    /// unknown, and for the monitor.
    #[serde(default)]
    pub ports_per_destination: u64,
    /// The bot agent's `--max-bots`; 0 for the monitor.
    #[serde(default)]
    pub max_bots: u32,
    /// Bots the agent was running for others when the run started.
    #[serde(default)]
    pub running_bots: u32,
    /// Descriptors the agent keeps free of bots.
    #[serde(default)]
    pub reserved_descriptors: u32,
    /// The bot agent's `--max-connect-rate` (connects/s); 0 when unknown,
    /// and for the monitor.
    #[serde(default)]
    pub max_connect_rate: f64,
    /// Peer clock minus coordinator clock, in microseconds.
    pub clock_offset_micros: i64,
    /// Half the best round trip: the true offset lies within
    /// `clock_offset_micros ± clock_uncertainty_micros`.
    pub clock_uncertainty_micros: i64,
}

fn off() -> String {
    "off".to_owned()
}

/// One bot group of the timeline with every setting that changes what the
/// server has to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    /// `websocket` or `c2s`.
    pub transport: String,
    /// `none`, `starttls`, `starttls-required` or `direct` for c2s, and
    /// `none` or `wss` for WebSocket.
    pub tls: String,
    pub stream_management: bool,
    /// Web-client behaviours that were on (`off` or a comma list); they
    /// change the server's cost. `off` in folders from older versions.
    #[serde(default = "off")]
    pub web_client: String,
    /// Counts of the web-client behaviours over the whole group: error
    /// replies (`error.KIND`), timeouts (`timeout.KIND`), iq requests the bots
    /// replied to (`answered.KIND`) and archived messages (`mam_messages`).
    /// The map is empty when none of these happened.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub web_client_counts: BTreeMap<String, u64>,
    /// SASL mechanism: `anonymous`, `plain`, `scram-sha-1` or
    /// `scram-sha-256`; `anonymous` in folders from older versions.
    #[serde(default = "anonymous")]
    pub auth: String,
    pub bots: u32,
    /// Bare JID of the MUC room, or with several rooms the name that the
    /// agents number as `local-0@domain`, `local-1@domain`, ...
    pub room: String,
    /// Rooms of the group; 1 in folders from older versions.
    #[serde(default = "one")]
    pub rooms: u32,
    /// `uniform` or `zipf`.
    #[serde(default = "uniform")]
    pub room_distribution: String,
    /// Exponent of the Zipf distribution; absent for uniform.
    #[serde(default)]
    pub zipf_exponent: Option<f64>,
    #[serde(default = "one")]
    pub rooms_per_bot: u32,
    pub join_rate: f64,
    pub talk_after_s: f64,
    pub talk_rate: f64,
    pub talk_duration_s: f64,
    pub leave_after_s: f64,
    pub body_bytes: u32,
    /// Seconds since run start at which the first bot was scheduled.
    pub scheduled_start_s: f64,
    pub placement: Vec<Placement>,
    /// Agents whose slice of this group did not run to its end: the agent
    /// rejected the group, its stream broke off, or it ran past its bound.
    /// Counters of such a group are incomplete.
    #[serde(default)]
    pub incomplete: Vec<IncompleteSlice>,
}

fn one() -> u32 {
    1
}

fn anonymous() -> String {
    "anonymous".to_string()
}

fn uniform() -> String {
    "uniform".to_string()
}

/// A slice of a group that did not finish, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncompleteSlice {
    pub agent: String,
    /// Bots placed on that agent.
    pub bots: u32,
    /// Cause of the loss, for example the status the agent returned.
    pub reason: String,
    /// Seconds since run start, on the coordinator's clock, when the
    /// stream broke off, the agent rejected the group, the bound passed or
    /// the run was interrupted. Absent in folders from older versions.
    #[serde(default)]
    pub lost_at_s: Option<f64>,
}

/// Bots of a group given to one agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placement {
    pub agent: String,
    pub bots: u32,
    /// Fraction of the group's bots, from 0 to 1.
    #[serde(default)]
    pub share: f64,
    /// Rule that set this agent's count: `weight` (the scenario's
    /// weights), `cores` (split by cores), or the capacity that capped it
    /// (`max-bots`, `descriptors` or `ports`). Empty in older folders.
    #[serde(default)]
    pub limit: String,
}

/// A peer that stopped responding, or that responded again after a loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerEvent {
    /// Seconds since run start on the coordinator's clock.
    pub t_s: f64,
    pub role: PeerRole,
    /// Agent name as in `agents` and `bots.csv`, or the monitor's name.
    pub peer: String,
    pub kind: PeerEventKind,
    /// Cause of a loss, such as the status of the broken stream; empty for
    /// a return.
    #[serde(default)]
    pub reason: String,
    /// The peer as greeted again on its return, with its new clock offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_as: Option<PeerInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRole {
    Agent,
    Monitor,
}

impl PeerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerRole::Agent => "bot agent",
            PeerRole::Monitor => "monitor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerEventKind {
    /// A bot agent's slice stream broke off or its agent was unreachable,
    /// or the monitor's sample stream broke off.
    Lost,
    /// A lost bot agent responded to `Hello` again before a later group, or the
    /// lost monitor sent its first sample again.
    Returned,
}

/// The time from a peer's loss to its return.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    pub role: PeerRole,
    pub peer: String,
    pub lost_s: f64,
    /// `None` when the peer did not return before the run ended.
    pub returned_s: Option<f64>,
    pub reason: String,
}

impl RunInfo {
    /// Pairs each loss in `peer_events` with the next return of the same
    /// peer, earliest loss first. A return without an earlier loss is
    /// left out.
    pub fn outages(&self) -> Vec<Outage> {
        let mut outages: Vec<Outage> = Vec::new();
        for event in &self.peer_events {
            let open = outages.iter_mut().find(|outage| {
                outage.role == event.role
                    && outage.peer == event.peer
                    && outage.returned_s.is_none()
            });
            match (event.kind, open) {
                (PeerEventKind::Lost, None) => outages.push(Outage {
                    role: event.role,
                    peer: event.peer.clone(),
                    lost_s: event.t_s,
                    returned_s: None,
                    reason: event.reason.clone(),
                }),
                (PeerEventKind::Returned, Some(outage)) => outage.returned_s = Some(event.t_s),
                // A second loss before a return, or a return without a loss.
                (PeerEventKind::Lost, Some(_)) | (PeerEventKind::Returned, None) => {}
            }
        }
        outages.sort_by(|a, b| a.lost_s.total_cmp(&b.lost_s));
        outages
    }
}

#[cfg(test)]
impl RunInfo {
    /// Builds a run without peers, groups or events, for unit tests.
    pub(crate) fn for_tests() -> RunInfo {
        RunInfo {
            scenario_name: "unit".to_string(),
            scenario_path: "unit.toml".to_string(),
            started_unix_micros: 0,
            finished_unix_micros: None,
            stopped_early: false,
            monitor: None,
            monitored_processes: Vec::new(),
            monitor_interval_ms: 100,
            server_metrics_url: None,
            agents: Vec::new(),
            groups: Vec::new(),
            peer_events: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t_s: f64, role: PeerRole, peer: &str, kind: PeerEventKind) -> PeerEvent {
        PeerEvent {
            t_s,
            role,
            peer: peer.to_string(),
            kind,
            reason: match kind {
                PeerEventKind::Lost => format!("{peer} gone"),
                PeerEventKind::Returned => String::new(),
            },
            returned_as: None,
        }
    }

    fn run_info(peer_events: Vec<PeerEvent>) -> RunInfo {
        RunInfo {
            peer_events,
            ..RunInfo::for_tests()
        }
    }

    /// Losses pair with the same peer's next return, per role and name.
    #[test]
    fn outages_pair_loss_and_return() {
        use PeerEventKind::{Lost, Returned};
        use PeerRole::{Agent, Monitor};
        let info = run_info(vec![
            event(1.0, Agent, "a", Returned),
            event(2.0, Agent, "a", Lost),
            event(3.0, Monitor, "a", Lost),
            event(4.0, Agent, "a", Lost),
            event(5.0, Agent, "b", Lost),
            event(6.0, Agent, "a", Returned),
            event(7.0, Monitor, "a", Returned),
            event(8.0, Agent, "a", Lost),
        ]);
        let outages = info.outages();
        let spans: Vec<(PeerRole, &str, f64, Option<f64>)> = outages
            .iter()
            .map(|o| (o.role, o.peer.as_str(), o.lost_s, o.returned_s))
            .collect();
        assert_eq!(
            spans,
            [
                (Agent, "a", 2.0, Some(6.0)),
                (Monitor, "a", 3.0, Some(7.0)),
                (Agent, "b", 5.0, None),
                (Agent, "a", 8.0, None),
            ]
        );
        assert_eq!(info.outages()[0].reason, "a gone");
    }

    /// A run.json written before peer events existed still reads.
    #[test]
    fn run_json_without_peer_events_reads() {
        let mut json = serde_json::to_value(run_info(Vec::new())).unwrap();
        json.as_object_mut().unwrap().remove("peer_events");
        let info: RunInfo = serde_json::from_value(json).unwrap();
        assert!(info.peer_events.is_empty());
    }
}
