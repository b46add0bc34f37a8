//! Clock offsets over a run: every estimate goes to `clock.csv`, and the
//! agents' offsets are measured again before each group.
//!
//! A group maps its agents' times with the estimate made just before it.
//! NOTE: a long group keeps that estimate to its end, because offsets are
//! not yet measured during a group, so drift within one group is not
//! corrected. The monitor is measured only at connect.

use tracing::{info, warn};
use xmppload_proto::unix_micros_now;

use super::seconds_since;
use crate::clock::ClockOffset;
use crate::peers::AgentPeer;
use crate::results::{ResultsDir, ResultsError};

/// Appends one estimate of `peer`'s clock, dated now.
pub fn record(
    results: &ResultsDir,
    started: i64,
    peer: &str,
    role: &str,
    clock: ClockOffset,
) -> Result<(), ResultsError> {
    results.append_clock([
        format!("{:.3}", seconds_since(started, unix_micros_now())),
        peer.to_string(),
        role.to_string(),
        clock.offset_micros.to_string(),
        clock.uncertainty_micros.to_string(),
    ])
}

/// Measures every agent's clock again and records the new estimates. An
/// agent that fails the measurement keeps its previous estimate.
pub async fn refresh_agents(agents: &mut [AgentPeer], results: &ResultsDir, started: i64) {
    for agent in agents.iter_mut() {
        match agent.measure_clock().await {
            Ok(clock) => {
                info!(
                    agent = %agent.info.name,
                    offset_ms = clock.offset_micros as f64 / 1000.0,
                    uncertainty_ms = clock.uncertainty_micros as f64 / 1000.0,
                    "clock offset measured again"
                );
                agent.clock = clock;
                if let Err(err) = record(results, started, &agent.info.name, "agent", clock) {
                    warn!(agent = %agent.info.name, %err, "failed to write a clock.csv row");
                }
            }
            Err(status) => {
                warn!(agent = %agent.info.name, %status, "failed to measure the clock offset again; keeping the previous estimate");
            }
        }
    }
}
