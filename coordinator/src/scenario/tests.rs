use std::path::Path;
use std::time::Duration;

use super::*;

const VALID: &str = r#"
name = "small"

[server]
domain = "anon.localhost"
muc_domain = "conference.anon.localhost"
c2s = "127.0.0.1:5222"
websocket_url = "ws://127.0.0.1:5280/xmpp-websocket"

[monitor]
address = "http://127.0.0.1:15061"

[[monitor.process]]
name = "prosody"
pidfile = "/run/prosody/prosody.pid"

[agents]
addresses = ["http://127.0.0.1:15051"]

[defaults]
room = "study"
join_rate = 5.0

[[timeline]]
wait_s = 1.5

[[timeline]]
group = "ws"
transport = "websocket"
bots = 4
talk_rate = 2.0

[[timeline]]
group = "tcp"
transport = "c2s"
bots = 3
stream_management = true
"#;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("test.toml"), text, &Overrides::default())
}

fn error_of(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("scenario was accepted"),
        Err(err) => err.to_string(),
    }
}

/// A complete scenario resolves defaults and group overrides.
#[test]
fn valid_scenario_resolves_settings() {
    let scenario = parse(VALID).unwrap();
    assert_eq!(scenario.name, "small");
    assert_eq!(scenario.agents, vec!["http://127.0.0.1:15051"]);
    assert_eq!(scenario.server.c2s, Some(("127.0.0.1".to_string(), 5222)));
    assert_eq!(scenario.timeline.len(), 3);
    assert!(matches!(scenario.timeline[0], Step::Wait(d) if d == Duration::from_millis(1500)));

    let groups: Vec<_> = scenario.groups().collect();
    assert_eq!(groups[0].name, "ws");
    assert_eq!(groups[0].transport, Transport::WebSocket);
    assert_eq!(groups[0].room, "study@conference.anon.localhost");
    assert_eq!(groups[0].join_rate, 5.0);
    assert_eq!(groups[0].talk_rate, 2.0);
    assert!(!groups[0].stream_management);
    assert_eq!(groups[0].max_stanza_bytes, 256 * 1024);
    assert_eq!(groups[1].talk_rate, 1.0);
    assert!(groups[1].stream_management);

    let monitor = scenario.monitor.unwrap();
    assert_eq!(monitor.interval_ms, 200);
    assert!(
        matches!(&monitor.processes[0].target, ProcessTarget::Pidfile(p) if p == "/run/prosody/prosody.pid")
    );
}

/// The shipped study scenario is valid.
#[test]
fn study_scenario_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/30-websocket-vs-c2s.toml");
    let scenario = Scenario::load(&path, &Overrides::default()).unwrap();
    let groups: Vec<_> = scenario.groups().collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].bots, 50);
    assert_eq!(groups[0].transport, Transport::WebSocket);
    assert_eq!(groups[1].transport, Transport::C2s);
    assert_eq!(groups[0].leave_after, Duration::from_secs(25));
}

/// The reversed study runs the same groups with c2s first.
#[test]
fn reversed_study_scenario_is_valid() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/31-c2s-then-websocket.toml");
    let scenario = Scenario::load(&path, &Overrides::default()).unwrap();
    let groups: Vec<_> = scenario.groups().collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].transport, Transport::C2s);
    assert_eq!(groups[1].transport, Transport::WebSocket);
    assert_eq!(groups[1].bots, 50);
    assert!(groups[1].stream_management);
}

/// The ejabberd study runs the Prosody study's groups and watches ejabberd.
#[test]
fn ejabberd_study_scenario_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let prosody = Scenario::load(
        &root.join("30-websocket-vs-c2s.toml"),
        &Overrides::default(),
    )
    .unwrap();
    let ejabberd = Scenario::load(
        &root.join("33-ejabberd-websocket-vs-c2s.toml"),
        &Overrides::default(),
    )
    .unwrap();
    let expected: Vec<_> = prosody.groups().map(|g| format!("{g:?}")).collect();
    let groups: Vec<_> = ejabberd.groups().map(|g| format!("{g:?}")).collect();
    assert_eq!(groups, expected);
    assert_eq!(ejabberd.timeline.len(), prosody.timeline.len());

    let monitor = ejabberd.monitor.unwrap();
    assert_eq!(monitor.processes.len(), 1);
    assert_eq!(monitor.processes[0].name, "ejabberd");
    assert!(matches!(
        &monitor.processes[0].target,
        ProcessTarget::Pidfile(p) if p == "deploy/local/run/ejabberd.pid"
    ));
}

/// Command-line agents and monitor replace the scenario's.
#[test]
fn overrides_replace_addresses() {
    let overrides = Overrides {
        agents: vec!["http://10.1.1.1:1".into(), "http://10.1.1.2:1".into()],
        monitor: Some("http://10.1.1.3:1".into()),
    };
    let scenario = Scenario::parse(Path::new("t.toml"), VALID, &overrides).unwrap();
    assert_eq!(scenario.agents.len(), 2);
    assert_eq!(scenario.monitor.unwrap().address, "http://10.1.1.3:1");
}

/// Invalid values are rejected with file, line, field and a fix.
#[test]
fn invalid_values_name_line_and_field() {
    let cases = [
        (
            VALID.replace("bots = 4", "bots = 0"),
            "test.toml:30: field `timeline[1].bots`: must be at least 1",
        ),
        (
            VALID.replace("transport = \"c2s\"", "transport = \"pigeon\""),
            "test.toml:35: field `timeline[2].transport`: `pigeon` is not a transport; use websocket, c2s, bosh or component",
        ),
        (
            VALID.replace("join_rate = 5.0", "join_rate = -1.0"),
            "test.toml:22: field `defaults.join_rate`: -1 is not a rate",
        ),
        (
            VALID.replace("talk_rate = 2.0", "talk_rate = 2.0\nleave_after_s = 3.0"),
            "field `timeline[1].leave_after_s`: 3.000 s is before talking ends",
        ),
        (
            VALID.replace("c2s = \"127.0.0.1:5222\"", "c2s = \"localhost\""),
            "test.toml:7: field `server.c2s`: `localhost` is not HOST:PORT",
        ),
        (
            VALID.replace("ws://", "http://"),
            "test.toml:8: field `server.websocket_url`",
        ),
        (
            VALID.replace(
                "pidfile = \"/run/prosody/prosody.pid\"",
                "pid = 1\npidfile = \"x\"",
            ),
            "field `monitor.process[0]`: needs exactly one of",
        ),
        (
            VALID.replace(
                "[monitor]",
                "[monitor]\nopenmetrics_url = \"https://127.0.0.1:5281/metrics\"",
            ),
            "test.toml:11: field `monitor.openmetrics_url`: `https://127.0.0.1:5281/metrics` is not an http:// URL",
        ),
        (
            VALID.replace(
                "[monitor]",
                "[monitor]\nopenmetrics_url = \"http://127.0.0.1:99999/metrics\"",
            ),
            "test.toml:11: field `monitor.openmetrics_url`",
        ),
        (
            VALID.replace(
                "[monitor]",
                "[monitor]\nopenmetrics_names = [\"prosody_mod_c2s__connections\"]",
            ),
            "field `monitor.openmetrics_names`: is set without monitor.openmetrics_url",
        ),
        (
            VALID.replace("[monitor]", "[monitor]\ninterval_ms = 50"),
            "field `monitor.interval_ms`: 50 ms is below the minimum of 100 ms",
        ),
        (
            VALID.replace("\"http://127.0.0.1:15051\"", "\"127.0.0.1:15051\""),
            "test.toml:18: field `agents.addresses[0]`: `127.0.0.1:15051` is not a gRPC address",
        ),
        (
            VALID.replace("group = \"tcp\"", "group = \"ws\""),
            "group name `ws` is used twice",
        ),
        (
            VALID.replace("wait_s = 1.5", "wait_s = 1.5\nbots = 3"),
            "is either a wait",
        ),
        (
            VALID.replace("room = \"study\"", "room = \"study@elsewhere\""),
            "test.toml:21: field `defaults.room`",
        ),
        (
            VALID.replace("room = \"study\"", "room = \"st udy\""),
            "test.toml:21: field `defaults.room`: `st udy` must be the room's local name only, without spaces",
        ),
        (
            VALID.replace("bots = 4", "bots = 4000000000"),
            "test.toml:30: field `timeline[1].bots`: the group would run",
        ),
        (
            VALID.replace("join_rate = 5.0", "join_rate = 5.0\nmax_stanza_bytes = 100"),
            "test.toml:23: field `defaults.max_stanza_bytes`: 100 is out of range; use 4096 to 16777216 bytes",
        ),
        (
            VALID.replace(
                "talk_rate = 2.0",
                "talk_rate = 2.0\nbody_bytes = 8192\nmax_stanza_bytes = 8192",
            ),
            "test.toml:33: field `timeline[1].max_stanza_bytes`: 8192 is too small for body_bytes = 8192; use at least body_bytes + 4096 = 12288 bytes",
        ),
    ];
    for (text, expected) in cases {
        let message = error_of(&text);
        assert!(
            message.contains(expected),
            "expected `{expected}` in `{message}`"
        );
    }
}

/// A TOML syntax error and an unknown field name the line.
#[test]
fn syntax_and_unknown_fields_name_line() {
    let message = error_of(&VALID.replace("bots = 4", "bots = ="));
    assert!(message.starts_with("test.toml:30:"), "{message}");

    let message = error_of(&VALID.replace("bots = 4", "bots = -5"));
    assert!(message.starts_with("test.toml:30:"), "{message}");
    assert!(message.contains("in `bots = -5`"), "{message}");

    let message = error_of(&VALID.replace("bots = 4", "bots = 4\nbotz = 5"));
    assert!(message.starts_with("test.toml:31:"), "{message}");
    assert!(message.contains("botz"), "{message}");
}

/// A scenario without any group is rejected.
#[test]
fn timeline_without_group_is_rejected() {
    let text =
        VALID.split("[[timeline]]").next().unwrap().to_string() + "[[timeline]]\nwait_s = 1.0\n";
    assert!(error_of(&text).contains("has no bot group"));
}

/// A missing file is reported with its path.
#[test]
fn missing_file_is_named() {
    let err = Scenario::load(Path::new("/nonexistent/s.toml"), &Overrides::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read scenario /nonexistent/s.toml")
    );
}

/// Command-line addresses are checked like scenario addresses.
#[test]
fn invalid_override_is_named() {
    let overrides = Overrides {
        agents: vec!["127.0.0.1:15051".into()],
        monitor: None,
    };
    let err = Scenario::parse(Path::new("t.toml"), VALID, &overrides).unwrap_err();
    assert_eq!(
        err.to_string(),
        "option --agent: `127.0.0.1:15051` is not a gRPC address; use http://HOST:PORT"
    );
}

/// Every scenario shipped in scenarios/ is valid.
#[test]
fn shipped_scenarios_are_valid() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            if let Err(err) = Scenario::load(&path, &Overrides::default()) {
                panic!("{err}");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "found only {checked} scenarios in {}",
        folder.display()
    );
}

/// Room settings resolve from [defaults], and weights come with the addresses.
#[test]
fn rooms_and_weights_resolve() {
    let text = VALID
        .replace(
            "join_rate = 5.0\n",
            "join_rate = 5.0\nrooms = 50\nroom_distribution = \"zipf\"\nrooms_per_bot = 2\n",
        )
        .replace(
            "addresses = [\"http://127.0.0.1:15051\"]\n",
            "addresses = [\"http://127.0.0.1:15051\"]\nweights = [2.5]\n",
        );
    let scenario = parse(&text).unwrap();
    assert_eq!(scenario.agent_weights, Some(vec![2.5]));
    let group = scenario.groups().next().unwrap();
    assert_eq!(group.rooms, 50);
    assert_eq!(group.rooms_per_bot, 2);
    assert_eq!(
        group.room_distribution,
        RoomDistribution::Zipf { exponent: 1.0 }
    );

    let plain = parse(VALID).unwrap();
    assert_eq!(plain.agent_weights, None);
    let group = plain.groups().next().unwrap();
    assert_eq!(group.rooms, 1);
    assert_eq!(group.rooms_per_bot, 1);
    assert_eq!(group.room_distribution, RoomDistribution::Uniform);

    // Addresses from --agent replace the file's, and its weights with them.
    let overrides = Overrides {
        agents: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
        monitor: None,
    };
    let overridden = Scenario::parse(Path::new("t.toml"), &text, &overrides).unwrap();
    assert_eq!(overridden.agent_weights, None);
}

/// A group may set "uniform" over a Zipf default with an exponent.
#[test]
fn uniform_group_over_zipf_default() {
    let text = VALID
        .replace(
            "join_rate = 5.0\n",
            "join_rate = 5.0\nrooms = 4\nroom_distribution = \"zipf\"\nzipf_exponent = 2.0\n",
        )
        .replace("bots = 4\n", "bots = 4\nroom_distribution = \"uniform\"\n");
    let scenario = parse(&text).unwrap();
    let group = scenario.groups().next().unwrap();
    assert_eq!(group.room_distribution, RoomDistribution::Uniform);
}

/// An agent listed twice is rejected, in the file and on the command line.
#[test]
fn duplicate_agent_rejected() {
    let agents = "addresses = [\"http://127.0.0.1:15051\"]\n";
    let text = VALID.replace(
        agents,
        "addresses = [\"http://127.0.0.1:15051\", \"http://127.0.0.1:15051\"]\n",
    );
    let message = error_of(&text);
    assert!(
        message.contains(
            "field `agents.addresses[1]`: `http://127.0.0.1:15051` is listed twice; list each agent once"
        ),
        "{message}"
    );

    let overrides = Overrides {
        agents: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:1".into()],
        monitor: None,
    };
    let err = Scenario::parse(Path::new("t.toml"), VALID, &overrides).unwrap_err();
    assert_eq!(
        err.to_string(),
        "option --agent: `http://127.0.0.1:1` is given twice; give each agent once"
    );
}

/// Clock offsets are measured every 30 s unless `[agents]` sets another
/// interval, which also holds when --agent replaces the addresses.
#[test]
fn clock_refresh_defaults_and_overrides() {
    assert_eq!(parse(VALID).unwrap().clock_refresh, Duration::from_secs(30));

    let text = VALID.replace(
        "addresses = [\"http://127.0.0.1:15051\"]\n",
        "addresses = [\"http://127.0.0.1:15051\"]\nclock_refresh_s = 5.0\n",
    );
    assert_eq!(parse(&text).unwrap().clock_refresh, Duration::from_secs(5));

    let overrides = Overrides {
        agents: vec!["http://127.0.0.1:1".into()],
        monitor: None,
    };
    let overridden = Scenario::parse(Path::new("t.toml"), &text, &overrides).unwrap();
    assert_eq!(overridden.clock_refresh, Duration::from_secs(5));
}

/// Bad room settings and weights name the file, line and field.
#[test]
fn bad_rooms_and_weights_name_field() {
    let agents = "addresses = [\"http://127.0.0.1:15051\"]\n";
    let cases = [
        (
            VALID.replace("bots = 4\n", "bots = 4\nrooms = 0\n"),
            "test.toml:31: field `timeline[1].rooms`: 0 is out of range; use 1 to 100000 rooms",
        ),
        (
            VALID.replace("bots = 4\n", "bots = 4\nrooms = 2\nrooms_per_bot = 3\n"),
            "test.toml:32: field `timeline[1].rooms_per_bot`: 3 is out of range; use 1 to `rooms` (2)",
        ),
        (
            VALID.replace("join_rate = 5.0\n", "join_rate = 5.0\nrooms_per_bot = 2\n"),
            "test.toml:23: field `defaults.rooms_per_bot`: 2 is out of range",
        ),
        (
            VALID.replace("bots = 4\n", "bots = 4\nroom_distribution = \"pareto\"\n"),
            "test.toml:31: field `timeline[1].room_distribution`: `pareto` is not a room distribution; use uniform or zipf",
        ),
        (
            VALID.replace("bots = 4\n", "bots = 4\nzipf_exponent = 2.0\n"),
            "test.toml:31: field `timeline[1].zipf_exponent`: applies only to room_distribution = \"zipf\"",
        ),
        (
            VALID.replace(
                "bots = 4\n",
                "bots = 4\nroom_distribution = \"zipf\"\nzipf_exponent = -1.0\n",
            ),
            "test.toml:32: field `timeline[1].zipf_exponent`: -1 is out of range",
        ),
        (
            VALID.replace(agents, &format!("{agents}weights = [1.0, 2.0]\n")),
            "test.toml:19: field `agents.weights`: has 2 values for 1 addresses",
        ),
        (
            VALID.replace(agents, &format!("{agents}weights = [-1.0]\n")),
            "test.toml:19: field `agents.weights[0]`: -1 is not a weight",
        ),
        (
            VALID.replace(agents, &format!("{agents}weights = [0.0]\n")),
            "test.toml:19: field `agents.weights`: are all 0",
        ),
        (
            VALID.replace(agents, &format!("{agents}clock_refresh_s = 0.5\n")),
            "test.toml:19: field `agents.clock_refresh_s`: 0.5 is out of range; use 1 to 3600 seconds",
        ),
    ];
    for (text, expected) in cases {
        let message = error_of(&text);
        assert!(
            message.contains(expected),
            "expected `{expected}` in `{message}`"
        );
    }
}

/// A BOSH group takes the URL from [server] and its hold and wait from
/// the group or [defaults].
#[test]
fn bosh_settings_resolve() {
    let text = VALID.replace(
        "websocket_url = ",
        "bosh_url = \"http://127.0.0.1:5280/http-bind\"\nwebsocket_url = ",
    ) + "\n[[timeline]]\ngroup = \"long\"\ntransport = \"bosh\"\nbots = 2\nbosh_wait_s = 30\n";
    let scenario = parse(&text).unwrap();
    assert_eq!(
        scenario.server.bosh_url.as_deref(),
        Some("http://127.0.0.1:5280/http-bind")
    );
    let Step::Group(group) = &scenario.timeline[3] else {
        panic!("expected a group");
    };
    assert_eq!(group.transport, Transport::Bosh);
    assert_eq!(group.transport.as_str(), "bosh");
    assert_eq!(group.bosh_hold, 1, "default hold");
    assert_eq!(group.bosh_wait_s, 30, "group's own wait");

    // Defaults apply to BOSH groups and leave the others alone.
    let with_defaults = text.replace("join_rate = 5.0\n", "join_rate = 5.0\nbosh_hold = 2\n");
    let scenario = parse(&with_defaults).unwrap();
    let Step::Group(group) = &scenario.timeline[3] else {
        panic!("expected a group");
    };
    assert_eq!(group.bosh_hold, 2);
}

/// Bad BOSH settings name the file, line and field.
#[test]
fn bad_bosh_settings_name_field() {
    let with_url = VALID.replace(
        "websocket_url = ",
        "bosh_url = \"http://127.0.0.1:5280/http-bind\"\nwebsocket_url = ",
    );
    let bosh_group = "\n[[timeline]]\ngroup = \"b\"\ntransport = \"bosh\"\nbots = 2\n";
    let cases = [
        (
            VALID.to_string() + bosh_group,
            "test.toml:41: field `timeline[3].transport`: bosh needs `server.bosh_url`; add it to [server]",
        ),
        (
            VALID.replace(
                "websocket_url = ",
                "bosh_url = \"ws://127.0.0.1:5280/http-bind\"\nwebsocket_url = ",
            ),
            "test.toml:8: field `server.bosh_url`: `ws://127.0.0.1:5280/http-bind` is not a BOSH URL",
        ),
        (
            with_url.clone() + bosh_group + "bosh_hold = 0\n",
            "test.toml:44: field `timeline[3].bosh_hold`: 0 is out of range; use 1 to 8 requests",
        ),
        (
            with_url.clone() + bosh_group + "bosh_wait_s = 0\n",
            "test.toml:44: field `timeline[3].bosh_wait_s`: 0 is out of range; use 1 to 3600 seconds",
        ),
        (
            with_url.replace("bots = 4\n", "bots = 4\nbosh_wait_s = 10\n"),
            "test.toml:32: field `timeline[1].bosh_wait_s`: applies only to transport = \"bosh\"",
        ),
    ];
    for (text, expected) in cases {
        let err = error_of(&text);
        assert!(err.contains(expected), "expected {expected:?}, got {err:?}");
    }
}

/// `tls = "direct"` sends c2s groups to `c2s_direct_tls` instead of `c2s`.
#[test]
fn direct_tls_uses_its_own_address() {
    let text = VALID.replace(
        "c2s = \"127.0.0.1:5222\"",
        "c2s = \"127.0.0.1:5222\"\nc2s_direct_tls = \"127.0.0.1:5223\"\ntls = \"direct\"",
    );
    let scenario = parse(&text).unwrap();
    assert_eq!(scenario.server.tls, TlsMode::Direct);
    assert_eq!(scenario.server.tls.as_str(), "direct");
    assert_eq!(
        scenario.server.c2s_target(),
        Some(&("127.0.0.1".to_string(), 5223))
    );

    // Without direct TLS the plain c2s address stays the target.
    let plain = parse(VALID).unwrap();
    assert_eq!(
        plain.server.c2s_target(),
        Some(&("127.0.0.1".to_string(), 5222))
    );

    // Direct TLS alone is enough for c2s groups.
    let only_direct = VALID.replace(
        "c2s = \"127.0.0.1:5222\"",
        "c2s_direct_tls = \"127.0.0.1:5223\"\ntls = \"direct\"",
    );
    assert!(parse(&only_direct).is_ok());
}

/// A direct-TLS setup with a missing or unused address is rejected with the fix.
#[test]
fn direct_tls_errors_name_the_fix() {
    let without_address = VALID.replace(
        "c2s = \"127.0.0.1:5222\"",
        "c2s = \"127.0.0.1:5222\"\ntls = \"direct\"",
    );
    let err = error_of(&without_address);
    assert!(
        err.contains("c2s with tls = \"direct\" needs `server.c2s_direct_tls`"),
        "{err}"
    );

    let unused = VALID.replace(
        "c2s = \"127.0.0.1:5222\"",
        "c2s = \"127.0.0.1:5222\"\nc2s_direct_tls = \"127.0.0.1:5223\"",
    );
    let err = error_of(&unused);
    assert!(err.contains("field `server.c2s_direct_tls`"), "{err}");
    assert!(err.contains("set tls = \"direct\" to use it"), "{err}");

    let bad_address = VALID.replace(
        "c2s = \"127.0.0.1:5222\"",
        "c2s_direct_tls = \"localhost\"\ntls = \"direct\"",
    );
    let err = error_of(&bad_address);
    assert!(
        err.contains("field `server.c2s_direct_tls`: `localhost` is not HOST:PORT"),
        "{err}"
    );

    let err = error_of(&VALID.replace(
        "c2s = \"127.0.0.1:5222\"",
        "c2s = \"127.0.0.1:5222\"\ntls = \"tls\"",
    ));
    assert!(
        err.contains("use none, starttls, starttls-required or direct"),
        "{err}"
    );
}
