//! Running one slice of a bot group and reporting on it.
//!
//! [`run`] spawns one task per bot into a `JoinSet` and then loops over:
//!
//! - a one-second ticker: send a `GroupReport` with the counters, the phase
//!   times and the latency histogram of that second;
//! - bot completion: when the last bot has left or failed, send the final
//!   report (`done = true`) and return;
//! - the deadline (start_at + deadline_ms): cancel the remaining bots, which
//!   close their connections and count as `timeout`, then wait for them;
//! - the report channel closing (the client dropped the stream) or agent
//!   shutdown: cancel the bots, wait briefly for their connections to close,
//!   and return without a final report.

pub mod login;
pub mod plan;
pub mod rooms;
pub mod round_trips;
pub mod stats;

use crate::clock::AgentClock;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{error, info, warn};
use xmppload_proto::v1::GroupReport;

use crate::bot::{Bot, instant_at};
use crate::component::Flood;
use crate::error::FailureKind;
use plan::GroupPlan;
use stats::GroupStats;

/// Time between two reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Maximum wait for cancelled bots to close their connections; a bot's own
/// close takes at most two waits of `transport::CLOSE_WAIT`.
const CANCEL_DRAIN: Duration = Duration::from_secs(5);

/// Sender half of a report stream.
pub type ReportSender = mpsc::Sender<Result<GroupReport, Status>>;

/// Runs the slice to completion, streaming reports into `reports`.
pub async fn run(plan: GroupPlan, reports: ReportSender, shutdown: CancellationToken) {
    let plan = Arc::new(plan);
    let stats = Arc::new(GroupStats::new());
    let bots_cancel = shutdown.child_token();
    info!(group = %plan.group, count = plan.count, offset = plan.index_offset, "group slice started");

    let mut bots = JoinSet::new();
    if let Some(flood) = Flood::new(Arc::clone(&plan), Arc::clone(&stats)) {
        // A component group is one connection in place of the bots.
        bots.spawn(flood.run(bots_cancel.clone()));
    } else {
        for k in 0..plan.count {
            let bot = Bot::new(Arc::clone(&plan), Arc::clone(&stats), k);
            bots.spawn(bot.run(bots_cancel.clone()));
        }
    }

    let deadline_micros = plan
        .start_at_unix_micros
        .saturating_add(i64::try_from(plan.deadline.as_micros()).unwrap_or(i64::MAX));
    let deadline = instant_at(plan.clock, deadline_micros);
    let mut deadline_passed = false;

    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + REPORT_INTERVAL,
        REPORT_INTERVAL,
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            _ = reports.closed() => {
                info!(group = %plan.group, "report stream dropped by the client; stopping the slice");
                stop_bots(&bots_cancel, &mut bots).await;
                return;
            }
            _ = shutdown.cancelled() => {
                info!(group = %plan.group, "agent shutting down; stopping the slice");
                stop_bots(&bots_cancel, &mut bots).await;
                let _ = reports.send(Err(Status::unavailable("the agent is shutting down"))).await;
                return;
            }
            _ = tokio::time::sleep_until(deadline), if !deadline_passed => {
                deadline_passed = true;
                warn!(group = %plan.group, remaining = bots.len(), "deadline passed; closing remaining bots as timed out");
                bots_cancel.cancel();
            }
            finished = bots.join_next() => match finished {
                None => break,
                Some(Ok(())) => {}
                Some(Err(err)) => {
                    // Bots handle their own errors, so this is a panic or an abort.
                    error!(group = %plan.group, %err, "bot task ended abnormally");
                    stats.record_failure(FailureKind::Protocol);
                }
            },
            _ = ticker.tick() => {
                if reports.send(Ok(report(&stats, plan.clock, false))).await.is_err() {
                    info!(group = %plan.group, "report stream dropped by the client; stopping the slice");
                    stop_bots(&bots_cancel, &mut bots).await;
                    return;
                }
            }
        }
    }

    let last = report(&stats, plan.clock, true);
    if let Some(counters) = &last.counters {
        info!(
            group = %plan.group,
            joined = counters.joined_total,
            left = counters.left_total,
            failed = counters.failed_total,
            sent = counters.messages_sent,
            "group slice finished"
        );
    }
    if reports.send(Ok(last)).await.is_err() {
        info!(group = %plan.group, "client dropped the stream before the final report");
    }
}

/// Cancels every bot and waits a bounded time for them to close.
async fn stop_bots(cancel: &CancellationToken, bots: &mut JoinSet<()>) {
    cancel.cancel();
    let drained = tokio::time::timeout(CANCEL_DRAIN, async {
        while bots.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            remaining = bots.len(),
            "bots did not close in time; aborting them"
        );
        bots.abort_all();
    }
}

fn report(stats: &GroupStats, clock: AgentClock, done: bool) -> GroupReport {
    GroupReport {
        unix_micros: clock.now(),
        counters: Some(stats.counters()),
        latency_histogram: stats.latency.take(),
        done,
        phases: Some(stats.phases()),
        join_lag_histogram: stats.join_lag.take(),
        send_lag_histogram: stats.send_lag.take(),
        round_trips: stats.round_trips.take(),
    }
}
