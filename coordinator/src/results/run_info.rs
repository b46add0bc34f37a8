//! `run.json`: what was run, where, and how each peer's clock relates to ours.

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
    pub agents: Vec<PeerInfo>,
    pub groups: Vec<GroupInfo>,
}

/// A bot agent or the monitor agent as the coordinator found it.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Peer clock minus coordinator clock, in microseconds.
    pub clock_offset_micros: i64,
    /// Half the best round trip: the true offset lies within
    /// `clock_offset_micros ± clock_uncertainty_micros`.
    pub clock_uncertainty_micros: i64,
}

/// One bot group of the timeline with every setting that changes what the
/// server has to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    /// `websocket` or `c2s`.
    pub transport: String,
    /// `none`, `starttls` or `starttls-required`.
    pub tls: String,
    pub stream_management: bool,
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
