//! End-to-end: `/metrics` scraped while a short run goes through real
//! agents, a real monitor and a real Prosody with its statistics on.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use common::{read_csv, start_agent, start_monitor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use xmppload_agent::testing::{Prosody, ProsodyOptions};
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;

const BOTS: u64 = 6;
const GROUP: &str = "c2s";
/// Pause between scrapes; the upper bound on scrapes keeps the loop finite.
const SCRAPE_EVERY: Duration = Duration::from_millis(150);
const MAX_SCRAPES: usize = 600;

fn scenario(prosody: &Prosody) -> String {
    let (host, port) = (prosody.c2s_addr().ip(), prosody.c2s_addr().port());
    format!(
        r#"
name = "live-metrics"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{host}:{port}"

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 200
openmetrics_url = "{openmetrics}"

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[defaults]
room = "live"
join_rate = 10.0
talk_after_s = 2.0
talk_rate = 2.0
talk_duration_s = 2.0
leave_after_s = 6.0

[[timeline]]
wait_s = 0.5

[[timeline]]
group = "{GROUP}"
transport = "c2s"
bots = {BOTS}

[[timeline]]
wait_s = 1.5
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        openmetrics = prosody.openmetrics_url(),
        pidfile = prosody.pidfile().display(),
    )
}

/// One parsed sample line of the exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format strictly enough to catch a broken
/// exposition: every sample line must have a name, well-formed labels and a
/// numeric value, and belong to a family declared with `# TYPE`.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut families = HashMap::new();
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = |reason: &str| format!("line {}: {reason}: {line:?}", number + 1);
        if line.is_empty() {
            return Err(at("empty line"));
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let words: Vec<&str> = comment.splitn(3, ' ').collect();
            if words[0] == "TYPE" {
                let kind = words.get(2).ok_or_else(|| at("TYPE without a kind"))?;
                let known = ["counter", "gauge", "summary", "histogram", "untyped"];
                if !known.contains(kind) {
                    return Err(at("unknown type"));
                }
                families.insert(words[1].to_string(), kind.to_string());
            }
            continue;
        }

        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| at("sample without a value"))?;
        let name = &line[..name_end];
        let valid_name = name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
        if name.is_empty() || !valid_name {
            return Err(at("invalid metric name"));
        }
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let close = inner.rfind('}').ok_or_else(|| at("unclosed labels"))?;
            for pair in split_labels(&inner[..close]) {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| at("label without '='"))?;
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .ok_or_else(|| at("unquoted label value"))?;
                labels.insert(
                    key.to_string(),
                    value.replace("\\\"", "\"").replace("\\\\", "\\"),
                );
            }
            rest = &inner[close + 1..];
        }
        let value_text = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value"))?;
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            text => text.parse().map_err(|_| at("value is not a number"))?,
        };
        let family = ["_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (families.get(base).map(String::as_str) == Some("summary")).then_some(base)
            })
            .unwrap_or(name);
        if !families.contains_key(family) {
            return Err(at("sample of a family without # TYPE"));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    parts
}

/// Sum of the samples named `name` whose labels include every pair in `labels`.
fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Fetches `/metrics` with a plain HTTP/1.1 request; `None` when the server
/// is not (or no longer) listening.
async fn scrape(address: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "status: {head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "headers: {head}"
    );
    Some(body.to_string())
}

/// Sum over agents of a column of the last bots.csv row of each agent.
fn csv_total(bots: &[HashMap<String, String>], column: &str) -> f64 {
    let mut last = HashMap::new();
    for row in bots.iter().filter(|row| row["group"] == GROUP) {
        last.insert(row["agent"].clone(), row[column].parse::<f64>().unwrap());
    }
    assert_eq!(last.len(), 2, "the group should run on both agents");
    last.values().sum()
}

/// `/metrics` follows a real run: joined bots reach the group size, the
/// server's own connection count matches, and the final counters equal the
/// results CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_real_run() {
    let prosody = Prosody::start(ProsodyOptions {
        statistics: true,
        ..ProsodyOptions::default()
    })
    .expect("start Prosody");
    let stop = CancellationToken::new();
    let agents = vec![
        start_agent("agent-a", &stop).await.0,
        start_agent("agent-b", &stop).await.0,
    ];
    let monitor = start_monitor(&stop).await;

    let work = tempfile::tempdir().unwrap();
    let scenario_path = work.path().join("live.toml");
    std::fs::write(&scenario_path, scenario(&prosody)).unwrap();

    // A free port, released for the run to bind; another process could
    // take it in between, which would fail the run with a clear error.
    let metrics_address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let options = RunOptions {
        scenario: scenario_path,
        results_root: work.path().join("results"),
        overrides: Overrides {
            agents,
            monitor: Some(monitor),
        },
        token: None,
        tls: None,
        metrics_listen: Some(metrics_address),
    };
    let mut run_task = tokio::spawn(tokio::time::timeout(
        Duration::from_secs(120),
        run(options, CancellationToken::new()),
    ));

    let mut max_joined = 0.0_f64;
    let mut max_server_connections = 0.0_f64;
    let mut both_at_group_size = false;
    let mut max_lua_heap = 0.0_f64;
    let mut last = None;
    let mut scrapes = 0;
    let mut finished = None;
    for _ in 0..MAX_SCRAPES {
        tokio::select! {
            result = &mut run_task => {
                finished = Some(result);
                break;
            }
            _ = tokio::time::sleep(SCRAPE_EVERY) => {}
        }
        let Some(body) = scrape(metrics_address).await else {
            continue;
        };
        let samples = parse_exposition(&body).unwrap_or_else(|err| panic!("{err}\n{body}"));
        scrapes += 1;

        let joined = sum(
            &samples,
            "xmppload_bots",
            &[("group", GROUP), ("state", "joined")],
        );
        let connections = sum(&samples, "prosody_mod_c2s__connections", &[("type", "c2s")]);
        max_joined = max_joined.max(joined);
        max_server_connections = max_server_connections.max(connections);
        both_at_group_size |= joined == BOTS as f64 && connections == BOTS as f64;
        max_lua_heap = max_lua_heap.max(sum(
            &samples,
            "prosody_mod_xmppload_lua_memory__heap_bytes",
            &[],
        ));
        if samples
            .iter()
            .any(|s| s.name == "xmppload_server_metrics_up")
        {
            // Present from the first monitor batch on. Prosody's connection
            // gauge has no sample before the first connection, so only the
            // endpoint's state is checked on every scrape.
            assert_eq!(
                sum(&samples, "xmppload_server_metrics_up", &[]),
                1.0,
                "{body}"
            );
        }
        last = Some(samples);
    }
    let result = match finished {
        Some(result) => result,
        None => run_task.await,
    };
    let outcome = result
        .expect("run task")
        .expect("run ends within its bound")
        .expect("run succeeds");
    stop.cancel();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert!(scrapes >= 10, "only {scrapes} scrapes succeeded");

    assert_eq!(
        max_joined, BOTS as f64,
        "joined bots never reached the group size"
    );
    assert_eq!(
        max_server_connections, BOTS as f64,
        "Prosody's c2s connections"
    );
    assert!(
        both_at_group_size,
        "no scrape saw all bots joined and connected to Prosody"
    );
    assert!(max_lua_heap > 0.0, "Lua heap gauge is {max_lua_heap}");

    // The last scrape came during the final wait, after the group's final
    // reports, so its counters are the run's totals.
    let last = last.expect("at least one scrape");
    let bots = read_csv(&outcome.dir.join("bots.csv"));
    for (metric, column) in [
        ("xmppload_messages_sent_total", "messages_sent"),
        ("xmppload_messages_received_total", "messages_received"),
        ("xmppload_stanzas_received_total", "stanzas_received"),
        ("xmppload_bots_joined_total", "joined_total"),
        ("xmppload_bots_failed_total", "failed_total"),
    ] {
        let scraped = sum(&last, metric, &[("group", GROUP)]);
        assert_eq!(
            scraped,
            csv_total(&bots, column),
            "{metric} against bots.csv {column}"
        );
    }
    assert_eq!(
        sum(&last, "xmppload_messages_sent_total", &[("group", GROUP)]),
        (BOTS * 4) as f64
    );

    let latency_count = sum(&last, "xmppload_latency_seconds_count", &[("group", GROUP)]);
    assert_eq!(latency_count, (BOTS * 4) as f64, "latency samples");
    let p50 = sum(
        &last,
        "xmppload_latency_seconds",
        &[("group", GROUP), ("quantile", "0.5")],
    );
    let p99 = sum(
        &last,
        "xmppload_latency_seconds",
        &[("group", GROUP), ("quantile", "0.99")],
    );
    assert!(p50 > 0.0, "p50 is {p50} s");
    assert!(p50 <= p99, "p50 {p50} s is above p99 {p99} s");
    assert!(
        sum(
            &last,
            "xmppload_process_rss_bytes",
            &[("process", "prosody")]
        ) > 0.0
    );
    assert_eq!(sum(&last, "xmppload_run_steps_started_total", &[]), 3.0);

    // The server's metrics also went to the results folder and the report.
    let server_rows = read_csv(&outcome.dir.join("server_metrics.csv"));
    let max_csv_connections = server_rows
        .iter()
        .filter(|row| {
            row["metric"] == "prosody_mod_c2s__connections" && row["labels"].contains("type=c2s")
        })
        .map(|row| row["value"].parse::<f64>().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(
        max_csv_connections, BOTS as f64,
        "server_metrics.csv connections"
    );
    let report = std::fs::read_to_string(outcome.dir.join("report.md")).unwrap();
    assert!(
        report.contains("| server metrics | collected from"),
        "{report}"
    );
}

/// The parser used above rejects what Prometheus would reject.
#[test]
fn exposition_parser_rejects_bad_lines() {
    assert!(parse_exposition("# TYPE a gauge\na 1\n").is_ok());
    assert!(
        parse_exposition("a 1\n")
            .unwrap_err()
            .contains("without # TYPE")
    );
    assert!(
        parse_exposition("# TYPE a gauge\na{x=1} 1\n")
            .unwrap_err()
            .contains("unquoted")
    );
    assert!(
        parse_exposition("# TYPE a gauge\na one\n")
            .unwrap_err()
            .contains("not a number")
    );
}
