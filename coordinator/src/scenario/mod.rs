//! Scenario files: a timeline of waits and bot groups in TOML.
//!
//! [`Scenario::load`] reads and validates the whole file before a run starts,
//! so a typo never surfaces halfway through a run. Every error names the
//! file, the line and the field, and shows what a valid value looks like.

mod component;
pub mod login;
mod raw;
mod validate;
pub mod web_client;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use validate::ScenarioError;
pub use web_client::WebClientSpec;

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
    /// Host and port of the listener that speaks TLS from the first byte
    /// (XEP-0368), which c2s groups use when `tls` is `direct`.
    pub c2s_direct_tls: Option<(String, u16)>,
    pub websocket_url: Option<String>,
    /// `http://` or `https://` URL of the BOSH endpoint, when any group
    /// uses BOSH.
    pub bosh_url: Option<String>,
    pub tls: TlsMode,
    pub accept_invalid_certs: bool,
    /// Host and port of the XEP-0114 component listener, when any group is
    /// a component.
    pub component: Option<(String, u16)>,
    /// `[server] accounts_domain`: VirtualHost of registered accounts for
    /// groups that do not set their own.
    pub accounts_domain: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    Starttls,
    StarttlsRequired,
    /// TLS from the first byte on the `c2s_direct_tls` listener (XEP-0368).
    Direct,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::Starttls => "starttls",
            TlsMode::StarttlsRequired => "starttls-required",
            TlsMode::Direct => "direct",
        }
    }
}

impl Server {
    /// Address that c2s groups connect to: `c2s_direct_tls` with direct
    /// TLS, `c2s` otherwise.
    pub fn c2s_target(&self) -> Option<&(String, u16)> {
        match self.tls {
            TlsMode::Direct => self.c2s_direct_tls.as_ref(),
            _ => self.c2s.as_ref(),
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
    /// XEP-0124 BOSH with XEP-0206.
    Bosh,
    /// One XEP-0114 component connection that floods the group's rooms.
    Component,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::C2s => "c2s",
            Transport::Bosh => "bosh",
            Transport::Component => "component",
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
    /// BOSH `hold`: requests the server may keep waiting (BOSH groups only).
    pub bosh_hold: u32,
    /// BOSH `wait`: how long the server may keep one waiting, in seconds.
    pub bosh_wait_s: u32,
    /// Browser-like requests of the bots around their join.
    pub web_client: WebClientSpec,
    /// Set for a component group, whose `talk_rate` is the flood rate in
    /// messages per second over all rooms.
    /// Boxed because most groups have none and a timeline has many groups.
    pub component: Option<Box<ComponentSpec>>,
    /// SASL mechanism and accounts.
    pub login: login::GroupLogin,
}

/// Connection and bounds of a component group.
#[derive(Clone, PartialEq, Eq)]
pub struct ComponentSpec {
    /// Domain of the server's `Component` entry.
    pub domain: String,
    /// Shared secret of the handshake, from `secret` or `secret_file`.
    pub secret: String,
    /// Number of messages to send; `None` sends until `duration_s` ends.
    pub messages: Option<u64>,
    /// Byte range of an inline `secret` value in the scenario text, so the
    /// copy in the results folder can leave it out.
    pub secret_span: Option<std::ops::Range<usize>>,
}

impl std::fmt::Debug for ComponentSpec {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentSpec")
            .field("domain", &self.domain)
            .field("secret", &"<redacted>")
            .field("messages", &self.messages)
            .finish()
    }
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

    /// Returns the scenario text with every inline component secret
    /// replaced, for the copy in the results folder.
    pub fn redacted_source(&self) -> String {
        let mut spans: Vec<_> = self
            .groups()
            .filter_map(|group| group.component.as_ref()?.secret_span.clone())
            .collect();
        // From the end, so earlier ranges keep their offsets.
        spans.sort_by_key(|span| std::cmp::Reverse(span.start));
        let mut text = self.source.clone();
        for span in spans {
            if text.get(span.clone()).is_some() {
                text.replace_range(span, "\"<redacted>\"");
            }
        }
        text
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
