//! Turns the raw TOML into a [`Scenario`], checking every value.

mod accounts;
mod bosh;

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawGroupSettings, RawProcess, RawScenario, RawStep};
use super::{
    GroupSpec, MonitorSpec, Overrides, ProcessSpec, ProcessTarget, RoomDistribution, Scenario,
    Server, Step, TlsMode, Transport,
};

/// Smallest monitor interval the monitor agent accepts.
const MIN_INTERVAL_MS: u32 = 100;
/// A message body carries a marker (sender, sequence, send time) of about
/// this many bytes, so shorter bodies cannot be matched to their sender.
const MIN_BODY_BYTES: u32 = 48;
/// A week bounds every duration and group; anything longer is a typo.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;
/// Prosody's default stanza size limit is 256 KiB; stay well below it.
const MAX_BODY_BYTES: u32 = 64 * 1024;
/// Maximum rooms in one group; the agents reject more.
const MAX_ROOMS: u32 = 100_000;
/// Maximum rooms one bot joins; the agents reject more.
const MAX_ROOMS_PER_BOT: u32 = 100;
/// Maximum Zipf exponent; the agents reject larger ones.
const MAX_ZIPF_EXPONENT: f64 = 10.0;
/// Time between clock offset measurements unless the scenario sets one:
/// often enough to follow a drifting clock, rare enough to cost nothing.
const DEFAULT_CLOCK_REFRESH: Duration = Duration::from_secs(30);
/// Default stanza limit, equal to Prosody 0.12's default
/// `c2s_stanza_size_limit`.
const DEFAULT_MAX_STANZA_BYTES: u32 = 256 * 1024;
/// The agents accept stanza limits from 4 KiB (stream features must fit) to
/// 16 MiB.
const MIN_MAX_STANZA_BYTES: u32 = 4096;
const MAX_MAX_STANZA_BYTES: u32 = 16 * 1024 * 1024;
/// Room the stanza limit must leave beyond `body_bytes` for the envelope of
/// a reflected message; the agents check the same margin.
const STANZA_ENVELOPE_BYTES: u32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("option {option}: `{value}` is not a gRPC address; use http://HOST:PORT")]
    InvalidOption { option: &'static str, value: String },
    #[error("option {option}: `{value}` is given twice; give each agent once")]
    DuplicateOption { option: &'static str, value: String },
    #[error("{file}:{line}: field `{field}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        field: String,
        message: String,
    },
}

/// Carries the file name and text so errors can name file and line.
pub(super) struct Context<'a> {
    pub(super) file: String,
    source: &'a str,
}

impl Context<'_> {
    pub(super) fn line_of(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.source.len());
        self.source.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn invalid(
        &self,
        span: Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.clone(),
            line: self.line_of(span),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

pub fn parse(path: &Path, source: &str, overrides: &Overrides) -> Result<Scenario, ScenarioError> {
    let cx = Context {
        file: path.display().to_string(),
        source,
    };

    let raw: RawScenario = toml::from_str(source).map_err(|err| {
        let line = err.span().map(|span| cx.line_of(span)).unwrap_or(1);
        // serde's type errors do not name the key, so quote the line.
        let text = source.lines().nth(line - 1).unwrap_or("").trim();
        let message = if text.is_empty() {
            err.message().to_string()
        } else {
            format!(
                "{} in `{text}`; see the scenario format in README.md",
                err.message()
            )
        };
        ScenarioError::Syntax {
            file: cx.file.clone(),
            line,
            message,
        }
    })?;

    let name_span = raw.name.span();
    let name = raw.name.into_inner();
    if name.trim().is_empty() {
        return Err(cx.invalid(
            name_span,
            "name",
            "must not be empty; give the scenario a short name",
        ));
    }

    let server = server(&cx, raw.server)?;
    let monitor = monitor(&cx, raw.monitor, overrides)?;
    let clock_refresh = clock_refresh(&cx, raw.agents.as_ref())?;
    let (agents, agent_weights) = agents(&cx, raw.agents, overrides)?;

    let timeline_span = raw.timeline.span();
    let mut timeline = Vec::new();
    let mut group_names = HashSet::new();
    for (index, step) in raw.timeline.into_inner().into_iter().enumerate() {
        let step = timeline_step(&cx, index, step, &raw.defaults, &server)?;
        if let Step::Group(group) = &step {
            if !group_names.insert(group.name.clone()) {
                return Err(cx.invalid(
                    timeline_span.clone(),
                    &format!("timeline[{index}].group"),
                    format!(
                        "group name `{}` is used twice; give each group its own name",
                        group.name
                    ),
                ));
            }
        }
        timeline.push(step);
    }
    if group_names.is_empty() {
        return Err(cx.invalid(
            timeline_span,
            "timeline",
            "has no bot group; add a [[timeline]] entry with `group`, `transport` and `bots`",
        ));
    }

    Ok(Scenario {
        name,
        path: path.to_path_buf(),
        source: source.to_string(),
        server,
        monitor,
        agents,
        agent_weights,
        clock_refresh,
        timeline,
    })
}

/// Reads `[agents] clock_refresh_s`, which also applies when `--agent`
/// replaces the file's addresses.
fn clock_refresh(
    cx: &Context,
    raw: Option<&Spanned<super::raw::RawAgents>>,
) -> Result<Duration, ScenarioError> {
    let Some(value) = raw.and_then(|raw| raw.get_ref().clock_refresh_s.as_ref()) else {
        return Ok(DEFAULT_CLOCK_REFRESH);
    };
    let seconds = *value.get_ref();
    if !(seconds.is_finite() && (1.0..=3600.0).contains(&seconds)) {
        return Err(cx.invalid(
            value.span(),
            "agents.clock_refresh_s",
            format!("{seconds} is out of range; use 1 to 3600 seconds"),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn server(cx: &Context, raw: Spanned<super::raw::RawServer>) -> Result<Server, ScenarioError> {
    let raw = raw.into_inner();

    let domain = non_empty(cx, raw.domain, "server.domain")?;
    let muc_domain = non_empty(cx, raw.muc_domain, "server.muc_domain")?;

    let c2s = match raw.c2s {
        None => None,
        Some(value) => Some(host_port(cx, value, "server.c2s")?),
    };
    let c2s_direct_tls_span = raw.c2s_direct_tls.as_ref().map(|value| value.span());
    let c2s_direct_tls = match raw.c2s_direct_tls {
        None => None,
        Some(value) => Some(host_port(cx, value, "server.c2s_direct_tls")?),
    };

    let websocket_url = match raw.websocket_url {
        None => None,
        Some(value) => {
            let span = value.span();
            let url = value.into_inner();
            if !(url.starts_with("ws://") || url.starts_with("wss://"))
                || url.len() < "ws://x".len()
            {
                return Err(cx.invalid(
                    span,
                    "server.websocket_url",
                    format!("`{url}` is not a WebSocket URL; use ws://HOST:PORT/PATH or wss://HOST:PORT/PATH"),
                ));
            }
            Some(url)
        }
    };

    let bosh_url = match raw.bosh_url {
        None => None,
        Some(value) => Some(bosh::url(cx, value)?),
    };

    let tls = match raw.tls {
        None => TlsMode::None,
        Some(value) => {
            let span = value.span();
            match value.into_inner().as_str() {
                "none" => TlsMode::None,
                "starttls" => TlsMode::Starttls,
                "starttls-required" => TlsMode::StarttlsRequired,
                "direct" => TlsMode::Direct,
                other => {
                    return Err(cx.invalid(
                        span,
                        "server.tls",
                        format!(
                            "`{other}` is not a TLS mode; use none, starttls, starttls-required or direct"
                        ),
                    ));
                }
            }
        }
    };
    // A direct-TLS address that no group would use is most likely a
    // forgotten `tls = "direct"`, so it is rejected rather than ignored.
    if let Some(span) = c2s_direct_tls_span
        && tls != TlsMode::Direct
    {
        return Err(cx.invalid(
            span,
            "server.c2s_direct_tls",
            format!(
                "is set but `server.tls` is `{}`; set tls = \"direct\" to use it, or remove it",
                tls.as_str()
            ),
        ));
    }

    let component = match raw.component {
        None => None,
        Some(value) => Some(host_port(cx, value, "server.component")?),
    };

    Ok(Server {
        domain,
        muc_domain,
        c2s,
        c2s_direct_tls,
        component,
        websocket_url,
        bosh_url,
        tls,
        accept_invalid_certs: raw.accept_invalid_certs.unwrap_or(false),
        accounts_domain: match raw.accounts_domain {
            Some(value) => Some(non_empty(cx, value, "server.accounts_domain")?),
            None => None,
        },
    })
}

fn monitor(
    cx: &Context,
    raw: Option<Spanned<super::raw::RawMonitor>>,
    overrides: &Overrides,
) -> Result<Option<MonitorSpec>, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let section_span = raw.span();
    let raw = raw.into_inner();

    let address = match &overrides.monitor {
        Some(address) => checked_option("--monitor", address)?,
        None => grpc_address(cx, raw.address, "monitor.address")?,
    };

    let interval_ms = match raw.interval_ms {
        None => 200,
        Some(value) => {
            let span = value.span();
            let interval = value.into_inner();
            if interval < MIN_INTERVAL_MS {
                return Err(cx.invalid(
                    span,
                    "monitor.interval_ms",
                    format!("{interval} ms is below the minimum of {MIN_INTERVAL_MS} ms"),
                ));
            }
            interval
        }
    };

    if raw.process.is_empty() {
        return Err(cx.invalid(
            section_span,
            "monitor.process",
            "no process to watch; add [[monitor.process]] with `name` and one of `pidfile`, `pid` or `cmdline_contains`",
        ));
    }
    let mut processes = Vec::new();
    for (index, process) in raw.process.into_iter().enumerate() {
        processes.push(process_spec(cx, index, process)?);
    }

    let openmetrics_url = raw
        .openmetrics_url
        .map(|url| openmetrics_url(cx, url))
        .transpose()?;
    if openmetrics_url.is_none() && !raw.openmetrics_names.is_empty() {
        return Err(cx.invalid(
            section_span,
            "monitor.openmetrics_names",
            "is set without monitor.openmetrics_url; add the URL or remove the names",
        ));
    }

    Ok(Some(MonitorSpec {
        address,
        interval_ms,
        processes,
        openmetrics_url,
        openmetrics_names: raw.openmetrics_names,
    }))
}

/// Checks the shape `http://HOST[:PORT]/PATH`; the monitor reads the
/// endpoint on the server's own host, so TLS is not supported.
fn openmetrics_url(cx: &Context, value: Spanned<String>) -> Result<String, ScenarioError> {
    let span = value.span();
    let url = value.into_inner();
    let host_and_path = url.strip_prefix("http://").unwrap_or_default();
    let host = host_and_path.split('/').next().unwrap_or_default();
    let port_valid = match host.rsplit_once(':') {
        Some((_, port)) if !host.ends_with(']') => port.parse::<u16>().is_ok_and(|port| port > 0),
        _ => true,
    };
    if host.is_empty() || !port_valid || url.chars().any(char::is_whitespace) {
        return Err(cx.invalid(
            span,
            "monitor.openmetrics_url",
            format!(
                "`{url}` is not an http:// URL; use for example \"http://127.0.0.1:5280/metrics\" (Prosody's mod_http_openmetrics)"
            ),
        ));
    }
    Ok(url)
}

fn process_spec(
    cx: &Context,
    index: usize,
    raw: Spanned<RawProcess>,
) -> Result<ProcessSpec, ScenarioError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let name = non_empty(cx, raw.name, &format!("monitor.process[{index}].name"))?;

    let target = match (raw.pidfile, raw.pid, raw.cmdline_contains) {
        (Some(pidfile), None, None) => ProcessTarget::Pidfile(pidfile),
        (None, Some(pid), None) => ProcessTarget::Pid(pid),
        (None, None, Some(pattern)) if !pattern.is_empty() => {
            ProcessTarget::CmdlineContains(pattern)
        }
        _ => {
            return Err(cx.invalid(
                span,
                &format!("monitor.process[{index}]"),
                "needs exactly one of `pidfile`, `pid` or a non-empty `cmdline_contains`",
            ));
        }
    };
    Ok(ProcessSpec { name, target })
}

/// Agent addresses, and their weights when the file gives them. Addresses
/// from `--agent` replace the file's, and its weights with them.
fn agents(
    cx: &Context,
    raw: Option<Spanned<super::raw::RawAgents>>,
    overrides: &Overrides,
) -> Result<(Vec<String>, Option<Vec<f64>>), ScenarioError> {
    if !overrides.agents.is_empty() {
        let addresses: Vec<String> = overrides
            .agents
            .iter()
            .map(|address| checked_option("--agent", address))
            .collect::<Result<_, _>>()?;
        // One agent listed twice would get two slices of every group and
        // count its capacity twice, which defeats the check before the run.
        for (index, address) in addresses.iter().enumerate() {
            if addresses[..index].contains(address) {
                return Err(ScenarioError::DuplicateOption {
                    option: "--agent",
                    value: address.clone(),
                });
            }
        }
        // The file's weights belong to the file's addresses, so they cannot
        // be matched to the new ones. Say so rather than drop them quietly.
        if let Some(file_agents) = &raw
            && file_agents.get_ref().weights.is_some()
        {
            tracing::warn!(
                file = %cx.file,
                "[agents] weights ignored because --agent replaced the addresses; \
                 bots are placed by each agent's CPU cores"
            );
        }
        return Ok((addresses, None));
    }
    let Some(raw) = raw else {
        return Err(ScenarioError::Invalid {
            file: cx.file.clone(),
            line: 1,
            field: "agents.addresses".to_string(),
            message: "no bot agent given; add [agents] addresses = [\"http://HOST:PORT\"] or pass --agent".to_string(),
        });
    };
    let span = raw.span();
    let raw = raw.into_inner();
    if raw.addresses.is_empty() {
        return Err(cx.invalid(
            span,
            "agents.addresses",
            "is empty; list at least one agent as \"http://HOST:PORT\" or pass --agent",
        ));
    }
    let count = raw.addresses.len();
    let mut addresses: Vec<String> = Vec::with_capacity(count);
    for (index, address) in raw.addresses.into_iter().enumerate() {
        let span = address.span();
        let field = format!("agents.addresses[{index}]");
        let address = grpc_address(cx, address, &field)?;
        if addresses.contains(&address) {
            return Err(cx.invalid(
                span,
                &field,
                format!("`{address}` is listed twice; list each agent once"),
            ));
        }
        addresses.push(address);
    }
    let weights = raw
        .weights
        .map(|weights| agent_weights(cx, weights, count))
        .transpose()?;
    Ok((addresses, weights))
}

/// Checks `[agents] weights`: one finite, non-negative number per address,
/// and at least one above zero.
fn agent_weights(
    cx: &Context,
    raw: Spanned<Vec<Spanned<f64>>>,
    addresses: usize,
) -> Result<Vec<f64>, ScenarioError> {
    let span = raw.span();
    let raw = raw.into_inner();
    if raw.len() != addresses {
        return Err(cx.invalid(
            span,
            "agents.weights",
            format!(
                "has {} values for {addresses} addresses; give one weight per address, in the same order",
                raw.len()
            ),
        ));
    }
    let mut weights = Vec::with_capacity(raw.len());
    for (index, weight) in raw.into_iter().enumerate() {
        let weight_span = weight.span();
        let weight = weight.into_inner();
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(cx.invalid(
                weight_span,
                &format!("agents.weights[{index}]"),
                format!("{weight} is not a weight; use a number of 0 or more"),
            ));
        }
        weights.push(weight);
    }
    if weights.iter().all(|&weight| weight == 0.0) {
        return Err(cx.invalid(
            span,
            "agents.weights",
            "are all 0; give at least one agent a positive weight",
        ));
    }
    Ok(weights)
}

fn timeline_step(
    cx: &Context,
    index: usize,
    raw: Spanned<RawStep>,
    defaults: &RawGroupSettings,
    server: &Server,
) -> Result<Step, ScenarioError> {
    let span = raw.span();
    let mut raw = raw.into_inner();
    let field = |name: &str| format!("timeline[{index}].{name}");

    if let Some(wait) = raw.wait_s.take() {
        if raw.group.is_some() || raw.transport.is_some() || raw.bots.is_some() {
            return Err(cx.invalid(
                span,
                &field("wait_s"),
                "an entry is either a wait (`wait_s`) or a group (`group`, `transport`, `bots`), not both",
            ));
        }
        let seconds = seconds(cx, Some(wait), &field("wait_s"), 0.0)?;
        return Ok(Step::Wait(seconds));
    }

    let Some(name) = raw.group.take() else {
        return Err(cx.invalid(
            span,
            &format!("timeline[{index}]"),
            "needs either `wait_s` or `group` with `transport` and `bots`",
        ));
    };
    let name_span = name.span();
    let name = name.into_inner();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(cx.invalid(
            name_span,
            &field("group"),
            format!("`{name}` is not a valid group name; use letters, digits, `-` and `_`"),
        ));
    }

    let Some(transport) = raw.transport.take() else {
        return Err(cx.invalid(
            span,
            &field("transport"),
            "is missing; use websocket, c2s or bosh",
        ));
    };
    let transport_span = transport.span();
    let transport = match transport.into_inner().as_str() {
        "websocket" => Transport::WebSocket,
        "c2s" => Transport::C2s,
        "bosh" => Transport::Bosh,
        "component" => {
            let spans = (span, transport_span);
            let group =
                super::component::component_group(cx, index, name, spans, raw, defaults, server)?;
            return Ok(Step::Group(group));
        }
        other => {
            return Err(cx.invalid(
                transport_span,
                &field("transport"),
                format!("`{other}` is not a transport; use websocket, c2s, bosh or component"),
            ));
        }
    };
    super::component::reject_component_keys(cx, index, &raw)?;
    match transport {
        Transport::WebSocket if server.websocket_url.is_none() => {
            return Err(cx.invalid(
                transport_span,
                &field("transport"),
                "websocket needs `server.websocket_url`; add it to [server]",
            ));
        }
        Transport::C2s if server.tls == TlsMode::Direct && server.c2s_direct_tls.is_none() => {
            return Err(cx.invalid(
                transport_span,
                &field("transport"),
                "c2s with tls = \"direct\" needs `server.c2s_direct_tls` (\"HOST:PORT\"); add it to [server]",
            ));
        }
        Transport::C2s if server.c2s_target().is_none() => {
            return Err(cx.invalid(
                transport_span,
                &field("transport"),
                "c2s needs `server.c2s` (\"HOST:PORT\"); add it to [server]",
            ));
        }
        Transport::Bosh if server.bosh_url.is_none() => {
            return Err(cx.invalid(
                transport_span,
                &field("transport"),
                "bosh needs `server.bosh_url`; add it to [server]",
            ));
        }
        _ => {}
    }

    let Some(bots) = raw.bots.take() else {
        return Err(cx.invalid(span, &field("bots"), "is missing; give the number of bots"));
    };
    let bots_span = bots.span();
    let bots = bots.into_inner();
    if bots == 0 {
        return Err(cx.invalid(bots_span, &field("bots"), "must be at least 1"));
    }

    let group = group_settings(
        cx,
        index,
        name,
        transport,
        bots,
        bots_span,
        raw.settings(),
        defaults,
        server,
    )?;
    Ok(Step::Group(group))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn group_settings(
    cx: &Context,
    index: usize,
    name: String,
    transport: Transport,
    bots: u32,
    bots_span: Range<usize>,
    own: RawGroupSettings,
    defaults: &RawGroupSettings,
    server: &Server,
) -> Result<GroupSpec, ScenarioError> {
    // A group's own value wins over [defaults]; the error names whichever
    // of the two was used.
    let field = |name: &str, from_group: bool| {
        if from_group {
            format!("timeline[{index}].{name}")
        } else {
            format!("defaults.{name}")
        }
    };
    macro_rules! pick {
        ($name:ident) => {
            match own.$name.clone() {
                Some(value) => (Some(value), field(stringify!($name), true)),
                None => (defaults.$name.clone(), field(stringify!($name), false)),
            }
        };
    }

    let (room, room_field) = pick!(room);
    let room_span = room.as_ref().map(|room| room.span()).unwrap_or(0..0);
    let room = match room {
        Some(room) => non_empty(cx, room, &room_field)?,
        None => name.clone(),
    };
    if room.contains(['@', '/']) || room.chars().any(char::is_whitespace) {
        return Err(cx.invalid(
            room_span,
            &room_field,
            format!(
                "`{room}` must be the room's local name only, without spaces; the MUC domain comes from server.muc_domain"
            ),
        ));
    }

    let (join_rate, join_rate_field) = pick!(join_rate);
    let join_rate = rate(cx, join_rate, &join_rate_field, 10.0, false)?;
    let (talk_rate, talk_rate_field) = pick!(talk_rate);
    let talk_rate = rate(cx, talk_rate, &talk_rate_field, 1.0, true)?;

    let (talk_after, talk_after_field) = pick!(talk_after_s);
    let talk_after = seconds(cx, talk_after, &talk_after_field, 10.0)?;
    let (talk_duration, talk_duration_field) = pick!(talk_duration_s);
    let talk_duration = seconds(cx, talk_duration, &talk_duration_field, 10.0)?;
    let (leave_after_raw, leave_after_field) = pick!(leave_after_s);
    let leave_span = leave_after_raw
        .as_ref()
        .map(|value| value.span())
        .unwrap_or(0..0);
    let leave_after = seconds(cx, leave_after_raw, &leave_after_field, 25.0)?;
    if leave_after < talk_after + talk_duration {
        return Err(cx.invalid(
            leave_span,
            &leave_after_field,
            format!(
                "{:.3} s is before talking ends ({:.3} s after connecting); set it to at least talk_after_s + talk_duration_s",
                leave_after.as_secs_f64(),
                (talk_after + talk_duration).as_secs_f64()
            ),
        ));
    }

    let (body, body_field) = pick!(body_bytes);
    let body_bytes = match body {
        None => 64,
        Some(value) => {
            let span = value.span();
            let bytes = value.into_inner();
            if !(MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(&bytes) {
                return Err(cx.invalid(
                    span,
                    &body_field,
                    format!(
                        "{bytes} is out of range; use {MIN_BODY_BYTES} to {MAX_BODY_BYTES} bytes"
                    ),
                ));
            }
            bytes
        }
    };

    let (stream_management, _) = pick!(stream_management);
    let stream_management = stream_management.map(Spanned::into_inner).unwrap_or(false);

    let (connect_timeout, connect_field) = pick!(connect_timeout_s);
    let connect_timeout = seconds(cx, connect_timeout, &connect_field, 10.0)?;
    let (join_timeout, join_field) = pick!(join_timeout_s);
    let join_timeout = seconds(cx, join_timeout, &join_field, 10.0)?;

    let (rooms, rooms_field) = pick!(rooms);
    let (rooms, rooms_span) = match rooms {
        None => (1, 0..0),
        Some(value) => (*value.get_ref(), value.span()),
    };
    if !(1..=MAX_ROOMS).contains(&rooms) {
        return Err(cx.invalid(
            rooms_span,
            &rooms_field,
            format!("{rooms} is out of range; use 1 to {MAX_ROOMS} rooms"),
        ));
    }
    let (rooms_per_bot, per_bot_field) = pick!(rooms_per_bot);
    if let Some(value) = rooms_per_bot.as_ref() {
        let per_bot = *value.get_ref();
        if per_bot == 0 || per_bot > rooms || per_bot > MAX_ROOMS_PER_BOT {
            return Err(cx.invalid(
                value.span(),
                &per_bot_field,
                format!(
                    "{per_bot} is out of range; use 1 to `rooms` ({rooms}), at most {MAX_ROOMS_PER_BOT}"
                ),
            ));
        }
    }
    let rooms_per_bot = rooms_per_bot.map_or(1, Spanned::into_inner);
    let room_distribution = room_distribution(cx, pick!(room_distribution), pick!(zipf_exponent))?;
    let (max_stanza, max_stanza_field) = pick!(max_stanza_bytes);
    let max_stanza_bytes = max_stanza_bytes(cx, max_stanza, &max_stanza_field, body_bytes)?;
    let (bosh_hold, bosh_wait_s) =
        bosh::settings(cx, transport, pick!(bosh_hold), pick!(bosh_wait_s))?;
    let web_client = super::web_client::resolve(
        cx,
        &format!("timeline[{index}]"),
        own.web_client.as_ref(),
        defaults.web_client.as_ref(),
    )?;
    let login_keys = accounts::LoginKeys {
        auth: pick!(auth),
        accounts: pick!(accounts),
        password: pick!(password),
        accounts_first: pick!(accounts_first),
        accounts_file: pick!(accounts_file),
        accounts_domain: pick!(accounts_domain),
    };
    let fallback_domain = server.accounts_domain.as_deref().unwrap_or(&server.domain);
    let login = accounts::login(cx, login_keys, bots, fallback_domain)?;

    let group = GroupSpec {
        name,
        transport,
        bots,
        room: format!("{room}@{}", server.muc_domain),
        rooms,
        room_distribution,
        rooms_per_bot,
        join_rate,
        talk_after,
        talk_rate,
        talk_duration,
        leave_after,
        body_bytes,
        stream_management,
        connect_timeout,
        join_timeout,
        max_stanza_bytes,
        bosh_hold,
        bosh_wait_s,
        web_client,
        component: None,
        login,
    };

    // Agents reject a group whose deadline passes a week, so catch it here
    // before the run starts.
    if group.deadline() > Duration::from_secs_f64(MAX_SECONDS) {
        return Err(ScenarioError::Invalid {
            file: cx.file.clone(),
            line: cx.line_of(bots_span),
            field: format!("timeline[{index}].bots"),
            message: format!(
                "the group would run {:.0} s (arrivals at join_rate plus leave_after_s and timeouts), longer than {MAX_SECONDS} s; use fewer bots or a higher join_rate",
                group.deadline().as_secs_f64()
            ),
        });
    }
    Ok(group)
}

/// Reads `room_distribution` and `zipf_exponent`, each with the field
/// name that errors use. The exponent belongs to Zipf only, so a uniform
/// group with an exponent is rejected as a likely mistake.
fn room_distribution(
    cx: &Context,
    (distribution, distribution_field): (Option<Spanned<String>>, String),
    (exponent, exponent_field): (Option<Spanned<f64>>, String),
) -> Result<RoomDistribution, ScenarioError> {
    let name = distribution
        .as_ref()
        .map_or("uniform", |value| value.get_ref().as_str());
    // A group that sets "uniform" over a Zipf default does not inherit the
    // default's exponent, which belongs to the distribution it replaced.
    let inherited_exponent =
        exponent_field.starts_with("defaults.") && !distribution_field.starts_with("defaults.");
    match name {
        "uniform" => match exponent {
            None => Ok(RoomDistribution::Uniform),
            Some(_) if inherited_exponent => Ok(RoomDistribution::Uniform),
            Some(value) => Err(cx.invalid(
                value.span(),
                &exponent_field,
                "applies only to room_distribution = \"zipf\"; remove it or set the distribution",
            )),
        },
        "zipf" => {
            let Some(value) = exponent else {
                return Ok(RoomDistribution::Zipf { exponent: 1.0 });
            };
            let exponent = *value.get_ref();
            if !(exponent.is_finite() && exponent > 0.0 && exponent <= MAX_ZIPF_EXPONENT) {
                return Err(cx.invalid(
                    value.span(),
                    &exponent_field,
                    format!("{exponent} is out of range; use a number above 0 and at most {MAX_ZIPF_EXPONENT}"),
                ));
            }
            Ok(RoomDistribution::Zipf { exponent })
        }
        other => Err(cx.invalid(
            distribution.as_ref().map_or(0..0, |value| value.span()),
            &distribution_field,
            format!("`{other}` is not a room distribution; use uniform or zipf"),
        )),
    }
}

/// Checks a stanza limit against the agents' range and the body size.
fn max_stanza_bytes(
    cx: &Context,
    value: Option<Spanned<u32>>,
    field: &str,
    body_bytes: u32,
) -> Result<u32, ScenarioError> {
    let Some(value) = value else {
        return Ok(DEFAULT_MAX_STANZA_BYTES);
    };
    let span = value.span();
    let bytes = value.into_inner();
    if !(MIN_MAX_STANZA_BYTES..=MAX_MAX_STANZA_BYTES).contains(&bytes) {
        return Err(cx.invalid(
            span,
            field,
            format!(
                "{bytes} is out of range; use {MIN_MAX_STANZA_BYTES} to {MAX_MAX_STANZA_BYTES} bytes"
            ),
        ));
    }
    let needed = body_bytes + STANZA_ENVELOPE_BYTES;
    if bytes < needed {
        return Err(cx.invalid(
            span,
            field,
            format!(
                "{bytes} is too small for body_bytes = {body_bytes}; use at least body_bytes + {STANZA_ENVELOPE_BYTES} = {needed} bytes"
            ),
        ));
    }
    Ok(bytes)
}

pub(super) fn non_empty(
    cx: &Context,
    value: Spanned<String>,
    field: &str,
) -> Result<String, ScenarioError> {
    let span = value.span();
    let value = value.into_inner();
    if value.trim().is_empty() {
        return Err(cx.invalid(span, field, "must not be empty"));
    }
    Ok(value)
}

fn host_port(
    cx: &Context,
    value: Spanned<String>,
    field: &str,
) -> Result<(String, u16), ScenarioError> {
    let span = value.span();
    let text = value.into_inner();
    let parsed = text.rsplit_once(':').and_then(|(host, port)| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse::<u16>().ok().filter(|&port| port > 0)?;
        (!host.is_empty()).then(|| (host.to_string(), port))
    });
    parsed.ok_or_else(|| {
        cx.invalid(
            span,
            field,
            format!("`{text}` is not HOST:PORT, for example \"127.0.0.1:5222\""),
        )
    })
}

fn is_grpc_address(address: &str) -> bool {
    let rest = address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"));
    rest.is_some_and(|host_port| host_port.contains(':'))
}

fn checked_option(option: &'static str, address: &str) -> Result<String, ScenarioError> {
    if is_grpc_address(address) {
        Ok(address.to_string())
    } else {
        Err(ScenarioError::InvalidOption {
            option,
            value: address.to_string(),
        })
    }
}

fn grpc_address(
    cx: &Context,
    value: Spanned<String>,
    field: &str,
) -> Result<String, ScenarioError> {
    let span = value.span();
    let address = value.into_inner();
    if is_grpc_address(&address) {
        return Ok(address);
    }
    Err(cx.invalid(
        span,
        field,
        format!("`{address}` is not a gRPC address; use http://HOST:PORT"),
    ))
}

pub(super) fn seconds(
    cx: &Context,
    value: Option<Spanned<f64>>,
    field: &str,
    default: f64,
) -> Result<Duration, ScenarioError> {
    let Some(value) = value else {
        return Ok(Duration::from_secs_f64(default));
    };
    let span = value.span();
    let seconds = value.into_inner();
    if !seconds.is_finite() || !(0.0..=MAX_SECONDS).contains(&seconds) {
        return Err(cx.invalid(
            span,
            field,
            format!("{seconds} is not a duration; use seconds from 0 to {MAX_SECONDS}"),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

pub(super) fn rate(
    cx: &Context,
    value: Option<Spanned<f64>>,
    field: &str,
    default: f64,
    zero_allowed: bool,
) -> Result<f64, ScenarioError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let span = value.span();
    let rate = value.into_inner();
    // One arrival or message every microsecond is past any server's limit.
    const MAX_RATE: f64 = 1_000_000.0;
    let valid =
        rate.is_finite() && rate <= MAX_RATE && (rate > 0.0 || (zero_allowed && rate == 0.0));
    if !valid {
        let lower = if zero_allowed {
            "0"
        } else {
            "a positive number"
        };
        return Err(cx.invalid(
            span,
            field,
            format!("{rate} is not a rate; use {lower} up to {MAX_RATE} per second"),
        ));
    }
    Ok(rate)
}
