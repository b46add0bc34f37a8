//! A scenario whose groups log in to registered accounts, from a pattern
//! and from an accounts file, run end to end over two agents against a real
//! Prosody.

mod common;

use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use xmppload_agent::register::{CreateAccounts, create_accounts};
use xmppload_agent::sasl::AccountPattern;
use xmppload_agent::testing::{ACCOUNTS_DOMAIN, Prosody, ProsodyOptions};
use xmppload_agent::transport::{Endpoint, StreamLimits, TlsMode, tls};

const PASSWORD: &str = "scenario-pw";
/// Bots per group; odd, so the two agents get unequal slices.
const GROUP_BOTS: u32 = 5;

fn scenario(prosody: &Prosody) -> String {
    let c2s = prosody.c2s_addr();
    format!(
        r#"
name = "accounts"

[server]
domain = "{domain}"
muc_domain = "{muc}"
c2s = "{c2s}"
accounts_domain = "{ACCOUNTS_DOMAIN}"

[monitor]
address = "http://127.0.0.1:1"
interval_ms = 100

[[monitor.process]]
name = "prosody"
pidfile = "{pidfile}"

[defaults]
room = "accounts"
join_rate = 10.0
talk_after_s = 1.0
talk_rate = 2.0
talk_duration_s = 1.0
leave_after_s = 2.5

[[timeline]]
group = "pattern"
transport = "c2s"
bots = {GROUP_BOTS}
auth = "plain"
accounts = "bot%05d"
password = "{PASSWORD}"

[[timeline]]
group = "file"
transport = "c2s"
bots = {GROUP_BOTS}
auth = "scram-sha-1"
accounts_file = "accounts.txt"
"#,
        domain = prosody.domain(),
        muc = prosody.muc_domain(),
        pidfile = prosody.pidfile().display(),
    )
}

/// Lines of Prosody's log that record a login as `jid`.
fn logins(prosody: &Prosody, jid: &str) -> usize {
    let log = std::fs::read_to_string(prosody.log_path()).unwrap_or_default();
    let needle = format!("Authenticated as {jid}");
    log.lines()
        .filter(|line| line.trim_end().ends_with(&needle))
        .count()
}

/// Pattern and file accounts log in once each, over both agents, and every
/// bot joins, talks and leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_groups_run_end_to_end() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let report = create_accounts(CreateAccounts {
        endpoint: Endpoint::Tcp {
            host: "127.0.0.1".to_owned(),
            port: prosody.c2s_addr().port(),
            domain: ACCOUNTS_DOMAIN.to_owned(),
            tls_mode: TlsMode::Never,
            tls: tls::client_config(false).unwrap(),
            limits: StreamLimits::default(),
        },
        pattern: AccountPattern::parse("bot%05d").unwrap(),
        password: PASSWORD.to_owned(),
        first: 1,
        count: GROUP_BOTS,
        rate: 100.0,
        connections: 2,
        timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    assert_eq!(report.created, u64::from(GROUP_BOTS));

    // The file lists the same accounts in reverse, so a slice that took the
    // wrong entries would log in to the wrong account or not at all.
    let work = tempfile::tempdir().unwrap();
    let file: String = (1..=GROUP_BOTS)
        .rev()
        .map(|n| format!("bot{n:05} {PASSWORD}\n"))
        .collect();
    std::fs::write(work.path().join("accounts.txt"), file).unwrap();

    let stop = CancellationToken::new();
    let (first, _) = start_agent("agent-1", &stop).await;
    let (second, _) = start_agent("agent-2", &stop).await;
    let monitor = start_monitor(&stop).await;
    let outcome = run_scenario(
        work.path(),
        &scenario(&prosody),
        vec![first, second],
        monitor,
        RUN_BOUND,
    )
    .await;
    stop.cancel();

    assert_eq!(outcome.problems, Vec::<String>::new(), "clean run");
    for group in ["pattern", "file"] {
        let rows = last_rows(&outcome.dir, group);
        assert_eq!(rows.len(), 2, "{group}: both agents reported");
        let joined: f64 = rows.values().map(|row| number(row, "joined_total")).sum();
        let left: f64 = rows.values().map(|row| number(row, "left_total")).sum();
        let failed: f64 = rows.values().map(|row| number(row, "failed_total")).sum();
        assert_eq!(joined, f64::from(GROUP_BOTS), "{group}: joined");
        assert_eq!(left, f64::from(GROUP_BOTS), "{group}: left");
        assert_eq!(failed, 0.0, "{group}: failed");
    }

    let info = run_json(&outcome.dir);
    assert_eq!(info["groups"][0]["auth"], "plain");
    assert_eq!(info["groups"][1]["auth"], "scram-sha-1");

    for n in 1..=GROUP_BOTS {
        let jid = format!("bot{n:05}@{ACCOUNTS_DOMAIN}");
        assert_eq!(logins(&prosody, &jid), 2, "logins of {jid}, one per group");
    }

    // The scenario copy in the results folder carries the password, but
    // run.json does not.
    let run_json_text = std::fs::read_to_string(outcome.dir.join("run.json")).unwrap();
    assert!(!run_json_text.contains(PASSWORD));
}
