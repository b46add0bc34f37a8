//! One run of a scenario, from connecting peers to the written report.
//!
//! Time zero of the run is the coordinator's clock when monitoring starts;
//! every row in the results carries seconds since then. The monitor streams
//! for the whole run in its own task, while the timeline's steps run one
//! after the other. A wait sleeps. A group is split over the agents and
//! lasts until every agent reports its slice done or its bound passes.
//! Agents and the monitor may go away and come back during a run: see
//! [`roster`] and [`monitor`].

mod background;
mod clocks;
mod group;
mod lag;
mod login;
mod monitor;
pub mod placement;
mod roster;
mod round_trips;
mod web_counts;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xmppload_proto::auth::AuthToken;
use xmppload_proto::tls::ClientTls;
use xmppload_proto::unix_micros_now;

use crate::metrics;
use crate::peers::{self, AgentPeer, PeerError};
use crate::progress::Progress;
use crate::report::{self, ReportError};
use crate::results::run_info::{PeerInfo, RunInfo};
use crate::results::{ResultsDir, ResultsError, RunRecord};
use crate::scenario::{GroupSpec, Overrides, Scenario, ScenarioError, Step};

/// Options of `coordinator run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    /// Folder that contains the numbered results folders.
    pub results_root: PathBuf,
    pub overrides: Overrides,
    /// Shared token sent to every agent and the monitor; `None` sends none.
    pub token: Option<AuthToken>,
    /// Trust root and client certificate for `https://` peers; `None`
    /// allows only `http://` peers.
    pub tls: Option<ClientTls>,
    /// Address to serve Prometheus metrics on while the run goes; `None`
    /// serves none.
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(
        "cannot listen for metrics on {address}: {source}; pick a free address for --metrics-listen"
    )]
    MetricsListen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Placement(#[from] placement::PlacementError),
    #[error("the run's data is in {dir}, but building its report failed: {source}")]
    Report { dir: PathBuf, source: ReportError },
}

/// Outcome of a finished run.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    /// True when the run was stopped before its timeline ended.
    pub stopped_early: bool,
    /// Failed bots and unfinished slices, one line each; empty for a
    /// clean run.
    pub problems: Vec<String>,
}

/// Runs a scenario to its end, or until `stop` is cancelled, and writes the
/// report either way.
pub async fn run(options: RunOptions, stop: CancellationToken) -> Result<RunOutcome, RunError> {
    let scenario = Scenario::load(&options.scenario, &options.overrides)?;
    info!(scenario = %scenario.name, path = %scenario.path.display(), "scenario is valid");

    let metrics_server = match options.metrics_listen {
        Some(address) => Some(
            metrics::bind(address)
                .await
                .map_err(|source| RunError::MetricsListen { address, source })?,
        ),
        None => None,
    };

    // Reach every peer before creating the results folder, so a typo in an
    // address costs no folder number.
    let monitor = match &scenario.monitor {
        Some(spec) => Some(
            peers::connect_monitor(&spec.address, options.token.as_ref(), options.tls.as_ref())
                .await?,
        ),
        None => None,
    };
    let mut agents = try_join_all(scenario.agents.iter().map(|address| {
        peers::connect_agent(address, options.token.as_ref(), options.tls.as_ref())
    }))
    .await?;
    make_names_unique(agents.iter_mut().map(|agent| &mut agent.info.name));
    for agent in &agents {
        info!(
            agent = %agent.info.name,
            address = %agent.info.address,
            offset_ms = agent.clock.offset_micros as f64 / 1000.0,
            uncertainty_ms = agent.clock.uncertainty_micros as f64 / 1000.0,
            "bot agent ready"
        );
    }

    // Place every group before the results folder exists, so that a group
    // that cannot fit stops the run before any bot starts.
    let agent_infos: Vec<_> = agents.iter().map(|agent| agent.info.clone()).collect();
    let placements = scenario
        .groups()
        .map(|spec| {
            let shares = placement::place(
                &spec.name,
                spec.bots,
                &agent_infos,
                scenario.agent_weights.as_deref(),
            )?;
            placement::check_connect_rates(&spec.name, spec.join_rate, &shares, &agent_infos)?;
            Ok::<_, placement::PlacementError>(shares)
        })
        .collect::<Result<Vec<_>, _>>()?;
    print_placements(scenario.groups().zip(&placements), &agent_infos);

    let results = Arc::new(ResultsDir::create_next(&options.results_root)?);
    results.write_file("scenario.toml", scenario.redacted_source().as_bytes())?;
    info!(dir = %results.path().display(), "writing results");

    let started = unix_micros_now();
    let run_info = RunInfo {
        scenario_name: scenario.name.clone(),
        scenario_path: scenario.path.display().to_string(),
        started_unix_micros: started,
        finished_unix_micros: None,
        stopped_early: false,
        monitor: monitor.as_ref().map(|peer| peer.info.clone()),
        monitored_processes: scenario
            .monitor
            .iter()
            .flat_map(|spec| spec.processes.iter().map(|process| process.name.clone()))
            .collect(),
        monitor_interval_ms: scenario.monitor.as_ref().map_or(0, |spec| spec.interval_ms),
        server_metrics_url: scenario
            .monitor
            .as_ref()
            .and_then(|spec| spec.openmetrics_url.clone()),
        agents: agents.iter().map(|agent| agent.info.clone()).collect(),
        groups: Vec::new(),
        peer_events: Vec::new(),
    };
    if let Some(peer) = &monitor {
        clocks::record(&results, started, &peer.info.name, "monitor", peer.clock)?;
    }
    for agent in &agents {
        clocks::record(&results, started, &agent.info.name, "agent", agent.clock)?;
    }
    let record = Arc::new(RunRecord::create(results.clone(), run_info)?);
    let mut roster = roster::Roster::new(agents, options.token.clone(), options.tls.clone());

    let progress = Progress::default();
    let run_end = CancellationToken::new();
    let display = tokio::spawn(progress.clone().display(run_end.clone()));
    let metrics_task = metrics_server
        .map(|server| tokio::spawn(server.serve(progress.metrics().clone(), run_end.clone())));
    let monitor_task = match (monitor, &scenario.monitor) {
        (Some(peer), Some(spec)) => Some(tokio::spawn(monitor::stream(
            peer,
            spec.clone(),
            results.clone(),
            started,
            progress.clone(),
            run_end.clone(),
            record.clone(),
            options.token.clone(),
            options.tls.clone(),
            scenario.clock_refresh,
        ))),
        _ => None,
    };

    let mut stopped_early = false;
    let mut problems = Vec::new();
    let mut group_placements = placements.iter();
    let mut background = background::Background::default();
    for (index, step) in scenario.timeline.iter().enumerate() {
        if stop.is_cancelled() {
            stopped_early = true;
            break;
        }
        match step {
            Step::Wait(duration) => {
                progress.set_phase(format!("wait {:.1} s", duration.as_secs_f64()));
                info!(step = index, seconds = duration.as_secs_f64(), "waiting");
                tokio::select! {
                    _ = tokio::time::sleep(*duration) => {}
                    _ = stop.cancelled() => {}
                }
            }
            Step::Group(spec) => {
                progress.set_phase(format!("group {}", spec.name));
                // One placement per group, made from the same timeline above.
                let Some(planned) = group_placements.next() else {
                    warn!(group = %spec.name, "no placement for the group; skipping it");
                    continue;
                };
                let mut agents = roster.prepare_group(&record, started).await;
                clocks::refresh_agents(&mut agents, &results, started).await;
                let shares = match replace_without_lost(
                    spec,
                    planned,
                    &agents,
                    &agent_infos,
                    scenario.agent_weights.as_deref(),
                ) {
                    Ok(shares) => shares,
                    Err(err) => {
                        warn!(group = %spec.name, %err, "the group does not fit on the agents left; skipping it");
                        problems.push(format!("group `{}` did not start: {err}", spec.name));
                        continue;
                    }
                };
                if spec.component.is_some() {
                    let context = background::RunContext {
                        server: scenario.server.clone(),
                        clock_refresh: scenario.clock_refresh,
                        results: results.clone(),
                        started,
                        progress: progress.clone(),
                        stop: stop.clone(),
                        record: record.clone(),
                    };
                    background.spawn(spec, agents, shares, context);
                    continue;
                }
                let outcome = group::run(
                    spec,
                    &scenario.server,
                    &agents,
                    &shares,
                    scenario.clock_refresh,
                    &results,
                    started,
                    &progress,
                    &stop,
                    |info| record.update(|run| run.groups.push(info)),
                )
                .await;
                finish_group(spec, outcome, &mut problems, &mut roster, &record);
            }
        }
    }
    for (spec, outcome) in background.finish().await {
        finish_group(&spec, outcome, &mut problems, &mut roster, &record);
    }
    stopped_early |= stop.is_cancelled();

    // Let the last monitor samples of the final step arrive, then stop.
    run_end.cancel();
    if let Some(task) = monitor_task {
        if let Err(err) = task.await {
            warn!(%err, "monitor stream task failed");
        }
    }
    let _ = display.await;
    if let Some(task) = metrics_task {
        let _ = task.await;
    }

    record.update(|run| {
        run.finished_unix_micros = Some(unix_micros_now());
        run.stopped_early = stopped_early;
    })?;

    let dir = results.path().to_path_buf();
    info!(dir = %dir.display(), "building report");
    report::build_outputs(&dir).map_err(|source| RunError::Report {
        dir: dir.clone(),
        source,
    })?;

    Ok(RunOutcome {
        dir,
        stopped_early,
        problems,
    })
}

/// Prints each group's placement (agent, bots, share, limiting resource)
/// to stdout before the run starts, and logs it.
fn print_placements<'a>(
    groups: impl Iterator<Item = (&'a GroupSpec, &'a Vec<placement::Share>)>,
    agents: &[crate::results::run_info::PeerInfo],
) {
    println!("placement:");
    println!(
        "  {:<16} {:<20} {:>8} {:>7}  limit",
        "group", "agent", "bots", "share"
    );
    for (spec, shares) in groups {
        for (agent, share) in agents.iter().zip(shares) {
            println!(
                "  {:<16} {:<20} {:>8} {:>6.1}%  {}",
                spec.name,
                agent.name,
                share.bots,
                share.fraction * 100.0,
                share.limit
            );
            info!(group = %spec.name, agent = %agent.name, bots = share.bots, share = share.fraction, limit = share.limit, "placement");
        }
    }
}

/// Records a finished group's problems, lost agents and unfinished slices.
fn finish_group(
    spec: &GroupSpec,
    outcome: Result<group::GroupOutcome, ResultsError>,
    problems: &mut Vec<String>,
    roster: &mut roster::Roster,
    record: &RunRecord,
) {
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            warn!(group = %spec.name, %err, "failed to record the group in run.json");
            return;
        }
    };

    problems.extend(group_problems(spec, &outcome));
    roster.mark_lost(&outcome.lost_agents, record);
    // Found by name, because a background group may finish after later
    // groups were added.
    let stored = record.update(|run| {
        if let Some(info) = run
            .groups
            .iter_mut()
            .rev()
            .find(|info| info.name == spec.name)
        {
            info.incomplete = outcome.incomplete;
            info.web_client_counts = outcome.web_counts;
        }
    });
    if let Err(err) = stored {
        warn!(group = %spec.name, %err, "failed to record the group's outcome in run.json");
    }
}

/// Lists what went wrong in a group in one line each: failed bots and
/// agents that did not finish their slice.
fn group_problems(spec: &GroupSpec, outcome: &group::GroupOutcome) -> Vec<String> {
    let mut problems = Vec::new();
    if outcome.failed_bots > 0 {
        problems.push(format!(
            "group {}: {} of {} bots failed",
            spec.name, outcome.failed_bots, spec.bots
        ));
    }
    for slice in &outcome.incomplete {
        problems.push(format!(
            "group {}: agent {} did not finish its {} bots ({})",
            spec.name, slice.agent, slice.bots, slice.reason
        ));
    }
    problems
}

/// Appends `#2`, `#3`, ... to repeated names so every agent has its own
/// column in the results (two agents on one host report the same name).
fn make_names_unique<'a>(names: impl Iterator<Item = &'a mut String>) {
    let mut seen = std::collections::HashMap::<String, u32>::new();
    for name in names {
        let count = seen.entry(name.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            name.push_str(&format!("#{count}"));
        }
    }
}

/// Seconds since the run's time zero, for CSV rows.
fn seconds_since(started_unix_micros: i64, local_unix_micros: i64) -> f64 {
    (local_unix_micros - started_unix_micros) as f64 / 1e6
}

/// Bound on how long the coordinator waits for a group beyond the agents'
/// own deadline, covering the time the last report needs to arrive.
const GROUP_GRACE: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::*;

    /// Repeated agent names get a numeric suffix.
    #[test]
    fn repeated_names_get_suffix() {
        let mut names = vec!["host".to_string(), "host".to_string(), "other".to_string()];
        make_names_unique(names.iter_mut());
        assert_eq!(names, ["host", "host#2", "other"]);
    }
}

/// Keeps the placement made before the run while every agent is there, and
/// places the group again over the agents left after a loss, with the same
/// weights, so that no bot goes to an agent that is gone.
fn replace_without_lost(
    spec: &GroupSpec,
    planned: &[placement::Share],
    agents: &[AgentPeer],
    all_agents: &[PeerInfo],
    weights: Option<&[f64]>,
) -> Result<Vec<placement::Share>, placement::PlacementError> {
    if agents.len() == all_agents.len() {
        return Ok(planned.to_vec());
    }
    let positions: Vec<usize> = agents
        .iter()
        .filter_map(|agent| {
            all_agents
                .iter()
                .position(|info| info.address == agent.info.address)
        })
        .collect();
    let infos: Vec<PeerInfo> = agents.iter().map(|agent| agent.info.clone()).collect();
    let weights: Option<Vec<f64>> =
        weights.map(|weights| positions.iter().map(|&i| weights[i]).collect());
    placement::place(&spec.name, spec.bots, &infos, weights.as_deref())
}
