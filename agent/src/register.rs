//! Creating accounts by XEP-0077 in-band registration over c2s.
//!
//! In-band registration works on any server that enables it (Prosody's
//! `mod_register` with `allow_registration = true`, ejabberd's
//! `mod_register`, Openfire's setting), so no server-specific admin tool is
//! needed. [`create_accounts`] runs a few connections. Each negotiates
//! STARTTLS as requested and checks the `<register/>` stream feature. Then it
//! sends one `jabber:iq:register` set per account on the same
//! unauthenticated stream. Account i (from 0) is sent no earlier than start + i / rate, so
//! the load on the server is bounded whatever the connection count. An
//! account that already exists (`<conflict/>`) counts as existing, not as a
//! failure, so a second run over the same range only fills the gaps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::error::BotError;
use crate::sasl::AccountPattern;
use crate::session::{connect_secured, expect_stanza};
use crate::steps::StepTimes;
use crate::transport::{Endpoint, Transport};
use crate::xml::{Element, NS_CLIENT, escape};

pub const NS_REGISTER: &str = "jabber:iq:register";
/// Stream feature that advertises in-band registration.
pub const NS_REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";
/// Largest number of accounts one call creates; a typo such as an extra zero
/// should not fill a server's database.
pub const MAX_ACCOUNTS: u32 = 1_000_000;
/// Largest number of connections one call opens.
pub const MAX_CONNECTIONS: usize = 64;
/// Failed accounts whose reasons a report keeps; the rest are only counted.
const KEPT_FAILURES: usize = 20;
/// Times one connection is reopened after it breaks, before its worker
/// gives up on the accounts it has not sent.
const MAX_RECONNECTS: u32 = 3;
/// Time between progress lines in the log.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Accounts to create, and the rate.
#[derive(Debug, Clone)]
pub struct CreateAccounts {
    /// c2s endpoint whose domain is the accounts' VirtualHost.
    pub endpoint: Endpoint,
    pub pattern: AccountPattern,
    pub password: String,
    /// Number of the first account.
    pub first: u64,
    pub count: u32,
    /// Registrations per second over all connections.
    pub rate: f64,
    pub connections: usize,
    /// Bound on each connect and each registration request.
    pub timeout: Duration,
}

/// Outcome of [`create_accounts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateReport {
    pub created: u64,
    /// Accounts the server already had.
    pub existed: u64,
    pub failed: u64,
    /// Username and reason of the first failures.
    pub failures: Vec<(String, String)>,
}

/// Failure that stops the creation before any account is sent.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("invalid {field} {value}: {fix}")]
    Invalid {
        field: &'static str,
        value: String,
        fix: String,
    },

    #[error(
        "server does not offer in-band registration (XEP-0077) on {domain}; enable it (Prosody: mod_register with allow_registration = true on that VirtualHost) or create the accounts with the server's admin tool"
    )]
    NotOffered { domain: String },

    #[error("failed to connect to the server: {0}")]
    Connect(#[from] BotError),
}

/// Counters shared by the workers.
#[derive(Debug, Default)]
struct Progress {
    /// Next account offset (0-based) to hand out.
    next: AtomicU32,
    created: AtomicU64,
    existed: AtomicU64,
    failed: AtomicU64,
    /// First failures with their reasons.
    failures: std::sync::Mutex<Vec<(String, String)>>,
}

impl Progress {
    fn fail(&self, username: String, reason: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() < KEPT_FAILURES {
            failures.push((username, reason));
        }
    }

    fn done(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
            + self.existed.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
    }
}

/// Creates the accounts and returns the counts. Fails before creating any
/// when the settings are invalid, the server cannot be reached or it does
/// not offer registration.
pub async fn create_accounts(request: CreateAccounts) -> Result<CreateReport, CreateError> {
    check(&request)?;

    // The first connection proves that registration is possible at all, so
    // a misconfigured server gives one clear error instead of N failures.
    let first = open(&request).await?;

    let request = Arc::new(request);
    let progress = Arc::new(Progress::default());
    let start = Instant::now();
    let connections = request.connections.min(request.count as usize).max(1);
    let mut workers = JoinSet::new();
    let mut first = Some(first);
    for worker in 0..connections {
        let transport = first.take();
        workers.spawn(run_worker(
            worker,
            transport,
            Arc::clone(&request),
            Arc::clone(&progress),
            start,
        ));
    }

    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    loop {
        tokio::select! {
            finished = workers.join_next() => match finished {
                None => break,
                Some(Ok(())) => {}
                Some(Err(err)) => warn!(%err, "registration worker ended abnormally"),
            },
            _ = ticker.tick() => info!(
                done = progress.done(),
                total = request.count,
                created = progress.created.load(Ordering::Relaxed),
                existed = progress.existed.load(Ordering::Relaxed),
                failed = progress.failed.load(Ordering::Relaxed),
                "creating accounts"
            ),
        }
    }

    // Accounts that no worker reached, because every connection broke.
    let unsent = u64::from(request.count).saturating_sub(progress.done());
    progress.failed.fetch_add(unsent, Ordering::Relaxed);

    let failures = std::mem::take(
        &mut *progress
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    let report = CreateReport {
        created: progress.created.load(Ordering::Relaxed),
        existed: progress.existed.load(Ordering::Relaxed),
        failed: progress.failed.load(Ordering::Relaxed),
        failures,
    };
    info!(
        created = report.created,
        existed = report.existed,
        failed = report.failed,
        elapsed_s = start.elapsed().as_secs_f64(),
        "account creation finished"
    );
    Ok(report)
}

/// Rejects settings that would run unbounded or could not work.
fn check(request: &CreateAccounts) -> Result<(), CreateError> {
    let invalid = |field, value: String, fix: &str| CreateError::Invalid {
        field,
        value,
        fix: fix.to_owned(),
    };
    if !matches!(request.endpoint, Endpoint::Tcp { .. }) {
        return Err(invalid(
            "endpoint",
            "WebSocket".to_owned(),
            "give a c2s host and port; registration runs over c2s",
        ));
    }
    if request.count == 0 || request.count > MAX_ACCOUNTS {
        return Err(invalid(
            "count",
            request.count.to_string(),
            &format!("set 1 to {MAX_ACCOUNTS} accounts"),
        ));
    }
    if !(request.rate.is_finite() && request.rate > 0.0) {
        return Err(invalid(
            "rate",
            request.rate.to_string(),
            "set a positive number of registrations per second",
        ));
    }
    if request.connections == 0 || request.connections > MAX_CONNECTIONS {
        return Err(invalid(
            "connections",
            request.connections.to_string(),
            &format!("set 1 to {MAX_CONNECTIONS}"),
        ));
    }
    if request.password.is_empty() {
        return Err(invalid(
            "password",
            "(empty)".to_owned(),
            "set the password the accounts get",
        ));
    }
    if request.timeout.is_zero() {
        return Err(invalid("timeout", "0".to_owned(), "set a positive timeout"));
    }
    Ok(())
}

/// Connects, negotiates TLS as asked, and checks the registration feature.
async fn open(request: &CreateAccounts) -> Result<Transport, CreateError> {
    let connected = tokio::time::timeout(
        request.timeout,
        connect_secured(&request.endpoint, None, &mut StepTimes::new()),
    )
    .await
    .map_err(|_| BotError::Timeout {
        step: "connect",
        after: request.timeout,
    })??;
    let (transport, features) = connected;
    if features.child("register", NS_REGISTER_FEATURE).is_none() {
        return Err(CreateError::NotOffered {
            domain: request.endpoint.domain().to_owned(),
        });
    }
    Ok(transport)
}

/// Registers accounts handed out by `progress` until none are left, on
/// `transport` or on a new connection.
async fn run_worker(
    worker: usize,
    mut transport: Option<Transport>,
    request: Arc<CreateAccounts>,
    progress: Arc<Progress>,
    start: Instant,
) {
    let mut reconnects = 0;
    loop {
        let offset = progress.next.fetch_add(1, Ordering::Relaxed);
        if offset >= request.count {
            break;
        }
        let username = request.pattern.username(request.first + u64::from(offset));
        tokio::time::sleep_until(start + Duration::from_secs_f64(f64::from(offset) / request.rate))
            .await;

        if transport.is_none() {
            match open(&request).await {
                Ok(opened) => transport = Some(opened),
                Err(err) => {
                    progress.fail(username, err.to_string());
                    reconnects += 1;
                    if reconnects > MAX_RECONNECTS {
                        warn!(worker, %err, "registration connection failed too often; worker stops");
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(stream) = transport.as_mut() else {
            continue;
        };

        let outcome = tokio::time::timeout(
            request.timeout,
            register(stream, offset, &username, &request.password),
        )
        .await;
        match outcome {
            Ok(Ok(Registered::Created)) => {
                progress.created.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok(Registered::Existed)) => {
                progress.existed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok(Registered::Rejected(condition))) => {
                progress.fail(username, format!("server rejected it with <{condition}/>"));
            }
            Ok(Err(err)) => {
                warn!(worker, %err, "registration connection failed; reconnecting");
                progress.fail(username, err.to_string());
                transport = None;
                reconnects += 1;
            }
            Err(_) => {
                progress.fail(username, format!("no reply within {:?}", request.timeout));
                transport = None;
                reconnects += 1;
            }
        }
        if reconnects > MAX_RECONNECTS {
            warn!(
                worker,
                "registration connection broke too often; worker stops"
            );
            break;
        }
    }
    if let Some(mut transport) = transport {
        // The accounts exist whether or not the close completes.
        let _ = transport.close().await;
    }
}

/// Result of one registration request.
enum Registered {
    Created,
    Existed,
    /// The server's error condition.
    Rejected(String),
}

/// Sends one registration and waits for its reply.
async fn register(
    transport: &mut Transport,
    offset: u32,
    username: &str,
    password: &str,
) -> Result<Registered, BotError> {
    let id = format!("reg-{offset}");
    transport
        .send(&format!(
            "<iq xmlns='{NS_CLIENT}' type='set' id='{id}'><query xmlns='{NS_REGISTER}'>\
             <username>{}</username><password>{}</password></query></iq>",
            escape(username),
            escape(password)
        ))
        .await?;
    loop {
        let reply = expect_stanza(transport, "registration result").await?;
        if !reply.is("iq", NS_CLIENT) || reply.attr("id") != Some(id.as_str()) {
            continue;
        }
        return Ok(match reply.attr("type") {
            Some("result") => Registered::Created,
            _ => match error_condition(&reply) {
                Some("conflict") => Registered::Existed,
                Some(condition) => Registered::Rejected(condition.to_owned()),
                None => Registered::Rejected("undefined-condition".to_owned()),
            },
        });
    }
}

/// Condition of an iq error (RFC 6120 section 8.3), `<text/>` skipped.
fn error_condition(reply: &Element) -> Option<&str> {
    reply
        .children
        .iter()
        .find(|child| child.name == "error")?
        .children
        .iter()
        .find(|child| child.name != "text")
        .map(|child| child.name.as_str())
}
