//! Component groups, which run alongside the rest of the timeline.
//!
//! A bot group step blocks the timeline until its bots have left, so a
//! component group that flooded in turn would find its rooms empty. The
//! run therefore starts a component group as a task and goes on with the
//! next step at once. The run waits for these tasks after the last step,
//! before it ends the monitor stream and builds the report.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::group::{self, GroupOutcome};
use super::placement::Share;
use crate::peers::AgentPeer;
use crate::progress::Progress;
use crate::results::{ResultsDir, ResultsError, RunRecord};
use crate::scenario::{GroupSpec, Server};

/// Run state that a background group needs, owned by its task.
pub struct RunContext {
    pub server: Server,
    pub clock_refresh: Duration,
    pub results: Arc<ResultsDir>,
    /// Run start, Unix microseconds on the coordinator's clock.
    pub started: i64,
    pub progress: Progress,
    pub stop: CancellationToken,
    pub record: Arc<RunRecord>,
}

/// Groups started in the background and not yet awaited.
#[derive(Default)]
pub struct Background {
    tasks: Vec<(GroupSpec, JoinHandle<Result<GroupOutcome, ResultsError>>)>,
}

impl Background {
    /// Starts `spec` on `agents` with `shares` and returns at once.
    pub fn spawn(
        &mut self,
        spec: &GroupSpec,
        agents: Vec<AgentPeer>,
        shares: Vec<Share>,
        context: RunContext,
    ) {
        let task_spec = spec.clone();
        let task = tokio::spawn(async move {
            let record = context.record.clone();
            group::run(
                &task_spec,
                &context.server,
                &agents,
                &shares,
                context.clock_refresh,
                &context.results,
                context.started,
                &context.progress,
                &context.stop,
                |info| record.update(|run| run.groups.push(info)),
            )
            .await
        });
        self.tasks.push((spec.clone(), task));
    }

    /// Waits for every background group and returns each outcome. A task
    /// that panicked is logged and left out, because it has no outcome.
    pub async fn finish(self) -> Vec<(GroupSpec, Result<GroupOutcome, ResultsError>)> {
        let mut outcomes = Vec::new();
        for (spec, task) in self.tasks {
            match task.await {
                Ok(outcome) => outcomes.push((spec, outcome)),
                Err(err) => warn!(group = %spec.name, %err, "the background group's task failed"),
            }
        }
        outcomes
    }
}
