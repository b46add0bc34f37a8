//! The scenario file as TOML gives it, with the position of every value kept
//! so that validation errors can name the line.

use serde::Deserialize;
use toml::Spanned;

use super::web_client::RawWebClient;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Spanned<String>,
    pub server: Spanned<RawServer>,
    pub monitor: Option<Spanned<RawMonitor>>,
    pub agents: Option<Spanned<RawAgents>>,
    #[serde(default)]
    pub defaults: RawGroupSettings,
    pub timeline: Spanned<Vec<Spanned<RawStep>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub domain: Spanned<String>,
    pub muc_domain: Spanned<String>,
    pub c2s: Option<Spanned<String>>,
    pub c2s_direct_tls: Option<Spanned<String>>,
    pub websocket_url: Option<Spanned<String>>,
    pub bosh_url: Option<Spanned<String>>,
    pub tls: Option<Spanned<String>>,
    pub accept_invalid_certs: Option<bool>,
    /// `HOST:PORT` of the XEP-0114 component listener.
    pub component: Option<Spanned<String>>,
    /// VirtualHost of registered accounts, for groups that log in to them.
    pub accounts_domain: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub address: Spanned<String>,
    pub interval_ms: Option<Spanned<u32>>,
    pub openmetrics_url: Option<Spanned<String>>,
    #[serde(default)]
    pub openmetrics_names: Vec<String>,
    #[serde(default)]
    pub process: Vec<Spanned<RawProcess>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    pub name: Spanned<String>,
    pub pidfile: Option<String>,
    pub pid: Option<u32>,
    pub cmdline_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgents {
    pub addresses: Vec<Spanned<String>>,
    /// Relative share of every group's bots for each address, in order.
    pub weights: Option<Spanned<Vec<Spanned<f64>>>>,
    /// Seconds between clock offset measurements while the run goes.
    pub clock_refresh_s: Option<Spanned<f64>>,
}

/// Group settings that `[defaults]` gives and each group may override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroupSettings {
    pub room: Option<Spanned<String>>,
    pub join_rate: Option<Spanned<f64>>,
    pub talk_after_s: Option<Spanned<f64>>,
    pub talk_rate: Option<Spanned<f64>>,
    pub talk_duration_s: Option<Spanned<f64>>,
    pub leave_after_s: Option<Spanned<f64>>,
    pub body_bytes: Option<Spanned<u32>>,
    pub stream_management: Option<Spanned<bool>>,
    pub connect_timeout_s: Option<Spanned<f64>>,
    pub join_timeout_s: Option<Spanned<f64>>,
    pub rooms: Option<Spanned<u32>>,
    pub room_distribution: Option<Spanned<String>>,
    pub zipf_exponent: Option<Spanned<f64>>,
    pub rooms_per_bot: Option<Spanned<u32>>,
    pub max_stanza_bytes: Option<Spanned<u32>>,
    pub bosh_hold: Option<Spanned<u32>>,
    pub bosh_wait_s: Option<Spanned<u32>>,
    pub web_client: Option<RawWebClient>,
    pub auth: Option<Spanned<String>>,
    pub accounts: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub accounts_first: Option<Spanned<u32>>,
    pub accounts_file: Option<Spanned<String>>,
    pub accounts_domain: Option<Spanned<String>>,
}

/// One timeline entry: either `wait_s`, or a group with `group`,
/// `transport`, `bots` and any of the group settings.
// The settings are repeated here instead of flattened because serde's
// flatten buffers values and loses the positions that Spanned records.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub wait_s: Option<Spanned<f64>>,
    pub group: Option<Spanned<String>>,
    pub transport: Option<Spanned<String>>,
    pub bots: Option<Spanned<u32>>,
    pub room: Option<Spanned<String>>,
    pub join_rate: Option<Spanned<f64>>,
    pub talk_after_s: Option<Spanned<f64>>,
    pub talk_rate: Option<Spanned<f64>>,
    pub talk_duration_s: Option<Spanned<f64>>,
    pub leave_after_s: Option<Spanned<f64>>,
    pub body_bytes: Option<Spanned<u32>>,
    pub stream_management: Option<Spanned<bool>>,
    pub connect_timeout_s: Option<Spanned<f64>>,
    pub join_timeout_s: Option<Spanned<f64>>,
    pub rooms: Option<Spanned<u32>>,
    pub room_distribution: Option<Spanned<String>>,
    pub zipf_exponent: Option<Spanned<f64>>,
    pub rooms_per_bot: Option<Spanned<u32>>,
    pub max_stanza_bytes: Option<Spanned<u32>>,
    pub bosh_hold: Option<Spanned<u32>>,
    pub bosh_wait_s: Option<Spanned<u32>>,
    pub web_client: Option<RawWebClient>,
    /// Keys of a component group (`transport = "component"`) only.
    pub component_domain: Option<Spanned<String>>,
    pub secret: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
    pub rate: Option<Spanned<f64>>,
    pub flood_after_s: Option<Spanned<f64>>,
    pub duration_s: Option<Spanned<f64>>,
    pub messages: Option<Spanned<u64>>,
    pub auth: Option<Spanned<String>>,
    pub accounts: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub accounts_first: Option<Spanned<u32>>,
    pub accounts_file: Option<Spanned<String>>,
    pub accounts_domain: Option<Spanned<String>>,
}

impl RawStep {
    /// Splits off the group settings of this step.
    pub fn settings(self) -> RawGroupSettings {
        RawGroupSettings {
            room: self.room,
            join_rate: self.join_rate,
            talk_after_s: self.talk_after_s,
            talk_rate: self.talk_rate,
            talk_duration_s: self.talk_duration_s,
            leave_after_s: self.leave_after_s,
            body_bytes: self.body_bytes,
            stream_management: self.stream_management,
            connect_timeout_s: self.connect_timeout_s,
            join_timeout_s: self.join_timeout_s,
            rooms: self.rooms,
            room_distribution: self.room_distribution,
            zipf_exponent: self.zipf_exponent,
            rooms_per_bot: self.rooms_per_bot,
            max_stanza_bytes: self.max_stanza_bytes,
            bosh_hold: self.bosh_hold,
            bosh_wait_s: self.bosh_wait_s,
            web_client: self.web_client,
            auth: self.auth,
            accounts: self.accounts,
            password: self.password,
            accounts_first: self.accounts_first,
            accounts_file: self.accounts_file,
            accounts_domain: self.accounts_domain,
        }
    }
}
