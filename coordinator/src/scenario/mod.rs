//! Scenario files: a timeline of waits and bot groups in TOML.
//!
//! [`Scenario::load`] reads and validates the whole file before a run starts,
//! so a typo never surfaces halfway through a run. Every error names the
//! file, the line and the field, and shows what a valid value looks like.

pub mod login;
mod raw;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use validate::ScenarioError;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub path: PathBuf,
    /// The file's text, copied into the results folder.
    pub source: String,
    pub server: Server,
    pub monitor: Option<MonitorSpec>,
    /// gRPC addresses of the bot agents (`http://host:port`).
    pub agents: Vec<String>,
    /// Relative share of each agent in every group, in the order of
    /// `agents`; `None` splits by the capacity the agents report.
    pub agent_weights: Option<Vec<f64>>,
    /// Time between two measurements of each peer's clock offset while
    /// the run goes (`[agents] clock_refresh_s`, 30 s unless set).
    pub clock_refresh: Duration,
    pub timeline: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub domain: String,
    pub muc_domain: String,
    /// Host and port of the c2s listener, when any group uses c2s.
    pub c2s: Option<(String, u16)>,
    pub websocket_url: Option<String>,
    pub tls: TlsMode,
    pub accept_invalid_certs: bool,
    /// `[server] accounts_domain`: VirtualHost of registered accounts for
    /// groups that do not set their own.
    pub accounts_domain: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    Starttls,
    StarttlsRequired,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::Starttls => "starttls",
            TlsMode::StarttlsRequired => "starttls-required",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MonitorSpec {
    pub address: String,
    pub interval_ms: u32,
    pub processes: Vec<ProcessSpec>,
    /// `http://` URL of the server's OpenMetrics endpoint, read by the
    /// monitor with every batch.
    pub openmetrics_url: Option<String>,
    /// Sample names to keep from that endpoint; empty keeps every gauge.
    pub openmetrics_names: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub name: String,
    pub target: ProcessTarget,
}

#[derive(Debug, Clone)]
pub enum ProcessTarget {
    Pidfile(String),
    Pid(u32),
    CmdlineContains(String),
}

#[derive(Debug, Clone)]
pub enum Step {
    Wait(Duration),
    Group(GroupSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    C2s,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::C2s => "c2s",
        }
    }
}

/// Rule that spreads a group's bots over its rooms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RoomDistribution {
    Uniform,
    /// Room r gets weight 1 / (r + 1)^exponent.
    Zipf {
        exponent: f64,
    },
}

impl RoomDistribution {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomDistribution::Uniform => "uniform",
            RoomDistribution::Zipf { .. } => "zipf",
        }
    }
}

/// A bot group with every setting resolved against `[defaults]`.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub name: String,
    pub transport: Transport,
    pub bots: u32,
    /// Bare JID of the room (`room@muc_domain`); with several rooms, the
    /// agents append `-0`, `-1`, ... to its local part.
    pub room: String,
    /// Rooms of the group, at least 1.
    pub rooms: u32,
    pub room_distribution: RoomDistribution,
    /// Rooms each bot joins, from 1 to `rooms`.
    pub rooms_per_bot: u32,
    /// Arrivals per second over the whole group.
    pub join_rate: f64,
    pub talk_after: Duration,
    /// Messages per second per bot while talking; 0 means the bots stay silent.
    pub talk_rate: f64,
    pub talk_duration: Duration,
    pub leave_after: Duration,
    pub body_bytes: u32,
    pub stream_management: bool,
    pub connect_timeout: Duration,
    pub join_timeout: Duration,
    /// Largest stanza a bot accepts from the server, in bytes.
    pub max_stanza_bytes: u32,
    /// SASL mechanism and accounts.
    pub login: login::GroupLogin,
}

impl GroupSpec {
    /// Time from the first arrival until the last bot is scheduled to leave.
    pub fn scheduled_length(&self) -> Duration {
        let last_arrival = f64::from(self.bots.saturating_sub(1)) / self.join_rate;
        Duration::from_secs_f64(last_arrival) + self.leave_after
    }

    /// Bound after which an agent closes whatever bots are still running:
    /// the schedule plus a connection's worth of timeouts and a grace period
    /// for the stream close.
    pub fn deadline(&self) -> Duration {
        const CLOSE_GRACE: Duration = Duration::from_secs(10);
        self.scheduled_length() + self.connect_timeout + self.join_timeout + CLOSE_GRACE
    }
}

/// Values given on the command line that replace the scenario's own.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub agents: Vec<String>,
    pub monitor: Option<String>,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
        let source = std::fs::read_to_string(path).map_err(|err| ScenarioError::Unreadable {
            file: path.display().to_string(),
            reason: err.to_string(),
        })?;
        Self::parse(path, &source, overrides)
    }

    /// Validates scenario text; `path` is used in errors and results only.
    pub fn parse(
        path: &Path,
        source: &str,
        overrides: &Overrides,
    ) -> Result<Scenario, ScenarioError> {
        validate::parse(path, source, overrides)
    }

    pub fn groups(&self) -> impl Iterator<Item = &GroupSpec> {
        self.timeline.iter().filter_map(|step| match step {
            Step::Group(group) => Some(group),
            Step::Wait(_) => None,
        })
    }
}

#[cfg(test)]
mod tests;
