//! `xmppload-accounts`: creates numbered accounts on an XMPP server by
//! in-band registration (XEP-0077), for scenarios that log in with PLAIN or
//! SCRAM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use xmppload_agent::policy::{AllowedTarget, TargetPolicy};
use xmppload_agent::register::{CreateAccounts, MAX_ACCOUNTS, MAX_CONNECTIONS, create_accounts};
use xmppload_agent::sasl::AccountPattern;
use xmppload_agent::transport::{Endpoint, StreamLimits, TlsMode, tls};

/// Environment variable that can carry the password instead of a file.
const PASSWORD_ENV: &str = "XMPPLOAD_ACCOUNT_PASSWORD";

/// Creates COUNT accounts named by PATTERN on an XMPP server by in-band
/// registration (XEP-0077), at a bounded rate. Accounts that exist already
/// are counted, not changed. Exits with status 1 when any account failed.
#[derive(Debug, Parser)]
#[command(version)]
struct Options {
    /// c2s listener of the server, as HOST:PORT
    #[arg(long, value_name = "HOST:PORT")]
    c2s: String,

    /// XMPP domain of the VirtualHost the accounts belong to
    #[arg(long)]
    domain: String,

    /// Username pattern with one integer placeholder, like bot%05d
    #[arg(long)]
    pattern: String,

    /// Number of the first account
    #[arg(long, default_value_t = 1)]
    first: u64,

    /// Number of accounts to create
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_ACCOUNTS)))]
    count: u32,

    /// File whose first line is the password every account gets; without
    /// it the password is read from the XMPPLOAD_ACCOUNT_PASSWORD
    /// environment variable
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,

    /// Registrations per second over all connections
    #[arg(long, default_value_t = 50.0)]
    rate: f64,

    /// Connections that registrations are spread over
    #[arg(long, default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    connections: u64,

    /// STARTTLS: never, if-offered or required
    #[arg(long, default_value = "if-offered")]
    tls: String,

    /// Accept a server certificate that does not verify (self-signed)
    #[arg(long)]
    accept_invalid_certs: bool,

    /// Bound on each connect and each registration, in seconds
    #[arg(long, default_value_t = 10.0)]
    timeout_seconds: f64,

    /// Server this command may connect to, as for `agent --allow-target`;
    /// repeat for several [default: loopback only]
    #[arg(long, value_name = "TARGET")]
    allow_target: Vec<AllowedTarget>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr, so that stdout carries only the summary line.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let pattern = AccountPattern::parse(&options.pattern).context("invalid --pattern")?;
    let password = read_password(options.password_file.as_deref())?;
    let (host, port) = options
        .c2s
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.trim_matches(['[', ']']), port.parse::<u16>().ok()?)))
        .with_context(|| {
            format!(
                "invalid --c2s {:?}: give HOST:PORT, like 127.0.0.1:5222",
                options.c2s
            )
        })?;
    let tls_mode = match options.tls.as_str() {
        "never" => TlsMode::Never,
        "if-offered" => TlsMode::IfOffered,
        "required" => TlsMode::Required,
        other => anyhow::bail!("invalid --tls {other:?}: give never, if-offered or required"),
    };
    if !(options.timeout_seconds.is_finite() && options.timeout_seconds > 0.0) {
        anyhow::bail!(
            "invalid --timeout-seconds {}: give a positive number",
            options.timeout_seconds
        );
    }
    let endpoint = Endpoint::Tcp {
        host: host.to_owned(),
        port,
        domain: options.domain.clone(),
        tls_mode,
        tls: tls::client_config(options.accept_invalid_certs)?,
        limits: StreamLimits::default(),
    };
    let targets = if options.allow_target.is_empty() {
        TargetPolicy::Loopback
    } else {
        TargetPolicy::Only(options.allow_target)
    };
    targets
        .check(&endpoint)
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?;

    let report = create_accounts(CreateAccounts {
        endpoint,
        pattern,
        password,
        first: options.first,
        count: options.count,
        rate: options.rate,
        connections: options.connections as usize,
        timeout: Duration::from_secs_f64(options.timeout_seconds),
    })
    .await?;

    for (username, reason) in &report.failures {
        eprintln!("failed: {username}@{}: {reason}", options.domain);
    }
    println!(
        "created {}, already existed {}, failed {} of {} accounts on {}",
        report.created, report.existed, report.failed, options.count, options.domain
    );
    if report.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Reads the password from the file's first line or the environment.
fn read_password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let password = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("failed to read --password-file {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => std::env::var(PASSWORD_ENV).unwrap_or_default(),
    };
    if password.is_empty() {
        anyhow::bail!(
            "missing password: put it on the first line of --password-file or in {PASSWORD_ENV}"
        );
    }
    Ok(password)
}
