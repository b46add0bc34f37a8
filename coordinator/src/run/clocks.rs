//! Clock offsets over a run: every estimate goes to `clock.csv`. The
//! agents' offsets are measured again before each group and then every
//! `[agents] clock_refresh_s` while it runs, and the monitor's every
//! `clock_refresh_s` while it streams.
//!
//! Each peer time is mapped with the estimate measured nearest to it, so a
//! clock that drifts during a long group is followed instead of being
//! frozen at the group's start.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use xmppload_proto::unix_micros_now;

use super::seconds_since;
use crate::clock::ClockOffset;
use crate::peers::AgentPeer;
use crate::results::{ResultsDir, ResultsError};

/// The offset estimates of one peer, each with the coordinator time at which
/// it was measured, oldest first. Clones share the same list, so the task
/// that measures and the code that maps times see the same estimates.
#[derive(Debug, Clone)]
pub struct ClockTrack {
    estimates: Arc<Mutex<Vec<(i64, ClockOffset)>>>,
}

impl ClockTrack {
    /// Starts a track with an estimate measured now.
    pub fn new(first: ClockOffset) -> ClockTrack {
        ClockTrack {
            estimates: Arc::new(Mutex::new(vec![(unix_micros_now(), first)])),
        }
    }

    /// Adds an estimate measured at coordinator time `measured_at`.
    pub fn push(&self, measured_at: i64, clock: ClockOffset) {
        self.lock().push((measured_at, clock));
    }

    /// Converts a peer timestamp to the coordinator's clock with the
    /// estimate measured nearest to that moment.
    pub fn to_local(&self, peer_unix_micros: i64) -> i64 {
        self.nearest(peer_unix_micros).to_local(peer_unix_micros)
    }

    /// Returns the estimate measured nearest to the peer time `peer_unix_micros`.
    pub fn nearest(&self, peer_unix_micros: i64) -> ClockOffset {
        let estimates = self.lock();
        // The list is never empty: `new` puts the first estimate in.
        let latest = estimates
            .last()
            .map_or(ClockOffset::default(), |(_, clock)| *clock);
        let local = latest.to_local(peer_unix_micros);
        estimates
            .iter()
            .min_by_key(|(measured_at, _)| (measured_at - local).unsigned_abs())
            .map_or(latest, |(_, clock)| *clock)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(i64, ClockOffset)>> {
        // A panic while pushing leaves the list whole, so a poisoned lock
        // still contains valid estimates.
        self.estimates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Measures each agent's clock every `interval` until `done` is cancelled,
/// adding every estimate to the agent's track and to `clock.csv`. A failed
/// measurement keeps the earlier estimates.
pub async fn refresh_during_group(
    agents: Vec<(AgentPeer, ClockTrack)>,
    interval: Duration,
    results: Arc<ResultsDir>,
    started: i64,
    done: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        for (agent, track) in &agents {
            match agent.measure_clock().await {
                Ok(clock) => {
                    track.push(unix_micros_now(), clock);
                    if let Err(err) = record(&results, started, &agent.info.name, "agent", clock) {
                        warn!(agent = %agent.info.name, %err, "failed to write a clock.csv row");
                    }
                }
                Err(status) => {
                    warn!(agent = %agent.info.name, %status, "failed to measure the clock offset during the group; keeping the earlier estimates");
                }
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(offset_micros: i64) -> ClockOffset {
        ClockOffset {
            offset_micros,
            uncertainty_micros: 100,
        }
    }

    #[test]
    fn track_maps_with_nearest_estimate() {
        let track = ClockTrack {
            estimates: Arc::new(Mutex::new(vec![(1_000_000, offset(0))])),
        };
        track.push(31_000_000, offset(5_000));
        track.push(61_000_000, offset(10_000));

        // Near the first estimate, its offset applies.
        assert_eq!(track.to_local(2_000_000), 2_000_000);
        // Nearer the second than the first or the third.
        assert_eq!(track.to_local(40_005_000), 40_000_000);
        // After the last estimate, the last applies.
        assert_eq!(track.to_local(90_010_000), 90_000_000);
    }

    #[test]
    fn track_clones_share_estimates() {
        let track = ClockTrack::new(offset(0));
        let clone = track.clone();
        let later = unix_micros_now() + 10_000_000;
        clone.push(later, offset(7));
        assert_eq!(track.nearest(later + 7).offset_micros, 7);
    }
}
