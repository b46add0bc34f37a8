//! Registered accounts on a real Prosody: creating them by in-band
//! registration, then logging in with PLAIN, SCRAM-SHA-1 and SCRAM-SHA-256.

mod common;

use std::time::Duration;

use common::*;
use xmppload_agent::error::BotError;
use xmppload_agent::register::{CreateAccounts, CreateError, CreateReport, create_accounts};
use xmppload_agent::sasl::xmpp::Login;
use xmppload_agent::sasl::{AccountPattern, Credentials, Mechanism, SaltedPasswordCache};
use xmppload_agent::session::Session;
use xmppload_agent::testing::{ACCOUNTS_DOMAIN, Prosody, ProsodyOptions, SHA256_ACCOUNTS_DOMAIN};
use xmppload_agent::transport::{Endpoint, StreamLimits, TlsMode, tls};
use xmppload_proto::v1::{AccountPattern as ProtoPattern, RunGroupRequest, SaslMechanism};

const PASSWORD: &str = "load-test-pw";
const BOTS: u32 = 4;

fn c2s_endpoint(prosody: &Prosody, domain: &str) -> Endpoint {
    Endpoint::Tcp {
        host: "127.0.0.1".to_owned(),
        port: prosody.c2s_addr().port(),
        domain: domain.to_owned(),
        tls_mode: TlsMode::Never,
        tls: tls::client_config(false).unwrap(),
        limits: StreamLimits::default(),
    }
}

async fn create(prosody: &Prosody, domain: &str, count: u32) -> CreateReport {
    create_accounts(CreateAccounts {
        endpoint: c2s_endpoint(prosody, domain),
        pattern: AccountPattern::parse("bot%05d").unwrap(),
        password: PASSWORD.to_owned(),
        first: 1,
        count,
        rate: 200.0,
        connections: 3,
        timeout: Duration::from_secs(5),
    })
    .await
    .unwrap()
}

/// Logs one session in and returns its bound JID, or the error.
async fn log_in(
    prosody: &Prosody,
    domain: &str,
    mechanism: Mechanism,
    username: &str,
    password: &str,
) -> Result<String, BotError> {
    let credentials = Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    };
    let cache = SaltedPasswordCache::new();
    let login = Login {
        mechanism,
        credentials: Some(&credentials),
        cache: &cache,
    };
    let mut session =
        Session::establish_as(&c2s_endpoint(prosody, domain), None, false, login).await?;
    let jid = session.jid().to_owned();
    session.close().await?;
    Ok(jid)
}

fn account_request(
    prosody: &Prosody,
    group: &str,
    domain: &str,
    mechanism: SaslMechanism,
    password: &str,
) -> RunGroupRequest {
    RunGroupRequest {
        domain: domain.to_owned(),
        sasl_mechanism: mechanism as i32,
        account_pattern: Some(ProtoPattern {
            pattern: "bot%05d".to_owned(),
            password: password.to_owned(),
            first: 1,
        }),
        ..c2s_request(prosody, group, group, BOTS)
    }
}

/// Counts Prosody's "Authenticated as USER@DOMAIN" log lines per account.
fn authenticated_count(prosody: &Prosody, jid: &str) -> usize {
    let log = std::fs::read_to_string(prosody.log_path()).unwrap_or_default();
    let needle = format!("Authenticated as {jid}");
    log.lines()
        .filter(|line| line.trim_end().ends_with(&needle))
        .count()
}

/// In-band registration creates the accounts once; a second run finds them.
#[tokio::test]
async fn registration_creates_then_finds_accounts() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();

    let first = create(&prosody, ACCOUNTS_DOMAIN, 10).await;
    assert_eq!(first.created, 10, "created: {first:?}");
    assert_eq!(first.existed, 0);
    assert_eq!(first.failed, 0);
    assert!(first.failures.is_empty());

    let again = create(&prosody, ACCOUNTS_DOMAIN, 12).await;
    assert_eq!(again.existed, 10, "existing accounts: {again:?}");
    assert_eq!(again.created, 2);
    assert_eq!(again.failed, 0);

    // The anonymous host has no registration, which is one clear error.
    let refused = create_accounts(CreateAccounts {
        endpoint: c2s_endpoint(&prosody, prosody.domain()),
        pattern: AccountPattern::parse("bot%d").unwrap(),
        password: PASSWORD.to_owned(),
        first: 1,
        count: 3,
        rate: 10.0,
        connections: 1,
        timeout: Duration::from_secs(5),
    })
    .await;
    assert!(
        matches!(&refused, Err(CreateError::NotOffered { domain }) if domain == "anon.localhost"),
        "{refused:?}"
    );
}

/// Each mechanism binds the account's own JID, and a mechanism the host
/// does not offer fails with what it offers.
#[tokio::test]
async fn sessions_log_in_with_each_mechanism() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    assert_eq!(create(&prosody, ACCOUNTS_DOMAIN, 1).await.created, 1);
    assert_eq!(create(&prosody, SHA256_ACCOUNTS_DOMAIN, 1).await.created, 1);

    for (domain, mechanism) in [
        (ACCOUNTS_DOMAIN, Mechanism::Plain),
        (ACCOUNTS_DOMAIN, Mechanism::ScramSha1),
        (SHA256_ACCOUNTS_DOMAIN, Mechanism::Plain),
        (SHA256_ACCOUNTS_DOMAIN, Mechanism::ScramSha256),
    ] {
        let jid = log_in(&prosody, domain, mechanism, "bot00001", PASSWORD)
            .await
            .unwrap_or_else(|err| panic!("{mechanism} on {domain}: {err}"));
        assert!(
            jid.starts_with(&format!("bot00001@{domain}/")),
            "{mechanism} on {domain} bound {jid}"
        );
    }

    let wrong = log_in(
        &prosody,
        ACCOUNTS_DOMAIN,
        Mechanism::ScramSha256,
        "bot00001",
        PASSWORD,
    )
    .await;
    match wrong {
        Err(BotError::SaslNotOffered { mechanism, offered }) => {
            assert_eq!(mechanism, "SCRAM-SHA-256");
            assert!(offered.contains("SCRAM-SHA-1"), "offered: {offered}");
            assert!(offered.contains("PLAIN"), "offered: {offered}");
        }
        other => panic!("expected SaslNotOffered, got {other:?}"),
    }

    for mechanism in [Mechanism::Plain, Mechanism::ScramSha1] {
        let bad_password = log_in(&prosody, ACCOUNTS_DOMAIN, mechanism, "bot00001", "wrong").await;
        assert!(
            matches!(&bad_password, Err(BotError::Sasl { condition }) if condition == "not-authorized"),
            "{mechanism} with a wrong password: {bad_password:?}"
        );
        let unknown = log_in(&prosody, ACCOUNTS_DOMAIN, mechanism, "nobody", PASSWORD).await;
        assert!(
            matches!(&unknown, Err(BotError::Sasl { condition }) if condition == "not-authorized"),
            "{mechanism} with an unknown account: {unknown:?}"
        );
    }
}

/// Groups log in to their accounts with each mechanism, join, talk and
/// leave with exact counts, and record the SASL step under `auth`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_groups_join_talk_leave() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let agent = start_agent().await;
    assert_eq!(
        create(&prosody, ACCOUNTS_DOMAIN, BOTS).await.created,
        u64::from(BOTS)
    );
    assert_eq!(
        create(&prosody, SHA256_ACCOUNTS_DOMAIN, BOTS).await.created,
        u64::from(BOTS)
    );

    let groups = [
        ("plain", ACCOUNTS_DOMAIN, SaslMechanism::Plain),
        ("scram1", ACCOUNTS_DOMAIN, SaslMechanism::ScramSha1),
        (
            "scram256",
            SHA256_ACCOUNTS_DOMAIN,
            SaslMechanism::ScramSha256,
        ),
    ];
    for (round, (group, domain, mechanism)) in groups.into_iter().enumerate() {
        let request = account_request(&prosody, group, domain, mechanism, PASSWORD);
        let per_bot = messages_per_bot(&request);
        let mut client = agent.client.clone();
        let reports = run_group(&mut client, request).await;

        let last = reports.last().unwrap();
        let counters = last.counters.as_ref().unwrap();
        if counters.failed_total > 0 {
            dump_log(&prosody);
        }
        let bots = u64::from(BOTS);
        assert_eq!(counters.errors, vec![], "{group}: no errors");
        assert_eq!(counters.connected_total, bots, "{group}: connected_total");
        assert_eq!(counters.joined_total, bots, "{group}: joined_total");
        assert_eq!(counters.left_total, bots, "{group}: left_total");
        assert_eq!(
            counters.messages_sent,
            bots * per_bot,
            "{group}: messages_sent"
        );
        assert_eq!(counters.reflections, bots * per_bot, "{group}: reflections");
        assert_eq!(
            counters.messages_received,
            bots * per_bot * bots,
            "{group}: messages_received"
        );

        let auth_samples: u64 = reports
            .iter()
            .flat_map(|report| &report.round_trips)
            .filter(|kind| kind.kind == "auth")
            .map(|kind| histogram_len(&kind.histogram))
            .sum();
        assert_eq!(auth_samples, bots, "{group}: one auth sample per bot");

        // Every account logged in once per group that used its host.
        let logins_per_account = if domain == ACCOUNTS_DOMAIN {
            round + 1
        } else {
            1
        };
        for number in 1..=BOTS {
            let jid = format!("bot{number:05}@{domain}");
            assert_eq!(
                authenticated_count(&prosody, &jid),
                logins_per_account,
                "{group}: logins of {jid}"
            );
        }
    }
}

/// A wrong password and accounts that do not exist fail every bot as `sasl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_every_bot() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let agent = start_agent().await;
    assert_eq!(
        create(&prosody, ACCOUNTS_DOMAIN, BOTS).await.created,
        u64::from(BOTS)
    );

    let wrong_password = account_request(
        &prosody,
        "wrongpw",
        ACCOUNTS_DOMAIN,
        SaslMechanism::ScramSha1,
        "not-the-password",
    );
    let mut unknown = account_request(
        &prosody,
        "unknown",
        ACCOUNTS_DOMAIN,
        SaslMechanism::Plain,
        PASSWORD,
    );
    unknown.account_pattern = Some(ProtoPattern {
        pattern: "ghost%d".to_owned(),
        password: PASSWORD.to_owned(),
        first: 1,
    });

    for request in [wrong_password, unknown] {
        let group = request.group.clone();
        let mut client = agent.client.clone();
        let reports = run_group(&mut client, request).await;
        let last = reports.last().unwrap();
        let counters = last.counters.as_ref().unwrap();
        assert_eq!(
            errors_of(last, "sasl"),
            u64::from(BOTS),
            "{group}: sasl errors"
        );
        assert_eq!(
            counters.failed_total,
            u64::from(BOTS),
            "{group}: failed_total"
        );
        assert_eq!(counters.connected_total, 0, "{group}: connected_total");
        assert_eq!(counters.joined_total, 0, "{group}: joined_total");
    }
    let log = std::fs::read_to_string(prosody.log_path()).unwrap_or_default();
    assert!(!log.contains("Authenticated as"), "no bot logged in");
}

/// Number of samples in a serialized interval histogram.
fn histogram_len(bytes: &[u8]) -> u64 {
    use hdrhistogram::serialization::Deserializer;
    let histogram: hdrhistogram::Histogram<u64> = Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .unwrap();
    histogram.len()
}

/// The `xmppload-accounts` command creates accounts, reports counts, and
/// exits with 1 with a clear message where registration is not offered.
#[tokio::test]
async fn accounts_command_creates_and_reports() {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let c2s = prosody.c2s_addr().to_string();
    let command = |domain: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xmppload-accounts"));
        command
            .args(["--c2s", &c2s, "--domain", domain, "--pattern", "cli%03d"])
            .args(["--count", "3", "--rate", "50", "--tls", "never"])
            .env("XMPPLOAD_ACCOUNT_PASSWORD", PASSWORD);
        command
    };

    let created = tokio::task::spawn_blocking({
        let mut command = command(ACCOUNTS_DOMAIN);
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(
        created.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "created 3, already existed 0, failed 0 of 3 accounts on localhost"
    );
    let jid = log_in(
        &prosody,
        ACCOUNTS_DOMAIN,
        Mechanism::ScramSha1,
        "cli003",
        PASSWORD,
    )
    .await
    .unwrap();
    assert!(jid.starts_with("cli003@localhost/"), "bound {jid}");

    let refused = tokio::task::spawn_blocking({
        let mut command = command("anon.localhost");
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr.contains("does not offer in-band registration (XEP-0077) on anon.localhost"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains(PASSWORD));
}
