//! Limits on how much load one agent generates, set on its command line.
//!
//! The coordinator's scenario decides the load, but an agent caps it, so a
//! typo in a scenario (or a stranger with the token) cannot make one agent
//! open an unbounded number of connections or run for days.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tonic::Status;

use crate::group::plan::GroupPlan;

/// Default of `--max-bots`.
pub const DEFAULT_MAX_BOTS: u32 = 20_000;
/// Default of `--max-connect-rate`, in bots per second.
pub const DEFAULT_MAX_CONNECT_RATE: f64 = 2000.0;
/// Default of `--max-run-seconds`: two hours.
pub const DEFAULT_MAX_RUN: Duration = Duration::from_secs(7200);

/// Load limits of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Bots running at once over all groups (`--max-bots`).
    pub max_bots: u32,
    /// Connection attempts per second of one group slice (`--max-connect-rate`).
    pub max_connect_rate: f64,
    /// Maximum group deadline, and the maximum time until a group's start
    /// (`--max-run-seconds`).
    pub max_run: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bots: DEFAULT_MAX_BOTS,
            max_connect_rate: DEFAULT_MAX_CONNECT_RATE,
            max_run: DEFAULT_MAX_RUN,
        }
    }
}

impl Limits {
    /// Checks the slice's connect rate and run time with `invalid_argument`
    /// naming the value, the limit and the agent flag. The bot count is
    /// checked by [`RunningBots::reserve`], because it depends on what else
    /// runs.
    pub fn check_plan(&self, plan: &GroupPlan, now_unix_micros: i64) -> Result<(), Status> {
        // This agent starts its share of the group's arrivals, so its own
        // rate is the group's rate times that share.
        let share = plan.arrival_share();
        let slice_rate = plan.join_rate * share;
        if slice_rate > self.max_connect_rate {
            return Err(Status::invalid_argument(format!(
                "this slice connects {slice_rate:.1} bots/s (join_rate {} times its share {share:.3} \
                 of the arrivals), above this agent's limit of {} bots/s; lower join_rate, spread \
                 the group over more agents, or restart the agent with a higher --max-connect-rate",
                plan.join_rate, self.max_connect_rate
            )));
        }

        let max_run_s = self.max_run.as_secs_f64();
        if plan.deadline > self.max_run {
            return Err(Status::invalid_argument(format!(
                "deadline_ms {} ({:.0} s) is above this agent's limit of {max_run_s:.0} s; \
                 shorten the group or restart the agent with a higher --max-run-seconds",
                plan.deadline.as_millis(),
                plan.deadline.as_secs_f64()
            )));
        }

        let start_in_s = (plan.start_at_unix_micros - now_unix_micros) as f64 / 1e6;
        if start_in_s > max_run_s {
            return Err(Status::invalid_argument(format!(
                "start_at_unix_micros is {start_in_s:.0} s in the future, beyond this agent's \
                 limit of {max_run_s:.0} s; check the coordinator's clock or restart the agent \
                 with a higher --max-run-seconds"
            )));
        }
        Ok(())
    }
}

/// Count of bots in the accepted group slices of an agent that have not
/// ended yet. Clones share the count, so a caller of
/// [`serve`](crate::serve) can keep one to watch the agent's load.
#[derive(Debug, Clone, Default)]
pub struct RunningBots {
    /// Sum of the counts of all live [`BotReservation`]s.
    count: Arc<AtomicU32>,
}

impl RunningBots {
    /// Bots of slices that are still running.
    pub fn current(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Reserves `bots` places under `max_bots`, or fails with
    /// `resource_exhausted` naming the counts and the agent flag.
    pub fn reserve(&self, bots: u32, max_bots: u32) -> Result<BotReservation, Status> {
        let reserved = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                running.checked_add(bots).filter(|total| *total <= max_bots)
            });
        match reserved {
            Ok(_) => Ok(BotReservation {
                running: self.clone(),
                bots,
            }),
            Err(running) => Err(Status::resource_exhausted(format!(
                "{bots} more bots with {running} already running would exceed this agent's \
                 limit of {max_bots} bots at once; wait for running groups to end, spread the \
                 group over more agents, or restart the agent with a higher --max-bots"
            ))),
        }
    }
}

/// Places of one slice in [`RunningBots`], given back on drop.
#[derive(Debug)]
pub struct BotReservation {
    running: RunningBots,
    bots: u32,
}

impl Drop for BotReservation {
    fn drop(&mut self) {
        self.running.count.fetch_sub(self.bots, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reservations add up to the limit, fail past it and free their places on drop.
    #[test]
    fn reservations_respect_limit() {
        let running = RunningBots::default();
        let first = running.reserve(6, 10).unwrap();
        let second = running.reserve(4, 10).unwrap();
        assert_eq!(running.current(), 10);

        let status = running.reserve(1, 10).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status
                .message()
                .contains("1 more bots with 10 already running"),
            "{status}"
        );
        assert!(status.message().contains("--max-bots"), "{status}");
        assert_eq!(running.current(), 10, "a failed reservation takes nothing");

        drop(first);
        assert_eq!(running.current(), 4);
        drop(second);
        assert_eq!(running.current(), 0);
    }

    /// A count that would overflow is rejected, not wrapped.
    #[test]
    fn reservation_does_not_overflow() {
        let running = RunningBots::default();
        let _all_places = running.reserve(u32::MAX, u32::MAX).unwrap();
        assert!(running.reserve(1, u32::MAX).is_err());
        assert_eq!(running.current(), u32::MAX);
    }
}
