//! Validation of a component group: a timeline entry with
//! `transport = "component"` that floods its rooms from one XEP-0114
//! connection instead of running client bots.
//!
//! Such an entry takes `component_domain`, `secret` or `secret_file`,
//! `rate` (messages per second over all rooms), `duration_s`, and optionally
//! `flood_after_s` (from the connect to the first message) and `messages`,
//! plus the room, body and timeout settings that bot groups have. The
//! server's component listener is `[server] component`. The run starts a
//! component group and goes on with the next step at once, so the bot
//! groups after it fill the rooms while it waits to flood them.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::login::GroupLogin;
use super::raw::{RawGroupSettings, RawStep};
use super::validate::{Context, ScenarioError, group_settings, non_empty, rate, seconds};
use super::web_client::WebClientSpec;
use super::{ComponentSpec, GroupSpec, RoomDistribution, Server, Transport};

/// Highest flood rate the agents accept, in messages per second.
const MAX_COMPONENT_RATE: f64 = 100_000.0;
/// Most rooms one component joins; the agents reject more.
const MAX_COMPONENT_ROOMS: u32 = 1000;
/// Default of `duration_s`.
const DEFAULT_DURATION_S: f64 = 10.0;

/// Builds the group of a component entry; `spans` are those of the entry
/// and of its `transport` value.
pub(super) fn component_group(
    cx: &Context,
    index: usize,
    name: String,
    (span, transport_span): (Range<usize>, Range<usize>),
    mut raw: RawStep,
    defaults: &RawGroupSettings,
    server: &Server,
) -> Result<GroupSpec, ScenarioError> {
    let field = |key: &str| format!("timeline[{index}].{key}");

    if server.component.is_none() {
        return Err(cx.invalid(
            transport_span,
            &field("transport"),
            "component needs `server.component` (\"HOST:PORT\" of the component listener); add it to [server]",
        ));
    }
    reject_bot_keys(cx, index, &raw)?;
    // The table has no span of its own, so the error points at the entry.
    if raw.web_client.is_some() {
        return Err(cx.invalid(
            span.clone(),
            &field("web_client"),
            "does not apply to a component group, which sends no client requests; remove the table",
        ));
    }
    if let Some(bots) = raw.bots.take()
        && *bots.get_ref() != 1
    {
        return Err(cx.invalid(
            bots.span(),
            &field("bots"),
            format!(
                "{} is not valid for a component group, which is one connection; leave `bots` out",
                bots.get_ref()
            ),
        ));
    }

    let Some(domain) = raw.component_domain.take() else {
        return Err(cx.invalid(
            span,
            &field("component_domain"),
            "is missing; give the domain of the server's Component entry, like \"flood.example.org\"",
        ));
    };
    let domain_span = domain.span();
    let domain = non_empty(cx, domain, &field("component_domain"))?;
    if domain.contains(['@', '/']) || domain.chars().any(char::is_whitespace) {
        return Err(cx.invalid(
            domain_span,
            &field("component_domain"),
            format!("`{domain}` is not a domain; give a bare domain like \"flood.example.org\""),
        ));
    }
    let secret_span = raw.secret.as_ref().map(Spanned::span);
    let secret = secret(cx, index, span.clone(), &mut raw)?;

    let Some(rate_value) = raw.rate.take() else {
        return Err(cx.invalid(
            span,
            &field("rate"),
            "is missing; give messages per second over all rooms",
        ));
    };
    let rate_span = rate_value.span();
    let flood_rate = rate(cx, Some(rate_value), &field("rate"), 0.0, false)?;
    if flood_rate > MAX_COMPONENT_RATE {
        return Err(cx.invalid(
            rate_span,
            &field("rate"),
            format!("{flood_rate} is above the agents' maximum; use at most {MAX_COMPONENT_RATE} messages per second"),
        ));
    }
    let flood_after = seconds(cx, raw.flood_after_s.take(), &field("flood_after_s"), 0.0)?;
    let duration_span = raw.duration_s.as_ref().map_or(span.clone(), Spanned::span);
    let duration = seconds(
        cx,
        raw.duration_s.take(),
        &field("duration_s"),
        DEFAULT_DURATION_S,
    )?;
    if duration.is_zero() {
        return Err(cx.invalid(
            duration_span,
            &field("duration_s"),
            "must be above 0 seconds",
        ));
    }
    let messages = match raw.messages.take() {
        None => None,
        Some(value) if *value.get_ref() == 0 => {
            return Err(cx.invalid(
                value.span(),
                &field("messages"),
                "must be at least 1; leave it out to send until duration_s ends",
            ));
        }
        Some(value) => Some(value.into_inner()),
    };

    // Room, body, timeouts and the stanza limit are validated as for bots.
    let rooms_span = raw.rooms.as_ref().map_or(span.clone(), Spanned::span);
    let mut group = group_settings(
        cx,
        index,
        name,
        Transport::Component,
        1,
        span,
        raw.settings(),
        defaults,
        server,
    )?;
    if group.rooms > MAX_COMPONENT_ROOMS {
        return Err(cx.invalid(
            rooms_span,
            &field("rooms"),
            format!("{} is out of range for a component group, which joins every room; use at most {MAX_COMPONENT_ROOMS}", group.rooms),
        ));
    }
    group.join_rate = 1.0;
    group.talk_after = flood_after;
    group.talk_rate = flood_rate;
    group.talk_duration = duration;
    group.leave_after = flood_after + duration;
    group.rooms_per_bot = 1;
    group.room_distribution = RoomDistribution::Uniform;
    group.stream_management = false;
    // Browser requests and account logins in [defaults] are meant for the
    // bots; the component authenticates with its secret and sends nothing else.
    group.web_client = WebClientSpec::default();
    group.login = GroupLogin::Anonymous;
    group.component = Some(Box::new(ComponentSpec {
        domain,
        secret,
        messages,
        secret_span,
    }));
    Ok(group)
}

/// Rejects the component keys on an entry that is not a component group.
pub(super) fn reject_component_keys(
    cx: &Context,
    index: usize,
    raw: &RawStep,
) -> Result<(), ScenarioError> {
    let present = [
        ("component_domain", span_of(&raw.component_domain)),
        ("secret", span_of(&raw.secret)),
        ("secret_file", span_of(&raw.secret_file)),
        ("rate", span_of(&raw.rate)),
        ("flood_after_s", span_of(&raw.flood_after_s)),
        ("duration_s", span_of(&raw.duration_s)),
        ("messages", span_of(&raw.messages)),
    ];
    reject_present(
        cx,
        index,
        &present,
        "applies to component groups only; set transport = \"component\" or remove it",
    )
}

/// Rejects the bot settings that mean nothing for one flooding connection,
/// because a value there would be silently ignored.
fn reject_bot_keys(cx: &Context, index: usize, raw: &RawStep) -> Result<(), ScenarioError> {
    let present = [
        ("join_rate", span_of(&raw.join_rate)),
        ("talk_after_s", span_of(&raw.talk_after_s)),
        ("talk_rate", span_of(&raw.talk_rate)),
        ("talk_duration_s", span_of(&raw.talk_duration_s)),
        ("leave_after_s", span_of(&raw.leave_after_s)),
        ("stream_management", span_of(&raw.stream_management)),
        ("rooms_per_bot", span_of(&raw.rooms_per_bot)),
        ("room_distribution", span_of(&raw.room_distribution)),
        ("zipf_exponent", span_of(&raw.zipf_exponent)),
        ("bosh_hold", span_of(&raw.bosh_hold)),
        ("bosh_wait_s", span_of(&raw.bosh_wait_s)),
        ("auth", span_of(&raw.auth)),
        ("accounts", span_of(&raw.accounts)),
        ("password", span_of(&raw.password)),
        ("accounts_first", span_of(&raw.accounts_first)),
        ("accounts_file", span_of(&raw.accounts_file)),
        ("accounts_domain", span_of(&raw.accounts_domain)),
    ];
    reject_present(
        cx,
        index,
        &present,
        "does not apply to a component group, which joins every room and sends `rate` messages per second for `duration_s`; remove it",
    )
}

fn span_of<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
    value.as_ref().map(Spanned::span)
}

/// Fails with `message` on the first key of `present` that has a span.
fn reject_present(
    cx: &Context,
    index: usize,
    present: &[(&str, Option<Range<usize>>)],
    message: &str,
) -> Result<(), ScenarioError> {
    match present
        .iter()
        .find_map(|(key, span)| Some((key, span.clone()?)))
    {
        Some((key, span)) => Err(cx.invalid(span, &format!("timeline[{index}].{key}"), message)),
        None => Ok(()),
    }
}

/// Reads the secret from `secret` or from `secret_file`, whose path is
/// relative to the scenario file. Exactly one of the two must be set.
fn secret(
    cx: &Context,
    index: usize,
    span: Range<usize>,
    raw: &mut RawStep,
) -> Result<String, ScenarioError> {
    let field = |key: &str| format!("timeline[{index}].{key}");
    match (raw.secret.take(), raw.secret_file.take()) {
        (Some(_), Some(file)) => Err(cx.invalid(
            file.span(),
            &field("secret_file"),
            "is given together with `secret`; keep one of the two",
        )),
        (None, None) => Err(cx.invalid(
            span,
            &field("secret"),
            "is missing; set `secret` or `secret_file` to the component_secret of the server's Component entry",
        )),
        (Some(secret), None) => non_empty(cx, secret, &field("secret")),
        (None, Some(file)) => {
            let file_span = file.span();
            let name = file.into_inner();
            let base = Path::new(&cx.file).parent().unwrap_or(Path::new("."));
            let path = base.join(&name);
            let text = std::fs::read_to_string(&path).map_err(|err| {
                cx.invalid(
                    file_span.clone(),
                    &field("secret_file"),
                    format!("cannot read `{}`: {err}; the path is relative to the scenario file", path.display()),
                )
            })?;
            // Editors end files with a newline that is not part of the secret.
            let secret = text.trim_end_matches(['\r', '\n']).to_owned();
            if secret.is_empty() {
                return Err(cx.invalid(file_span, &field("secret_file"), format!("`{}` is empty", path.display())));
            }
            Ok(secret)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::{Overrides, Scenario, Transport};

    /// A bot group and a component group flooding its room.
    const FLOOD: &str = r#"
name = "flood"

[server]
domain = "anon.localhost"
muc_domain = "conference.anon.localhost"
c2s = "127.0.0.1:5222"
component = "127.0.0.1:5347"

[agents]
addresses = ["http://127.0.0.1:15051"]

[[timeline]]
group = "watchers"
transport = "c2s"
bots = 4
room = "lobby"
talk_rate = 0.0

[[timeline]]
group = "flood"
transport = "component"
component_domain = "flood.anon.localhost"
secret = "s3cret"
room = "lobby"
rooms = 2
rate = 250.0
duration_s = 5.0
messages = 1000
flood_after_s = 3.0
"#;

    fn parse(text: &str) -> Result<Scenario, String> {
        Scenario::parse(Path::new("test.toml"), text, &Overrides::default())
            .map_err(|err| err.to_string())
    }

    /// Replaces the first occurrence of `from` in the flood scenario.
    fn flood_with(from: &str, to: &str) -> String {
        assert!(FLOOD.contains(from), "{from}");
        FLOOD.replacen(from, to, 1)
    }

    /// Browser requests and logins in [defaults] stay with the bots.
    #[test]
    fn defaults_for_bots_skip_component() {
        let text = flood_with(
            "[[timeline]]\ngroup = \"watchers\"",
            "[defaults.web_client]\npreset = \"browser\"\n\n[[timeline]]\ngroup = \"watchers\"",
        );
        let scenario = parse(&text).unwrap();
        let groups: Vec<_> = scenario.groups().collect();
        assert_ne!(groups[0].web_client, super::WebClientSpec::default());
        assert_eq!(groups[1].web_client, super::WebClientSpec::default());
    }

    /// A component entry resolves into one flooding connection.
    #[test]
    fn component_group_resolves() {
        let scenario = parse(FLOOD).unwrap();
        assert_eq!(
            scenario.server.component,
            Some(("127.0.0.1".to_owned(), 5347))
        );
        let group = scenario.groups().nth(1).unwrap();
        assert_eq!(group.transport, Transport::Component);
        assert_eq!(group.bots, 1);
        assert_eq!(group.room, "lobby@conference.anon.localhost");
        assert_eq!(group.rooms, 2);
        assert_eq!(group.talk_rate, 250.0);
        assert_eq!(group.talk_duration, Duration::from_secs(5));
        assert_eq!(group.leave_after, Duration::from_secs(8));
        assert_eq!(group.talk_after, Duration::from_secs(3));
        let component = group.component.as_ref().unwrap();
        assert_eq!(component.domain, "flood.anon.localhost");
        assert_eq!(component.secret, "s3cret");
        assert_eq!(component.messages, Some(1000));
        assert!(
            !format!("{component:?}").contains("s3cret"),
            "secret kept out of Debug"
        );

        let redacted = scenario.redacted_source();
        assert!(!redacted.contains("s3cret"), "{redacted}");
        assert!(redacted.contains("secret = \"<redacted>\""), "{redacted}");
        assert!(parse(&redacted).is_ok(), "the redacted copy still parses");
        assert!(scenario.groups().next().unwrap().component.is_none());
    }

    /// The secret can come from a file next to the scenario.
    #[test]
    fn secret_from_file() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("flood.secret"), "from-file\n").unwrap();
        let text = flood_with("secret = \"s3cret\"", "secret_file = \"flood.secret\"");
        let path = folder.path().join("flood.toml");
        let scenario = Scenario::parse(&path, &text, &Overrides::default()).unwrap();
        let component = scenario.groups().nth(1).unwrap().component.clone().unwrap();
        assert_eq!(component.secret, "from-file");

        let missing = flood_with("secret = \"s3cret\"", "secret_file = \"absent.secret\"");
        let err = Scenario::parse(&path, &missing, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeline[1].secret_file"), "{err}");
        assert!(err.contains("absent.secret"), "{err}");
    }

    /// Each invalid component entry names file, line and field.
    #[test]
    fn component_errors_name_field() {
        let cases = [
            (
                "component = \"127.0.0.1:5347\"\n",
                "",
                "timeline[1].transport",
                21,
            ),
            (
                "component = \"127.0.0.1:5347\"",
                "component = \"nowhere\"",
                "server.component",
                8,
            ),
            (
                "component_domain = \"flood.anon.localhost\"\n",
                "",
                "timeline[1].component_domain",
                20,
            ),
            (
                "\"flood.anon.localhost\"",
                "\"a@b\"",
                "timeline[1].component_domain",
                23,
            ),
            ("secret = \"s3cret\"\n", "", "timeline[1].secret", 20),
            (
                "secret = \"s3cret\"",
                "secret = \"s3cret\"\nsecret_file = \"x\"",
                "timeline[1].secret_file",
                25,
            ),
            ("rate = 250.0\n", "", "timeline[1].rate", 20),
            ("rate = 250.0", "rate = 0.0", "timeline[1].rate", 27),
            ("rate = 250.0", "rate = 200000.0", "timeline[1].rate", 27),
            (
                "duration_s = 5.0",
                "duration_s = 0.0",
                "timeline[1].duration_s",
                28,
            ),
            (
                "messages = 1000",
                "messages = 0",
                "timeline[1].messages",
                29,
            ),
            (
                "messages = 1000",
                "messages = 1\nbots = 3",
                "timeline[1].bots",
                30,
            ),
            (
                "messages = 1000",
                "messages = 1\ntalk_rate = 3.0",
                "timeline[1].talk_rate",
                30,
            ),
            ("rooms = 2", "rooms = 5000", "timeline[1].rooms", 26),
            (
                "talk_rate = 0.0",
                "talk_rate = 0.0\nrate = 5.0",
                "timeline[0].rate",
                19,
            ),
            (
                "flood_after_s = 3.0",
                "flood_after_s = -1.0",
                "timeline[1].flood_after_s",
                30,
            ),
            (
                "messages = 1000",
                "messages = 1\nauth = \"plain\"",
                "timeline[1].auth",
                30,
            ),
            (
                "flood_after_s = 3.0\n",
                "flood_after_s = 3.0\n[timeline.web_client]\npreset = \"browser\"\n",
                "timeline[1].web_client",
                20,
            ),
        ];
        for (from, to, field, line) in cases {
            let err = parse(&flood_with(from, to)).unwrap_err();
            assert!(err.contains(&format!("field `{field}`")), "{field}: {err}");
            assert!(
                err.starts_with(&format!("test.toml:{line}:")),
                "{field}: {err}"
            );
        }
    }
}
