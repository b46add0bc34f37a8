//! The `web_client` table of `[defaults]` and of each group: the requests a
//! browser chat client makes around its MUC join, each a switch because
//! each changes what the server has to do.
//!
//! A group's table is merged field by field over the one in `[defaults]`,
//! and both over the preset that either names.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use xmppload_proto::v1::WebClient;

use super::ScenarioError;
use super::validate::Context;

/// Largest accepted `mam_max`; the agents reject more.
const MAX_MAM_MAX: u32 = 1000;
/// Largest accepted `vcard_max_occupants`; the agents reject more.
const MAX_VCARD_OCCUPANTS: u32 = 10_000;
/// Shortest accepted ping interval, in seconds; the agents reject less.
const MIN_PING_INTERVAL_S: f64 = 0.1;
/// Shortest accepted nick-change interval, in seconds; the agents reject less.
const MIN_NICK_CHANGE_S: f64 = 1.0;
/// Longest accepted duration of any field, in seconds (one day).
const MAX_WEB_SECONDS: f64 = 86_400.0;

/// The table as TOML gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebClient {
    /// `browser` switches on everything a browser client does after it
    /// joins; `none` starts from all off.
    pub preset: Option<Spanned<String>>,
    pub disco: Option<Spanned<bool>>,
    pub roster: Option<Spanned<bool>>,
    pub vcard: Option<Spanned<bool>>,
    pub vcard_max_occupants: Option<Spanned<u32>>,
    pub vcard_spread_s: Option<Spanned<f64>>,
    pub carbons: Option<Spanned<bool>>,
    pub mam_max: Option<Spanned<u32>>,
    pub ping_interval_s: Option<Spanned<f64>>,
    pub nick_change_every_s: Option<Spanned<f64>>,
    pub request_timeout_s: Option<Spanned<f64>>,
}

/// Browser behaviours of one group, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct WebClientSpec {
    pub disco: bool,
    pub roster: bool,
    pub vcard: bool,
    pub vcard_max_occupants: u32,
    pub vcard_spread: Duration,
    pub carbons: bool,
    pub mam_max: u32,
    pub ping_interval: Option<Duration>,
    pub nick_change_every: Option<Duration>,
    pub request_timeout: Duration,
}

impl Default for WebClientSpec {
    /// Everything off, as bots behaved before the table existed.
    fn default() -> Self {
        WebClientSpec {
            disco: false,
            roster: false,
            vcard: false,
            vcard_max_occupants: 50,
            vcard_spread: Duration::from_secs(5),
            carbons: false,
            mam_max: 0,
            ping_interval: None,
            nick_change_every: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl WebClientSpec {
    /// Returns the `browser` preset: disco, roster, carbons, a vCard for
    /// every occupant, the last 50 archived messages and a ping a minute.
    /// Nick changes stay off. NOTE: this set is an estimate of a typical
    /// browser client, not measured from one.
    pub fn browser() -> Self {
        WebClientSpec {
            disco: true,
            roster: true,
            vcard: true,
            carbons: true,
            mam_max: 50,
            ping_interval: Some(Duration::from_secs(60)),
            ..WebClientSpec::default()
        }
    }

    /// True when at least one behaviour is on.
    pub fn is_active(&self) -> bool {
        self.disco
            || self.roster
            || self.vcard
            || self.carbons
            || self.mam_max > 0
            || self.ping_interval.is_some()
            || self.nick_change_every.is_some()
    }

    /// Lists the behaviours that are on, for logs and reports: `off`, or a
    /// comma list such as `disco, vcard (max 50, spread 5 s), mam 50`.
    pub fn describe(&self) -> String {
        let mut on = Vec::new();
        if self.disco {
            on.push("disco".to_owned());
        }
        if self.roster {
            on.push("roster".to_owned());
        }
        if self.vcard {
            on.push(format!(
                "vcard (max {}, spread {} s)",
                self.vcard_max_occupants,
                self.vcard_spread.as_secs_f64()
            ));
        }
        if self.carbons {
            on.push("carbons".to_owned());
        }
        if self.mam_max > 0 {
            on.push(format!("mam {}", self.mam_max));
        }
        if let Some(interval) = self.ping_interval {
            on.push(format!("ping every {} s", interval.as_secs_f64()));
        }
        if let Some(every) = self.nick_change_every {
            on.push(format!("nick every {} s", every.as_secs_f64()));
        }
        if on.is_empty() {
            "off".to_owned()
        } else {
            on.join(", ")
        }
    }

    /// Converts to the request field; `None` when nothing is on.
    pub fn to_proto(&self) -> Option<WebClient> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.is_active().then(|| WebClient {
            disco: self.disco,
            roster: self.roster,
            vcard: self.vcard,
            vcard_max_occupants: self.vcard_max_occupants,
            vcard_spread_ms: millis(self.vcard_spread),
            carbons: self.carbons,
            mam_max: self.mam_max,
            ping_interval_ms: self.ping_interval.map_or(0, millis),
            nick_change_every_ms: self.nick_change_every.map_or(0, millis),
            request_timeout_ms: millis(self.request_timeout),
        })
    }
}

/// Merges a group's table over the defaults' and validates the result.
/// `group_prefix` is the field path of the group, like `timeline[2]`.
pub(super) fn resolve(
    cx: &Context,
    group_prefix: &str,
    own: Option<&RawWebClient>,
    defaults: Option<&RawWebClient>,
) -> Result<WebClientSpec, ScenarioError> {
    let empty = RawWebClient::default();
    let own = own.unwrap_or(&empty);
    let defaults = defaults.unwrap_or(&empty);
    let field = |name: &str, from_group: bool| {
        if from_group {
            format!("{group_prefix}.web_client.{name}")
        } else {
            format!("defaults.web_client.{name}")
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

    let mut spec = match pick!(preset) {
        (None, _) => WebClientSpec::default(),
        (Some(preset), preset_field) => match preset.get_ref().as_str() {
            "browser" => WebClientSpec::browser(),
            "none" => WebClientSpec::default(),
            other => {
                return Err(cx.invalid(
                    preset.span(),
                    &preset_field,
                    format!("unknown preset `{other}`; use `browser` or `none`"),
                ));
            }
        },
    };

    macro_rules! switch {
        ($name:ident) => {
            if let (Some(value), _) = pick!($name) {
                spec.$name = value.into_inner();
            }
        };
    }
    switch!(disco);
    switch!(roster);
    switch!(vcard);
    switch!(carbons);

    if let (Some(value), name) = pick!(vcard_max_occupants) {
        spec.vcard_max_occupants =
            at_most(cx, value, &name, MAX_VCARD_OCCUPANTS, "vCards per bot")?;
    }
    if let (Some(value), name) = pick!(mam_max) {
        spec.mam_max = at_most(cx, value, &name, MAX_MAM_MAX, "messages (0 sends no query)")?;
    }
    if let (Some(value), name) = pick!(vcard_spread_s) {
        spec.vcard_spread = seconds(cx, value, &name, 0.0, false)?.unwrap_or_default();
    }
    if let (Some(value), name) = pick!(ping_interval_s) {
        spec.ping_interval = seconds(cx, value, &name, MIN_PING_INTERVAL_S, true)?;
    }
    if let (Some(value), name) = pick!(nick_change_every_s) {
        spec.nick_change_every = seconds(cx, value, &name, MIN_NICK_CHANGE_S, true)?;
    }
    if let (Some(value), name) = pick!(request_timeout_s) {
        let span = value.span();
        match seconds(cx, value, &name, 0.001, false)? {
            Some(timeout) if !timeout.is_zero() => spec.request_timeout = timeout,
            _ => return Err(positive(cx, span, &name)),
        }
    }
    Ok(spec)
}

fn at_most(
    cx: &Context,
    value: Spanned<u32>,
    field: &str,
    max: u32,
    unit: &str,
) -> Result<u32, ScenarioError> {
    let count = *value.get_ref();
    if count > max {
        return Err(cx.invalid(
            value.span(),
            field,
            format!("{count} is out of range; use 0 to {max} {unit}"),
        ));
    }
    Ok(count)
}

/// Reads seconds; with `zero_is_off`, 0 gives `None`. Other values must be
/// at least `min` and at most a day.
fn seconds(
    cx: &Context,
    value: Spanned<f64>,
    field: &str,
    min: f64,
    zero_is_off: bool,
) -> Result<Option<Duration>, ScenarioError> {
    let span = value.span();
    let seconds = value.into_inner();
    if zero_is_off && seconds == 0.0 {
        return Ok(None);
    }
    if !seconds.is_finite() || seconds < min || seconds > MAX_WEB_SECONDS {
        let off = if zero_is_off {
            "0 to switch it off, or "
        } else {
            ""
        };
        return Err(cx.invalid(
            span,
            field,
            format!("{seconds} is out of range; use {off}{min} to {MAX_WEB_SECONDS} seconds"),
        ));
    }
    Ok(Some(Duration::from_secs_f64(seconds)))
}

fn positive(cx: &Context, span: Range<usize>, field: &str) -> ScenarioError {
    cx.invalid(span, field, "set a positive number of seconds")
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::WebClientSpec;
    use crate::scenario::{Overrides, Scenario, ScenarioError};

    /// Scenario text up to and including `[defaults]`; tests append the rest.
    const HEAD: &str = r#"
name = "web"

[server]
domain = "anon.localhost"
muc_domain = "conference.anon.localhost"
websocket_url = "ws://127.0.0.1:5280/xmpp-websocket"

[agents]
addresses = ["http://127.0.0.1:15051"]

[defaults]
room = "web"
"#;

    fn parse(tail: &str) -> Result<Scenario, ScenarioError> {
        let text = format!("{HEAD}{tail}");
        Scenario::parse(Path::new("web.toml"), &text, &Overrides::default())
    }

    fn specs(tail: &str) -> Vec<WebClientSpec> {
        parse(tail)
            .unwrap()
            .groups()
            .map(|group| group.web_client.clone())
            .collect()
    }

    /// Without a table the bots make no web-client request.
    #[test]
    fn absent_table_is_off() {
        let specs = specs("[[timeline]]\ngroup = \"a\"\ntransport = \"websocket\"\nbots = 1\n");
        assert_eq!(specs[0], WebClientSpec::default());
        assert_eq!(specs[0].describe(), "off");
        assert_eq!(specs[0].to_proto(), None);
    }

    /// A group's fields win over the defaults' table, which wins over the preset.
    #[test]
    fn group_fields_override_defaults_and_preset() {
        let specs = specs(
            r#"
[defaults.web_client]
preset = "browser"
mam_max = 20

[[timeline]]
group = "a"
transport = "websocket"
bots = 1

[[timeline]]
group = "b"
transport = "websocket"
bots = 1
web_client = { mam_max = 0, nick_change_every_s = 30.0, carbons = false }
"#,
        );
        assert_eq!(specs[0].mam_max, 20);
        assert!(specs[0].carbons);
        assert_eq!(specs[0].ping_interval, Some(Duration::from_secs(60)));
        assert_eq!(
            specs[0].describe(),
            "disco, roster, vcard (max 50, spread 5 s), carbons, mam 20, ping every 60 s"
        );

        assert_eq!(specs[1].mam_max, 0);
        assert!(!specs[1].carbons);
        assert!(specs[1].disco, "the preset still applies to group b");
        assert_eq!(specs[1].nick_change_every, Some(Duration::from_secs(30)));
        let proto = specs[1].to_proto().unwrap();
        assert_eq!(proto.nick_change_every_ms, 30_000);
        assert_eq!(proto.mam_max, 0);
        assert_eq!(proto.vcard_spread_ms, 5_000);
    }

    /// Bad values name the file, the line and the field.
    #[test]
    fn bad_values_name_file_line_and_field() {
        let cases = [
            (
                "[defaults.web_client]\npreset = \"phone\"\n",
                "web.toml:15: field `defaults.web_client.preset`",
            ),
            (
                "[defaults.web_client]\nmam_max = 5000\n",
                "web.toml:15: field `defaults.web_client.mam_max`",
            ),
            (
                "[defaults.web_client]\nping_interval_s = 0.01\n",
                "web.toml:15: field `defaults.web_client.ping_interval_s`",
            ),
            (
                "[defaults.web_client]\nnick_change_every_s = -1.0\n",
                "web.toml:15: field `defaults.web_client.nick_change_every_s`",
            ),
            (
                "[defaults.web_client]\nrequest_timeout_s = 0.0\n",
                "web.toml:15: field `defaults.web_client.request_timeout_s`",
            ),
            (
                "[defaults.web_client]\nvcard_max_occupants = 20000\n",
                "web.toml:15: field `defaults.web_client.vcard_max_occupants`",
            ),
        ];
        for (table, expected) in cases {
            let tail = format!(
                "{table}\n[[timeline]]\ngroup = \"a\"\ntransport = \"websocket\"\nbots = 1\n"
            );
            let err = parse(&tail).unwrap_err().to_string();
            assert!(err.contains(expected), "expected `{expected}` in: {err}");
        }

        let err = parse(
            "[[timeline]]\ngroup = \"a\"\ntransport = \"websocket\"\nbots = 1\nweb_client = { mam_max = 5000 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("timeline[0].web_client.mam_max"), "{err}");
    }

    /// Unknown keys in the table are rejected.
    #[test]
    fn unknown_key_rejected() {
        let err = parse(
            "[defaults.web_client]\nvcards = true\n\n[[timeline]]\ngroup = \"a\"\ntransport = \"websocket\"\nbots = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("vcards"), "{err}");
    }
}
