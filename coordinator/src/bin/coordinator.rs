//! `coordinator`: runs a scenario against bot agents and a monitor agent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use xmppload_coordinator::ca::{self, CaOptions, HostSpec};
use xmppload_coordinator::report;
use xmppload_coordinator::report::runs;
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;
use xmppload_proto::auth::{AuthToken, TOKEN_ENV};
use xmppload_proto::tls::ClientTls;

/// Drives a distributed XMPP load test and writes its results.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file and write results/NN/ as the run goes.
    ///
    /// Exit status: 0 when every bot joined and every agent finished, 1 when
    /// the run could not start or its report failed, 2 when it finished with
    /// failed bots or unfinished agents, 130 when interrupted with Ctrl-C.
    Run {
        /// Scenario file (TOML), for example scenarios/30-websocket-vs-c2s.toml.
        scenario: PathBuf,
        /// Folder under which the next free numbered results folder is created.
        #[arg(long, default_value = "results")]
        results_dir: PathBuf,
        /// gRPC address of a bot agent (http://HOST:PORT, or https:// for
        /// an agent with --tls-cert); repeat for several.
        /// Replaces the scenario's [agents] addresses. Default: the scenario's list.
        #[arg(long = "agent", value_name = "ADDRESS")]
        agents: Vec<String>,
        /// gRPC address of the monitor agent (http://HOST:PORT, or https://
        /// for a monitor with --tls-cert).
        /// Default: [monitor] address of the scenario.
        #[arg(long, value_name = "ADDRESS")]
        monitor: Option<String>,
        /// File that contains the shared token of the agents and the
        /// monitor, sent on every call as `authorization: Bearer <token>`.
        /// Without it the token is taken from the XMPPLOAD_TOKEN environment
        /// variable, and without either no token is sent [default: none]
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
        /// PEM CA certificate that signed the agents' and the monitor's
        /// --tls-cert; needed for https:// addresses [default: none, only
        /// http:// addresses work]
        #[arg(long, value_name = "PATH")]
        ca: Option<PathBuf>,
        /// PEM client certificate presented to agents started with
        /// --client-ca (mutual TLS)
        #[arg(long, value_name = "PATH", requires_all = ["client_key", "ca"])]
        client_cert: Option<PathBuf>,
        /// PEM private key of --client-cert
        #[arg(long, value_name = "PATH", requires = "client_cert")]
        client_key: Option<PathBuf>,
        /// Serve live Prometheus metrics at http://ADDRESS/metrics while the
        /// run goes, for example 127.0.0.1:9464. A full socket address
        /// (IP:PORT) is required [default: no metrics server]
        #[arg(long, value_name = "IP:PORT")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Create a CA, a server certificate per agent host and the
    /// coordinator's client certificate, for TLS between them.
    ///
    /// Writes ca.pem/ca.key, NAME.pem/NAME.key per --host and
    /// coordinator.pem/coordinator.key into --out. Keys are written with
    /// mode 0600.
    Ca {
        /// Folder for the files; created when missing.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Agent or monitor host as NAME, NAME=ADDR or NAME=ADDR,ADDR; its
        /// certificate is valid for NAME and every ADDR. Repeat per host.
        #[arg(long = "host", value_name = "NAME[=ADDR,...]", required = true)]
        hosts: Vec<HostSpec>,
        /// Validity of the certificates, in days from now.
        #[arg(long, value_name = "N", default_value_t = ca::DEFAULT_DAYS)]
        days: u32,
        /// Replace existing files in --out.
        #[arg(long)]
        force: bool,
    },
    /// Rebuild report.md, report.html, summary.json and the graphs of a
    /// results folder from its data files.
    Report {
        /// A results folder, for example results/01.
        dir: PathBuf,
    },
    /// Compare the CPU of several runs phase by phase against the first run.
    ///
    /// Writes compare.md and compare_cpu.png/.svg into the output folder and
    /// prints compare.md.
    Compare {
        /// Results folders, the first one being the baseline, for example
        /// results/01 results/02.
        #[arg(required = true, num_args = 2.., value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Folder for compare.md and the graph, created when missing.
        #[arg(long, value_name = "DIR", default_value = "compare")]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    match Cli::parse().command {
        Command::Run {
            scenario,
            results_dir,
            agents,
            monitor,
            token_file,
            ca,
            client_cert,
            client_key,
            metrics_listen,
        } => {
            let token = match AuthToken::load(token_file.as_deref(), std::env::var_os(TOKEN_ENV)) {
                Ok(token) => token,
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::FAILURE;
                }
            };

            let client = client_cert.as_deref().zip(client_key.as_deref());
            let tls = match ca.map(|ca| ClientTls::load(&ca, client)).transpose() {
                Ok(tls) => tls,
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::FAILURE;
                }
            };

            let stop = CancellationToken::new();
            let on_interrupt = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    tracing::warn!("interrupted: stopping the bots and writing the report");
                    on_interrupt.cancel();
                }
            });

            let options = RunOptions {
                scenario,
                results_root: results_dir,
                overrides: Overrides { agents, monitor },
                token,
                tls,
                metrics_listen,
            };
            match run(options, stop).await {
                Ok(outcome) => {
                    println!("results: {}", outcome.dir.display());
                    println!("report:  {}", outcome.dir.join("report.md").display());
                    println!(
                        "html:    {}",
                        outcome.dir.join(report::html::HTML_FILE).display()
                    );
                    println!(
                        "graph:   {}",
                        outcome.dir.join("monitor_server.png").display()
                    );
                    if outcome.stopped_early {
                        eprintln!("the run was stopped before its timeline ended");
                        return ExitCode::from(130);
                    }
                    if !outcome.problems.is_empty() {
                        // Like Locust, a run with failures exits non-zero so
                        // that scripts and CI notice it.
                        eprintln!("the run finished with failures:");
                        for problem in &outcome.problems {
                            eprintln!("  {problem}");
                        }
                        return ExitCode::from(2);
                    }
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ca {
            out,
            hosts,
            days,
            force,
        } => {
            let options = CaOptions {
                out,
                hosts,
                days,
                force,
            };
            match ca::create(&options) {
                Ok(written) => {
                    for path in written {
                        println!("wrote {}", path.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Report { dir } => match report::build_outputs(&dir) {
            Ok(()) => {
                println!("report: {}", dir.join("report.md").display());
                println!("html:   {}", dir.join(report::html::HTML_FILE).display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Compare { dirs, out } => compare(&dirs, &out),
    }
}

fn compare(dirs: &[PathBuf], out: &std::path::Path) -> ExitCode {
    let comparison = match runs::compare_runs(dirs) {
        Ok(comparison) => comparison,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = runs::write_comparison(&comparison, out) {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    let graph = xmppload_coordinator::plot::compare::PNG_FILE;
    print!("{}", runs::render_compare_markdown(&comparison, graph));
    println!("\ncompare: {}", out.join(runs::COMPARE_FILE).display());
    ExitCode::SUCCESS
}
