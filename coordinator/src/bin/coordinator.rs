//! `coordinator`: runs a scenario against bot agents and a monitor agent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use xmppload_coordinator::report;
use xmppload_coordinator::run::{RunOptions, run};
use xmppload_coordinator::scenario::Overrides;
use xmppload_proto::auth::{AuthToken, TOKEN_ENV};

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
        /// gRPC address of a bot agent (http://HOST:PORT); repeat for several.
        /// Replaces the scenario's [agents] addresses. Default: the scenario's list.
        #[arg(long = "agent", value_name = "ADDRESS")]
        agents: Vec<String>,
        /// gRPC address of the monitor agent (http://HOST:PORT).
        /// Default: [monitor] address of the scenario.
        #[arg(long, value_name = "ADDRESS")]
        monitor: Option<String>,
        /// File that contains the shared token of the agents and the
        /// monitor, sent on every call as `authorization: Bearer <token>`.
        /// Without it the token is taken from the XMPPLOAD_TOKEN environment
        /// variable, and without either no token is sent [default: none]
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
        /// Serve live Prometheus metrics at http://ADDRESS/metrics while the
        /// run goes, for example 127.0.0.1:9464. A full socket address
        /// (IP:PORT) is required [default: no metrics server]
        #[arg(long, value_name = "IP:PORT")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Rebuild report.md and the graphs of a results folder from its data files.
    Report {
        /// A results folder, for example results/01.
        dir: PathBuf,
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
            metrics_listen,
        } => {
            let token = match AuthToken::load(token_file.as_deref(), std::env::var_os(TOKEN_ENV)) {
                Ok(token) => token,
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
                metrics_listen,
            };
            match run(options, stop).await {
                Ok(outcome) => {
                    println!("results: {}", outcome.dir.display());
                    println!("report:  {}", outcome.dir.join("report.md").display());
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
        Command::Report { dir } => match report::build_outputs(&dir) {
            Ok(()) => {
                println!("report: {}", dir.join("report.md").display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
