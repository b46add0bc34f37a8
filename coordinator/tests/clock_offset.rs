//! Clock alignment: an agent whose clock runs 2.5 s ahead runs its bots on
//! the coordinator's schedule, and its phase times land on the coordinator's
//! timeline where those of an agent with a correct clock would.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmppload_agent::clock::AgentClock;
use xmppload_agent::testing::{Prosody, ProsodyOptions};

mod common;
use common::{number, read_csv, run_scenario, start_monitor};

const SHIFT_MICROS: i64 = 2_500_000;
/// Time between the scheduled start of a bot and its join confirmation
/// that a loopback Prosody stays under on a busy machine. A clock error of
/// the size of the shift is five times larger.
const JITTER_S: f64 = 0.5;

async fn start_agent(name: &str, offset_micros: i64, stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let config = xmppload_agent::AgentConfig {
        name: name.to_string(),
        clock: AgentClock { offset_micros },
        ..xmppload_agent::AgentConfig::default()
    };
    tokio::spawn(xmppload_agent::serve(listener, config, stop.clone()));
    address
}

/// Two bots, one a second: bot 0 goes to the first agent and bot 1 to the
/// second, so each phase's first time comes from the correct clock and its
/// last from the shifted one.
fn scenario(prosody: &Prosody) -> String {
    format!(
        r#"
name = "clock"

[server]
domain = "{domain}"
muc_domain = "{muc}"
websocket_url = "{ws}"

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 100

# The test passes the agents' addresses; the file sets how often their
# clocks (and the monitor's) are measured again while the group runs.
[agents]
addresses = ["http://127.0.0.1:1"]
clock_refresh_s = 1.0

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[defaults]
room = "clock"
join_rate = 1.0
talk_after_s = 1.0
talk_rate = 1.0
talk_duration_s = 1.0
leave_after_s = 3.0

[[timeline]]
group = "shifted"
transport = "websocket"
bots = 2
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        ws = prosody.websocket_url(),
        pidfile = prosody.pidfile().display(),
    )
}

/// A +2.5 s agent clock is measured within its stated uncertainty, and its
/// bots join and leave one schedule step after the correct agent's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shifted_agent_lands_on_timeline() {
    let prosody = Prosody::start(ProsodyOptions::default()).expect("start Prosody");
    let stop = CancellationToken::new();
    let agents = vec![
        start_agent("correct", 0, &stop).await,
        start_agent("shifted", SHIFT_MICROS, &stop).await,
    ];
    let monitor = start_monitor(&stop).await;

    let work = tempfile::tempdir().unwrap();
    let outcome = run_scenario(
        work.path(),
        &scenario(&prosody),
        agents,
        monitor,
        std::time::Duration::from_secs(60),
    )
    .await;
    stop.cancel();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    let dir = outcome.dir;

    // The estimate finds the shift within the uncertainty it states.
    let run_info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let peers = run_info["agents"].as_array().unwrap();
    for (peer, expected) in peers.iter().zip([0, SHIFT_MICROS]) {
        let offset = peer["clock_offset_micros"].as_i64().unwrap();
        let uncertainty = peer["clock_uncertainty_micros"].as_i64().unwrap();
        assert!(
            (offset - expected).abs() <= uncertainty + 1,
            "{} offset {offset} µs ± {uncertainty}, expected {expected}",
            peer["name"]
        );
        assert!(
            uncertainty < 100_000,
            "{} uncertainty {uncertainty} µs",
            peer["name"]
        );
    }
    // clock.csv has the estimate made at connect, the one made again before
    // the group and one a second while the group ran (it lasts about 5 s),
    // each within its own uncertainty of the shift.
    let clock_rows = read_csv(&dir.join("clock.csv"));
    for (name, expected) in [("correct", 0.0), ("shifted", SHIFT_MICROS as f64)] {
        let rows: Vec<_> = clock_rows
            .iter()
            .filter(|row| row["peer"] == name)
            .collect();
        assert!(
            (5..=12).contains(&rows.len()),
            "{name} clock estimates: {clock_rows:?}"
        );
        for row in rows {
            let offset = number(row, "offset_micros");
            let uncertainty = number(row, "uncertainty_micros");
            assert!(
                (offset - expected).abs() <= uncertainty + 1.0,
                "{name} estimate {offset} µs ± {uncertainty}, expected {expected}"
            );
        }
    }
    // The monitor is measured at connect and then once a second while it
    // streams, for the whole run.
    let monitor_rows = clock_rows
        .iter()
        .filter(|row| row["role"] == "monitor")
        .count();
    assert!(monitor_rows >= 3, "monitor clock estimates: {clock_rows:?}");

    let uncertainty_s = peers
        .iter()
        .map(|peer| peer["clock_uncertainty_micros"].as_i64().unwrap())
        .sum::<i64>() as f64
        / 1e6;

    // Bot 0 (correct clock) is due at the scheduled start and bot 1 (shifted
    // clock) one second later. Each phase's first time is bot 0's and its
    // last bot 1's, so both must sit at their due times plus a small delay.
    let scheduled = run_info["groups"][0]["scheduled_start_s"].as_f64().unwrap();
    let phases = read_csv(&dir.join("phases.csv"));
    let phase = |name: &str| {
        phases
            .iter()
            .find(|row| row["phase"] == name)
            .unwrap_or_else(|| panic!("no {name} phase: {phases:?}"))
    };
    for (name, delay_s) in [("join", 0.0), ("leave", 3.0)] {
        let first = number(phase(name), "start_s") - scheduled - delay_s;
        let last = number(phase(name), "end_s") - scheduled - delay_s - 1.0;
        for (bot, lag) in [("correct", first), ("shifted", last)] {
            assert!(
                lag >= -uncertainty_s - 0.001,
                "{name} of the {bot} bot {lag:.3} s before its due time"
            );
            assert!(
                lag < JITTER_S + uncertainty_s,
                "{name} of the {bot} bot {lag:.3} s after its due time"
            );
        }
    }

    // Seen from the shifted agent, its schedule was not in the past.
    let lag = read_csv(&dir.join("schedule_lag.csv"));
    let join = lag
        .iter()
        .find(|row| row["kind"] == "join")
        .expect("join lag row");
    assert_eq!(number(join, "samples"), 2.0, "join-lag samples");
    assert_eq!(number(join, "late"), 0.0, "late joins");
}
